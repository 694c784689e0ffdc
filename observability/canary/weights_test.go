package canary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/canary"
)

func TestParseSetting(t *testing.T) {
	for in, want := range map[string]string{
		`{"weight":20,"by":"golden canary set","at":"2026-01-02T03:04:05Z"}`: "",
		`{"weight":0}`:   "",
		`{"weight":101}`: "between 0 and 100",
		`{"weight":-1}`:  "between 0 and 100",
		`{"wieght":20}`:  "unknown field",
		`{"weight":20}x`: "after the object",
		`20`:             "not a canary setting",
		``:               "not a canary setting",
	} {
		_, err := canary.ParseSetting([]byte(in))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("ParseSetting(%s) = %v, want %q", in, err, want)
		}
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, service string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "golden_canary_weight" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == service {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The edge follows the weights in Consul as they change, keeps them while
// Consul is away, and counts an invalid one as 0.
func TestWeightsFollowConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul")
	}
	agent := testbackend.NewConsul(t)
	agent.Start(t)
	store, err := canary.NewStore(agent.HTTPAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	log, hook := logtest.NewNullLogger()
	reg := prometheus.NewRegistry()
	w, err := canary.NewWeights(agent.HTTPAddr, "", log, reg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ctx := context.Background()
	weightIs := func(service string, want int) func() error {
		return func() error {
			if got := w.Current()[service]; got != want {
				return fmt.Errorf("%s: weight %d, want %d", service, got, want)
			}
			if g, ok := gaugeValue(t, reg, service); !ok || g != float64(want) {
				return fmt.Errorf("golden_canary_weight{service=%q} = %v (%v)", service, g, ok)
			}
			return nil
		}
	}
	if err := store.Set(ctx, "user", canary.Setting{Weight: 20, By: "test", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "weight 20", weightIs("user", 20))
	if err := store.Set(ctx, "user", canary.Setting{Weight: 35}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "weight 35", weightIs("user", 35))

	// Invalid: counted as 0, with a warning.
	client, err := api.NewClient(&api.Config{Address: agent.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.KV().Put(&api.KVPair{Key: canary.KVPrefix + "auth", Value: []byte(`{"weight":"lots"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a warning about auth's value", func() error {
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && strings.Contains(fmt.Sprint(e.Data[logrus.ErrorKey]), canary.KVPrefix+"auth") {
				return nil
			}
		}
		return fmt.Errorf("no warning")
	})
	if _, ok := w.Current()["auth"]; ok {
		t.Error("an invalid weight is in force")
	}

	// Consul away: the weights stay.
	agent.Stop()
	time.Sleep(500 * time.Millisecond)
	if err := weightIs("user", 35)(); err != nil {
		t.Errorf("with Consul down: %v", err)
	}
}

func TestRollbackIsIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul")
	}
	agent := testbackend.NewConsul(t)
	agent.Start(t)
	store, err := canary.NewStore(agent.HTTPAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if changed, err := store.Rollback(ctx, "user", canary.Setting{By: "guard"}); err != nil || changed {
		t.Fatalf("rollback of a service without a weight: changed %v, %v", changed, err)
	}
	if err := store.Set(ctx, "user", canary.Setting{Weight: 20, By: "op"}); err != nil {
		t.Fatal(err)
	}
	changed, err := store.Rollback(ctx, "user", canary.Setting{By: "guard", Reason: "alert X fired"})
	if err != nil || !changed {
		t.Fatalf("first rollback: changed %v, %v", changed, err)
	}
	if changed, err := store.Rollback(ctx, "user", canary.Setting{By: "guard", Reason: "again"}); err != nil || changed {
		t.Fatalf("second rollback: changed %v, %v", changed, err)
	}
	st, err := store.Get(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(st)
	if st.Weight != 0 || st.By != "guard" || st.Reason != "alert X fired" {
		t.Errorf("after the rollbacks: %s; want weight 0 with the first rollback's reason", raw)
	}
	if err := store.Set(ctx, "user", canary.Setting{Weight: 120}); err == nil {
		t.Error("Set accepted weight 120")
	}
	if err := store.Set(ctx, "User", canary.Setting{Weight: 1}); err == nil {
		t.Error("Set accepted service name User")
	}
}
