package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/fault"
)

// faultWait bounds every wait for a service to follow Consul: a blocking
// query answers within milliseconds, a restarted agent takes seconds.
const faultWait = 30 * time.Second

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestFaultSetRejectsBadValues(t *testing.T) {
	// Validation comes before any call: Consul is not there, and the
	// answer is a usage error, not "cannot reach Consul".
	consul := closedAddr(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--method", "GetUser", "--error-rate", "1"}, []string{"--service (GOLDEN_SERVICE): must be set"}},
		{[]string{"--service", "user", "--error-rate", "1"}, []string{"--method (GOLDEN_METHOD): must be set"}},
		{[]string{"--service", "us/er", "--method", "Get/User", "--error-rate", "1"}, []string{"--service (GOLDEN_SERVICE)", "--method (GOLDEN_METHOD)"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1.5", "--prefix", "a b", "--timeout", "0s"}, []string{"--error-rate (GOLDEN_ERROR_RATE)", "--prefix (GOLDEN_PREFIX)", "--timeout (GOLDEN_TIMEOUT)"}},
		{[]string{"--service", "user", "--method", "GetUser"}, []string{"--error-rate (GOLDEN_ERROR_RATE): nothing to inject"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1.5"}, []string{"--error-rate (GOLDEN_ERROR_RATE): must be between 0 and 1"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "NaN"}, []string{"--error-rate (GOLDEN_ERROR_RATE): must be between 0 and 1"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "lots"}, []string{"error-rate"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1", "--code", "Broken"}, []string{"--code (GOLDEN_CODE): \"Broken\" is not a gRPC error code"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1", "--code", "OK"}, []string{"--code (GOLDEN_CODE): OK is not an error code"}},
		{[]string{"--service", "user", "--method", "GetUser", "--latency", "1s", "--code", "Internal"}, []string{"--code (GOLDEN_CODE): only applies with --error-rate"}},
		{[]string{"--service", "user", "--method", "GetUser", "--latency", "-1s"}, []string{"--latency (GOLDEN_LATENCY): must be greater than 0"}},
		{[]string{"--service", "user", "--method", "GetUser", "--latency", "2h"}, []string{"--latency (GOLDEN_LATENCY): must be at most 1m0s"}},
		{[]string{"--service", "user", "--method", "GetUser", "--latency", "1s", "--latency-max", "2s"}, []string{"--latency (GOLDEN_LATENCY): give --latency, or --latency-min and --latency-max, not both"}},
		{[]string{"--service", "user", "--method", "GetUser", "--latency-min", "50ms"}, []string{"--latency-max (GOLDEN_LATENCY_MAX): must be given with --latency-min"}},
		{[]string{"--service", "user", "--method", "GetUser", "--latency-min", "2s", "--latency-max", "1s"}, []string{"--latency-max (GOLDEN_LATENCY_MAX): must not be less than --latency-min (2s)"}},
		{[]string{"--service", "user", "--method", "GetUser", "--latency", "1s", "--latency-rate", "2"}, []string{"--latency-rate (GOLDEN_LATENCY_RATE): must be between 0 and 1"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1", "--latency-rate", "0.5"}, []string{"--latency-rate (GOLDEN_LATENCY_RATE): only applies with --latency"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1", "--ttl", "-5m"}, []string{"--ttl (GOLDEN_TTL): must be greater than 0"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1", "--prefix", "a b"}, []string{"--prefix (GOLDEN_PREFIX)"}},
		{[]string{"--service", "user", "--method", "GetUser", "--error-rate", "1", "--consul-addr", "nowhere"}, []string{"--consul-addr (GOLDEN_CONSUL_ADDR)"}},
	} {
		args := append([]string{"set", "--consul-addr", consul}, tc.args...)
		out, _, err := execute(t, newFaultCmd(), args...)
		if exitCode(err) != exitUsage {
			t.Errorf("%q: exit %d (%v), want %d", tc.args, exitCode(err), err, exitUsage)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %q does not say %q", tc.args, err, w)
			}
		}
		if out != "" {
			t.Errorf("%q printed %q", tc.args, out)
		}
	}
}

func TestFaultClearRejectsBadUsage(t *testing.T) {
	consul := closedAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--service", "user"}, "--method (GOLDEN_METHOD): must be set, or give --all"},
		{[]string{"--service", "user", "--method", "GetUser", "--all"}, "--all (GOLDEN_ALL): give --method or --all, not both"},
		{[]string{"--method", "GetUser"}, "--service (GOLDEN_SERVICE): must be set"},
		{[]string{"--service", "user", "--method", "a.b"}, "--method (GOLDEN_METHOD)"},
	} {
		_, _, err := execute(t, newFaultCmd(), append([]string{"clear", "--consul-addr", consul}, tc.args...)...)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: exit %d (%v), want %d saying %q", tc.args, exitCode(err), err, exitUsage, tc.want)
		}
	}
}

func TestFaultConsulUnreachable(t *testing.T) {
	addr := closedAddr(t)
	t.Setenv("GOLDEN_CONSUL_ADDR", addr)
	for _, args := range [][]string{
		{"set", "--service", "user", "--method", "GetUser", "--error-rate", "1"},
		{"clear", "--service", "user", "--method", "GetUser"},
		{"clear", "--all"},
		{"list"},
	} {
		_, _, err := execute(t, newFaultCmd(), args...)
		if exitCode(err) != exitBackend || !strings.Contains(err.Error(), "cannot reach Consul at "+addr) ||
			!strings.Contains(err.Error(), "--consul-addr (GOLDEN_CONSUL_ADDR)") {
			t.Errorf("%q: exit %d (%v), want %d saying Consul at %s cannot be reached", args, exitCode(err), err, exitBackend, addr)
		}
	}
}

func TestFaultTable(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	pairs := api.KVPairs{
		{Key: "golden/faults/"},
		{Key: "golden/faults/user/GetUser", Value: []byte(`{"error_rate":0.2,"code":"Unavailable"}`)},
		{Key: "golden/faults/user/*", Value: []byte(`{"latency":{"min":"50ms","max":"500ms"},"latency_rate":0.5,"expires_at":"2030-01-01T00:10:00Z"}`)},
		{Key: "golden/faults/auth/Login", Value: []byte(`{"error_rate":1,"code":"Internal","expires_at":"2029-12-31T00:00:00Z"}`)},
		{Key: "golden/faults/auth/Logout", Value: []byte(`{"error_rate":3}`)},
		{Key: "golden/faults/stray", Value: []byte(`{}`)},
	}
	var b strings.Builder
	if err := writeFaultTable(&b, "golden/faults/", pairs, now); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		f := strings.Fields(l)
		rows[f[0]+" "+f[1]] = f
	}
	for key, want := range map[string]string{
		"SERVICE METHOD": "SERVICE METHOD ERROR RATE CODE LATENCY LATENCY RATE EXPIRES",
		"user GetUser":   "user GetUser 0.2 Unavailable - - never",
		"user *":         "user * - - 50ms..500ms 0.5 2030-01-01T00:10:00Z (in 10m0s)",
		"auth Login":     "auth Login 1 Internal - - 2029-12-31T00:00:00Z (expired)",
	} {
		if got := strings.Join(rows[key], " "); got != want {
			t.Errorf("row %q = %q, want %q\n%s", key, got, want, b.String())
		}
	}
	if got := strings.Join(rows["auth Logout"], " "); !strings.HasPrefix(got, "auth Logout invalid, ignored: error_rate: must be between 0 and 1") {
		t.Errorf("the invalid value is not shown as such:\n%s", b.String())
	}
	if got := strings.Join(rows["stray invalid"], " "); got != "stray invalid key, ignored: want golden/faults/<service>/<method>" {
		t.Errorf("the stray key is not shown as such:\n%s", b.String())
	}
	b.Reset()
	_ = writeFaultTable(&b, "golden/faults/", nil, now)
	if b.String() != "no faults under golden/faults/\n" {
		t.Errorf("empty table: %q", b.String())
	}
}

// fakeUsers answers GetUser.
type fakeUsers struct {
	userv1.UnimplementedUserServiceServer
}

func (fakeUsers) GetUser(_ context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetId()}}, nil
}

