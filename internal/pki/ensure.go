package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Report entries for the CA and the token signing key pair; other entries
// are identity names.
const (
	// EntryCA names the root CA (ca.crt, ca.key) in an EnsureReport.
	EntryCA = "ca"
	// EntrySigningKey names the token signing key pair in an EnsureReport.
	EntrySigningKey = "token-signing"
)

// EnsureOptions configures Ensure. Zero values select the defaults.
type EnsureOptions struct {
	// Names are the identities that need a certificate; duplicates are ignored.
	Names []string
	// RenewBefore reissues certificates that expire within this duration;
	// default 30 days. It must be shorter than Validity, or every run would
	// reissue every certificate.
	RenewBefore time.Duration
	// Validity of newly issued certificates; default 90 days.
	Validity time.Duration
	// DNSNames holds optional extra DNS SANs per name. A certificate that
	// lacks one of them is reissued.
	DNSNames map[string][]string
}

// EnsureReport says what Ensure did with each entry. Entries are EntryCA for
// the CA, EntrySigningKey for the token signing key pair, and otherwise the
// identity names from EnsureOptions.Names, in the order they were handled.
type EnsureReport struct {
	// Created lists entries whose files did not exist.
	Created []string
	// Renewed lists certificates that were reissued because they were
	// unreadable, did not match their key or name, were not signed by this
	// CA, lacked a requested SAN, or expired within RenewBefore.
	Renewed []string
	// Kept lists entries that were valid and left untouched.
	Kept []string
	// Reasons maps each Renewed entry to why it was reissued.
	Reasons map[string]string
}

// Ensure brings dir to the state described by opts and is safe to run on
// every start (for example in an init container): it creates the CA if
// missing, the token signing key pair if missing, and a certificate for each
// name if missing, unreadable, not signed by this CA, or expiring within
// RenewBefore; everything else is kept byte for byte. A half-present CA
// (ca.key without ca.crt or the reverse) or an expired CA is an error rather
// than a silent re-initialisation, since a new CA invalidates every issued
// certificate. On error the report describes what was done before it.
func Ensure(dir string, opts EnsureOptions) (EnsureReport, error) {
	var rep EnsureReport
	if opts.RenewBefore == 0 {
		opts.RenewBefore = DefaultRenewBefore
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultValidity
	}
	if opts.RenewBefore < 0 || opts.Validity < 0 {
		return rep, fmt.Errorf("pki: RenewBefore %v and Validity %v must be positive", opts.RenewBefore, opts.Validity)
	}
	if opts.RenewBefore >= opts.Validity {
		return rep, fmt.Errorf("pki: RenewBefore %v must be shorter than Validity %v", opts.RenewBefore, opts.Validity)
	}
	var names []string
	want := map[string]bool{}
	for _, n := range opts.Names {
		if err := ValidateName(n); err != nil {
			return rep, err
		}
		if !want[n] {
			want[n] = true
			names = append(names, n)
		}
	}
	for n, ds := range opts.DNSNames {
		if !want[n] {
			return rep, fmt.Errorf("pki: DNSNames has an entry for %q, which is not in Names", n)
		}
		for _, d := range ds {
			if err := ValidateDNSName(d); err != nil {
				return rep, err
			}
		}
	}
	if err := ensureDir(dir); err != nil {
		return rep, err
	}

	ca, created, err := ensureCA(dir)
	if err != nil {
		return rep, err
	}
	if created {
		rep.Created = append(rep.Created, EntryCA)
	} else {
		rep.Kept = append(rep.Kept, EntryCA)
	}
	now := time.Now()
	if !now.Before(ca.Cert.NotAfter) {
		return rep, fmt.Errorf("pki: CA in %s expired at %s; rotate it deliberately, Ensure will not replace it", dir, ca.Cert.NotAfter.Format(time.RFC3339))
	}

	created, err = EnsureSigningKey(dir)
	if err != nil {
		return rep, err
	}
	if created {
		rep.Created = append(rep.Created, EntrySigningKey)
	} else {
		rep.Kept = append(rep.Kept, EntrySigningKey)
	}

	for _, name := range names {
		reason, err := checkLeaf(dir, ca, name, opts.DNSNames[name], now, opts.RenewBefore)
		if err != nil {
			return rep, err
		}
		if reason == "" {
			rep.Kept = append(rep.Kept, name)
			continue
		}
		if _, err := ca.IssueAt(dir, Request{Name: name, DNSNames: opts.DNSNames[name], Validity: opts.Validity}, now); err != nil {
			return rep, err
		}
		if reason == reasonMissing {
			rep.Created = append(rep.Created, name)
			continue
		}
		rep.Renewed = append(rep.Renewed, name)
		if rep.Reasons == nil {
			rep.Reasons = map[string]string{}
		}
		rep.Reasons[name] = reason
	}
	return rep, nil
}

