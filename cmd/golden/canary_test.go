package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/canary"
)

func TestCanaryRejectsBadSettings(t *testing.T) {
	// Validation comes before any call: nothing listens at consul.
	consul := closedAddr(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret-guard-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"set", "--weight", "20"}, []string{"--service (GOLDEN_SERVICE): must be set"}},
		{[]string{"set", "--service", "user"}, []string{"--weight (GOLDEN_WEIGHT): must be set"}},
		{[]string{"set", "--service", "User", "--weight", "101"}, []string{"--service (GOLDEN_SERVICE)", "--weight (GOLDEN_WEIGHT): must be between 0 and 100"}},
		{[]string{"set", "--service", "user", "--weight", "-1"}, []string{"--weight (GOLDEN_WEIGHT): must be between 0 and 100"}},
		{[]string{"set", "--service", "user", "--weight", "lots"}, []string{"weight"}},
		{[]string{"set", "--service", "user", "--weight", "5", "--timeout", "0s", "--consul-addr", "nowhere"}, []string{"--timeout (GOLDEN_TIMEOUT)", "--consul-addr (GOLDEN_CONSUL_ADDR)"}},
		{[]string{"abort"}, []string{"--service (GOLDEN_SERVICE): must be set"}},
		{[]string{"set", "--service", "user", "--weight", "5", "--consul-token-file", "/no/such/file"}, []string{"--consul-token-file (GOLDEN_CONSUL_TOKEN_FILE)"}},
		{[]string{"status", "--prometheus-url", "ftp://x", "--prometheus-password", "p", "--prometheus-password-file", secret}, []string{"--prometheus-url (GOLDEN_PROMETHEUS_URL)", "--prometheus-password (GOLDEN_PROMETHEUS_PASSWORD): set either it or --prometheus-password-file"}},
		{[]string{"guard"}, []string{"--secret-file (GOLDEN_SECRET_FILE)"}},
		{[]string{"guard", "--secret-file", secret, "--listen", "nowhere", "--drain", "0s"}, []string{"--listen (GOLDEN_LISTEN)", "--drain (GOLDEN_DRAIN)"}},
		{[]string{"nonsense"}, []string{"nonsense"}},
	} {
		// The Consul address first, so that a case may replace it.
		args := append([]string{tc.args[0], "--consul-addr", consul}, tc.args[1:]...)
		out, _, err := execute(t, newCanaryCmd(), args...)
		if exitCode(err) != exitUsage {
			t.Errorf("%q: exit %d (%v), want %d\n%s", tc.args, exitCode(err), err, exitUsage, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %q does not say %q", tc.args, err, w)
			}
		}
	}
}

func TestCanaryGuardRejectsABadSecretFile(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := execute(t, newCanaryCmd(), "guard", "--secret-file", empty, "--consul-addr", closedAddr(t))
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--secret-file") {
		t.Errorf("empty secret file: exit %d, %v; want a usage error naming --secret-file", exitCode(err), err)
	}
}

// set, abort and status against a real Consul: the weight and its record
// land in KV, status shows them with the instances per track, and Consul
// down is exit 4.
func TestCanarySetAbortStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul")
	}
	c := testbackend.NewConsul(t)
	c.Start(t)
	store, err := canary.NewStore(c.HTTPAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := execute(t, newCanaryCmd(), append(args, "--consul-addr", c.HTTPAddr)...)
		if err != nil {
			t.Fatalf("golden canary %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	if out := run("set", "--service", "user", "--weight", "20", "--reason", "new cache"); !strings.Contains(out, "user: canary weight 20% (was 0%)") {
		t.Errorf("set: %q", out)
	}
	st, err := store.Get(context.Background(), "user")
	if err != nil || st.Weight != 20 || st.By != "golden canary set" || st.Reason != "new cache" || st.At.IsZero() {
		t.Errorf("after set: %+v, %v", st, err)
	}
	status := run("status", "--prometheus-url", "")
	for _, want := range []string{"SERVICE", "user", "20%", "golden canary set", "new cache"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	if out := run("abort", "--service", "user"); !strings.Contains(out, "user: canary weight 0% (was 20%)") {
		t.Errorf("abort: %q", out)
	}
	if st, _ := store.Get(context.Background(), "user"); st.Weight != 0 || st.By != "golden canary abort" {
		t.Errorf("after abort: %+v", st)
	}

	// Prometheus unreachable: the weights are shown, then exit 4.
	out, _, err := execute(t, newCanaryCmd(), "status", "--consul-addr", c.HTTPAddr, "--prometheus-url", "http://"+closedAddr(t))
	if exitCode(err) != exitBackend || !strings.Contains(out, "user") || !strings.Contains(err.Error(), "prometheus at") {
		t.Errorf("status without Prometheus: exit %d, %v\n%s", exitCode(err), err, out)
	}
	c.Stop()
	_, _, err = execute(t, newCanaryCmd(), "set", "--service", "user", "--weight", "5", "--consul-addr", c.HTTPAddr, "--timeout", "2s")
	if exitCode(err) != exitBackend || !strings.Contains(err.Error(), "Consul at") {
		t.Errorf("set with Consul down: exit %d, %v; want %d", exitCode(err), err, exitBackend)
	}
}
