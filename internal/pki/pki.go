package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// TrustDomain is the SPIFFE trust domain of every golden identity, so that
// peers can tell golden identities apart from any other URI SAN.
const TrustDomain = "golden"

// Defaults applied when the corresponding option is zero.
const (
	// DefaultCAValidity keeps the root CA valid long enough that rotating it
	// is a rare, deliberate operation.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultValidity is short-lived enough that leaked leaf keys age out,
	// long enough that Ensure in an init container rarely has to reissue.
	DefaultValidity = 90 * 24 * time.Hour
	// DefaultRenewBefore leaves a month to roll out renewed certificates.
	DefaultRenewBefore = 30 * 24 * time.Hour
	// DefaultCACommonName is the subject common name of a new CA.
	DefaultCACommonName = "golden root CA"
)

// clockSkew is how far NotBefore is set in the past, so that peers whose
// clock is slightly behind still accept a freshly issued certificate.
const clockSkew = time.Minute

// reservedNames would make a certificate overwrite the CA or the token
// signing key pair, so they cannot be used as identities.
var reservedNames = map[string]bool{
	"ca":            true,
	"token-signing": true,
}

// IdentityURI returns spiffe://golden/<name>, the identity carried as URI SAN
// in the certificate issued for name.
func IdentityURI(name string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/" + name}
}

// NameError reports an invalid identity name. Reason says what is wrong
// without repeating the name, so callers can attach it to their own context
// (a flag name, a config key).
type NameError struct {
	Name   string
	Reason string
}

// Error implements error.
func (e *NameError) Error() string {
	return fmt.Sprintf("pki: invalid name %q: %s", e.Name, e.Reason)
}

// ValidateName checks that name can serve as an identity, a file name and a
// DNS label at once: 1-63 characters of lowercase letters, digits and '-',
// starting with a letter and not ending with '-'. The names "ca" and
// "token-signing" are reserved because their files would clash with the CA
// and the token signing key. The returned error is a *NameError.
func ValidateName(name string) error {
	const rule = "must be 1-63 characters of lowercase letters, digits and '-', starting with a letter and not ending with '-'"
	if len(name) < 1 || len(name) > 63 {
		return &NameError{Name: name, Reason: rule}
	}
	for i, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '-')
		if !ok {
			return &NameError{Name: name, Reason: rule}
		}
	}
	if strings.HasSuffix(name, "-") {
		return &NameError{Name: name, Reason: rule}
	}
	if reservedNames[name] {
		return &NameError{Name: name, Reason: "is reserved for the certificate directory's own files"}
	}
	return nil
}

// ValidateDNSName checks that s is usable as a DNS SAN: dot-separated labels
// of letters, digits and '-' (not at either end of a label), at most 253
// characters, optionally starting with a "*." wildcard label.
func ValidateDNSName(s string) error {
	host := strings.TrimPrefix(s, "*.")
	if host == "" || len(s) > 253 {
		return fmt.Errorf("pki: invalid DNS name %q: must be 1-253 characters", s)
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) < 1 || len(label) > 63 {
			return fmt.Errorf("pki: invalid DNS name %q: labels must be 1-63 characters", s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("pki: invalid DNS name %q: labels must not start or end with '-'", s)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("pki: invalid DNS name %q: only letters, digits, '-' and '.' are allowed", s)
			}
		}
	}
	return nil
}

// Authority is a loaded root CA, able to sign service certificates.
type Authority struct {
	// Cert is the self-signed CA certificate (ca.crt).
	Cert *x509.Certificate
	// Key is the CA private key (ca.key).
	Key crypto.Signer
}

// CAOptions configures InitCA. Zero values select the defaults.
type CAOptions struct {
	// CommonName is the CA subject common name; default "golden root CA".
	CommonName string
	// Validity is how long the CA is valid; default 10 years.
	Validity time.Duration
}

