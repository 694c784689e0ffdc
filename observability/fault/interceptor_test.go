package fault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/golden-stack/golden/observability/logging"
)

const (
	getUser   = "/golden.user.v1.UserService/GetUser"
	listUsers = "/golden.user.v1.UserService/ListUsers"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// seededRand is a deterministic random source safe for concurrent use.
func seededRand(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// sequence returns the draws vals in turn, over and over.
func sequence(vals ...float64) func() float64 {
	var i atomic.Int64
	return func() float64 { return vals[int(i.Add(1)-1)%len(vals)] }
}

type testWatcher struct {
	*Watcher
	reg   *prometheus.Registry
	hook  *logtest.Hook
	clock *fakeClock
	index uint64
}

// newTestWatcher returns an enabled watcher for service "user" that is
// never served: tests hand it Consul's answers through set.
func newTestWatcher(t *testing.T, opts ...Option) *testWatcher {
	t.Helper()
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	tw := &testWatcher{reg: prometheus.NewRegistry(), hook: hook, clock: &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}
	base := []Option{WithLogger(logger), WithRegisterer(tw.reg), WithClock(tw.clock.Now), WithRand(seededRand(1))}
	w, err := New(DefaultConfig(), "127.0.0.1:1", "user", append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Enabled() {
		t.Fatal("watcher is off")
	}
	tw.Watcher = w
	return tw
}

// set applies a Consul listing of method -> value.
func (tw *testWatcher) set(kv map[string]string) {
	var pairs api.KVPairs
	for m, v := range kv {
		tw.index++
		pairs = append(pairs, &api.KVPair{Key: tw.keyPrefix + m, Value: []byte(v), ModifyIndex: tw.index})
	}
	tw.apply(pairs)
}

// call runs one unary call of method through the interceptor and reports
// the error and whether the handler ran.
func (tw *testWatcher) call(ctx context.Context, method string) (error, bool) {
	var ran bool
	_, err := tw.UnaryServerInterceptor()(ctx, "req", &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) {
		ran = true
		return "resp", nil
	})
	return err, ran
}

func injected(t *testing.T, reg *prometheus.Registry, method, kind, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "golden_faults_injected_total" {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"service": "user", "method": method, "kind": kind, "code": code}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// activeSeries returns golden_fault_active's series as "method kind".
func activeSeries(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "golden_fault_active" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if m.GetGauge().GetValue() != 1 || l["service"] != "user" {
				t.Errorf("golden_fault_active%v = %v", l, m.GetGauge().GetValue())
			}
			out = append(out, l["method"]+" "+l["kind"])
		}
	}
	return out
}

func TestErrorRateIsHonoured(t *testing.T) {
	tw := newTestWatcher(t)
	tw.set(map[string]string{"GetUser": `{"error_rate":0.3,"code":"Unavailable"}`})
	const n = 10000
	failed := 0
	for range n {
		err, ran := tw.call(context.Background(), getUser)
		switch {
		case err != nil:
			if status.Code(err) != codes.Unavailable || ran {
				t.Fatalf("injected call: %v, handler ran %v", err, ran)
			}
			failed++
		case !ran:
			t.Fatal("the handler did not run for a call without a fault")
		}
	}
	// 0.3 of 10000: the standard deviation is about 46, so 2500-3500 is
	// more than 10 of them either way.
	if failed < 2500 || failed > 3500 {
		t.Fatalf("%d of %d calls failed, want about 30%%", failed, n)
	}
	if got := injected(t, tw.reg, "GetUser", KindError, "Unavailable"); got != float64(failed) {
		t.Errorf("golden_faults_injected_total = %v, want %d", got, failed)
	}
	// Other methods are untouched.
	if err, ran := tw.call(context.Background(), listUsers); err != nil || !ran {
		t.Errorf("ListUsers: %v, ran %v", err, ran)
	}
}

func TestRatesAreDrawnPerCall(t *testing.T) {
	// Draws just under and just over the rate: the first call fails, the
	// second does not.
	tw := newTestWatcher(t, WithRand(sequence(0.29, 0.31)))
	tw.set(map[string]string{"GetUser": `{"error_rate":0.3,"code":"Internal"}`})
	if err, _ := tw.call(context.Background(), getUser); status.Code(err) != codes.Internal {
		t.Errorf("draw 0.29 < 0.3: %v, want Internal", err)
	}
	if err, ran := tw.call(context.Background(), getUser); err != nil || !ran {
		t.Errorf("draw 0.31 >= 0.3: %v, want the handler", err)
	}

	// Rate 1 fails every call, whatever the draw.
	tw = newTestWatcher(t, WithRand(sequence(0, 0.5, 0.9999999)))
	tw.set(map[string]string{"*": `{"error_rate":1,"code":"Unavailable"}`})
	for i := range 30 {
		if err, ran := tw.call(context.Background(), getUser); status.Code(err) != codes.Unavailable || ran {
			t.Fatalf("call %d: %v, ran %v", i, err, ran)
		}
	}
}

func TestFixedLatency(t *testing.T) {
	tw := newTestWatcher(t)
	tw.set(map[string]string{"GetUser": `{"latency":{"fixed":"20ms"}}`})
	start := time.Now()
	err, ran := tw.call(context.Background(), getUser)
	if err != nil || !ran {
		t.Fatalf("call with latency: %v, ran %v", err, ran)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("the call took %s, less than the injected 20ms", el)
	}
	if got := injected(t, tw.reg, "GetUser", KindLatency, "OK"); got != 1 {
		t.Errorf("latency injections = %v, want 1", got)
	}
}

func TestUniformLatencyWithinBounds(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tw := newTestWatcher(t, WithRand(seededRand(7)))
	tw.set(map[string]string{"*": `{"latency":{"min":"1ms","max":"5ms"},"latency_rate":1}`})
	for range 20 {
		ctx, span := tp.Tracer("test").Start(context.Background(), "rpc")
		start := time.Now()
		if err, ran := tw.call(ctx, getUser); err != nil || !ran {
			t.Fatalf("%v, ran %v", err, ran)
		}
		if el := time.Since(start); el < time.Millisecond {
			t.Errorf("the call took %s, less than the minimum delay", el)
		}
		span.End()
	}
	spans := rec.Ended()
	if len(spans) != 20 {
		t.Fatalf("%d spans", len(spans))
	}
	for _, s := range spans {
		var delay float64 = -1
		for _, ev := range s.Events() {
			for _, a := range ev.Attributes {
				if a.Key == AttrDelayMS {
					delay = a.Value.AsFloat64()
				}
			}
		}
		if delay < 1 || delay > 5 {
			t.Errorf("injected delay %vms, outside [1ms, 5ms]", delay)
		}
	}
}

func TestLatencyRespectsTheCallsContext(t *testing.T) {
	tw := newTestWatcher(t)
	tw.set(map[string]string{"GetUser": `{"latency":{"fixed":"1m"},"error_rate":1,"code":"Internal"}`})

	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want codes.Code
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, codes.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, codes.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			type result struct {
				err error
				ran bool
			}
			done := make(chan result, 1)
			go func() {
				err, ran := tw.call(ctx, getUser)
				done <- result{err, ran}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the injected delay did not end with the call's context")
			}
			if status.Code(r.err) != tc.want || r.ran {
				t.Fatalf("%v, handler ran %v; want %v", r.err, r.ran, tc.want)
			}
			if msg := status.Convert(r.err).Message(); !strings.HasPrefix(msg, MessagePrefix) {
				t.Errorf("message %q does not say the fault was injected", msg)
			}
			if got := injected(t, tw.reg, "GetUser", KindLatency, tc.want.String()); got != 1 {
				t.Errorf("injections ended by %v = %v, want 1", tc.want, got)
			}
		})
	}
	// The error was never drawn: the call had already ended.
	if got := injected(t, tw.reg, "GetUser", KindError, "Internal"); got != 0 {
		t.Errorf("error injections = %v after the calls had ended", got)
	}
}

