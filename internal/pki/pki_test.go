package pki

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustInitCA(t *testing.T, dir string) *Authority {
	t.Helper()
	ca, err := InitCA(dir, CAOptions{})
	if err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	return ca
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestInitCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ca := mustInitCA(t, dir)
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != DefaultCACommonName {
		t.Errorf("CA cert: IsCA=%v CN=%q", ca.Cert.IsCA, ca.Cert.Subject.CommonName)
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %v, want 0700", got)
	}
	if got := fileMode(t, filepath.Join(dir, "ca.key")); got != 0o600 {
		t.Errorf("ca.key mode = %v, want 0600", got)
	}
	before := readAll(t, dir)
	_, err := InitCA(dir, CAOptions{})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second InitCA: err = %v, want fs.ErrExist", err)
	}
	if after := readAll(t, dir); !mapsEqual(before, after) {
		t.Error("second InitCA changed the directory")
	}
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("LoadCA returned a different certificate")
	}
	// No temporary files are left behind.
	for name := range readAll(t, dir) {
		if strings.HasPrefix(name, ".") {
			t.Errorf("leftover file %s", name)
		}
	}
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestIssue(t *testing.T) {
	dir := t.TempDir()
	ca := mustInitCA(t, dir)
	cert, err := ca.Issue(dir, Request{
		Name:     "gateway",
		DNSNames: []string{"gateway.golden.svc"},
		IPs:      []net.IP{net.ParseIP("10.0.0.7")},
	})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if err := ca.Verify(cert, time.Now()); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if cert.Subject.CommonName != "gateway" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://golden/gateway" {
		t.Errorf("URIs = %v", cert.URIs)
	}
	for _, d := range []string{"gateway", "localhost", "gateway.golden.svc"} {
		if !slices.Contains(cert.DNSNames, d) {
			t.Errorf("DNSNames %v lacks %q", cert.DNSNames, d)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.0.0.7"} {
		if !slices.ContainsFunc(cert.IPAddresses, func(x net.IP) bool { return x.Equal(net.ParseIP(ip)) }) {
			t.Errorf("IPAddresses %v lacks %s", cert.IPAddresses, ip)
		}
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			t.Errorf("ExtKeyUsage %v lacks %v", cert.ExtKeyUsage, u)
		}
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Errorf("KeyUsage = %v, IsCA = %v", cert.KeyUsage, cert.IsCA)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", cert.SerialNumber)
	}
	if d := time.Until(cert.NotBefore); d > -30*time.Second || d < -2*time.Minute {
		t.Errorf("NotBefore %v is not about a minute in the past", cert.NotBefore)
	}
	if d := time.Until(cert.NotAfter); d < DefaultValidity-time.Minute || d > DefaultValidity {
		t.Errorf("NotAfter %v is not 90 days ahead", cert.NotAfter)
	}
	if got := fileMode(t, filepath.Join(dir, "gateway.key")); got != 0o600 {
		t.Errorf("gateway.key mode = %v", got)
	}
	// The files are in the formats other packages load.
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key")); err != nil {
		t.Errorf("tls.LoadX509KeyPair: %v", err)
	}
	loaded, err := LoadCertificateFile(filepath.Join(dir, "gateway.crt"))
	if err != nil || !loaded.Equal(cert) {
		t.Errorf("LoadCertificateFile: %v", err)
	}

	// Non-service clients get the same kind of certificate.
	if _, err := ca.Issue(dir, Request{Name: "prometheus"}); err != nil {
		t.Errorf("Issue prometheus: %v", err)
	}
	for _, req := range []Request{
		{Name: "Bad"},
		{Name: "ca"},
		{Name: "ok", DNSNames: []string{"bad name"}},
		{Name: "ok", Validity: -time.Hour},
	} {
		if _, err := ca.Issue(dir, req); err == nil {
			t.Errorf("Issue(%+v) succeeded", req)
		}
	}
}

