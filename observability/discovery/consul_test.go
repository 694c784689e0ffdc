package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"

	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/grpcclient"
	"github.com/golden-stack/golden/observability/grpcserver"
	"github.com/golden-stack/golden/observability/security"
)

// waitLimit bounds every wait on Consul: leader election, a first passing
// check (interval 1s) and blocking-query propagation take a few seconds.
const waitLimit = 30 * time.Second

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Consul agent")
	}
}

func testConfig(consulAddr string) Config {
	c := DefaultConfig()
	c.ConsulAddr = consulAddr
	c.AdvertiseAddr = "127.0.0.1"
	c.CheckInterval = time.Second
	c.CheckTimeout = time.Second
	c.DrainWait = MinDrainWait
	return c
}

// certs creates a CA and certificates for the service "user" and its
// caller "gateway".
func certs(t *testing.T) (server, client security.Files) {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"user", "gateway"}}); err != nil {
		t.Fatal(err)
	}
	return security.DefaultFiles(dir, "user"), security.DefaultFiles(dir, "gateway")
}

// hits counts the calls one test instance served.
type hits struct {
	testgrpc.UnimplementedTestServiceServer
	n    atomic.Int64
	last atomic.Int64 // UnixNano of the last call
}

func (h *hits) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	h.n.Add(1)
	h.last.Store(time.Now().UnixNano())
	return &testgrpc.Empty{}, nil
}

