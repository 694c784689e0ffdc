package tracing

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/golden-stack/golden/observability/requestid"
)

// quietLogger swallows export errors of providers pointed at nothing.
func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// newTestProvider returns a provider exporting to memory through the real
// batch pipeline, and its exporter.
func newTestProvider(t testing.TB, service string, modify func(*Config), opts ...Option) (*Provider, *tracetest.InMemoryExporter) {
	t.Helper()
	cfg := DefaultConfig()
	if modify != nil {
		modify(&cfg)
	}
	exp := tracetest.NewInMemoryExporter()
	p, err := New(cfg, service, append([]Option{WithExporter(exp), WithLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p, exp
}

// flushed returns the spans exported so far.
func flushed(t testing.TB, p *Provider, exp *tracetest.InMemoryExporter) tracetest.SpanStubs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	return exp.GetSpans()
}

// waitSpan returns the exported span named name. The server span of an RPC
// ends after the client already has its response, so it may take a moment.
func waitSpan(t testing.TB, p *Provider, exp *tracetest.InMemoryExporter, name string) (tracetest.SpanStub, tracetest.SpanStubs) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		spans := flushed(t, p, exp)
		for _, s := range spans {
			if s.Name == name {
				return s, spans
			}
		}
	}
	return spanNamed(t, flushed(t, p, exp), name), nil
}

func spanNamed(t testing.TB, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %q", name, names)
	return tracetest.SpanStub{}
}

func attr(attrs []attribute.KeyValue, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range attrs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.QueueSize = -1
	if _, err := New(cfg, "svc"); err == nil {
		t.Fatal("New accepted a negative queue size")
	}
	if _, err := New(DefaultConfig(), ""); err == nil {
		t.Fatal("New accepted an empty service name")
	}
}

func TestResource(t *testing.T) {
	p, exp := newTestProvider(t, "user", func(c *Config) { c.Environment = "staging" },
		WithServiceVersion("v1.2.3"), WithInstanceID("user-1"))
	_, span := p.Tracer().Start(context.Background(), "op")
	span.End()
	res := spanNamed(t, flushed(t, p, exp), "op").Resource
	want := map[attribute.Key]string{
		semconv.ServiceNameKey:               "user",
		semconv.ServiceVersionKey:            "v1.2.3",
		semconv.ServiceInstanceIDKey:         "user-1",
		semconv.DeploymentEnvironmentNameKey: "staging",
		semconv.TelemetrySDKNameKey:          "opentelemetry",
	}
	for k, v := range want {
		got, ok := attr(res.Attributes(), k)
		if !ok || got.AsString() != v {
			t.Errorf("resource %s = %q (present %v), want %q", k, got.AsString(), ok, v)
		}
	}
}

func TestResourceDefaults(t *testing.T) {
	p1, exp1 := newTestProvider(t, "a", nil)
	p2, exp2 := newTestProvider(t, "a", nil)
	var ids []string
	for _, pe := range []struct {
		p   *Provider
		exp *tracetest.InMemoryExporter
	}{{p1, exp1}, {p2, exp2}} {
		_, span := pe.p.Tracer().Start(context.Background(), "op")
		span.End()
		res := spanNamed(t, flushed(t, pe.p, pe.exp), "op").Resource
		id, _ := attr(res.Attributes(), semconv.ServiceInstanceIDKey)
		ver, _ := attr(res.Attributes(), semconv.ServiceVersionKey)
		env, _ := attr(res.Attributes(), semconv.DeploymentEnvironmentNameKey)
		if id.AsString() == "" || ver.AsString() == "" || env.AsString() != "development" {
			t.Errorf("instance %q, version %q, environment %q: want all set, environment development", id.AsString(), ver.AsString(), env.AsString())
		}
		ids = append(ids, id.AsString())
	}
	if ids[0] == ids[1] {
		t.Errorf("two providers share service.instance.id %q", ids[0])
	}
}

func TestGlobalPropagator(t *testing.T) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	newTestProvider(t, "svc", nil)
	fields := map[string]bool{}
	for _, f := range otel.GetTextMapPropagator().Fields() {
		fields[f] = true
	}
	for _, f := range []string{"traceparent", "tracestate", "baggage"} {
		if !fields[f] {
			t.Errorf("global propagator does not carry %q (fields %v)", f, fields)
		}
	}
}

