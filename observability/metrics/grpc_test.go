package metrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/otel/trace"

	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/ratelimit"
	"github.com/golden-stack/golden/observability/security"
)

const healthService = "grpc.health.v1.Health"

// serveHealth starts a gRPC server with the standard health service on a
// loopback port and returns its address. Its health service reports "" and
// "known" as SERVING; any other service name is NotFound.
func serveHealth(t *testing.T, creds credentials.TransportCredentials, s *Server, before ...grpc.UnaryServerInterceptor) (*grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.Creds(creds),
		grpc.ChainUnaryInterceptor(append(before, s.UnaryServerInterceptor())...),
		grpc.ChainStreamInterceptor(s.StreamServerInterceptor()),
	)
	hs := health.NewServer()
	hs.SetServingStatus("known", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String()
}

// dial returns a health client for addr.
func dial(t *testing.T, addr string, creds credentials.TransportCredentials, opts ...grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// withSpan is a server interceptor that stands in for a tracing stats
// handler: it puts sc into the context of every RPC.
func withSpan(sc trace.SpanContext) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(trace.ContextWithSpanContext(ctx, sc), req)
	}
}

func newServer(t *testing.T) (*prometheus.Registry, *Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := NewServer(reg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, s
}

// TestServerCallerFromVerifiedCertificate runs the health service over
// mutual TLS with certificates from the project's PKI: the caller label is
// the identity of the verified client certificate, and "none" for a client
// without one.
func TestServerCallerFromVerifiedCertificate(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"user", "gateway"}}); err != nil {
		t.Fatal(err)
	}
	serverConf, err := security.ServerConfig(security.DefaultFiles(dir, "user"))
	if err != nil {
		t.Fatal(err)
	}
	clientConf, err := security.ClientConfig(security.DefaultFiles(dir, "gateway"), "user")
	if err != nil {
		t.Fatal(err)
	}
	reg, s := newServer(t)
	_, addr := serveHealth(t, credentials.NewTLS(serverConf), s)
	ctx := testContext(t)

	gateway := dial(t, addr, credentials.NewTLS(clientConf))
	for range 3 {
		if _, err := gateway.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	if _, err := gateway.Check(ctx, &healthpb.HealthCheckRequest{Service: "missing"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check(missing) = %v, want NotFound", err)
	}

	// A probe that trusts the CA but presents no certificate of its own.
	caPEM, err := os.ReadFile(security.DefaultFiles(dir, "user").CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	probe := dial(t, addr, credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "user", MinVersion: tls.VersionTLS13}))
	if _, err := probe.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check without client certificate: %v", err)
	}

	base := map[string]string{"grpc_type": "unary", "grpc_service": healthService, "grpc_method": "Check"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{
		{with("grpc_code", "OK", "caller", "gateway"), 3},
		{with("grpc_code", "NotFound", "caller", "gateway"), 1},
		{with("grpc_code", "OK", "caller", NoCaller), 1},
	} {
		if got := counterValue(t, reg, "grpc_server_handled_total", tc.labels); got != tc.want {
			t.Errorf("grpc_server_handled_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := counterValue(t, reg, "grpc_server_started_total", with("caller", "gateway")); got != 4 {
		t.Errorf("grpc_server_started_total{caller=gateway} = %v, want 4", got)
	}
	h := mustFind(t, reg, "grpc_server_handling_seconds", with("caller", "gateway")).GetHistogram()
	if h.GetSampleCount() != 4 {
		t.Errorf("grpc_server_handling_seconds{caller=gateway} count = %d, want 4", h.GetSampleCount())
	}
	checkLatencyHistogram(t, "grpc_server_handling_seconds", h)
	if _, ok := labelsOf(mustFind(t, reg, "grpc_server_handling_seconds", base))["grpc_code"]; ok {
		t.Error("grpc_server_handling_seconds has a grpc_code label; the contract says it has none")
	}
	if got := gaugeValue(t, reg, "golden_in_flight_requests", map[string]string{"server": "grpc"}); got != 0 {
		t.Errorf("golden_in_flight_requests{server=grpc} = %v after all calls returned, want 0", got)
	}
}

// plainAuth is the AuthInfo of a connection without TLS.
type plainAuth struct{}

func (plainAuth) AuthType() string { return "insecure" }

// TestCallerIgnoresUnverifiedPeers checks that only a verified chain names
// the caller: a TLS peer whose certificate was not verified is "none".
func TestCallerIgnoresUnverifiedPeers(t *testing.T) {
	cert := &x509.Certificate{URIs: []*url.URL{{Scheme: "spiffe", Host: "golden", Path: "/gateway"}}}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no peer", context.Background(), NoCaller},
		{"insecure peer", peer.NewContext(context.Background(), &peer.Peer{AuthInfo: plainAuth{}}), NoCaller},
		{"unverified certificate", peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}}}), NoCaller},
		{"verified certificate", peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}}}), "gateway"},
	} {
		if got := callerOf(tc.ctx); got != tc.want {
			t.Errorf("%s: caller = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestServerExemplars checks that a sampled span context puts its trace ID
// on the counters and histograms in the OpenMetrics exposition, and that an
// unsampled one puts nothing.
func TestServerExemplars(t *testing.T) {
	for _, sampled := range []bool{true, false} {
		t.Run(fmt.Sprintf("sampled=%v", sampled), func(t *testing.T) {
			reg, s := newServer(t)
			sc := spanContext(sampled)
			_, addr := serveHealth(t, insecure.NewCredentials(), s, withSpan(sc))
			client := dial(t, addr, insecure.NewCredentials())
			if _, err := client.Check(testContext(t), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			body, ctype := scrape(t, Handler(reg), openMetricsAccept)
			if !strings.HasPrefix(ctype, "application/openmetrics-text") {
				t.Fatalf("Content-Type = %q, want OpenMetrics", ctype)
			}
			handled := exemplarLines(body, "grpc_server_handled_total{")
			buckets := exemplarLines(body, "grpc_server_handling_seconds_bucket{")
			if !sampled {
				if len(handled)+len(buckets) != 0 {
					t.Fatalf("exemplars for an unsampled span:\n%s", strings.Join(append(handled, buckets...), "\n"))
				}
				return
			}
			want := `# {trace_id="` + sc.TraceID().String() + `"}`
			if len(handled) != 1 || !strings.Contains(handled[0], want) || !strings.Contains(handled[0], `grpc_code="OK"`) {
				t.Errorf("grpc_server_handled_total exemplars = %q, want one with %s", handled, want)
			}
			if len(buckets) != 1 || !strings.Contains(buckets[0], want) {
				t.Errorf("grpc_server_handling_seconds_bucket exemplars = %q, want one with %s", buckets, want)
			}
		})
	}
}

// TestServerHandledCodes calls the interceptor directly with errors whose
// code the series kept per method and caller do not cover, and with context
// errors, which count under their gRPC codes as go-grpc-middleware's
// provider counts them; each series is counted once per call, by caller.
func TestServerHandledCodes(t *testing.T) {
	reg, s := newServer(t)
	interceptor := s.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/golden.user.v1.UserService/GetUser"}
	for _, tc := range []struct {
		caller string
		err    error
		code   string
	}{
		{"gateway", nil, "OK"},
		{"gateway", nil, "OK"},
		{"gateway", status.Error(codes.NotFound, "no"), "NotFound"},
		{"gateway", status.Error(codes.Code(42), "odd"), "Code(42)"},
		{"gateway", status.Error(codes.Code(42), "odd"), "Code(42)"},
		{"gateway", context.Canceled, "Canceled"},
		{"gateway", context.DeadlineExceeded, "DeadlineExceeded"},
		{"gateway", errors.New("plain"), "Unknown"},
		{"auth", nil, "OK"},
	} {
		handler := func(context.Context, any) (any, error) { return "ok", tc.err }
		if _, err := interceptor(peerContext(tc.caller), nil, info, handler); !errors.Is(err, tc.err) {
			t.Fatalf("interceptor returned %v, want the handler's %v", err, tc.err)
		}
	}
	labels := func(caller string, more ...string) map[string]string {
		m := map[string]string{"grpc_service": "golden.user.v1.UserService", "grpc_method": "GetUser", "grpc_type": "unary", "caller": caller}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	for code, want := range map[string]float64{"OK": 2, "NotFound": 1, "Code(42)": 2, "Canceled": 1, "DeadlineExceeded": 1, "Unknown": 1} {
		if got := counterValue(t, reg, "grpc_server_handled_total", labels("gateway", "grpc_code", code)); got != want {
			t.Errorf("handled_total{caller=gateway,grpc_code=%s} = %v, want %v", code, got, want)
		}
	}
	if got := counterValue(t, reg, "grpc_server_handled_total", labels("auth", "grpc_code", "OK")); got != 1 {
		t.Errorf("handled_total{caller=auth,grpc_code=OK} = %v, want 1", got)
	}
	for name, want := range map[string]float64{"grpc_server_started_total": 8, "grpc_server_msg_received_total": 8, "grpc_server_msg_sent_total": 2} {
		if got := counterValue(t, reg, name, labels("gateway")); got != want {
			t.Errorf("%s{caller=gateway} = %v, want %v", name, got, want)
		}
	}
	if got := mustFind(t, reg, "grpc_server_handling_seconds", labels("gateway")).GetHistogram().GetSampleCount(); got != 8 {
		t.Errorf("handling_seconds{caller=gateway} count = %d, want 8", got)
	}
	// Only the codes a caller got have series: 6 for gateway, 1 for auth.
	if n := seriesCount(t, reg, "grpc_server_handled_total"); n != 7 {
		t.Errorf("%d grpc_server_handled_total series, want 7", n)
	}
	ctx := peerContext("gateway")
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	if n := testing.AllocsPerRun(100, func() { _, _ = interceptor(ctx, nil, info, ok) }); n > 1 {
		t.Errorf("a call through the interceptor allocates %v times, want at most 1 (its reporter)", n)
	}
}

// TestServerCardinality makes many calls that differ in everything a client
// chooses freely (metadata, request IDs, the requested service name) and
// checks that the number of series stays at what the methods and codes
// allow.
func TestServerCardinality(t *testing.T) {
	reg, s := newServer(t)
	_, addr := serveHealth(t, insecure.NewCredentials(), s)
	client := dial(t, addr, insecure.NewCredentials())
	ctx := testContext(t)
	for i := range 1000 {
		md := metadata.Pairs(
			"x-request-id", fmt.Sprintf("req-%08d", i),
			"user-id", fmt.Sprintf("user-%d", i),
			"authorization", fmt.Sprintf("Bearer token-%d", i),
		)
		req := &healthpb.HealthCheckRequest{}
		if i%2 == 1 {
			req.Service = fmt.Sprintf("service-%d", i) // NotFound
		}
		_, err := client.Check(metadata.NewOutgoingContext(ctx, md), req)
		if want := map[bool]codes.Code{false: codes.OK, true: codes.NotFound}[i%2 == 1]; status.Code(err) != want {
			t.Fatalf("call %d: %v, want %v", i, err, want)
		}
	}
	// One method from one caller: started 1, handled 2 (OK, NotFound),
	// handling_seconds 1, msg_received 1, msg_sent 1; plus the in-flight
	// gauge. Rejections have no series until the first one.
	if n := seriesCount(t, reg, "grpc_server_"); n > 6 {
		t.Errorf("%d grpc_server_* series after 1000 distinct calls, want at most 6:\n%s", n,
			strings.Join(labelSets(t, reg, "grpc_server_handled_total"), "\n"))
	}
	if n := seriesCount(t, reg, ""); n > 7 {
		t.Errorf("%d series in the registry after 1000 distinct calls, want at most 7", n)
	}
	if got := counterValue(t, reg, "grpc_server_started_total", map[string]string{"grpc_method": "Check", "caller": NoCaller}); got != 1000 {
		t.Errorf("grpc_server_started_total = %v, want 1000", got)
	}
}

// TestInitializeMetrics checks that every method has its series at zero
// before the first call, for every code, without inventing a caller.
func TestInitializeMetrics(t *testing.T) {
	reg, s := newServer(t)
	srv, _ := serveHealth(t, insecure.NewCredentials(), s)
	s.InitializeMetrics(srv)

	methods := 0
	for _, info := range srv.GetServiceInfo() {
		methods += len(info.Methods)
	}
	if methods != 3 {
		t.Fatalf("health service has %d methods, test expects 3 (Check, List, Watch)", methods)
	}
	// Per method: started 1, handled 17 codes, handling_seconds 1,
	// msg_received 1, msg_sent 1.
	if n, want := seriesCount(t, reg, "grpc_server_"), methods*21; n != want {
		t.Errorf("%d grpc_server_* series after InitializeMetrics, want %d", n, want)
	}
	for _, code := range []codes.Code{codes.OK, codes.Internal, codes.Unavailable} {
		m := mustFind(t, reg, "grpc_server_handled_total", map[string]string{"grpc_method": "Watch", "grpc_type": "server_stream", "grpc_code": code.String()})
		if v := m.GetCounter().GetValue(); v != 0 {
			t.Errorf("handled_total{Watch,%v} = %v, want 0", code, v)
		}
		// Prometheus stores an empty label as no label at all.
		if c := labelsOf(m)["caller"]; c != "" {
			t.Errorf("pre-created series has caller=%q, want an empty caller", c)
		}
	}
}

// TestServerStreamInFlight checks the saturation gauge on a stream that
// stays open: 1 while it is open, 0 once it ended.
func TestServerStreamInFlight(t *testing.T) {
	reg, s := newServer(t)
	_, addr := serveHealth(t, insecure.NewCredentials(), s)
	client := dial(t, addr, insecure.NewCredentials())
	ctx, cancel := context.WithCancel(testContext(t))
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The first message proves the handler is running.
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	inFlight := func() float64 {
		return gaugeValue(t, reg, "golden_in_flight_requests", map[string]string{"server": "grpc"})
	}
	if got := inFlight(); got != 1 {
		t.Errorf("in flight during Watch = %v, want 1", got)
	}
	cancel()
	eventually(t, "in-flight gauge back to 0 after the stream ended", func() bool { return inFlight() == 0 })
	eventually(t, "Watch counted as handled", func() bool {
		return counterValue(t, reg, "grpc_server_handled_total", map[string]string{"grpc_method": "Watch", "grpc_type": "server_stream", "grpc_code": "Canceled"}) == 1
	})
	if got := counterValue(t, reg, "grpc_server_msg_sent_total", map[string]string{"grpc_method": "Watch"}); got < 1 {
		t.Errorf("grpc_server_msg_sent_total{Watch} = %v, want >= 1", got)
	}
}

// TestClient checks the client metrics and their exemplar.
func TestClient(t *testing.T) {
	_, s := newServer(t)
	_, addr := serveHealth(t, insecure.NewCredentials(), s)
	reg := prometheus.NewRegistry()
	c, err := NewClient(reg)
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, addr, insecure.NewCredentials(),
		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()))
	sc := spanContext(true)
	ctx := trace.ContextWithSpanContext(testContext(t), sc)
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "missing"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check(missing) = %v, want NotFound", err)
	}
	base := map[string]string{"grpc_type": "unary", "grpc_service": healthService, "grpc_method": "Check"}
	for _, code := range []string{"OK", "NotFound"} {
		l := map[string]string{"grpc_code": code}
		for k, v := range base {
			l[k] = v
		}
		if got := counterValue(t, reg, "grpc_client_handled_total", l); got != 1 {
			t.Errorf("grpc_client_handled_total{grpc_code=%s} = %v, want 1", code, got)
		}
	}
	if got := counterValue(t, reg, "grpc_client_started_total", base); got != 2 {
		t.Errorf("grpc_client_started_total = %v, want 2", got)
	}
	checkLatencyHistogram(t, "grpc_client_handling_seconds", mustFind(t, reg, "grpc_client_handling_seconds", base).GetHistogram())

	body, _ := scrape(t, Handler(reg), openMetricsAccept)
	want := `# {trace_id="` + sc.TraceID().String() + `"}`
	for _, prefix := range []string{"grpc_client_handled_total{", "grpc_client_handling_seconds_bucket{"} {
		lines := exemplarLines(body, prefix)
		if len(lines) == 0 || !strings.Contains(lines[0], want) {
			t.Errorf("%s exemplars = %q, want %s", prefix, lines, want)
		}
	}
}

// TestRateLimitRejected wires Server.RateLimitRejected as the rate
// limiter's reject hook.
func TestRateLimitRejected(t *testing.T) {
	reg, s := newServer(t)
	caller := "gateway"
	lim := ratelimit.New(0.001, 1, func(context.Context) string { return caller }, ratelimit.WithRejectHook(s.RateLimitRejected))
	ctx := context.Background()
	for range 3 {
		_ = lim.Limit(ctx) // the first passes, the next two are rejected
	}
	caller = ""
	for range 2 {
		_ = lim.Limit(ctx) // a new bucket: one passes, one is rejected
	}
	for c, want := range map[string]float64{"gateway": 2, NoCaller: 1} {
		if got := counterValue(t, reg, "golden_ratelimit_rejections_total", map[string]string{"caller": c}); got != want {
			t.Errorf("golden_ratelimit_rejections_total{caller=%q} = %v, want %v", c, got, want)
		}
	}
}

// TestRegistration covers registering twice, sharing the in-flight gauge,
// and leaving the registry as it was after a failure.
func TestRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewServer(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHTTP(reg); err != nil {
		t.Fatalf("NewHTTP on the registry of a Server: %v", err)
	}
	if _, err := NewClient(reg); err != nil {
		t.Fatalf("NewClient on the registry of a Server: %v", err)
	}
	for name, f := range map[string]func() error{
		"NewServer": func() error { _, err := NewServer(reg); return err },
		"NewHTTP":   func() error { _, err := NewHTTP(reg); return err },
		"NewClient": func() error { _, err := NewClient(reg); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "already registered") {
			t.Errorf("second %s on one registry: err = %v, want an 'already registered' error", name, err)
		}
	}
	if got := labelSets(t, reg, "golden_in_flight_requests"); strings.Join(got, " ") != "server=grpc server=http" {
		t.Errorf("golden_in_flight_requests series = %v, want server=grpc and server=http", got)
	}

	for name, f := range map[string]func(prometheus.Registerer) error{
		"NewServer": func(r prometheus.Registerer) error { _, err := NewServer(r); return err },
		"NewHTTP":   func(r prometheus.Registerer) error { _, err := NewHTTP(r); return err },
		"NewClient": func(r prometheus.Registerer) error { _, err := NewClient(r); return err },
	} {
		if err := f(nil); err == nil || !strings.Contains(err.Error(), "nil prometheus.Registerer") {
			t.Errorf("%s(nil): err = %v, want a nil-registerer error", name, err)
		}
	}

	// A wrapping registerer (const labels, prefixes) still shares the gauge.
	inner := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"role": "edge"}, inner)
	if _, err := NewServer(wrapped); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHTTP(wrapped); err != nil {
		t.Fatalf("NewHTTP on a wrapping registerer next to a Server: %v", err)
	}
	if got := labelSets(t, inner, "golden_in_flight_requests"); strings.Join(got, " ") != "role=edge,server=grpc role=edge,server=http" {
		t.Errorf("golden_in_flight_requests series through a wrapping registerer = %v", got)
	}

	// golden_in_flight_requests taken by a collector of another shape: the
	// constructors fail and register nothing.
	taken := prometheus.NewRegistry()
	taken.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "golden_in_flight_requests", Help: "other"}))
	if _, err := NewHTTP(taken); err == nil || !strings.Contains(err.Error(), "golden_in_flight_requests") {
		t.Errorf("NewHTTP with the in-flight name taken: err = %v, want one naming golden_in_flight_requests", err)
	}
	if _, err := NewServer(taken); err == nil {
		t.Error("NewServer with the in-flight name taken: no error")
	}
	if n := seriesCount(t, taken, "golden_http_"); n != 0 {
		t.Errorf("failed NewHTTP left %d golden_http_* series", n)
	}
	if _, ok := families(t, taken)["golden_ratelimit_rejections_total"]; ok {
		t.Error("failed NewServer left golden_ratelimit_rejections_total registered")
	}
}

// peerContext returns a context whose peer presented a verified certificate
// naming identity, as gRPC's TLS credentials report it.
func peerContext(identity string) context.Context {
	u := &url.URL{Scheme: "spiffe", Host: "golden", Path: "/" + identity}
	cert := &x509.Certificate{URIs: []*url.URL{u}}
	return peer.NewContext(context.Background(), &peer.Peer{
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}},
	})
}

// BenchmarkUnaryServerInterceptor compares a trivial handler called
// directly with the same handler behind Server's interceptor, with and
// without a sampled span (the exemplar case).
func BenchmarkUnaryServerInterceptor(b *testing.B) {
	s, err := NewServer(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	interceptor := s.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/golden.user.v1.UserService/GetUser"}
	handler := func(context.Context, any) (any, error) { return "ok", nil }
	ctx := peerContext("gateway")
	sampledCtx := trace.ContextWithSpanContext(ctx, spanContext(true))

	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = handler(ctx, nil)
		}
	})
	b.Run("metrics", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = interceptor(ctx, nil, info, handler)
		}
	})
	b.Run("metrics+exemplar", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = interceptor(sampledCtx, nil, info, handler)
		}
	})
}
