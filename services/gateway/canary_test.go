package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/canary"
)

// routedTo records the route of every downstream call.
type routedTo struct {
	mu     sync.Mutex
	routes []canary.Route
}

func (r *routedTo) record(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes = append(r.routes, canary.FromContext(ctx))
}

func (r *routedTo) last() canary.Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.routes[len(r.routes)-1]
}

func routingFakes(seen *routedTo) (*fakeAuth, *fakeUsers) {
	auth := &fakeAuth{login: func(ctx context.Context, _ *authv1.LoginRequest) (*authv1.LoginResponse, error) {
		seen.record(ctx)
		return &authv1.LoginResponse{Tokens: testTokens()}, nil
	}}
	users := &fakeUsers{
		createUser: func(ctx context.Context, in *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
			seen.record(ctx)
			return &userv1.CreateUserResponse{User: testUser("u-" + in.GetUsername())}, nil
		},
		getUser: func(ctx context.Context, _ *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
			seen.record(ctx)
			return &userv1.GetUserResponse{User: testUser("u1")}, nil
		},
	}
	return auth, users
}

// tokenFor is a JWT-shaped token whose payload names username (the
// gateway does not verify it; the services do).
func tokenFor(username string) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1","username":"` + username + `"}`))
	return "eyJhbGciOiJFZERTQSJ9." + payload + ".c2lnbmF0dXJl"
}

func counterValue(t *testing.T, reg *prometheus.Registry, service, track string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "golden_canary_routed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsAre(m, service, track) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelsAre(m *dto.Metric, service, track string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	return got["service"] == service && got["track"] == track
}

func TestRoutingByHeaderAndWeight(t *testing.T) {
	var seen routedTo
	auth, users := routingFakes(&seen)
	weights := map[string]int{"user": 50}
	reg := prometheus.NewRegistry()
	rt, err := NewRouter(func() map[string]int { return weights }, true, reg)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHandler(t, auth, users, WithRouter(rt))
	signUp := func(name string, header http.Header) int {
		rec := serve(t, h, request{method: "POST", path: "/v1/users", header: header,
			body: fmt.Sprintf(`{"username":%q,"email":"%s@example.com","password":%q}`, name, name, testPassword)})
		return rec.Code
	}

	// The header decides alone.
	if code := signUp("alice", http.Header{canary.Header: {"always"}}); code != http.StatusCreated {
		t.Fatalf("X-Canary: always: HTTP %d", code)
	}
	if r := seen.last(); !r.Canary("user") || !r.Canary("auth") {
		t.Errorf("X-Canary: always routed %q, want every canary", r)
	}
	if code := signUp("alice", http.Header{canary.Header: {"NEVER"}}); code != http.StatusCreated {
		t.Fatalf("X-Canary: NEVER: HTTP %d", code)
	}
	if r := seen.last(); !r.IsStable() {
		t.Errorf("X-Canary: never routed %q, want stable", r)
	}

	// Without it, the username's bucket against the weight, every time.
	for i := range 50 {
		name := fmt.Sprintf("user%02d", i)
		want := canary.Bucket(name) < 50
		for range 2 {
			if code := signUp(name, nil); code != http.StatusCreated {
				t.Fatalf("sign-up %s: HTTP %d", name, code)
			}
			if got := seen.last().Canary("user"); got != want {
				t.Fatalf("sign-up %s (bucket %d, weight 50): canary %v", name, canary.Bucket(name), got)
			}
		}
	}
	// An authenticated call is routed by the token's username, as its
	// sign-up and login were.
	for _, name := range []string{"user01", "user02", "user03", "user04"} {
		rec := serve(t, h, request{method: "GET", path: "/v1/users/u1", header: http.Header{"Authorization": {"Bearer " + tokenFor(name)}}})
		if rec.Code != http.StatusOK {
			t.Fatalf("GET as %s: HTTP %d", name, rec.Code)
		}
		if got, want := seen.last().Canary("user"), canary.Bucket(name) < 50; got != want {
			t.Errorf("GET as %s: canary %v, want %v", name, got, want)
		}
		rec = serve(t, h, request{method: "POST", path: "/v1/login", body: fmt.Sprintf(`{"username":%q,"password":%q}`, name, testPassword)})
		if rec.Code != http.StatusOK {
			t.Fatalf("login as %s: HTTP %d", name, rec.Code)
		}
		// auth has no weight: its calls are stable, but user's canary
		// stays on the route for the call auth makes to user.
		if r := seen.last(); r.Canary("auth") || r.Canary("user") != (canary.Bucket(name) < 50) {
			t.Errorf("login as %s routed %q", name, r)
		}
	}

	canaries, stables := counterValue(t, reg, "user", "canary"), counterValue(t, reg, "user", "stable")
	if canaries == 0 || stables == 0 || canaries+stables != float64(len(seen.routes)-4) {
		t.Errorf("golden_canary_routed_total{service=user}: canary %v, stable %v, for %d calls to user", canaries, stables, len(seen.routes)-4)
	}
}

func TestRoutingRejectsBadHeaders(t *testing.T) {
	var seen routedTo
	auth, users := routingFakes(&seen)
	h, _ := newTestHandler(t, auth, users)
	for _, hdr := range []http.Header{
		{canary.Header: {"sometimes"}},
		{canary.Header: {"always", "never"}},
	} {
		rec := serve(t, h, request{method: "POST", path: "/v1/users", header: hdr,
			body: `{"username":"bob","email":"bob@example.com","password":"` + testPassword + `"}`})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), canary.Header) {
			t.Errorf("%v: HTTP %d %s; want 400 naming %s", hdr, rec.Code, rec.Body.String(), canary.Header)
		}
	}
	if n := users.total(); n != 0 {
		t.Errorf("%d calls made for rejected requests", n)
	}
}

func TestRoutingWithoutTheHeader(t *testing.T) {
	var seen routedTo
	auth, users := routingFakes(&seen)
	rt, err := NewRouter(func() map[string]int { return nil }, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHandler(t, auth, users, WithRouter(rt))
	for _, v := range []string{"always", "sometimes"} {
		rec := serve(t, h, request{method: "POST", path: "/v1/users", header: http.Header{canary.Header: {v}},
			body: `{"username":"bob","email":"bob@example.com","password":"` + testPassword + `"}`})
		if rec.Code != http.StatusCreated || !seen.last().IsStable() {
			t.Errorf("X-Canary: %s with the header off: HTTP %d, route %q; want 201 on stable", v, rec.Code, seen.last())
		}
	}
}

func TestTokenUsername(t *testing.T) {
	for token, want := range map[string]string{
		tokenFor("alice"): "alice",
		testToken:         "",
		"a.b":             "",
		"a.!!!.c":         "",
		"a." + base64.RawURLEncoding.EncodeToString([]byte(`[1]`)) + ".c": "",
		"a." + strings.Repeat("A", 5000) + ".c":                           "",
	} {
		if got := tokenUsername(token); got != want {
			t.Errorf("tokenUsername(%.20q) = %q, want %q", token, got, want)
		}
	}
}