// remoteParent returns a context holding a remote span context as if
// extracted from an incoming traceparent.
func remoteParent(sampled bool) context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Remote:  true,
	})
	if sampled {
		sc = sc.WithTraceFlags(trace.FlagsSampled)
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), sc)
}

func TestSamplerIsParentBased(t *testing.T) {
	tests := []struct {
		name    string
		ratio   float64
		ctx     context.Context
		sampled bool
	}{
		{"ratio 0, new trace", 0, context.Background(), false},
		{"ratio 1, new trace", 1, context.Background(), true},
		{"ratio 0, sampled parent", 0, remoteParent(true), true},
		{"ratio 1, unsampled parent", 1, remoteParent(false), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, exp := newTestProvider(t, "svc", func(c *Config) { c.SampleRatio = tt.ratio })
			_, span := p.Tracer().Start(tt.ctx, "op")
			if span.SpanContext().IsSampled() != tt.sampled {
				t.Errorf("sampled = %v, want %v", span.SpanContext().IsSampled(), tt.sampled)
			}
			span.End()
			if got := len(flushed(t, p, exp)); (got == 1) != tt.sampled {
				t.Errorf("%d span(s) exported, sampled = %v", got, tt.sampled)
			}
		})
	}
}

func TestSampleRatioStatistically(t *testing.T) {
	p, _ := newTestProvider(t, "svc", func(c *Config) { c.SampleRatio = 0.25 })
	const n = 4000
	sampled := 0
	for range n {
		_, span := p.Tracer().Start(context.Background(), "op")
		if span.SpanContext().IsSampled() {
			sampled++
		}
		span.End()
	}
	// 0.25 of 4000 is 1000 with a standard deviation of about 27: 800 to
	// 1200 fails by chance less often than once in 10^12 runs.
	if sampled < 800 || sampled > 1200 {
		t.Errorf("%d of %d new traces sampled at ratio 0.25", sampled, n)
	}
}

