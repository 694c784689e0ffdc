package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	testIssuer   = "golden-auth"
	testAudience = "golden"
)

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func newPair(t *testing.T) (*Signer, *Verifier, ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv := newKey(t)
	s := NewSigner(priv, testIssuer, testAudience, 10*time.Minute, WithClock(fixedClock(testNow)))
	v := NewVerifier(pub, testIssuer, testAudience, WithClock(fixedClock(testNow.Add(time.Minute))))
	return s, v, pub, priv
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s, v, _, _ := newPair(t)
	tok, exp, err := s.Sign("user-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(10 * time.Minute); !exp.Equal(want) {
		t.Errorf("expiresAt = %v, want %v", exp, want)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "user-1" || c.Username != "alice" || c.Issuer != testIssuer {
		t.Errorf("claims = %+v", c)
	}
	if len(c.Audience) != 1 || c.Audience[0] != testAudience {
		t.Errorf("aud = %v", c.Audience)
	}
	if !c.ExpiresAt.Equal(exp) || !c.IssuedAt.Equal(testNow) || !c.NotBefore.Equal(testNow) {
		t.Errorf("times: exp %v iat %v nbf %v", c.ExpiresAt, c.IssuedAt, c.NotBefore)
	}
	if c.ID == "" {
		t.Error("jti is empty")
	}

	// The header must say EdDSA/JWT, and the jti must differ per token.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["alg"] != "EdDSA" || parsed.Header["typ"] != "JWT" {
		t.Errorf("header = %v", parsed.Header)
	}
	tok2, _, _ := s.Sign("user-1", "alice")
	c2, err := v.Verify(tok2)
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID == c.ID {
		t.Error("two tokens share a jti")
	}
}

func TestSignErrors(t *testing.T) {
	_, priv := newKey(t)
	if _, _, err := NewSigner(priv, testIssuer, testAudience, time.Minute).Sign("", "alice"); err == nil {
		t.Error("Sign with empty subject succeeded")
	}
	if _, _, err := NewSigner(nil, testIssuer, testAudience, time.Minute).Sign("u", "alice"); err == nil {
		t.Error("Sign with nil key succeeded")
	}
	var nilSigner *Signer
	if _, _, err := nilSigner.Sign("u", "alice"); err == nil {
		t.Error("nil Signer signed")
	}
	// A non-positive TTL falls back to the default instead of minting
	// already-expired tokens.
	s := NewSigner(priv, testIssuer, testAudience, 0, WithClock(fixedClock(testNow)))
	_, exp, err := s.Sign("u", "alice")
	if err != nil || !exp.Equal(testNow.Add(DefaultAccessTokenTTL)) {
		t.Errorf("exp = %v, err = %v", exp, err)
	}
}

// craft signs claims with the given method and key, bypassing Signer.
func craft(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func validClaims() *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "user-1",
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(testNow.Add(10 * time.Minute)),
			NotBefore: jwt.NewNumericDate(testNow),
			IssuedAt:  jwt.NewNumericDate(testNow),
		},
		Username: "alice",
	}
}