// ensureCA loads the CA in dir or creates it when neither file exists.
func ensureCA(dir string) (*Authority, bool, error) {
	haveKey, err := exists(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, false, err
	}
	haveCert, err := exists(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, false, err
	}
	switch {
	case haveKey && haveCert:
		ca, err := LoadCA(dir)
		return ca, false, err
	case !haveKey && !haveCert:
		ca, err := InitCA(dir, CAOptions{})
		return ca, true, err
	case haveCert:
		return nil, false, fmt.Errorf("pki: %s exists but %s is missing; restore the CA key or remove the CA deliberately", filepath.Join(dir, caCertFile), caKeyFile)
	default:
		return nil, false, fmt.Errorf("pki: %s exists but %s is missing; restore the CA certificate or remove the CA deliberately", filepath.Join(dir, caKeyFile), caCertFile)
	}
}

const reasonMissing = "missing"

// checkLeaf returns why the certificate for name must be (re)issued, or ""
// if it can be kept. Only I/O errors other than unreadable files are
// returned as errors.
func checkLeaf(dir string, ca *Authority, name string, wantDNS []string, now time.Time, renewBefore time.Duration) (string, error) {
	certPath, keyPath := filepath.Join(dir, name+certExt), filepath.Join(dir, name+keyExt)
	haveCert, err := exists(certPath)
	if err != nil {
		return "", err
	}
	haveKey, err := exists(keyPath)
	if err != nil {
		return "", err
	}
	if !haveCert && !haveKey {
		return reasonMissing, nil
	}
	if !haveCert {
		return "certificate file missing", nil
	}
	if !haveKey {
		return "key file missing", nil
	}
	return leafReason(certPath, keyPath, ca, name, wantDNS, now, renewBefore), nil
}

