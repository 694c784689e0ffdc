package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/golden-stack/golden/internal/consulacl"
	"github.com/golden-stack/golden/internal/testbackend"
)

const (
	testManagementToken = "4a1d7c2e-8b3f-4e6a-9c5d-1f2e3a4b5c60"
	testOperatorToken   = "7b2e8d3f-9c4a-4f7b-8d6e-2a3b4c5d6e70"
)

// TestConsulSetup runs `golden consul setup` twice against a real Consul
// with ACLs on and a management token in its configuration: tokens land in their files with their modes, the service
// tokens work, the second run changes nothing, and no secret is printed.
func TestConsulSetup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul")
	}
	c := testbackend.NewConsulWithACLs(t)
	c.Start(t)
	dir := t.TempDir()
	promFile := filepath.Join(dir, "prometheus", "consul.token")
	t.Setenv("CONSUL_HTTP_TOKEN", c.ManagementToken)
	t.Setenv("GOLDEN_CONSUL_OPERATOR_TOKEN", testOperatorToken)
	args := []string{"setup", "--consul-addr", c.HTTPAddr, "--services", "auth,user", "--export", dir, "--prometheus-token-file", promFile}

	out, errOut, err := execute(t, newConsulCmd(), args...)
	if err != nil {
		t.Fatalf("setup: %v\n%s%s", err, out, errOut)
	}
	t.Logf("first run:\n%s", out)
	for _, want := range []string{
		"the management token is accepted",
		"token golden-service-auth (accessor " + consulacl.AccessorID("golden-service-auth") + "): in " + filepath.Join(dir, "auth", "consul.token"),
		"token golden-prometheus (accessor " + consulacl.AccessorID("golden-prometheus") + "): in " + promFile,
		"token golden-canary-guard (accessor " + consulacl.AccessorID("golden-canary-guard") + "): in " + filepath.Join(dir, "canary-guard", "consul.token"),
		"token golden-operator (accessor " + consulacl.AccessorID("golden-operator") + "): the secret in GOLDEN_CONSUL_OPERATOR_TOKEN",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	secrets := []string{c.ManagementToken, testOperatorToken}
	files := map[string]os.FileMode{filepath.Join(dir, "auth", "consul.token"): 0o600, filepath.Join(dir, "user", "consul.token"): 0o600, promFile: 0o644,
		filepath.Join(dir, "canary-guard", "consul.token"): 0o600}
	for file, mode := range files {
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", file, st.Mode().Perm(), mode)
		}
		raw, _ := os.ReadFile(file)
		secrets = append(secrets, strings.TrimSpace(string(raw)))
	}
	userToken := strings.TrimSpace(readFile(t, filepath.Join(dir, "user", "consul.token")))
	client, err := api.NewClient(&api.Config{Address: c.HTTPAddr, Token: userToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "user-1", Name: "user", Port: 1}); err != nil {
		t.Errorf("user's token cannot register user: %v", err)
	}

	before := map[string]os.FileInfo{}
	for file := range files {
		before[file], _ = os.Stat(file)
	}
	out2, errOut2, err := execute(t, newConsulCmd(), args...)
	if err != nil {
		t.Fatalf("second setup: %v\n%s%s", err, out2, errOut2)
	}
	if !strings.Contains(out2, "the management token is accepted") {
		t.Errorf("second run:\n%s", out2)
	}
	for file, st := range before {
		now, _ := os.Stat(file)
		if !now.ModTime().Equal(st.ModTime()) || readFile(t, file) == "" {
			t.Errorf("%s rewritten by a run that changed nothing", file)
		}
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("an empty token file")
		}
		for _, text := range []string{out, errOut, out2, errOut2} {
			if strings.Contains(text, s) {
				t.Errorf("a secret is printed: %s", text)
			}
		}
	}

	t.Run("chosen secrets replace Consul's", func(t *testing.T) {
		chosen := t.TempDir()
		userSecret, guardSecret := testbackend.UUID(t), testbackend.UUID(t)
		for file, secret := range map[string]string{"user": userSecret, "canary-guard": guardSecret + "\n"} {
			if err := os.WriteFile(filepath.Join(chosen, file), []byte(secret), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out, errOut, err := execute(t, newConsulCmd(), append(args, "--token-secrets-dir", chosen)...)
		if err != nil {
			t.Fatalf("setup: %v\n%s%s", err, out, errOut)
		}
		for file, want := range map[string]string{"user": userSecret, "canary-guard": guardSecret} {
			if got := strings.TrimSpace(readFile(t, filepath.Join(dir, file, "consul.token"))); got != want {
				t.Errorf("%s's token is not the chosen one", file)
			}
		}
		// auth has no file: its token keeps the secret Consul chose.
		if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "auth", "consul.token"))); got == userSecret || got == guardSecret || !slices.Contains(secrets, got) {
			t.Error("auth's token changed")
		}
		if strings.Contains(out+errOut, userSecret) || strings.Contains(out+errOut, guardSecret) {
			t.Error("a chosen secret is printed")
		}
	})
	t.Run("a token Consul does not know", func(t *testing.T) {
		t.Setenv("CONSUL_HTTP_TOKEN", testManagementToken)
		out, _, err := execute(t, newConsulCmd(), append(args, "--wait", "2s")...)
		if exitCode(err) != exitBackend || !strings.Contains(errText(err), "must equal the agent's acl.tokens.initial_management") || !strings.Contains(out, "waiting for Consul") {
			t.Fatalf("err = %v\n%s", err, out)
		}
		if strings.Contains(errText(err)+out, testManagementToken) {
			t.Error("the token is printed")
		}
	})
	t.Run("a token that is not a management token", func(t *testing.T) {
		t.Setenv("CONSUL_HTTP_TOKEN", testOperatorToken)
		_, _, err := execute(t, newConsulCmd(), args...)
		if exitCode(err) != exitBackend || !errors.Is(err, consulacl.ErrNotManagement) {
			t.Fatalf("err = %v", err)
		}
	})
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestConsulSetupRejectsBadSettings(t *testing.T) {
	// A --token-secrets-dir whose user file holds no UUID.
	badSecretsDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(badSecretsDir, "user"), []byte("secret-not-uuid"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, mgmt, operator string
		args                 []string
		want                 []string
	}{
		{"no management token", "", "", nil, []string{"CONSUL_HTTP_TOKEN: must be set"}},
		{"management token not a UUID", "secret-not-uuid", "", nil, []string{"CONSUL_HTTP_TOKEN: must be a UUID"}},
		{"operator token not a UUID", testManagementToken, "op-secret-not-uuid", nil, []string{"GOLDEN_CONSUL_OPERATOR_TOKEN: must be a UUID"}},
		{"chosen secret not a UUID", testManagementToken, "", []string{"--token-secrets-dir", badSecretsDir},
			[]string{"--token-secrets-dir (GOLDEN_TOKEN_SECRETS_DIR): ", "user: must hold a UUID"}},
		{"all at once", "", "op-secret-not-uuid", []string{"--services", "us er", "--fault-prefix", "/", "--wait", "0s", "--consul-addr", "nohost"},
			[]string{"CONSUL_HTTP_TOKEN", "GOLDEN_CONSUL_OPERATOR_TOKEN", "--services", "--fault-prefix", "--wait", "--consul-addr"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONSUL_HTTP_TOKEN", tc.mgmt)
			t.Setenv("CONSUL_HTTP_TOKEN_FILE", "")
			t.Setenv("GOLDEN_CONSUL_OPERATOR_TOKEN", tc.operator)
			_, _, err := execute(t, newConsulCmd(), append([]string{"setup"}, tc.args...)...)
			if exitCode(err) != exitUsage {
				t.Fatalf("exit %d, err %v; want 2", exitCode(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(errText(err), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			for _, s := range []string{"secret-not-uuid", "op-secret-not-uuid"} {
				if strings.Contains(errText(err), s) {
					t.Errorf("a secret is printed: %v", err)
				}
			}
		})
	}
}

// TestManagementWhenReadyKeepsConsulsAnswer: when --wait ends while an
// attempt is in flight, the error is Consul's last answer (403: the token is
// unknown, with the hint), not the deadline that cut the next attempt short.
func TestManagementWhenReadyKeepsConsulsAnswer(t *testing.T) {
	var calls atomic.Int32
	consulAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "ACL not found", http.StatusForbidden)
			return
		}
		<-r.Context().Done() // later attempts hang until the deadline
	}))
	defer consulAPI.Close()
	client, err := api.NewClient(&api.Config{Address: strings.TrimPrefix(consulAPI.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	const wait = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out strings.Builder
	err = managementWhenReady(ctx, &out, client, "consul:8500", testManagementToken, wait)
	if calls.Load() < 2 {
		t.Fatalf("%d attempts, want one answered and one cut short", calls.Load())
	}
	if err == nil || !strings.Contains(err.Error(), "must equal the agent's acl.tokens.initial_management") {
		t.Errorf("err = %v, want Consul's 403 with the hint", err)
	}
}