func TestVerifyRejects(t *testing.T) {
	_, v, pub, priv := newPair(t)
	_, foreign := newKey(t)
	b64 := base64.RawURLEncoding.EncodeToString

	with := func(f func(c *Claims)) *Claims {
		c := validClaims()
		f(c)
		return c
	}
	edToken := func(c *Claims) string { return craft(t, jwt.SigningMethodEdDSA, priv, c) }

	// Sanity check: the crafted baseline is accepted, so every rejection
	// below is due to the one thing each case changes.
	if _, err := v.Verify(edToken(validClaims())); err != nil {
		t.Fatalf("baseline token rejected: %v", err)
	}

	payload := b64([]byte(`{"iss":"golden-auth","sub":"user-1","aud":["golden"],"exp":1893553445}`))
	tests := []struct {
		name    string
		token   string
		want    error
		message string
	}{
		{"missing", "", ErrMissingToken, "missing access token"},
		{"malformed garbage", "not-a-jwt", ErrMalformedToken, "malformed"},
		{"malformed base64", "###.###.###", ErrMalformedToken, "malformed"},
		{"malformed json", b64([]byte(`{"alg":`)) + "." + payload + ".", ErrMalformedToken, "malformed"},
		{"too long", strings.Repeat("a", maxTokenLength+1), ErrMalformedToken, "too long"},
		{"expired", edToken(with(func(c *Claims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(-time.Hour))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute))
		})), ErrExpired, "expired"},
		{"wrong issuer", edToken(with(func(c *Claims) { c.Issuer = "mallory" })), ErrIssuer, "issuer"},
		{"wrong audience", edToken(with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"billing"} })), ErrAudience, "audience"},
		{"alg none by hand", b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + payload + ".", ErrAlgorithm, `"none"`},
		{"alg none via library", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims()), ErrAlgorithm, `"none"`},
		{"HS256 with public key as secret", craft(t, jwt.SigningMethodHS256, []byte(pub), validClaims()), ErrAlgorithm, `"HS256"`},
		{"unknown alg", b64([]byte(`{"alg":"XYZ999"}`)) + "." + payload + ".c2ln", ErrAlgorithm, "unknown alg"},
		{"no alg", b64([]byte(`{"typ":"JWT"}`)) + "." + payload + ".c2ln", ErrAlgorithm, "alg header missing"},
		{"foreign key", craft(t, jwt.SigningMethodEdDSA, foreign, validClaims()), ErrSignature, "signature"},
		{"tampered payload", func() string {
			parts := strings.Split(edToken(validClaims()), ".")
			parts[1] = b64([]byte(`{"iss":"golden-auth","sub":"admin","aud":["golden"],"exp":1893553445}`))
			return strings.Join(parts, ".")
		}(), ErrSignature, "signature"},
		{"not yet valid", edToken(with(func(c *Claims) {
			c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Hour))
		})), ErrNotYetValid, "not valid yet"},
		{"issued in the future", edToken(with(func(c *Claims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Hour))
		})), ErrNotYetValid, "not valid yet"},
		{"missing subject", edToken(with(func(c *Claims) { c.Subject = "" })), ErrMissingClaim, "sub"},
		{"missing exp", edToken(with(func(c *Claims) { c.ExpiresAt = nil })), ErrMissingClaim, "exp"},
		{"missing iss", edToken(with(func(c *Claims) { c.Issuer = "" })), ErrMissingClaim, "iss"},
		{"missing aud", edToken(with(func(c *Claims) { c.Audience = nil })), ErrMissingClaim, "aud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", c)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("err = %q, want it to mention %q", err, tc.message)
			}
			if tc.token != "" && len(tc.token) > 10 && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error echoes the token: %q", err)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Errorf("err %T is not a *VerifyError", err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	pub, priv := newKey(t)
	s := NewSigner(priv, testIssuer, testAudience, time.Minute, WithClock(fixedClock(testNow)))
	tok, exp, err := s.Sign("u", "alice")
	if err != nil {
		t.Fatal(err)
	}
	justAfter := NewVerifier(pub, testIssuer, testAudience, WithClock(fixedClock(exp.Add(2*time.Second))))
	if _, err := justAfter.Verify(tok); err != nil {
		t.Errorf("token 2s past exp rejected despite default leeway: %v", err)
	}
	strict := NewVerifier(pub, testIssuer, testAudience, WithLeeway(0), WithClock(fixedClock(exp.Add(2*time.Second))))
	if _, err := strict.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("err = %v, want ErrExpired", err)
	}
	// A verifier clock a little behind the signer's must still accept the
	// fresh token's nbf and iat.
	behind := NewVerifier(pub, testIssuer, testAudience, WithClock(fixedClock(testNow.Add(-2*time.Second))))
	if _, err := behind.Verify(tok); err != nil {
		t.Errorf("token rejected by slightly slow clock: %v", err)
	}
}