// metricValue returns the value of name{labels} in reg, and whether it is
// there.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// TestFaultStory breaks a real gRPC server through `golden fault` and a
// real Consul, and mends it again.
func TestFaultStory(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Consul agent")
	}
	consul := testbackend.NewConsul(t)
	consul.Start(t)
	t.Cleanup(consul.Stop)

	// The service side, as the kit wires it.
	reg := prometheus.NewRegistry()
	logger, _ := logtest.NewNullLogger()
	w, err := fault.New(fault.DefaultConfig(), consul.HTTPAddr, "user", fault.WithRegisterer(reg), fault.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(w.UnaryServerInterceptor()), grpc.ChainStreamInterceptor(w.StreamServerInterceptor()))
	userv1.RegisterUserServiceServer(srv, fakeUsers{})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	users, probe := userv1.NewUserServiceClient(conn), healthpb.NewHealthClient(conn)
	getUser := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := users.GetUser(ctx, &userv1.GetUserRequest{Id: "u1"})
		return err
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(faultWait)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within %s: %s", faultWait, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	golden := func(args ...string) string {
		t.Helper()
		out, stderr, err := execute(t, newFaultCmd(), append(args, "--consul-addr", consul.HTTPAddr)...)
		if err != nil {
			t.Fatalf("golden fault %q: %v\n%s%s", args, err, out, stderr)
		}
		return out
	}
	active := map[string]string{"service": "user", "method": "GetUser", "kind": "error"}
	injectedLabels := map[string]string{"service": "user", "method": "GetUser", "kind": "error", "code": "Unavailable"}

	if err := getUser(); err != nil {
		t.Fatalf("GetUser before any fault: %v", err)
	}

	// Break GetUser.
	out := golden("set", "--service", "user", "--method", "GetUser", "--error-rate", "1", "--code", "Unavailable")
	if !strings.Contains(out, "set golden/faults/user/GetUser = ") || !strings.Contains(out, "100% of calls fail with Unavailable") {
		t.Errorf("set printed %q", out)
	}
	cc := api.DefaultConfig()
	cc.Address = consul.HTTPAddr
	client, err := api.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := client.KV().Get("golden/faults/user/GetUser", nil)
	if err != nil || p == nil {
		t.Fatalf("the key was not written: %v", err)
	}
	var spec map[string]any
	if err := json.Unmarshal(p.Value, &spec); err != nil || spec["error_rate"] != 1.0 || spec["code"] != "Unavailable" {
		t.Errorf("stored value %s", p.Value)
	}

	until("GetUser fails with the injected fault", func() bool { return status.Code(getUser()) == codes.Unavailable })
	for i := range 100 {
		err := getUser()
		if status.Code(err) != codes.Unavailable || !strings.HasPrefix(status.Convert(err).Message(), fault.MessagePrefix) {
			t.Fatalf("call %d with error_rate 1: %v", i, err)
		}
	}
	// Health checks are never touched.
	if resp, err := probe.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check during the fault: %v, %v", resp, err)
	}
	if v, ok := metricValue(t, reg, "golden_fault_active", active); !ok || v != 1 {
		t.Errorf("golden_fault_active%v = %v (present %v), want 1", active, v, ok)
	}
	if v, _ := metricValue(t, reg, "golden_faults_injected_total", injectedLabels); v < 101 {
		t.Errorf("golden_faults_injected_total%v = %v, want at least 101", injectedLabels, v)
	}

	out = golden("list")
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "user ") {
			row = strings.Join(strings.Fields(l), " ")
		}
	}
	if row != "user GetUser 1 Unavailable - - never" {
		t.Errorf("list shows %q:\n%s", row, out)
	}

	// Mend it.
	out = golden("clear", "--service", "user", "--method", "GetUser")
	if !strings.Contains(out, "cleared user/GetUser") {
		t.Errorf("clear printed %q", out)
	}
	until("GetUser succeeds again", func() bool { return getUser() == nil })
	if _, ok := metricValue(t, reg, "golden_fault_active", active); ok {
		t.Error("golden_fault_active still reports the cleared fault")
	}
	if out := golden("clear", "--service", "user", "--method", "GetUser"); !strings.Contains(out, "no fault on user/GetUser") {
		t.Errorf("clearing again printed %q", out)
	}
	if out := golden("list"); out != "no faults under golden/faults/\n" {
		t.Errorf("list after clearing: %q", out)
	}

	// Consul restarts: the service follows the new agent.
	consul.Restart(t)
	golden("set", "--service", "user", "--method", "*", "--error-rate", "1", "--code", "Internal", "--ttl", "10m")
	until("the watcher follows the restarted Consul", func() bool { return status.Code(getUser()) == codes.Internal })
	p, _, err = client.KV().Get("golden/faults/user/*", nil)
	if err != nil || p == nil {
		t.Fatalf("the * key was not written: %v", err)
	}
	if s, err := fault.ParseSpec(p.Value); err != nil || s.ExpiresAt == nil ||
		s.ExpiresAt.Before(time.Now().Add(9*time.Minute)) || s.ExpiresAt.After(time.Now().Add(11*time.Minute)) {
		t.Errorf("--ttl 10m stored %s (%v)", p.Value, err)
	}
	if v, ok := metricValue(t, reg, "golden_fault_active", map[string]string{"method": "*", "kind": "error"}); !ok || v != 1 {
		t.Errorf("golden_fault_active for * = %v (present %v)", v, ok)
	}
	out = golden("clear", "--all")
	if !strings.Contains(out, "cleared 1 fault(s) of every service") {
		t.Errorf("clear --all printed %q", out)
	}
	until("GetUser succeeds after clear --all", func() bool { return getUser() == nil })
}

func TestFaultEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Consul agent")
	}
	addr, _ := testbackend.StartConsul(t)
	t.Setenv("GOLDEN_CONSUL_ADDR", addr)
	t.Setenv("GOLDEN_PREFIX", "chaos/")
	out, _, err := execute(t, newFaultCmd(), "set", "--service", "auth", "--method", "Login", "--latency-min", "10ms", "--latency-max", "20ms", "--latency-rate", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "set chaos/auth/Login = ") || !strings.Contains(out, "50% of calls delayed by 10ms..20ms; until cleared") {
		t.Errorf("set printed %q", out)
	}
	out, _, err = execute(t, newFaultCmd(), "list", "--service", "auth")
	if err != nil || !strings.Contains(out, "10ms..20ms") {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, _, err = execute(t, newFaultCmd(), "clear", "--service", "auth", "--all")
	if err != nil || !strings.Contains(out, "cleared 1 fault(s) of auth under chaos/auth/") {
		t.Errorf("clear: %v %q", err, out)
	}
}

func TestFaultUsage(t *testing.T) {
	if _, _, err := execute(t, newFaultCmd(), "bogus"); exitCode(err) != exitUsage {
		t.Errorf("unknown subcommand: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
	out, _, err := execute(t, newFaultCmd(), "set", "--help")
	if err != nil || !strings.Contains(out, "--ttl duration") || !strings.Contains(out, "--latency-min duration") {
		t.Errorf("set --help: %v\n%s", err, out)
	}
}

func TestFaultConsulSilent(t *testing.T) {
	// A listener that never answers: the kernel accepts the connection,
	// nobody reads the request.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	_, _, err = execute(t, newFaultCmd(), "list", "--consul-addr", lis.Addr().String(), "--timeout", "200ms")
	if exitCode(err) != exitBackend || !strings.Contains(err.Error(), "did not answer within 200ms (--timeout (GOLDEN_TIMEOUT))") {
		t.Errorf("exit %d (%v), want %d saying Consul did not answer", exitCode(err), err, exitBackend)
	}
}
