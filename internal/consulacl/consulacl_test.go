package consulacl_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/golden-stack/golden/internal/consulacl"
	"github.com/golden-stack/golden/internal/testbackend"
)

const (
	operator = "0c6b1a3e-3f5d-4e8a-8b9e-5d2a7c4f1e20"
	prefix   = "golden/faults/"
)

func TestAccessorIDIsAStableUUID(t *testing.T) {
	a, b := consulacl.AccessorID("golden-service-user"), consulacl.AccessorID("golden-service-auth")
	if !consulacl.ValidSecret(a) || !consulacl.ValidSecret(b) {
		t.Fatalf("not UUIDs: %q %q", a, b)
	}
	if a == b || a != consulacl.AccessorID("golden-service-user") {
		t.Fatalf("AccessorID not stable and distinct: %q %q", a, b)
	}
	for _, bad := range []string{"", "x", strings.Repeat("a", 36), "8f2b6f8e6d0a4a539d1c2b6f0f3c9a10"} {
		if consulacl.ValidSecret(bad) {
			t.Errorf("ValidSecret(%q) = true", bad)
		}
	}
}

func TestRulesGrantEachServiceItsOwnFaults(t *testing.T) {
	rules := consulacl.Plan{Services: []string{"user"}, FaultPrefix: prefix}.Rules()
	if _, ok := rules[consulacl.OperatorPolicy]; ok {
		t.Error("operator policy without an operator secret")
	}
	u := rules[consulacl.ServicePolicy("user")]
	for _, want := range []string{`service "user" { policy = "write" }`, `key_prefix "golden/faults/user/" { policy = "read" }`} {
		if !strings.Contains(u, want) {
			t.Errorf("user policy lacks %s:\n%s", want, u)
		}
	}
	if strings.Contains(u, `"write" }`+"\n"+`key_prefix`) || strings.Count(u, "write") != 1 {
		t.Errorf("user policy writes more than its service:\n%s", u)
	}
}

func newClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// code returns the HTTP status of a Consul API error, 200 for none.
func code(t *testing.T, err error) int {
	t.Helper()
	var se api.StatusError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &se):
		return se.Code
	}
	t.Fatalf("not an HTTP answer: %v", err)
	return 0
}

func register(c *api.Client, id, name string) error {
	return c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: name, Port: 1})
}