func TestVerifierMisconfigured(t *testing.T) {
	s, _, pub, _ := newPair(t)
	tok, _, err := s.Sign("u", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*Verifier{
		"nil":         nil,
		"no key":      NewVerifier(nil, testIssuer, testAudience),
		"short key":   NewVerifier(pub[:5], testIssuer, testAudience),
		"no issuer":   NewVerifier(pub, "", testAudience),
		"no audience": NewVerifier(pub, testIssuer, ""),
	} {
		if _, err := v.Verify(tok); err == nil {
			t.Errorf("%s: Verify accepted a token", name)
		} else if errors.As(err, new(*VerifyError)) {
			t.Errorf("%s: configuration error reported as token error: %v", name, err)
		}
	}
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeys(t *testing.T) {
	pub, priv := newKey(t)
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privPath := writePEM(t, "PRIVATE KEY", privDER)
	pubPath := writePEM(t, "PUBLIC KEY", pubDER)

	gotPriv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	gotPub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !gotPriv.Equal(priv) || !gotPub.Equal(pub) {
		t.Fatal("loaded keys differ from the written ones")
	}

	// The loaded pair works end to end.
	tok, _, err := NewSigner(gotPriv, testIssuer, testAudience, time.Minute).Sign("u", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(gotPub, testIssuer, testAudience).Verify(tok); err != nil {
		t.Fatal(err)
	}

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPrivDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPubDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)

	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoBlocks := filepath.Join(t.TempDir(), "two")
	block := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := os.WriteFile(twoBlocks, append(block, block...), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		load func(string) error
		path string
		want string
	}{
		{"public file as private", loadPriv, pubPath, `PEM block is "PUBLIC KEY", want "PRIVATE KEY"`},
		{"private file as public", loadPub, privPath, `PEM block is "PRIVATE KEY", want "PUBLIC KEY"`},
		{"ECDSA private", loadPriv, writePEM(t, "PRIVATE KEY", ecPrivDER), "ECDSA private key, want Ed25519"},
		{"ECDSA public", loadPub, writePEM(t, "PUBLIC KEY", ecPubDER), "ECDSA public key, want Ed25519"},
		{"bad DER private", loadPriv, writePEM(t, "PRIVATE KEY", []byte("junk")), "not a valid PKCS#8"},
		{"bad DER public", loadPub, writePEM(t, "PUBLIC KEY", []byte("junk")), "not a valid PKIX"},
		{"no PEM", loadPub, garbage, "no PEM data"},
		{"two blocks", loadPub, twoBlocks, "unexpected data"},
		{"missing file", loadPub, filepath.Join(t.TempDir(), "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func loadPriv(p string) error { _, err := LoadPrivateKey(p); return err }
func loadPub(p string) error  { _, err := LoadPublicKey(p); return err }

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Error("claims in empty context")
	}
	if _, ok := FromContext(NewContext(context.Background(), nil)); ok {
		t.Error("nil claims reported as present")
	}
	c := &Claims{Username: "alice"}
	got, ok := FromContext(NewContext(context.Background(), c))
	if !ok || got != c {
		t.Error("claims lost")
	}
}

const privateMethod = "/golden.user.v1.UserService/GetUser"

func TestUnaryServerInterceptor(t *testing.T) {
	s, v, _, _ := newPair(t)
	good, _, err := s.Sign("user-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := NewSigner(s.key, testIssuer, testAudience, time.Second,
		WithClock(fixedClock(testNow.Add(-time.Hour)))).Sign("user-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	icpt := UnaryServerInterceptor(v)

	var seen *Claims
	var called bool
	handler := func(ctx context.Context, req any) (any, error) {
		called = true
		seen, _ = FromContext(ctx)
		return "ok", nil
	}
	call := func(method string, md metadata.MD) error {
		called, seen = false, nil
		ctx := context.Background()
		if md != nil {
			ctx = metadata.NewIncomingContext(ctx, md)
		}
		_, err := icpt(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, handler)
		return err
	}

	for _, tc := range []struct {
		name string
		md   metadata.MD
		want string
	}{
		{"no metadata", nil, "missing access token"},
		{"no authorization", metadata.Pairs("x-other", "1"), "missing access token"},
		{"basic scheme", metadata.Pairs("authorization", "Basic x"), "Bearer"},
		{"no scheme", metadata.Pairs("authorization", good), "Bearer"},
		{"empty bearer", metadata.Pairs("authorization", "Bearer "), "missing access token"},
		{"two values", metadata.Pairs("authorization", "Bearer "+good, "authorization", "Bearer "+good), "more than one"},
		{"garbage bearer", metadata.Pairs("authorization", "Bearer abc.def"), "malformed"},
		{"expired", metadata.Pairs("authorization", "Bearer "+expired), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := call(privateMethod, tc.md)
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("code = %v (%v), want Unauthenticated", status.Code(err), err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not mention %q", msg, tc.want)
			}
			if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), expired) {
				t.Error("error echoes the token")
			}
			if called {
				t.Error("handler called")
			}
		})
	}

	t.Run("good token", func(t *testing.T) {
		// The scheme is case-insensitive (RFC 7235).
		if err := call(privateMethod, metadata.Pairs("authorization", "bearer "+good)); err != nil {
			t.Fatal(err)
		}
		if !called || seen == nil || seen.Subject != "user-1" || seen.Username != "alice" {
			t.Errorf("handler saw claims %+v (called %v)", seen, called)
		}
	})
	t.Run("misconfigured verifier", func(t *testing.T) {
		bad := UnaryServerInterceptor(nil)
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+good))
		_, err := bad(ctx, nil, &grpc.UnaryServerInfo{FullMethod: privateMethod}, handler)
		if status.Code(err) != codes.Internal {
			t.Errorf("code = %v, want Internal", status.Code(err))
		}
	})
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func TestStreamServerInterceptor(t *testing.T) {
	s, v, _, _ := newPair(t)
	good, _, err := s.Sign("user-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	icpt := StreamServerInterceptor(v)
	var seen *Claims
	handler := func(_ any, ss grpc.ServerStream) error {
		seen, _ = FromContext(ss.Context())
		return nil
	}
	info := &grpc.StreamServerInfo{FullMethod: "/svc/Watch", IsServerStream: true}

	err = icpt(nil, &fakeStream{ctx: context.Background()}, info, handler)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("no token: code = %v", status.Code(err))
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+good))
	if err := icpt(nil, &fakeStream{ctx: ctx}, info, handler); err != nil {
		t.Fatal(err)
	}
	if seen == nil || seen.Subject != "user-1" {
		t.Errorf("claims = %+v", seen)
	}
}