func TestExportOffStillPropagates(t *testing.T) {
	p, err := New(DefaultConfig(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	if p.Exporting() {
		t.Fatal("Exporting() = true with no endpoint")
	}
	ctx, span := p.Tracer().Start(remoteParent(true), "op")
	defer span.End()
	if got, want := span.SpanContext().TraceID(), trace.SpanContextFromContext(remoteParent(true)).TraceID(); got != want {
		t.Errorf("trace ID %s, want the caller's %s", got, want)
	}
	carrier := propagation.MapCarrier{}
	p.Propagator().Inject(ctx, carrier)
	if want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"; carrier["traceparent"] != want {
		t.Errorf("traceparent %q, want %q", carrier["traceparent"], want)
	}
}

func TestSpansDroppedNotBlockedWhenQueueFull(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.QueueSize = 1
	p, err := New(cfg, "svc", WithExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	// The exporter holds every export until released: with a blocking
	// queue this loop would hang once the queue of one span is full.
	const n = 10_000
	for range n {
		_, span := p.Tracer().Start(context.Background(), "op")
		span.End()
	}
	close(exp.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported(); got >= n {
		t.Errorf("%d of %d spans exported through a queue of 1 while the exporter was stuck; want most dropped", got, n)
	}
}

// blockingExporter holds every export until release is closed, and fails
// it while fail is set.
type blockingExporter struct {
	release chan struct{}
	mu      sync.Mutex
	fail    bool
	n       int
}

func (b *blockingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail {
		return errors.New("receiver unavailable")
	}
	b.n += len(spans)
	return nil
}

func (b *blockingExporter) Shutdown(context.Context) error { return nil }

func (b *blockingExporter) setFail(fail bool) {
	b.mu.Lock()
	b.fail = fail
	b.mu.Unlock()
}

func (b *blockingExporter) exported() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// healthServer answers Check for "fail" with Internal, "missing" with
// NotFound and anything else with SERVING, recording a child span.
type healthServer struct {
	healthpb.UnimplementedHealthServer
	tracer trace.Tracer
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	_, span := h.tracer.Start(ctx, "child")
	defer span.End()
	switch req.GetService() {
	case "fail":
		return nil, status.Error(grpccodes.Internal, "broken")
	case "missing":
		return nil, status.Error(grpccodes.NotFound, "no such service")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// startGRPC serves the health service on loopback the way grpcserver
// chains it: request ID first, then the tracing interceptor.
func startGRPC(t testing.TB, server *Provider) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(server.ServerOption(),
		grpc.ChainUnaryInterceptor(requestid.UnaryServerInterceptor(), UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(requestid.StreamServerInterceptor(), StreamServerInterceptor()))
	healthpb.RegisterHealthServer(srv, &healthServer{tracer: server.Tracer()})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func dial(t testing.TB, client *Provider, addr string) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		client.DialOption(), grpc.WithChainUnaryInterceptor(requestid.UnaryClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func TestGRPCPropagation(t *testing.T) {
	client, clientExp := newTestProvider(t, "gateway", nil)
	server, serverExp := newTestProvider(t, "user", nil)
	health := dial(t, client, startGRPC(t, server))

	ctx, parent := client.Tracer().Start(requestid.NewContext(context.Background(), "req-12345678"), "parent")
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	const method = "grpc.health.v1.Health/Check"
	cs, clientSpans := waitSpan(t, client, clientExp, method)
	ss, serverSpans := waitSpan(t, server, serverExp, method)
	child := spanNamed(t, serverSpans, "child")
	root := spanNamed(t, clientSpans, "parent")

	if cs.SpanKind != trace.SpanKindClient || ss.SpanKind != trace.SpanKindServer {
		t.Errorf("kinds: client span %v, server span %v", cs.SpanKind, ss.SpanKind)
	}
	tid := root.SpanContext.TraceID()
	for _, s := range []tracetest.SpanStub{cs, ss, child} {
		if s.SpanContext.TraceID() != tid {
			t.Errorf("span %q (%s) in trace %s, want %s", s.Name, s.SpanKind, s.SpanContext.TraceID(), tid)
		}
	}
	if cs.Parent.SpanID() != root.SpanContext.SpanID() {
		t.Errorf("client span's parent %s, want %s", cs.Parent.SpanID(), root.SpanContext.SpanID())
	}
	if ss.Parent.SpanID() != cs.SpanContext.SpanID() || !ss.Parent.IsRemote() {
		t.Errorf("server span's parent %s (remote %v), want the client span %s, remote", ss.Parent.SpanID(), ss.Parent.IsRemote(), cs.SpanContext.SpanID())
	}
	if child.Parent.SpanID() != ss.SpanContext.SpanID() {
		t.Errorf("handler's span parent %s, want the server span %s", child.Parent.SpanID(), ss.SpanContext.SpanID())
	}
	if got, _ := attr(ss.Attributes, RequestIDKey); got.AsString() != "req-12345678" {
		t.Errorf("server span request_id = %q, want req-12345678", got.AsString())
	}
	if ss.Resource == cs.Resource {
		t.Error("client and server spans share one resource")
	}
	if name, _ := attr(ss.Resource.Attributes(), semconv.ServiceNameKey); name.AsString() != "user" {
		t.Errorf("server span service.name %q", name.AsString())
	}
}

func TestGRPCNewRequestIDTagged(t *testing.T) {
	client, _ := newTestProvider(t, "gateway", nil)
	server, serverExp := newTestProvider(t, "user", nil)
	health := dial(t, client, startGRPC(t, server))
	// No request ID in the context: the server makes one and tags it.
	if _, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	ss, _ := waitSpan(t, server, serverExp, "grpc.health.v1.Health/Check")
	if got, _ := attr(ss.Attributes, RequestIDKey); !requestid.Valid(got.AsString()) {
		t.Errorf("server span request_id = %q, want a generated ID", got.AsString())
	}
}

func TestGRPCStatus(t *testing.T) {
	tests := []struct {
		service string
		code    grpccodes.Code
		status  codes.Code
	}{
		{"", grpccodes.OK, codes.Unset},
		{"missing", grpccodes.NotFound, codes.Unset},
		{"fail", grpccodes.Internal, codes.Error},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			client, _ := newTestProvider(t, "gateway", nil)
			server, serverExp := newTestProvider(t, "user", nil)
			health := dial(t, client, startGRPC(t, server))
			_, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: tt.service})
			if status.Code(err) != tt.code {
				t.Fatalf("code %v, want %v", status.Code(err), tt.code)
			}
			ss, _ := waitSpan(t, server, serverExp, "grpc.health.v1.Health/Check")
			if ss.Status.Code != tt.status {
				t.Errorf("server span status %v, want %v", ss.Status.Code, tt.status)
			}
		})
	}
}

// apiMux mimics the gateway: a ServeMux with method patterns.
func apiMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
	mux.HandleFunc("POST /v1/boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal", http.StatusInternalServerError)
	})
	mux.HandleFunc("/v1/healthz", func(w http.ResponseWriter, r *http.Request) {})
	return mux
}

