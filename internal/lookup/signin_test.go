package lookup_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/golden-stack/golden/internal/authproxy"
	"github.com/golden-stack/golden/internal/lookup"
	"github.com/golden-stack/golden/internal/lookup/lookuptest"
)

// TestJaegerBehindSignIn: through golden authproxy in front of the query
// API, the client gets the services once signed in, and without the
// sign-in an error that says what to set.
func TestJaegerBehindSignIn(t *testing.T) {
	const password = "fedcba9876543210fedcba9876543210"
	fake := lookuptest.NewJaeger(t)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p, err := authproxy.New(&url.URL{Scheme: "h2c", Host: fake.Addr}, map[string]string{"admin": string(hash)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	j, err := lookup.NewJaeger(l.Addr().String(), "http://localhost:16686", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := j.Services(ctx); err == nil || !strings.Contains(err.Error(), "--jaeger-password") {
		t.Errorf("without sign-in: %v, want an error naming --jaeger-password", err)
	}
	j.SignIn("admin", password)
	if _, err := j.Services(ctx); err != nil {
		t.Errorf("signed in: %v", err)
	}
	j.SignIn("admin", "wrong")
	if _, err := j.Services(ctx); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("wrong password: %v", err)
	}
}
