package security

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Policy
		wantErr string // substring of the error; "" means success
	}{
		{"one method one identity", "GetUser=gateway", Policy{"GetUser": {"gateway"}}, ""},
		{"several identities", "GetUser=gateway,auth", Policy{"GetUser": {"gateway", "auth"}}, ""},
		{"several methods", "GetUser=gateway;Login=*", Policy{"GetUser": {"gateway"}, "Login": {"*"}}, ""},
		{"full method name", "/golden.user.v1.UserService/GetUser=gateway",
			Policy{"/golden.user.v1.UserService/GetUser": {"gateway"}}, ""},
		{"whitespace trimmed", "  GetUser = gateway , auth ;  Login=*  ", Policy{"GetUser": {"gateway", "auth"}, "Login": {"*"}}, ""},
		{"empty entries skipped", ";GetUser=gateway;;", Policy{"GetUser": {"gateway"}}, ""},
		{"repeated method accumulates", "GetUser=gateway;GetUser=auth", Policy{"GetUser": {"gateway", "auth"}}, ""},
		{"missing equals", "GetUser", nil, `"GetUser" is not Method=identity`},
		{"missing method", "=gateway", nil, `"=gateway" is not Method=identity`},
		{"empty identity", "GetUser=", nil, `"GetUser=" has an empty identity`},
		{"empty identity in list", "GetUser=gateway,,auth", nil, "has an empty identity"},
		{"blank identity in list", "GetUser=gateway, ", nil, "has an empty identity"},
		{"bad entry after good one", "GetUser=gateway;Login", nil, `"Login"`},
		{"empty policy", "", nil, "policy is empty"},
		{"only separators", " ; ;", nil, "policy is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePolicy(%q) err = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("ParsePolicy(%q) returned %v with an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParsePolicy(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPolicyStringRoundTrip(t *testing.T) {
	p := Policy{"Login": {"gateway"}, "GetUser": {"gateway", "auth"}, "/grpc.x.Y/Z": {"*"}}
	s := p.String()
	if want := "/grpc.x.Y/Z=*;GetUser=gateway,auth;Login=gateway"; s != want {
		t.Errorf("String() = %q, want %q (sorted by method)", s, want)
	}
	back, err := ParsePolicy(s)
	if err != nil {
		t.Fatalf("ParsePolicy(String()): %v", err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip = %v, want %v", back, p)
	}
}

func TestPolicyFlagValue(t *testing.T) {
	var p Policy
	if err := p.Set("GetUser=gateway"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, Policy{"GetUser": {"gateway"}}) {
		t.Errorf("after Set: %v", p)
	}
	if err := p.Set("nonsense"); err == nil {
		t.Error("Set(nonsense) succeeded")
	}
	if !reflect.DeepEqual(p, Policy{"GetUser": {"gateway"}}) {
		t.Errorf("a failed Set changed the policy to %v", p)
	}
	if p.Type() != "policy" {
		t.Errorf("Type() = %q", p.Type())
	}
}

func TestPolicyAllows(t *testing.T) {
	p := Policy{
		"GetUser":                                {"gateway"},
		"/golden.user.v1.UserService/DeleteUser": {"admin"},
		"HealthCheck":                            {AnyIdentity},
		"grpc.channelz.v1.Channelz/*":            {"admin"},
		"/grpc.channelz.v1.Channelz/GetServers":  {"gateway"},
	}
	tests := []struct {
		method, id string
		want       bool
	}{
		{"/golden.user.v1.UserService/GetUser", "gateway", true},
		{"/golden.user.v1.UserService/GetUser", "auth", false},
		{"GetUser", "gateway", true},
		{"/golden.user.v1.UserService/DeleteUser", "admin", true},
		{"/golden.user.v1.UserService/DeleteUser", "gateway", false},
		// A full name in the policy binds only that service's method.
		{"/golden.other.v1.Other/DeleteUser", "admin", false},
		{"/golden.user.v1.UserService/HealthCheck", "anyone", true},
		{"/golden.user.v1.UserService/ListUsers", "gateway", false},
		{"", "gateway", false},
		// A service wildcard covers its methods; a more specific entry wins over it.
		{"/grpc.channelz.v1.Channelz/GetTopChannels", "admin", true},
		{"/grpc.channelz.v1.Channelz/GetTopChannels", "gateway", false},
		{"/grpc.channelz.v1.Channelz/GetServers", "gateway", true},
		{"/grpc.channelz.v1.Channelz/GetServers", "admin", false},
		{"/grpc.other.v1.Other/GetTopChannels", "admin", false},
	}
	for _, tt := range tests {
		if got := p.Allows(tt.method, tt.id); got != tt.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tt.method, tt.id, got, tt.want)
		}
	}
}

// newCert returns a self-signed certificate with the given subject CN and URI SANs.
func newCert(t *testing.T, cn string, uris ...string) *x509.Certificate {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestIdentityOf(t *testing.T) {
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"URI SAN wins over CN", newCert(t, "something-else", "spiffe://golden/gateway"), "gateway"},
		{"CN only", newCert(t, "prometheus"), "prometheus"},
		{"foreign URI falls back to CN", newCert(t, "auth", "spiffe://other/gateway"), "auth"},
		{"golden URI after a foreign one", newCert(t, "cn", "https://example.com/x", "spiffe://golden/user"), "user"},
		{"neither", newCert(t, ""), ""},
	}
	for _, tt := range tests {
		if got := IdentityOf(tt.cert); got != tt.want {
			t.Errorf("%s: IdentityOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestIdentityOfWithoutString checks the shortcut that reads golden's own
// URIs without building their string against that string, for URIs it
// takes and URIs it must leave to the string.
func TestIdentityOfWithoutString(t *testing.T) {
	uris := []string{
		"spiffe://golden/user", "spiffe://golden/a-b_c.d~9", "spiffe://golden/", "SPIFFE://golden/user",
		"spiffe://golden/a/b", "spiffe://golden/a%2Fb", "spiffe://golden/a b", "spiffe://golden/é",
		"spiffe://golden/user?x=1", "spiffe://golden/user?", "spiffe://golden/user#f", "spiffe://u@golden/user",
		"spiffe://golden:1/user", "spiffe://Golden/user", "spiffe:golden/user", "spiffe://other/user", "https://golden/user",
	}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		fromString, isGolden := strings.CutPrefix(u.String(), IdentityURIPrefix)
		id, ok := plainIdentity(u)
		if ok && (!isGolden || id != fromString) {
			t.Errorf("%s: plainIdentity = %q, the string reads %q (golden %v)", raw, id, fromString, isGolden)
		}
		if cert := newCert(t, "cn", raw); isGolden && IdentityOf(cert) != fromString {
			t.Errorf("%s: IdentityOf = %q, want %q", raw, IdentityOf(cert), fromString)
		}
	}
	if _, ok := plainIdentity(mustParse(t, "spiffe://golden/user")); !ok {
		t.Error("plainIdentity does not take spiffe://golden/user")
	}
	cert := newCert(t, "cn", "spiffe://golden/user")
	if n := testing.AllocsPerRun(100, func() { IdentityOf(cert) }); n != 0 {
		t.Errorf("IdentityOf of a golden certificate allocates %v times, want 0", n)
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// peerCtx returns a context whose peer presents info as its auth info.
func peerCtx(info credentials.AuthInfo) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		AuthInfo: info,
	})
}

func verified(certs ...*x509.Certificate) credentials.TLSInfo {
	return credentials.TLSInfo{State: tls.ConnectionState{
		PeerCertificates: certs,
		VerifiedChains:   [][]*x509.Certificate{certs},
	}}
}

type fakeAuthInfo struct{}

func (fakeAuthInfo) AuthType() string { return "fake" }

func TestUnaryServerInterceptor(t *testing.T) {
	gateway := newCert(t, "gateway-cn", "spiffe://golden/gateway")
	cnOnly := newCert(t, "prometheus")
	policy := Policy{"GetUser": {"gateway"}, "Scrape": {"prometheus"}, "HealthCheck": {AnyIdentity}}
	intercept := UnaryServerInterceptor(policy)

	const getUser = "/golden.user.v1.UserService/GetUser"
	tests := []struct {
		name     string
		ctx      context.Context
		method   string
		wantCode codes.Code
		wantMsg  string // substring of the status message on failure
		wantID   string // identity the handler sees on success
	}{
		{"no peer", context.Background(), getUser, codes.Unauthenticated, "client certificate", ""},
		{"peer without TLS", peerCtx(fakeAuthInfo{}), getUser, codes.Unauthenticated, "client certificate", ""},
		{"TLS without a certificate", peerCtx(credentials.TLSInfo{}), getUser, codes.Unauthenticated, "client certificate", ""},
		{"unverified certificate", peerCtx(credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{gateway}}}),
			getUser, codes.Unauthenticated, "client certificate", ""},
		{"certificate without identity", peerCtx(verified(newCert(t, ""))), getUser, codes.Unauthenticated, "client certificate", ""},
		{"allowed by URI SAN", peerCtx(verified(gateway)), getUser, codes.OK, "", "gateway"},
		{"allowed by CN", peerCtx(verified(cnOnly)), "/golden.metrics.v1.M/Scrape", codes.OK, "", "prometheus"},
		{"any identity", peerCtx(verified(cnOnly)), "/golden.user.v1.UserService/HealthCheck", codes.OK, "", "prometheus"},
		{"not allowed", peerCtx(verified(cnOnly)), getUser, codes.PermissionDenied, `caller "prometheus" is not allowed to call ` + getUser, ""},
		{"unlisted method", peerCtx(verified(gateway)), "/golden.user.v1.UserService/DeleteUser", codes.PermissionDenied, `"gateway"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			var sawID string
			resp, err := intercept(tt.ctx, "req", &grpc.UnaryServerInfo{FullMethod: tt.method}, func(ctx context.Context, req any) (any, error) {
				called = true
				sawID = IdentityFromContext(ctx)
				return "resp", nil
			})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				if called {
					t.Error("handler ran for a refused call")
				}
				if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("message = %q, want it to contain %q", msg, tt.wantMsg)
				}
				return
			}
			if !called || resp != "resp" {
				t.Fatalf("handler called = %v, resp = %v", called, resp)
			}
			if sawID != tt.wantID {
				t.Errorf("IdentityFromContext in handler = %q, want %q", sawID, tt.wantID)
			}
		})
	}
}

type fakeStream struct {
	grpc.ServerStream // nil: only Context is used
	ctx               context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestStreamServerInterceptor(t *testing.T) {
	intercept := StreamServerInterceptor(Policy{"Watch": {"gateway"}})
	info := &grpc.StreamServerInfo{FullMethod: "/golden.x.v1.X/Watch"}

	var sawID string
	handler := func(_ any, ss grpc.ServerStream) error {
		sawID = IdentityFromContext(ss.Context())
		return nil
	}
	if err := intercept(nil, fakeStream{ctx: peerCtx(verified(newCert(t, "", "spiffe://golden/gateway")))}, info, handler); err != nil {
		t.Fatalf("allowed stream: %v", err)
	}
	if sawID != "gateway" {
		t.Errorf("stream handler saw identity %q, want gateway", sawID)
	}
	err := intercept(nil, fakeStream{ctx: context.Background()}, info, handler)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("stream without peer: %v, want Unauthenticated", err)
	}
	err = intercept(nil, fakeStream{ctx: peerCtx(verified(newCert(t, "auth")))}, info, handler)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"auth"`) {
		t.Errorf("stream from auth: %v, want PermissionDenied naming \"auth\"", err)
	}
}

func TestPeerIdentity(t *testing.T) {
	if id, ok := PeerIdentity(context.Background()); ok || id != "" {
		t.Errorf("no peer: PeerIdentity = %q, %v", id, ok)
	}
	if id, ok := PeerIdentity(peerCtx(verified(newCert(t, "cn", "spiffe://golden/user")))); !ok || id != "user" {
		t.Errorf("verified user: PeerIdentity = %q, %v", id, ok)
	}
	if id, ok := PeerIdentity(peerCtx(credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{}}}})); ok {
		t.Errorf("empty verified chain: PeerIdentity = %q, %v, want not ok", id, ok)
	}
	if got := IdentityFromContext(context.Background()); got != "" {
		t.Errorf("IdentityFromContext(empty) = %q", got)
	}
	if got := IdentityFromContext(NewContext(context.Background(), "auth")); got != "auth" {
		t.Errorf("IdentityFromContext = %q, want auth", got)
	}
}