func TestHTTPMiddleware(t *testing.T) {
	p, exp := newTestProvider(t, "gateway", nil)
	srv := httptest.NewServer(requestid.Middleware(p.Middleware(apiMux())))
	defer srv.Close()

	tests := []struct {
		method, path string
		code         int
		name, route  string
		status       codes.Code
	}{
		{"GET", "/v1/users/42", 200, "GET /v1/users/{id}", "/v1/users/{id}", codes.Unset},
		{"POST", "/v1/boom", 500, "POST /v1/boom", "/v1/boom", codes.Error},
		{"GET", "/v1/healthz", 200, "GET /v1/healthz", "/v1/healthz", codes.Unset},
		{"GET", "/v1/nothing/here", 404, "GET", "", codes.Unset},
		{"DELETE", "/v1/users/42", 405, "DELETE", "", codes.Unset},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			exp.Reset()
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			req.Header.Set(requestid.HeaderName, "client-id-"+strconv.Itoa(tt.code))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.code)
			}
			spans := flushed(t, p, exp)
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name != tt.name {
				t.Errorf("span name %q, want %q", s.Name, tt.name)
			}
			if s.SpanKind != trace.SpanKindServer {
				t.Errorf("span kind %v", s.SpanKind)
			}
			route, ok := attr(s.Attributes, semconv.HTTPRouteKey)
			if route.AsString() != tt.route || ok != (tt.route != "") {
				t.Errorf("http.route %q (present %v), want %q", route.AsString(), ok, tt.route)
			}
			if id, _ := attr(s.Attributes, RequestIDKey); id.AsString() != resp.Header.Get(requestid.HeaderName) {
				t.Errorf("request_id %q, response header %q", id.AsString(), resp.Header.Get(requestid.HeaderName))
			}
			if s.Status.Code != tt.status {
				t.Errorf("status %v, want %v", s.Status.Code, tt.status)
			}
		})
	}
}

func TestHTTPMiddlewareContinuesCallerTrace(t *testing.T) {
	p, exp := newTestProvider(t, "gateway", nil)
	h := requestid.Middleware(p.Middleware(apiMux()))
	req := httptest.NewRequest("GET", "/v1/users/7", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	s := spanNamed(t, flushed(t, p, exp), "GET /v1/users/{id}")
	if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span in trace %s with parent %s, want the caller's", s.SpanContext.TraceID(), s.Parent.SpanID())
	}
}

func TestRoute(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                      "",
		"GET /v1/users/{id}":    "/v1/users/{id}",
		"/v1/healthz":           "/v1/healthz",
		"POST example.com/x":    "/x",
		"example.com/":          "/",
		"DELETE  /v1/users/{$}": "/v1/users/{$}",
	} {
		if got := route(pattern); got != want {
			t.Errorf("route(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestLifecycleComponent(t *testing.T) {
	p, err := New(DefaultConfig(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v after Shutdown", err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if p.Name() != "tracing" {
		t.Errorf("Name() = %q", p.Name())
	}
}

// TestSpanLimitsFromEnvironment checks that a zero or negative limit from
// the environment means the SDK's default, never "none" or "unlimited".
func TestSpanLimitsFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "0")
	t.Setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "-1")
	t.Setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "7")
	t.Setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10")
	want := sdktrace.SpanLimits{
		AttributeValueLengthLimit:   maxAttributeLength,
		AttributeValueDepthLimit:    sdktrace.DefaultAttributeValueDepthLimit,
		AttributeCountLimit:         sdktrace.DefaultAttributeCountLimit,
		EventCountLimit:             sdktrace.DefaultEventCountLimit,
		LinkCountLimit:              7,
		AttributePerEventCountLimit: sdktrace.DefaultAttributePerEventCountLimit,
		AttributePerLinkCountLimit:  sdktrace.DefaultAttributePerLinkCountLimit,
	}
	if got := spanLimits(); got != want {
		t.Errorf("spanLimits() = %+v, want %+v", got, want)
	}
}