func TestGRPCServicesAreNeverTouched(t *testing.T) {
	tw := newTestWatcher(t)
	tw.set(map[string]string{"*": `{"error_rate":1,"code":"Unavailable","latency":{"fixed":"1m"}}`})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range []string{
		"/grpc.health.v1.Health/Check",
		"/grpc.health.v1.Health/Watch",
		"/grpc.channelz.v1.Channelz/GetTopChannels",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	} {
		if err, ran := tw.call(ctx, m); err != nil || !ran {
			t.Errorf("%s: %v, handler ran %v", m, err, ran)
		}
		err := tw.StreamServerInterceptor()(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: m}, func(any, grpc.ServerStream) error { return nil })
		if err != nil {
			t.Errorf("stream %s: %v", m, err)
		}
	}
}

// fakeStream is a server stream with a context and nothing else.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestStreamInterceptor(t *testing.T) {
	tw := newTestWatcher(t)
	tw.set(map[string]string{"Watch": `{"error_rate":1,"code":"ResourceExhausted"}`})
	ran := false
	err := tw.StreamServerInterceptor()(nil, fakeStream{ctx: context.Background()}, &grpc.StreamServerInfo{FullMethod: "/golden.user.v1.UserService/Watch"},
		func(any, grpc.ServerStream) error { ran = true; return nil })
	if status.Code(err) != codes.ResourceExhausted || ran {
		t.Fatalf("%v, ran %v", err, ran)
	}
}

