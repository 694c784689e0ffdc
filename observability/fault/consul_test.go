package fault

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/golden-stack/golden/internal/testbackend"
)

// waitLimit bounds every wait on Consul: a blocking query answers within
// milliseconds of a change, a restarted agent needs a few seconds.
const waitLimit = 30 * time.Second

// eventually polls cond until it holds or waitLimit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", waitLimit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatcherFollowsConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Consul agent")
	}
	consul := testbackend.NewConsul(t)
	consul.Start(t)
	t.Cleanup(consul.Stop)
	cc := api.DefaultConfig()
	cc.Address = consul.HTTPAddr
	client, err := api.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	kv := client.KV()
	put := func(key, value string) {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}

	logger, hook := logtest.NewNullLogger()
	w, err := New(DefaultConfig(), consul.HTTPAddr, "user",
		WithLogger(logger), WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- w.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	hasFault := func(method string) func() bool {
		return func() bool { _, ok := w.Active()[method]; return ok }
	}

	// Another service's key and an invalid one change nothing here.
	put("golden/faults/auth/Login", `{"error_rate":1,"code":"Unavailable"}`)
	put("golden/faults/user/ListUsers", `{"error_rate":7}`)
	put("golden/faults/user/GetUser", `{"error_rate":1,"code":"Unavailable"}`)
	eventually(t, "the watcher picks up the GetUser fault", hasFault("GetUser"))
	if a := w.Active(); len(a) != 1 {
		t.Errorf("Active = %v, want only GetUser", a)
	}
	eventually(t, "the invalid ListUsers fault is warned about", func() bool {
		return hasEntry(hook, logrus.WarnLevel, "ignoring an invalid fault in Consul")
	})

	if _, err := kv.Delete("golden/faults/user/GetUser", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the watcher drops the deleted fault", func() bool { return len(w.Active()) == 0 })

	// A restarted dev agent has forgotten everything; the watcher follows
	// the new one.
	put("golden/faults/user/GetUser", `{"error_rate":1,"code":"Unavailable"}`)
	eventually(t, "the fault is back", hasFault("GetUser"))
	consul.Restart(t)
	eventually(t, "the watcher sees the restarted agent's empty KV", func() bool { return len(w.Active()) == 0 })
	put("golden/faults/user/*", `{"latency":{"fixed":"10ms"}}`)
	eventually(t, "the watcher picks up a fault from the restarted agent", hasFault("*"))

	// Consul gone: the faults it had stay in force until it is back.
	consul.Stop()
	eventually(t, "the outage is logged", func() bool {
		return hasEntry(hook, logrus.WarnLevel, "cannot read faults from Consul; keeping the current ones until it is back")
	})
	time.Sleep(2 * time.Second) // several retries
	if !hasFault("*")() {
		t.Error("the fault was dropped while Consul was unreachable")
	}
	consul.Start(t)
	put("golden/faults/user/GetUser", `{"error_rate":0.5,"code":"Internal"}`)
	eventually(t, "the watcher recovers once Consul is back", hasFault("GetUser"))
	if !hasEntry(hook, logrus.InfoLevel, "Consul reachable again; faults follow it again") {
		t.Error("the recovery was not logged")
	}
}