func TestVerifyOtherCA(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	caA, caB := mustInitCA(t, dirA), mustInitCA(t, dirB)
	cert, err := caB.Issue(dirB, Request{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	if err := caA.Verify(cert, time.Now()); err == nil {
		t.Error("certificate from another CA verified")
	}
	if err := caB.Verify(cert, time.Now()); err != nil {
		t.Errorf("own CA: %v", err)
	}
}

func TestExpired(t *testing.T) {
	dir := t.TempDir()
	ca := mustInitCA(t, dir)
	now := time.Now()
	cert, err := ca.IssueAt(dir, Request{Name: "user", Validity: time.Hour}, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(cert, now); err == nil {
		t.Error("expired certificate verified")
	}
	if !ExpiresWithin(cert, now, 0) {
		t.Error("ExpiresWithin(expired, 0) = false")
	}
	fresh, err := ca.Issue(dir, Request{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	if ExpiresWithin(fresh, now, DefaultRenewBefore) {
		t.Error("fresh certificate expires within 30 days")
	}
	if !ExpiresWithin(fresh, now, DefaultValidity) {
		t.Error("fresh certificate does not expire within its validity")
	}
}

func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	names := []string{"auth", "user", "gateway", "prometheus"}
	opts := EnsureOptions{Names: names, DNSNames: map[string][]string{"gateway": {"api.example.com"}}}

	rep, err := Ensure(dir, opts)
	if err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	wantAll := append([]string{EntryCA, EntrySigningKey}, names...)
	if !slices.Equal(rep.Created, wantAll) || len(rep.Renewed)+len(rep.Kept) != 0 {
		t.Fatalf("first Ensure report = %+v", rep)
	}
	for _, f := range []string{"ca.key", "token-signing.key", "auth.key", "prometheus.key"} {
		if got := fileMode(t, filepath.Join(dir, f)); got != 0o600 {
			t.Errorf("%s mode = %v", f, got)
		}
	}
	if got := fileMode(t, filepath.Join(dir, "token-signing.pub")); got != 0o644 {
		t.Errorf("token-signing.pub mode = %v", got)
	}
	gw, err := LoadCertificateFile(filepath.Join(dir, "gateway.crt"))
	if err != nil || !slices.Contains(gw.DNSNames, "api.example.com") {
		t.Errorf("gateway cert: %v, DNS %v", err, gw.DNSNames)
	}

	before := readAll(t, dir)
	rep, err = Ensure(dir, opts)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if !slices.Equal(rep.Kept, wantAll) || len(rep.Created)+len(rep.Renewed) != 0 {
		t.Fatalf("second Ensure report = %+v", rep)
	}
	if !mapsEqual(before, readAll(t, dir)) {
		t.Error("second Ensure changed files")
	}

	// A certificate expiring within RenewBefore is renewed.
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(dir, Request{Name: "user", Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	// One signed by another CA is renewed too.
	other := mustInitCA(t, t.TempDir())
	if _, err := other.Issue(dir, Request{Name: "auth"}); err != nil {
		t.Fatal(err)
	}
	// A corrupt one is renewed.
	if err := os.WriteFile(filepath.Join(dir, "prometheus.crt"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = Ensure(dir, opts)
	if err != nil {
		t.Fatalf("third Ensure: %v", err)
	}
	if !slices.Equal(rep.Renewed, []string{"auth", "user", "prometheus"}) {
		t.Errorf("Renewed = %v (reasons %v)", rep.Renewed, rep.Reasons)
	}
	if !slices.Equal(rep.Kept, []string{EntryCA, EntrySigningKey, "gateway"}) || len(rep.Created) != 0 {
		t.Errorf("third Ensure report = %+v", rep)
	}
	for _, n := range rep.Renewed {
		if rep.Reasons[n] == "" {
			t.Errorf("no reason for renewing %s", n)
		}
		cert, err := LoadCertificateFile(filepath.Join(dir, n+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		if err := ca.Verify(cert, time.Now()); err != nil || ExpiresWithin(cert, time.Now(), DefaultRenewBefore) {
			t.Errorf("renewed %s: verify %v, NotAfter %v", n, err, cert.NotAfter)
		}
	}
	// The CA was never replaced.
	if !bytes.Equal(before["ca.key"], readAll(t, dir)["ca.key"]) {
		t.Error("ca.key changed")
	}
	// A new SAN request triggers reissue.
	opts.DNSNames["user"] = []string{"user.internal"}
	rep, err = Ensure(dir, opts)
	if err != nil || !slices.Equal(rep.Renewed, []string{"user"}) {
		t.Errorf("Ensure with new SAN: %v, %+v", err, rep)
	}
}

func TestEnsureHalfCA(t *testing.T) {
	for _, keep := range []string{"ca.crt", "ca.key"} {
		t.Run(keep, func(t *testing.T) {
			src, dir := t.TempDir(), t.TempDir()
			mustInitCA(t, src)
			data, err := os.ReadFile(filepath.Join(src, keep))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, keep), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Ensure(dir, EnsureOptions{Names: []string{"auth"}}); err == nil {
				t.Fatal("Ensure succeeded with only " + keep)
			}
			if ok, _ := exists(filepath.Join(dir, "auth.crt")); ok {
				t.Error("Ensure issued a certificate despite the error")
			}
		})
	}
}

func TestEnsureOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, opts := range []EnsureOptions{
		{Names: []string{"Auth"}},
		{Names: []string{"auth"}, RenewBefore: 100 * 24 * time.Hour},
		{Names: []string{"auth"}, Validity: -time.Hour},
		{Names: []string{"auth"}, DNSNames: map[string][]string{"user": {"x"}}},
	} {
		if _, err := Ensure(dir, opts); err == nil {
			t.Errorf("Ensure(%+v) succeeded", opts)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("invalid options still wrote %d files", len(entries))
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, EnsureOptions{Names: []string{"user", "auth"}}); err != nil {
		t.Fatal(err)
	}
	infos, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, in := range infos {
		files = append(files, in.File)
		if in.NotAfter.Before(time.Now()) || !in.NotBefore.Before(in.NotAfter) {
			t.Errorf("%s: validity %v - %v", in.File, in.NotBefore, in.NotAfter)
		}
	}
	if !slices.Equal(files, []string{"auth.crt", "ca.crt", "user.crt"}) {
		t.Fatalf("files = %v", files)
	}
	auth, ca, user := infos[0], infos[1], infos[2]
	if !ca.IsCA || auth.IsCA || !strings.Contains(ca.Subject, DefaultCACommonName) {
		t.Errorf("ca info %+v", ca)
	}
	if !strings.Contains(user.Subject, "CN=user") || !slices.Equal(user.URIs, []string{"spiffe://golden/user"}) {
		t.Errorf("user info %+v", user)
	}
	if auth.Issuer != ca.Subject || !slices.Contains(auth.IPs, "127.0.0.1") || !slices.Contains(auth.DNSNames, "auth") {
		t.Errorf("auth info %+v", auth)
	}
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"auth", true},
		{"user", true},
		{"prometheus", true},
		{"a", true},
		{"svc-2", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"Auth", false},
		{"Bad Name", false},
		{"2fa", false},
		{"-auth", false},
		{"auth-", false},
		{"auth_svc", false},
		{"auth.svc", false},
		{"../etc", false},
		{"ca", false},
		{"token-signing", false},
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), `"`+tc.name+`"`) {
				t.Errorf("error %q does not name %q", err, tc.name)
			}
			var ne *NameError
			if !errors.As(err, &ne) || ne.Name != tc.name || ne.Reason == "" {
				t.Errorf("error %v is not a complete *NameError", err)
			}
		}
	}
}

func TestValidateDNSName(t *testing.T) {
	for _, ok := range []string{"localhost", "api.example.com", "*.golden.svc", "a-b.c"} {
		if err := ValidateDNSName(ok); err != nil {
			t.Errorf("ValidateDNSName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*.", "a..b", "-a.b", "a b", "a_b", strings.Repeat("a", 64)} {
		if err := ValidateDNSName(bad); err == nil {
			t.Errorf("ValidateDNSName(%q) succeeded", bad)
		}
	}
}

func TestEnsureSigningKey(t *testing.T) {
	dir := t.TempDir()
	created, err := EnsureSigningKey(dir)
	if err != nil || !created {
		t.Fatalf("first EnsureSigningKey = %v, %v", created, err)
	}
	before := readAll(t, dir)
	created, err = EnsureSigningKey(dir)
	if err != nil || created {
		t.Fatalf("second EnsureSigningKey = %v, %v", created, err)
	}
	if !mapsEqual(before, readAll(t, dir)) {
		t.Error("second EnsureSigningKey changed files")
	}
	if got := fileMode(t, filepath.Join(dir, "token-signing.key")); got != 0o600 {
		t.Errorf("key mode = %v", got)
	}
	if got := fileMode(t, filepath.Join(dir, "token-signing.pub")); got != 0o644 {
		t.Errorf("pub mode = %v", got)
	}

	block, _ := pem.Decode(before["token-signing.key"])
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM block %v", block)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("key is %T, want ed25519.PrivateKey", key)
	}
	block, _ = pem.Decode(before["token-signing.pub"])
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("pub PEM block %v", block)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Error("public key does not match private key")
	}

	// A lost public key is derived again from the private key.
	if err := os.Remove(filepath.Join(dir, "token-signing.pub")); err != nil {
		t.Fatal(err)
	}
	if created, err := EnsureSigningKey(dir); err != nil || !created {
		t.Fatalf("EnsureSigningKey without pub = %v, %v", created, err)
	}
	if !mapsEqual(before, readAll(t, dir)) {
		t.Error("restored key pair differs")
	}
	// A public key without its private key is an error, not a new key.
	if err := os.Remove(filepath.Join(dir, "token-signing.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureSigningKey(dir); err == nil {
		t.Error("EnsureSigningKey with only the public key succeeded")
	}
}