func TestExactMethodWinsAndFaultsExpire(t *testing.T) {
	tw := newTestWatcher(t)
	soon := tw.clock.Now().Add(time.Minute).Format(time.RFC3339)
	tw.set(map[string]string{
		"*":       `{"error_rate":1,"code":"Internal"}`,
		"GetUser": `{"error_rate":1,"code":"Unavailable","latency":{"fixed":"1ms"},"expires_at":"` + soon + `"}`,
	})
	if err, _ := tw.call(context.Background(), getUser); status.Code(err) != codes.Unavailable {
		t.Errorf("GetUser: %v, want its own fault", err)
	}
	if err, _ := tw.call(context.Background(), listUsers); status.Code(err) != codes.Internal {
		t.Errorf("ListUsers: %v, want the * fault", err)
	}
	if got, want := fmt.Sprint(slices.Sorted(slices.Values(activeSeries(t, tw.reg)))), "[* error GetUser error GetUser latency]"; got != want {
		t.Errorf("golden_fault_active series %s, want %s", got, want)
	}
	if a := tw.Active(); len(a) != 2 {
		t.Errorf("Active = %v", a)
	}

	tw.clock.Add(time.Minute)
	if err, _ := tw.call(context.Background(), getUser); status.Code(err) != codes.Internal {
		t.Errorf("GetUser after its fault expired: %v, want the * fault", err)
	}
	if got, want := fmt.Sprint(activeSeries(t, tw.reg)), "[* error]"; got != want {
		t.Errorf("golden_fault_active series %s after expiry, want %s", got, want)
	}

	tw.set(map[string]string{})
	if err, ran := tw.call(context.Background(), getUser); err != nil || !ran {
		t.Errorf("after clearing: %v, ran %v", err, ran)
	}
	if s := activeSeries(t, tw.reg); len(s) != 0 {
		t.Errorf("golden_fault_active series %v after clearing", s)
	}
	if !hasEntry(tw.hook, logrus.WarnLevel, "fault injection cleared") {
		t.Error("clearing was not logged")
	}
}

func hasEntry(h *logtest.Hook, level logrus.Level, msg string) bool {
	for _, e := range h.AllEntries() {
		if e.Level == level && e.Message == msg {
			return true
		}
	}
	return false
}