// TestApplyGrantsOnlyWhatEachNeeds takes a real Consul with ACLs on, default
// deny and a management token of its configuration, applies the plan twice, and tries what each token may and
// may not do.
func TestApplyGrantsOnlyWhatEachNeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul")
	}
	c := testbackend.NewConsulWithACLs(t)
	c.Start(t)
	ctx := context.Background()
	mgmt := newClient(t, c.HTTPAddr, c.ManagementToken)
	if err := consulacl.CheckManagement(ctx, mgmt, c.ManagementToken); err != nil {
		t.Fatalf("CheckManagement: %v", err)
	}
	if err := consulacl.CheckManagement(ctx, mgmt, operator); code(t, errors.Unwrap(err)) != http.StatusForbidden {
		t.Fatalf("CheckManagement of an unknown token: %v, want 403", err)
	}
	if _, _, err := mgmt.ACL().Bootstrap(); code(t, err) != http.StatusForbidden {
		t.Fatalf("bootstrap after initial_management: %v, want 403 (no longer allowed)", err)
	}

	const canaryPrefix = "golden/canary/"
	plan := consulacl.Plan{Services: []string{"auth", "user"}, FaultPrefix: prefix, CanaryPrefix: canaryPrefix, OperatorSecret: operator}
	tokens, err := consulacl.Apply(ctx, mgmt, plan)
	if err != nil {
		t.Fatal(err)
	}
	again, err := consulacl.Apply(ctx, mgmt, plan)
	if err != nil {
		t.Fatal(err)
	}
	if again.Prometheus != tokens.Prometheus || again.Services["user"] != tokens.Services["user"] || again.Services["auth"] != tokens.Services["auth"] ||
		again.CanaryGuard != tokens.CanaryGuard {
		t.Fatal("a second Apply changed a token's secret")
	}
	for name, s := range map[string]string{"user": tokens.Services["user"], "auth": tokens.Services["auth"], "prometheus": tokens.Prometheus, "canary guard": tokens.CanaryGuard} {
		if !consulacl.ValidSecret(s) || s == c.ManagementToken || s == operator {
			t.Fatalf("%s token %q", name, s)
		}
	}

	if err := register(mgmt, "auth-1", "auth"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{prefix + "auth/Login", prefix + "user/ListUsers", canaryPrefix + "user"} {
		if _, err := mgmt.KV().Put(&api.KVPair{Key: key, Value: []byte("{}")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A key list is filtered by what the token may read; a key read is
	// refused.
	sees := func(c *api.Client, p string) int {
		pairs, _, err := c.KV().List(p, nil)
		if err != nil {
			t.Fatalf("list %s: %v", p, err)
		}
		return len(pairs)
	}
	readKey := func(c *api.Client, key string) int {
		_, _, err := c.KV().Get(key, nil)
		return code(t, err)
	}

	anon := newClient(t, c.HTTPAddr, "")
	userTok := newClient(t, c.HTTPAddr, tokens.Services["user"])
	prom := newClient(t, c.HTTPAddr, tokens.Prometheus)
	op := newClient(t, c.HTTPAddr, operator)
	guard := newClient(t, c.HTTPAddr, tokens.CanaryGuard)

	t.Run("anonymous reads nothing", func(t *testing.T) {
		svcs, _, err := anon.Catalog().Services(nil)
		if err != nil || len(svcs) != 0 {
			t.Errorf("catalog: %v, %v; want nothing", svcs, err)
		}
		entries, _, err := anon.Health().Service("auth", "", false, nil)
		if err != nil || len(entries) != 0 {
			t.Errorf("health of auth: %d entries, %v; want none", len(entries), err)
		}
		if n := sees(anon, ""); n != 0 {
			t.Errorf("KV list: %d keys, want none", n)
		}
		if got := readKey(anon, prefix+"auth/Login"); got != http.StatusForbidden {
			t.Errorf("KV read: %d, want 403", got)
		}
		if got := code(t, register(anon, "x-1", "x")); got != http.StatusForbidden {
			t.Errorf("register: %d, want 403", got)
		}
		_, err = anon.KV().Put(&api.KVPair{Key: prefix + "user/GetUser", Value: []byte("{}")}, nil)
		if got := code(t, err); got != http.StatusForbidden {
			t.Errorf("fault write: %d, want 403", got)
		}
	})

	t.Run("a service token registers itself, reads the catalog and its own faults", func(t *testing.T) {
		if err := register(userTok, "user-1", "user"); err != nil {
			t.Errorf("register itself: %v", err)
		}
		entries, _, err := userTok.Health().Service("auth", "", false, nil)
		if err != nil || len(entries) != 1 {
			t.Errorf("health of auth: %d entries, %v; want 1", len(entries), err)
		}
		if n := sees(userTok, prefix+"user/"); n != 1 {
			t.Errorf("read own faults: %d keys, want 1", n)
		}
		if n := sees(userTok, canaryPrefix); n != 1 {
			t.Errorf("read the canary weights: %d keys, want 1", n)
		}
		_, err = userTok.KV().Put(&api.KVPair{Key: canaryPrefix + "user", Value: []byte("{}")}, nil)
		if got := code(t, err); got != http.StatusForbidden {
			t.Errorf("write a canary weight: %d, want 403", got)
		}
	})

	t.Run("the canary guard's token writes canary weights and nothing else", func(t *testing.T) {
		if _, err := guard.KV().Put(&api.KVPair{Key: canaryPrefix + "user", Value: []byte(`{"weight":0}`)}, nil); err != nil {
			t.Errorf("write a canary weight: %v", err)
		}
		_, err := guard.KV().Put(&api.KVPair{Key: prefix + "user/GetUser", Value: []byte("{}")}, nil)
		if got := code(t, err); got != http.StatusForbidden {
			t.Errorf("write a fault: %d, want 403", got)
		}
		if got := code(t, register(guard, "x-1", "x")); got != http.StatusForbidden {
			t.Errorf("register: %d, want 403", got)
		}
		if svcs, _, err := guard.Catalog().Services(nil); err != nil || len(svcs) != 0 {
			t.Errorf("catalog: %v, %v; want nothing", svcs, err)
		}
	})

	t.Run("a service token cannot touch another service or write a fault", func(t *testing.T) {
		if got := code(t, userTok.Agent().ServiceDeregister("auth-1")); got != http.StatusForbidden {
			t.Errorf("deregister auth-1: %d, want 403", got)
		}
		if got := code(t, register(userTok, "auth-9", "auth")); got != http.StatusForbidden {
			t.Errorf("register as auth: %d, want 403", got)
		}
		_, err := userTok.KV().Put(&api.KVPair{Key: prefix + "user/GetUser", Value: []byte("{}")}, nil)
		if got := code(t, err); got != http.StatusForbidden {
			t.Errorf("write own fault: %d, want 403", got)
		}
		_, err = userTok.KV().DeleteTree(prefix, nil)
		if got := code(t, err); got != http.StatusForbidden {
			t.Errorf("delete every fault: %d, want 403", got)
		}
		if n, got := sees(userTok, prefix+"auth/"), readKey(userTok, prefix+"auth/Login"); n != 0 || got != http.StatusForbidden {
			t.Errorf("read auth's faults: %d keys listed, read %d; want none and 403", n, got)
		}
		if _, _, err := mgmt.Agent().Service("auth-1", nil); err != nil {
			t.Errorf("auth-1 gone: %v", err)
		}
	})

	t.Run("Prometheus's token reads the catalog and metrics only", func(t *testing.T) {
		svcs, _, err := prom.Catalog().Services(nil)
		if err != nil || len(svcs) < 2 {
			t.Errorf("catalog: %v, %v", svcs, err)
		}
		if _, err := prom.Agent().Metrics(); err != nil {
			t.Errorf("agent metrics: %v", err)
		}
		if n, got := sees(prom, ""), readKey(prom, prefix+"user/ListUsers"); n != 0 || got != http.StatusForbidden {
			t.Errorf("KV: %d keys listed, read %d; want none and 403", n, got)
		}
		if got := code(t, register(prom, "x-1", "x")); got != http.StatusForbidden {
			t.Errorf("register: %d, want 403", got)
		}
	})

	t.Run("the operator token writes faults and canary weights and nothing else", func(t *testing.T) {
		if _, err := op.KV().Put(&api.KVPair{Key: prefix + "user/GetUser", Value: []byte("{}")}, nil); err != nil {
			t.Errorf("write a fault: %v", err)
		}
		if _, err := op.KV().Put(&api.KVPair{Key: canaryPrefix + "user", Value: []byte(`{"weight":20}`)}, nil); err != nil {
			t.Errorf("write a canary weight: %v", err)
		}
		_, err := op.KV().Put(&api.KVPair{Key: "elsewhere/key", Value: []byte("x")}, nil)
		if got := code(t, err); got != http.StatusForbidden {
			t.Errorf("write outside the fault prefix: %d, want 403", got)
		}
		if got := code(t, op.Agent().ServiceDeregister("auth-1")); got != http.StatusForbidden {
			t.Errorf("deregister: %d, want 403", got)
		}
	})

	t.Run("a new operator secret replaces the old token", func(t *testing.T) {
		const next = "5e0f9d2c-1b7a-4c3e-9f8d-6a5b4c3d2e10"
		if _, err := consulacl.Apply(ctx, mgmt, consulacl.Plan{Services: []string{"auth", "user"}, FaultPrefix: prefix, CanaryPrefix: canaryPrefix, OperatorSecret: next}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := op.KV().List(prefix, nil); code(t, err) != http.StatusForbidden {
			t.Errorf("old operator secret: %v, want 403 (ACL not found)", err)
		}
		if n := sees(newClient(t, c.HTTPAddr, next), prefix); n < 2 {
			t.Errorf("new operator secret sees %d keys, want all", n)
		}
	})
}