// InitCA creates a new root CA in dir (ca.crt and ca.key), creating dir with
// mode 0700 if needed. It never replaces an existing CA: if ca.key or ca.crt
// already exists the returned error wraps fs.ErrExist, because silently
// replacing a CA would invalidate every certificate issued so far.
func InitCA(dir string, opts CAOptions) (*Authority, error) {
	if opts.CommonName == "" {
		opts.CommonName = DefaultCACommonName
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultCAValidity
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("pki: CA validity %v must be positive", opts.Validity)
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	keyPath, certPath := filepath.Join(dir, caKeyFile), filepath.Join(dir, caCertFile)
	for _, p := range []string{keyPath, certPath} {
		ok, err := exists(p)
		if err != nil {
			return nil, err
		}
		if ok {
			return nil, fmt.Errorf("pki: refusing to create a new CA: %s already exists: %w", p, fs.ErrExist)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{TrustDomain}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(opts.Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// Two levels only: the CA signs leaves, never intermediates.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	keyPEM, err := encodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	// The key goes first and without replacement: if another process created
	// a CA concurrently, we fail here before touching ca.crt.
	if err := writeFileAtomic(keyPath, keyPEM, privateMode, true); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, encodeCert(der), publicMode, true); err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// LoadCA loads ca.crt and ca.key from dir and checks that they belong
// together and that the certificate is a CA.
func LoadCA(dir string) (*Authority, error) {
	cert, err := LoadCertificateFile(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", filepath.Join(dir, caCertFile))
	}
	key, err := loadPrivateKeyFile(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, err
	}
	if !samePublicKey(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s does not match %s", filepath.Join(dir, caKeyFile), filepath.Join(dir, caCertFile))
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// Request describes a certificate to issue.
type Request struct {
	// Name is the identity: subject CN = Name, URI SAN = IdentityURI(Name),
	// and the files are <Name>.crt and <Name>.key.
	Name string
	// DNSNames are extra DNS SANs; Name and "localhost" are always included.
	DNSNames []string
	// IPs are extra IP SANs; 127.0.0.1 and ::1 are always included.
	IPs []net.IP
	// Validity is how long the certificate is valid; default 90 days.
	Validity time.Duration
}

// Issue creates a new key pair for req.Name, signs it with the CA and writes
// <name>.key and <name>.crt to dir, replacing any previous pair. The
// certificate is valid for both server and client authentication, so one
// file pair serves both sides of mutual TLS.
func (a *Authority) Issue(dir string, req Request) (*x509.Certificate, error) {
	return a.IssueAt(dir, req, time.Now())
}

// IssueAt is Issue with an explicit clock: NotBefore is now minus one minute
// and NotAfter is now plus req.Validity. Tests use it to create certificates
// that are already expired or about to expire. NotAfter is capped at the CA's
// NotAfter, since a certificate cannot outlive its issuer.
func (a *Authority) IssueAt(dir string, req Request, now time.Time) (*x509.Certificate, error) {
	if a == nil || a.Cert == nil || a.Key == nil {
		return nil, errors.New("pki: Issue on an incomplete Authority")
	}
	if err := ValidateName(req.Name); err != nil {
		return nil, err
	}
	for _, d := range req.DNSNames {
		if err := ValidateDNSName(d); err != nil {
			return nil, err
		}
	}
	for _, ip := range req.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, fmt.Errorf("pki: invalid IP address %v", ip)
		}
	}
	if req.Validity == 0 {
		req.Validity = DefaultValidity
	}
	if req.Validity < 0 {
		return nil, fmt.Errorf("pki: validity %v must be positive", req.Validity)
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key for %q: %w", req.Name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(req.Validity)
	if notAfter.After(a.Cert.NotAfter) {
		notAfter = a.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.Name, Organization: []string{TrustDomain}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dnsNames(req.Name, req.DNSNames),
		IPAddresses:  ipAddresses(req.IPs),
		URIs:         []*url.URL{IdentityURI(req.Name)},
		// BasicConstraintsValid with IsCA false marks this explicitly as a leaf.
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate for %q: %w", req.Name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse certificate for %q: %w", req.Name, err)
	}
	keyPEM, err := encodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	// Key first: if we stop in between, the pair mismatches and Ensure
	// reissues it, instead of an old key silently pairing with a new cert.
	if err := writeFileAtomic(filepath.Join(dir, req.Name+keyExt), keyPEM, privateMode, false); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, req.Name+certExt), encodeCert(der), publicMode, false); err != nil {
		return nil, err
	}
	return cert, nil
}

// Verify checks that cert chains to the CA at time now (any extended key
// usage is accepted). A zero now means the current time.
func (a *Authority) Verify(cert *x509.Certificate, now time.Time) error {
	if a == nil || a.Cert == nil {
		return errors.New("pki: Verify on an incomplete Authority")
	}
	if cert == nil {
		return errors.New("pki: Verify of a nil certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(a.Cert)
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("pki: verify %q: %w", cert.Subject.CommonName, err)
	}
	return nil
}

// ExpiresWithin reports whether cert expires within d of now (or has
// already expired), which is when it should be renewed.
func ExpiresWithin(cert *x509.Certificate, now time.Time, d time.Duration) bool {
	return !cert.NotAfter.After(now.Add(d))
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("pki: generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func dnsNames(name string, extra []string) []string {
	out := []string{name, "localhost"}
	seen := map[string]bool{name: true, "localhost": true}
	for _, d := range extra {
		k := strings.ToLower(d)
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

func ipAddresses(extra []net.IP) []net.IP {
	out := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, ip := range extra {
		dup := false
		for _, have := range out {
			if have.Equal(ip) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out
}