func TestInvalidFaultsAreIgnoredWithAWarning(t *testing.T) {
	tw := newTestWatcher(t)
	pairs := api.KVPairs{
		{Key: tw.keyPrefix + "GetUser", Value: []byte(`{"error_rate":1,"code":"Unavailable"}`), ModifyIndex: 1},
		{Key: tw.keyPrefix + "ListUsers", Value: []byte(`{"error_rate":2,"code":"Unavailable"}`), ModifyIndex: 2},
		{Key: tw.keyPrefix + "DeleteUser", Value: []byte(`not json`), ModifyIndex: 3},
		{Key: tw.keyPrefix + "CreateUser", Value: []byte(`{"error_rate":1,"code":"Unavailable","latency":{"fixed":"2h"}}`), ModifyIndex: 4},
		{Key: tw.keyPrefix + "Bad-Name", Value: []byte(`{"error_rate":1,"code":"Unavailable"}`), ModifyIndex: 5},
		{Key: tw.keyPrefix + "nested/GetUser", Value: []byte(`{"error_rate":1,"code":"Unavailable"}`), ModifyIndex: 6},
		{Key: tw.keyPrefix, Value: nil, ModifyIndex: 7},          // folder
		{Key: tw.keyPrefix + "sub/", Value: nil, ModifyIndex: 8}, // folder
	}
	tw.apply(pairs)
	if a := tw.Active(); len(a) != 1 || a["GetUser"].ErrorRate != 1 {
		t.Fatalf("Active = %v, want only the valid GetUser fault", a)
	}
	for _, m := range []string{"/golden.user.v1.UserService/ListUsers", "/golden.user.v1.UserService/DeleteUser", "/golden.user.v1.UserService/CreateUser"} {
		if err, ran := tw.call(context.Background(), m); err != nil || !ran {
			t.Errorf("%s with an invalid fault: %v, ran %v", m, err, ran)
		}
	}
	warnings := func() []string {
		var keys []string
		for _, e := range tw.hook.AllEntries() {
			if e.Message == "ignoring an invalid fault in Consul" {
				keys = append(keys, fmt.Sprint(e.Data["key"]))
			}
		}
		return keys
	}
	if w := warnings(); len(w) != 5 {
		t.Fatalf("warnings for %v, want one per invalid key (5)", w)
	}
	// The same listing again (another key changed): no new warnings.
	tw.apply(pairs)
	if w := warnings(); len(w) != 5 {
		t.Errorf("%d warnings after the same listing again, want still 5", len(w))
	}
	// An invalid key written again is warned about again.
	pairs[1].ModifyIndex = 20
	tw.apply(pairs)
	if w := warnings(); len(w) != 6 || w[5] != tw.keyPrefix+"ListUsers" {
		t.Errorf("warnings %v, want a new one for ListUsers", w)
	}
}

func TestInjectedFailuresSayTheyAre(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tw := newTestWatcher(t)
	tw.set(map[string]string{"GetUser": `{"error_rate":1,"code":"Unavailable","latency":{"fixed":"1ms"}}`})

	// The real access log outside the fault interceptor, as in the kit.
	accessLogger, access := logtest.NewNullLogger()
	chain := func(ctx context.Context) error {
		info := &grpc.UnaryServerInfo{FullMethod: getUser}
		_, err := logging.UnaryServerInterceptor(logrus.NewEntry(accessLogger), 1)(ctx, "req", info, func(ctx context.Context, req any) (any, error) {
			return tw.UnaryServerInterceptor()(ctx, req, info, func(context.Context, any) (any, error) { return "resp", nil })
		})
		return err
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "golden.user.v1.UserService/GetUser")
	err := chain(ctx)
	span.End()

	if status.Code(err) != codes.Unavailable || !strings.HasPrefix(status.Convert(err).Message(), MessagePrefix) {
		t.Fatalf("error %v, want Unavailable saying %q", err, MessagePrefix)
	}
	// The access log entry carries the message.
	last := access.LastEntry()
	if last == nil || !strings.HasPrefix(fmt.Sprint(last.Data[logrus.ErrorKey]), MessagePrefix) || last.Data["grpc.code"] != "Unavailable" {
		t.Errorf("access log entry %v does not say the fault was injected", last)
	}
	// The fault's own entry carries fields, with the request's context.
	var found *logrus.Entry
	for _, e := range tw.hook.AllEntries() {
		if e.Message == "injected an error" {
			found = e
		}
	}
	if found == nil || found.Level != logrus.WarnLevel || found.Data["fault.injected"] != true || found.Data["fault.kind"] != KindError ||
		found.Data["fault.code"] != "Unavailable" || found.Context == nil {
		t.Errorf("fault log entry %+v", found)
	}
	// The span says so, with one event per injection.
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	attrs := map[string]string{}
	for _, a := range spans[0].Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["fault.injected"] != "true" || attrs["fault.kind"] != KindError {
		t.Errorf("span attributes %v", attrs)
	}
	var kinds []string
	for _, ev := range spans[0].Events() {
		if ev.Name == EventInjected {
			for _, a := range ev.Attributes {
				if a.Key == AttrKind {
					kinds = append(kinds, a.Value.AsString())
				}
			}
		}
	}
	if fmt.Sprint(kinds) != "[latency error]" {
		t.Errorf("fault events of kinds %v, want [latency error]", kinds)
	}
}