// leafReason returns why the certificate and key at certPath and keyPath,
// both present, must be reissued, or "" if they can be kept. An unreadable
// file is a reason to reissue, not an error.
func leafReason(certPath, keyPath string, ca *Authority, name string, wantDNS []string, now time.Time, renewBefore time.Duration) string {
	cert, err := LoadCertificateFile(certPath)
	if err != nil {
		return "unreadable certificate: " + err.Error()
	}
	key, err := loadPrivateKeyFile(keyPath)
	if err != nil {
		return "unreadable key: " + err.Error()
	}
	if !samePublicKey(key.Public(), cert.PublicKey) {
		return "key does not match certificate"
	}
	if err := ca.Verify(cert, now); err != nil {
		return "does not verify against this CA: " + err.Error()
	}
	// A certificate capped at the CA's expiry cannot be improved by
	// reissuing it, so only renew those that end before the CA does.
	if ExpiresWithin(cert, now, renewBefore) && cert.NotAfter.Before(ca.Cert.NotAfter) {
		return "expires " + cert.NotAfter.Format(time.RFC3339)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != IdentityURI(name).String() {
		return "identity URI is not " + IdentityURI(name).String()
	}
	for _, d := range dnsNames(name, wantDNS) {
		found := false
		for _, have := range cert.DNSNames {
			if strings.EqualFold(have, d) {
				found = true
				break
			}
		}
		if !found {
			return "missing DNS name " + d
		}
	}
	return ""
}

// EnsureSigningKey creates the auth service's Ed25519 token signing key pair
// (token-signing.key, mode 0600, and token-signing.pub, mode 0644) in dir if
// it does not exist, and reports whether it wrote anything. An existing
// private key is never replaced, because that would invalidate every issued
// token; a missing public key is derived from it. A public key without its
// private key, or a pair that does not match, is an error.
func EnsureSigningKey(dir string) (created bool, err error) {
	if err := ensureDir(dir); err != nil {
		return false, err
	}
	keyPath, pubPath := filepath.Join(dir, signingKeyFile), filepath.Join(dir, signingPubFile)
	haveKey, err := exists(keyPath)
	if err != nil {
		return false, err
	}
	havePub, err := exists(pubPath)
	if err != nil {
		return false, err
	}
	if !haveKey {
		if havePub {
			return false, fmt.Errorf("pki: %s exists but %s is missing; restore the key or remove both deliberately", pubPath, signingKeyFile)
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return false, fmt.Errorf("pki: generate token signing key: %w", err)
		}
		keyPEM, err := encodePrivateKey(priv)
		if err != nil {
			return false, err
		}
		if err := writeFileAtomic(keyPath, keyPEM, privateMode, true); err != nil {
			return false, err
		}
		return true, writePublicKey(pubPath, priv.Public())
	}

	signer, err := loadPrivateKeyFile(keyPath)
	if err != nil {
		return false, err
	}
	priv, ok := signer.(ed25519.PrivateKey)
	if !ok {
		return false, fmt.Errorf("pki: %s holds a %T, want an Ed25519 key", keyPath, signer)
	}
	if !havePub {
		return true, writePublicKey(pubPath, priv.Public())
	}
	pub, err := loadPublicKeyFile(pubPath)
	if err != nil {
		return false, err
	}
	if !priv.Public().(ed25519.PublicKey).Equal(pub) {
		return false, fmt.Errorf("pki: %s does not match %s", pubPath, signingKeyFile)
	}
	return false, nil
}

func writePublicKey(path string, pub any) error {
	data, err := encodePublicKey(pub)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, publicMode, false)
}

func loadPublicKeyFile(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	der, err := decodePEM(path, data, pemPublicKey)
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	return pub, nil
}

// CertInfo summarizes one certificate file for display.
type CertInfo struct {
	// File is the base name of the certificate file, e.g. "auth.crt".
	File string
	// Subject and Issuer are distinguished names in RFC 2253 form.
	Subject string
	Issuer  string
	// URIs, DNSNames and IPs are the subject alternative names.
	URIs     []string
	DNSNames []string
	IPs      []string
	// NotBefore and NotAfter bound the validity period.
	NotBefore time.Time
	NotAfter  time.Time
	// IsCA is true for the root CA certificate.
	IsCA bool
}

// Inspect reads every *.crt file in dir and summarizes it, sorted by file
// name. A file that cannot be parsed makes Inspect fail with an error naming
// it, since an unreadable certificate is exactly what an operator needs to see.
func Inspect(dir string) ([]CertInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var out []CertInfo
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), certExt) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		cert, err := LoadCertificateFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		info := CertInfo{
			File:      e.Name(),
			Subject:   cert.Subject.String(),
			Issuer:    cert.Issuer.String(),
			DNSNames:  cert.DNSNames,
			NotBefore: cert.NotBefore,
			NotAfter:  cert.NotAfter,
			IsCA:      cert.IsCA,
		}
		for _, u := range cert.URIs {
			info.URIs = append(info.URIs, u.String())
		}
		for _, ip := range cert.IPAddresses {
			info.IPs = append(info.IPs, ip.String())
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}