// startInstance serves a golden gRPC server (mTLS, grpc.health.v1) with a
// hit-counting test service on a free loopback port.
func startInstance(t *testing.T, files security.Files) (*grpcserver.Server, *hits) {
	t.Helper()
	tlsConf, err := security.ServerConfig(files)
	if err != nil {
		t.Fatal(err)
	}
	quiet, _ := logtest.NewNullLogger()
	srv, err := grpcserver.Listen("127.0.0.1:0", tlsConf, grpcserver.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	h := &hits{}
	testgrpc.RegisterTestServiceServer(srv.GRPC(), h)
	go func() { _ = srv.Serve() }()
	t.Cleanup(srv.Close)
	return srv, h
}

func portOf(a net.Addr) int { return a.(*net.TCPAddr).Port }

// startRegistrar serves r until the test ends.
func startRegistrar(t *testing.T, r *Registrar) {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- r.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func consulClient(t *testing.T, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond every 100ms until it returns nil, failing the test
// after waitLimit.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, waitLimit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitPassing waits until exactly the instance IDs ids of service pass
// their checks, and returns their entries.
func waitPassing(t *testing.T, c *api.Client, service string, ids ...string) []*api.ServiceEntry {
	t.Helper()
	slices.Sort(ids)
	var entries []*api.ServiceEntry
	eventually(t, fmt.Sprintf("passing instances of %s = %v", service, ids), func() error {
		var err error
		entries, _, err = c.Health().Service(service, "", true, nil)
		if err != nil {
			return err
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Service.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			return fmt.Errorf("passing: %v", got)
		}
		return nil
	})
	return entries
}

// messages returns the log messages recorded at level.
func messages(hook *logtest.Hook, level logrus.Level) []string {
	var out []string
	for _, e := range hook.AllEntries() {
		if e.Level == level {
			out = append(out, e.Message)
		}
	}
	return out
}

func count(msgs []string, prefix string) int {
	n := 0
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func TestRegisterWithPassingChecks(t *testing.T) {
	skipShort(t)
	addr, _ := testbackend.StartConsul(t)
	consul := consulClient(t, addr)
	files, _ := certs(t)
	srv, _ := startInstance(t, files)
	cfg := testConfig(addr)
	cfg.Tags = []string{"blue"}
	log, hook := logtest.NewNullLogger()

	r, err := NewRegistrar(cfg, Instance{
		Name: "user", Port: portOf(srv.Addr()), MetricsPort: 9102, Version: "v1.2.3",
		Meta: map[string]string{"env": "test"},
	}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	startRegistrar(t, r)

	// The gRPC check over TLS (server name "user") passes.
	e := waitPassing(t, consul, "user", r.ID())[0]
	s := e.Service
	if s.Address != "127.0.0.1" || s.Port != portOf(srv.Addr()) {
		t.Errorf("address = %s:%d, want 127.0.0.1:%d", s.Address, s.Port, portOf(srv.Addr()))
	}
	if !slices.Equal(s.Tags, []string{"blue", TagMetrics}) {
		t.Errorf("tags = %v, want [blue metrics]", s.Tags)
	}
	for k, v := range map[string]string{MetaMetricsPort: "9102", MetaMetricsPath: "/metrics", MetaVersion: "v1.2.3", "env": "test"} {
		if s.Meta[k] != v {
			t.Errorf("Meta[%q] = %q, want %q (all: %v)", k, s.Meta[k], v, s.Meta)
		}
	}
	var grpcCheck *api.HealthCheck
	for _, c := range e.Checks {
		if c.ServiceID == r.ID() {
			grpcCheck = c
		}
	}
	if grpcCheck == nil || grpcCheck.Type != "grpc" || grpcCheck.Status != api.HealthPassing {
		t.Errorf("service check = %+v, want a passing grpc check", grpcCheck)
	}
	if got := messages(hook, logrus.InfoLevel); count(got, "registered in Consul") != 1 {
		t.Errorf("info logs = %q, want one %q", got, "registered in Consul")
	}

	t.Run("HTTPCheck", func(t *testing.T) {
		ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				http.NotFound(w, r)
			}
		}))
		defer ready.Close()
		gw, err := NewRegistrar(cfg, Instance{Name: "gateway", Port: 8080, HTTPCheck: &HTTPCheck{Port: portOf(ready.Listener.Addr())}}, WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		startRegistrar(t, gw)
		e := waitPassing(t, consul, "gateway", gw.ID())[0]
		for _, c := range e.Checks {
			if c.ServiceID == gw.ID() && c.Type != "http" {
				t.Errorf("check type = %q, want http", c.Type)
			}
		}
	})

	t.Run("StrictTLSWithoutCA", func(t *testing.T) {
		// Without golden's CA the agent cannot verify the certificate:
		// this is why CheckTLSSkipVerify defaults to true.
		strict := cfg
		strict.CheckTLSSkipVerify = false
		sr, err := NewRegistrar(strict, Instance{Name: "user", Port: portOf(srv.Addr())}, WithInstanceID("user-strict"), WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		startRegistrar(t, sr)
		eventually(t, "strict check critical with a certificate error", func() error {
			// The agent's own view: the catalog defers output-only
			// changes of a check that stays critical.
			checks, err := consul.Agent().ChecksWithFilter(`ServiceID == "user-strict"`)
			if err != nil {
				return err
			}
			for _, c := range checks {
				if c.Status == api.HealthCritical && strings.Contains(c.Output, "certificate") {
					return nil
				}
				return fmt.Errorf("check %s: %s", c.Status, c.Output)
			}
			return errors.New("no check yet")
		})
		waitPassing(t, consul, "user", r.ID()) // the strict one never passes
	})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, _, err = consul.Agent().Service(r.ID(), nil)
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Errorf("after Shutdown the agent still has %s: %v", r.ID(), err)
	}
	waitPassing(t, consul, "user")
}

func TestRegisterWhenConsulAppears(t *testing.T) {
	skipShort(t)
	agent := testbackend.NewConsul(t) // ports chosen, not started yet
	files, _ := certs(t)
	srv, _ := startInstance(t, files)
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	r, err := NewRegistrar(testConfig(agent.HTTPAddr), Instance{Name: "user", Port: portOf(srv.Addr())}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	r.minBackoff, r.maxBackoff = 50*time.Millisecond, 400*time.Millisecond
	startRegistrar(t, r)

	eventually(t, "several failed registration attempts", func() error {
		if n := count(messages(hook, logrus.DebugLevel), "Consul registration attempt failed"); n < 3 {
			return fmt.Errorf("%d attempts", n)
		}
		return nil
	})
	agent.Start(t)
	waitPassing(t, consulClient(t, agent.HTTPAddr), "user", r.ID())

	// State changes only: one warning for the whole outage, one success.
	if warns := messages(hook, logrus.WarnLevel); len(warns) != 1 {
		t.Errorf("warnings = %q, want exactly one", warns)
	}
	eventually(t, "success logged", func() error {
		for _, e := range hook.AllEntries() {
			if e.Message == "registered in Consul" && e.Data["failing_since"] != nil {
				return nil
			}
		}
		return errors.New("no \"registered in Consul\" entry with failing_since")
	})
}

func TestReregisterAfterConsulRestart(t *testing.T) {
	skipShort(t)
	agent := testbackend.NewConsul(t)
	agent.Start(t)
	files, _ := certs(t)
	srv, _ := startInstance(t, files)
	log, hook := logtest.NewNullLogger()
	r, err := NewRegistrar(testConfig(agent.HTTPAddr), Instance{Name: "user", Port: portOf(srv.Addr())}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	r.minBackoff, r.maxBackoff = 50*time.Millisecond, 400*time.Millisecond
	startRegistrar(t, r)
	consul := consulClient(t, agent.HTTPAddr)
	waitPassing(t, consul, "user", r.ID())

	agent.Restart(t) // a fresh dev agent knows no services
	waitPassing(t, consul, "user", r.ID())
	if n := count(messages(hook, logrus.InfoLevel), "re-registered in Consul"); n < 1 {
		t.Errorf("info logs = %q, want a re-registration", messages(hook, logrus.InfoLevel))
	}
}

func TestRoundRobinAndDrain(t *testing.T) {
	skipShort(t)
	addr, _ := testbackend.StartConsul(t)
	consul := consulClient(t, addr)
	serverFiles, clientFiles := certs(t)
	cfg := testConfig(addr)
	cfg.DrainWait = 2 * time.Second
	log, _ := logtest.NewNullLogger()

	srvA, hitsA := startInstance(t, serverFiles)
	srvB, hitsB := startInstance(t, serverFiles)
	var deregisteredAt atomic.Int64
	rA, err := NewRegistrar(cfg, Instance{Name: "user", Port: portOf(srvA.Addr())}, WithLogger(log),
		WithBeforeDeregister(func() { deregisteredAt.Store(time.Now().UnixNano()) }))
	if err != nil {
		t.Fatal(err)
	}
	rB, err := NewRegistrar(cfg, Instance{Name: "user", Port: portOf(srvB.Addr())}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	startRegistrar(t, rA)
	startRegistrar(t, rB)
	waitPassing(t, consul, "user", rA.ID(), rB.ID())

	target, opts := cfg.Target("user", "unused:1", WithLogger(log))
	conn, err := grpcclient.New(target, "user", clientFiles, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := testgrpc.NewTestServiceClient(conn)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.EmptyCall(ctx, &testgrpc.Empty{})
		return err
	}

	// Round robin: both instances get calls once both are connected.
	eventually(t, "calls reach both instances", func() error {
		for range 20 {
			if err := call(); err != nil {
				return err
			}
		}
		if hitsA.n.Load() == 0 || hitsB.n.Load() == 0 {
			return fmt.Errorf("hits A=%d B=%d", hitsA.n.Load(), hitsB.n.Load())
		}
		return nil
	})

	// A steady stream of calls while A leaves must see no failure.
	stop := make(chan struct{})
	type result struct {
		calls, failures int
		lastErr         error
	}
	done := make(chan result)
	go func() {
		var res result
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				done <- res
				return
			default:
			}
			res.calls++
			if err := call(); err != nil {
				res.failures++
				res.lastErr = err
			}
			time.Sleep(2 * time.Millisecond)
		}
		done <- res
	}()

	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := rA.Shutdown(ctx); err != nil { // deregister, then DrainWait
		t.Fatalf("Shutdown A: %v", err)
	}
	drained := hitsA.n.Load()
	beforeB := hitsB.n.Load()
	time.Sleep(300 * time.Millisecond) // A still serves, but gets nothing
	afterWait := hitsA.n.Load()
	if err := srvA.Shutdown(ctx); err != nil {
		t.Fatalf("gRPC Shutdown A: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	res := <-done

	if res.failures != 0 {
		t.Errorf("%d of %d calls failed while A left; last: %v", res.failures, res.calls, res.lastErr)
	}
	if afterWait != drained || hitsA.n.Load() != drained {
		t.Errorf("A got calls after its drain wait: %d, then %d, then %d", drained, afterWait, hitsA.n.Load())
	}
	if hitsB.n.Load() <= beforeB {
		t.Errorf("B got no calls after A left (%d)", hitsB.n.Load())
	}
	t.Logf("%d calls, %d failed; A served its last call %s after its deregistration began",
		res.calls, res.failures, time.Duration(hitsA.last.Load()-deregisteredAt.Load()))
}

// fakeConn records what a resolver hands to gRPC.
type fakeConn struct {
	resolver.ClientConn
	states chan []string
	errs   chan error
}

func (f *fakeConn) UpdateState(s resolver.State) error {
	var addrs []string
	for _, a := range s.Addresses {
		if canary.AddressTrack(a) == canary.Canary {
			a.Addr += " (canary)"
		}
		addrs = append(addrs, a.Addr)
	}
	f.states <- addrs
	return nil
}

func (f *fakeConn) ReportError(err error) {
	select {
	case f.errs <- err:
	default:
	}
}

func TestResolverFollowsConsul(t *testing.T) {
	skipShort(t)
	agent := testbackend.NewConsul(t)
	agent.Start(t)
	consul := consulClient(t, agent.HTTPAddr)
	for _, port := range []int{7001, 7002} {
		// Without checks an instance counts as passing. 7002 is a canary.
		reg := &api.AgentServiceRegistration{ID: fmt.Sprintf("echo-%d", port), Name: "echo", Address: "127.0.0.1", Port: port}
		if port == 7002 {
			reg.Meta = map[string]string{canary.MetaTrack: canary.Canary}
		}
		if err := consul.Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
	}
	log, hook := logtest.NewNullLogger()
	cfg := testConfig(agent.HTTPAddr)
	target, _ := cfg.Target("echo", "")
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	cc := &fakeConn{states: make(chan []string, 100), errs: make(chan error, 1)}
	r, err := ResolverBuilder(WithLogger(log)).Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	next := func(want ...string) {
		t.Helper()
		select {
		case got := <-cc.states:
			if !slices.Equal(got, want) {
				t.Fatalf("resolved %v, want %v", got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("no update to %v within %s", want, waitLimit)
		}
	}
	next("127.0.0.1:7001", "127.0.0.1:7002 (canary)")

	var latencies []time.Duration
	for range 5 {
		start := time.Now()
		if err := consul.Agent().ServiceDeregister("echo-7002"); err != nil {
			t.Fatal(err)
		}
		next("127.0.0.1:7001")
		latencies = append(latencies, time.Since(start))
		reg := &api.AgentServiceRegistration{ID: "echo-7002", Name: "echo", Address: "127.0.0.1", Port: 7002,
			Meta: map[string]string{canary.MetaTrack: canary.Canary}}
		if err := consul.Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
		next("127.0.0.1:7001", "127.0.0.1:7002 (canary)")
	}
	slices.Sort(latencies)
	t.Logf("deregistration seen by the resolver after %v (sorted; RefreshLatency = %s)", latencies, RefreshLatency)

	// Consul gone: the last instances stay, one warning is logged; a fresh
	// agent without the instances answers empty, and they stay still,
	// until instances register in it again.
	agent.Stop()
	eventually(t, "warning about Consul", func() error {
		if n := count(messages(hook, logrus.WarnLevel), "cannot query Consul"); n != 1 {
			return fmt.Errorf("%d warnings", n)
		}
		return nil
	})
	select {
	case got := <-cc.states:
		t.Fatalf("resolver changed the instances to %v while Consul was down", got)
	default:
	}
	agent.Start(t)
	eventually(t, "warning about the empty answer", func() error {
		if n := count(messages(hook, logrus.WarnLevel), "Consul lists no instance"); n == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	select {
	case got := <-cc.states:
		t.Fatalf("an empty answer replaced the instances with %v", got)
	default:
	}
	if err := consul.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "echo-7003", Name: "echo", Address: "127.0.0.1", Port: 7003}); err != nil {
		t.Fatal(err)
	}
	next("127.0.0.1:7003")
}

// TestTokenFileUnderACLs: against a Consul that denies what no token
// allows, a Registrar and a resolver given Config.TokenFile register and
// find the instance; the same resolver without the token finds nothing.
func TestTokenFileUnderACLs(t *testing.T) {
	skipShort(t)
	agent := testbackend.NewConsulWithACLs(t)
	agent.Start(t)
	mgmt, err := api.NewClient(&api.Config{Address: agent.HTTPAddr, Token: agent.ManagementToken})
	if err != nil {
		t.Fatal(err)
	}
	policy, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "user", Rules: `service "user" { policy = "write" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(agent.HTTPAddr)
	cfg.TokenFile = filepath.Join(t.TempDir(), "consul.token")
	if err := os.WriteFile(cfg.TokenFile, []byte(token.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, _ := certs(t)
	srv, _ := startInstance(t, files)
	r, err := NewRegistrar(cfg, Instance{Name: "user", Port: portOf(srv.Addr()), MetricsPort: 9102})
	if err != nil {
		t.Fatal(err)
	}
	startRegistrar(t, r)
	waitPassing(t, mgmt, "user", r.ID())

	resolve := func(cfg Config) *fakeConn {
		target, _ := cfg.Target("user", "")
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		cc := &fakeConn{states: make(chan []string, 100), errs: make(chan error, 1)}
		log, _ := logtest.NewNullLogger()
		res, err := ResolverBuilder(WithLogger(log), WithTokenFile(cfg.TokenFile)).Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(res.Close)
		return cc
	}
	want := fmt.Sprintf("127.0.0.1:%d", portOf(srv.Addr()))
	select {
	case got := <-resolve(cfg).states:
		if !slices.Equal(got, []string{want}) {
			t.Fatalf("resolved %v, want [%s]", got, want)
		}
	case <-time.After(waitLimit):
		t.Fatal("the resolver with the token found nothing")
	}
	anonymous := cfg
	anonymous.TokenFile = ""
	select {
	case got := <-resolve(anonymous).states:
		t.Fatalf("the resolver without a token resolved %v", got)
	case <-time.After(2 * time.Second):
	}
}