func TestExemplarOnInjections(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tw := newTestWatcher(t)
	tw.set(map[string]string{"GetUser": `{"error_rate":1,"code":"Unavailable"}`})
	ctx, span := tp.Tracer("test").Start(context.Background(), "rpc")
	defer span.End()
	_, _ = tw.call(ctx, getUser)
	mfs, err := tw.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "golden_faults_injected_total" {
			ex := mf.GetMetric()[0].GetCounter().GetExemplar()
			if ex == nil || ex.GetLabel()[0].GetValue() != span.SpanContext().TraceID().String() {
				t.Errorf("exemplar %v, want the trace ID", ex)
			}
			return
		}
	}
	t.Fatal("no golden_faults_injected_total")
}

func TestOffWatchersInjectNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg    Config
		consul string
	}{
		"no Consul":  {DefaultConfig(), ""},
		"faults off": {Config{Enabled: false, Prefix: "not a valid prefix"}, "127.0.0.1:8500"},
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			w, err := New(tc.cfg, tc.consul, "user", WithRegisterer(reg))
			if err != nil {
				t.Fatal(err)
			}
			if w.Enabled() {
				t.Fatal("watcher is on")
			}
			// Even rules that somehow got in are not applied.
			w.keyPrefix = "golden/faults/user/"
			w.apply(api.KVPairs{{Key: "golden/faults/user/GetUser", Value: []byte(`{"error_rate":1,"code":"Unavailable"}`)}})
			ran := false
			_, err = w.UnaryServerInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: getUser}, func(context.Context, any) (any, error) {
				ran = true
				return nil, nil
			})
			if err != nil || !ran {
				t.Fatalf("%v, ran %v", err, ran)
			}
			served := make(chan error, 1)
			go func() { served <- w.Serve() }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			if got := injected(t, reg, "GetUser", KindError, "Unavailable"); got != 0 {
				t.Errorf("%v injections", got)
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(DefaultConfig(), "127.0.0.1:8500", "us/er"); err == nil {
		t.Error("a bad service name was accepted")
	}
	if _, err := New(Config{Enabled: true, Prefix: "a b"}, "127.0.0.1:8500", "user"); err == nil || !strings.Contains(err.Error(), "--fault-prefix") {
		t.Errorf("bad prefix: %v", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := New(DefaultConfig(), "", "user", WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), "", "user", WithRegisterer(reg)); err == nil {
		t.Error("a second registration on one registry succeeded")
	}
}

func TestShutdownWithoutServe(t *testing.T) {
	w, err := New(DefaultConfig(), "127.0.0.1:1", "user")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Serve after Shutdown returns at once.
	done := make(chan error, 1)
	go func() { done <- w.Serve() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve after Shutdown did not return")
	}
}

// A fault for one track is injected by the instances on that track only.
func TestFaultsForATrack(t *testing.T) {
	const fault = `{"error_rate":1,"code":"Unavailable","track":"canary"}`
	stable := newTestWatcher(t)
	stable.set(map[string]string{"GetUser": fault})
	if err, ran := stable.call(context.Background(), "/golden.user.v1.UserService/GetUser"); err != nil || !ran {
		t.Errorf("stable instance: %v, handler ran %v; want untouched", err, ran)
	}
	canaryW := newTestWatcher(t, WithTrack("canary"))
	canaryW.set(map[string]string{"GetUser": fault})
	if err, ran := canaryW.call(context.Background(), "/golden.user.v1.UserService/GetUser"); status.Code(err) != codes.Unavailable || ran {
		t.Errorf("canary instance: %v, handler ran %v; want Unavailable", err, ran)
	}
	// Without a track, both inject.
	stable.set(map[string]string{"GetUser": `{"error_rate":1,"code":"Unavailable"}`})
	if err, _ := stable.call(context.Background(), "/golden.user.v1.UserService/GetUser"); status.Code(err) != codes.Unavailable {
		t.Errorf("stable instance, fault for every track: %v; want Unavailable", err)
	}
}