// TestVerifyRefusesClaimsOfWrongType signs, with the right key, claims
// whose JSON types are wrong: golang-jwt would read "exp":"1893..." as a
// date; Verify refuses each with a message naming the claim.
func TestVerifyRefusesClaimsOfWrongType(t *testing.T) {
	_, v, _, priv := newPair(t)
	exp := strconv.FormatInt(testNow.Add(10*time.Minute).Unix(), 10)
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "user-1", "username": "alice",
			"exp": testNow.Add(10 * time.Minute).Unix(), "iat": testNow.Unix()}
	}
	if _, err := v.Verify(craft(t, jwt.SigningMethodEdDSA, priv, base())); err != nil {
		t.Fatalf("well-typed claims refused: %v", err)
	}
	for claim, value := range map[string]any{
		"exp":      exp,
		"iat":      strconv.FormatInt(testNow.Unix(), 10),
		"sub":      42,
		"username": []string{"alice"},
		"aud":      map[string]string{"x": testAudience},
	} {
		c := base()
		c[claim] = value
		_, err := v.Verify(craft(t, jwt.SigningMethodEdDSA, priv, c))
		if !errors.Is(err, ErrMalformedToken) && !errors.Is(err, ErrAudience) {
			t.Errorf("%s = %#v: Verify = %v, want it refused", claim, value, err)
			continue
		}
		// The dates are what golang-jwt itself lets through: the message
		// must say which claim.
		if _, isString := value.(string); isString && !strings.Contains(err.Error(), "claim "+claim) {
			t.Errorf("%s = %#v: error %q does not name the claim", claim, value, err)
		}
	}
}
