package tracing

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/golden-stack/golden/observability/requestid"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// workHandler stands for a gateway handler: it routes by pattern and does
// its work in a child span of the request's span.
func workHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		tracer := trace.SpanFromContext(r.Context()).TracerProvider().Tracer(ScopeName)
		_, span := tracer.Start(r.Context(), "work")
		span.End()
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
	return mux
}

// shutdownReturns runs Shutdown with a deadline and fails the test if it
// does not return within that deadline and a generous margin: the margin
// absorbs a slow machine, the bound catches a Shutdown stuck on retries.
func shutdownReturns(t testing.TB, p *Provider, deadline time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(deadline + 10*time.Second):
		t.Fatalf("Shutdown with a %s deadline did not return", deadline)
		return nil
	}
}

func TestJaegerUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Endpoint = closedAddr(t)
	cfg.QueueSize = 64 // fills quickly, so dropping is exercised too
	reg := prometheus.NewRegistry()
	p, err := New(cfg, "gateway", WithLogger(quietLogger()), WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Exporting() {
		t.Fatal("Exporting() = false with an endpoint")
	}
	srv := httptest.NewServer(requestid.Middleware(p.Middleware(workHandler())))
	defer srv.Close()

	const n = 300
	for i := range n {
		resp, err := srv.Client().Get(srv.URL + "/v1/users/42")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	// Nothing reached the closed port and no span is lost uncounted: two
	// per request (the server's and its handler's work).
	if c := readSpanCounts(t, reg); c.exported != 0 || c.ended() != 2*n || c.queueFull == 0 {
		t.Errorf("%d requests, nothing listening: %+v, want the %d spans queued or dropped, some as queue_full", n, c, 2*n)
	}
	// Spans are queued and an export is retrying against the closed port:
	// Shutdown must give up at its deadline rather than wait for retries.
	err = shutdownReturns(t, p, 2*time.Second)
	t.Logf("Shutdown: %v", err)
	// Nor does the export keep retrying in the background afterwards.
	noExportGoroutines(t)
}

// noExportGoroutines fails the test if goroutines of the OTLP exporter are
// still running a few seconds after Shutdown returned.
func noExportGoroutines(t testing.TB) {
	t.Helper()
	var stacks bytes.Buffer
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		stacks.Reset()
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		if !strings.Contains(stacks.String(), "otlptrace") {
			return
		}
	}
	t.Fatalf("OTLP export still running after Shutdown:\n%s", stacks.String())
}

func TestShutdownFlushes(t *testing.T) {
	mem := tracetest.NewInMemoryExporter()
	var got int
	// The in-memory exporter forgets its spans when shut down: count them
	// just before.
	exp := shutdownObserver{InMemoryExporter: mem, onShutdown: func() { got = len(mem.GetSpans()) }}
	p, err := New(DefaultConfig(), "svc", WithExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		_, span := p.Tracer().Start(context.Background(), "op")
		span.End()
	}
	// The batch timeout is 5s: only Shutdown's flush exports them now.
	if err := shutdownReturns(t, p, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got != 10 {
		t.Errorf("%d spans exported by Shutdown, want 10", got)
	}
}

// shutdownObserver calls onShutdown when the SDK shuts the exporter down.
type shutdownObserver struct {
	*tracetest.InMemoryExporter
	onShutdown func()
}

func (e shutdownObserver) Shutdown(ctx context.Context) error {
	e.onShutdown()
	return e.InMemoryExporter.Shutdown(ctx)
}

// Per-request cost of the HTTP middleware plus one child span, handled in
// process so the network does not drown the difference.
func BenchmarkHTTPRequest(b *testing.B) {
	for _, mode := range benchModes(b) {
		b.Run(mode.name, func(b *testing.B) {
			h := requestid.Middleware(workHandler())
			if mode.p != nil {
				h = requestid.Middleware(mode.p.Middleware(workHandler()))
			}
			req := httptest.NewRequest("GET", "/v1/users/42", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// Per-call cost of a unary gRPC call over loopback with client and server
// spans, the same provider at both ends.
func BenchmarkGRPCCall(b *testing.B) {
	for _, mode := range benchModes(b) {
		b.Run(mode.name, func(b *testing.B) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srvOpts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(requestid.UnaryServerInterceptor(), UnaryServerInterceptor())}
			dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
			tracer := noop.NewTracerProvider().Tracer("")
			if mode.p != nil {
				srvOpts = append(srvOpts, mode.p.ServerOption())
				dialOpts = append(dialOpts, mode.p.DialOption())
				tracer = mode.p.Tracer()
			}
			srv := grpc.NewServer(srvOpts...)
			healthpb.RegisterHealthServer(srv, &healthServer{tracer: tracer})
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), dialOpts...)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := healthpb.NewHealthClient(conn)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type benchMode struct {
	name string
	p    *Provider // nil: no instrumentation at all
}

// benchModes are: no tracing middleware, export off (--otlp-endpoint ""),
// exporting to an exporter that discards (Jaeger up, minus the network),
// and Jaeger down (endpoint a closed port).
func benchModes(b *testing.B) []benchMode {
	b.Helper()
	off, err := New(DefaultConfig(), "bench", WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	up, err := New(DefaultConfig(), "bench", WithExporter(tracetest.NewNoopExporter()), WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Endpoint = closedAddr(b)
	down, err := New(cfg, "bench", WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, p := range []*Provider{off, up, down} {
			_ = p.Shutdown(ctx)
		}
	})
	return []benchMode{{"untraced", nil}, {"export-off", off}, {"exporting", up}, {"jaeger-down", down}}
}

// TestShutdownBoundedWhenCollectorHangs exports to a collector that accepts
// connections and never answers: Shutdown, even without a deadline of its
// own, gives up after shutdownFlushLimit, so the parts a service stops after
// the tracer keep their share of the shutdown deadline.
func TestShutdownBoundedWhenCollectorHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the flush limit")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never read
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	cfg := DefaultConfig()
	cfg.Endpoint = lis.Addr().String()
	p, err := New(cfg, "gateway", WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(requestid.Middleware(p.Middleware(workHandler())))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/v1/users/42")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	start := time.Now()
	_ = shutdownReturns(t, p, time.Minute)
	if took := time.Since(start); took > shutdownFlushLimit+time.Second {
		t.Errorf("Shutdown took %s with a hanging collector, want at most %s", took.Round(time.Millisecond), shutdownFlushLimit)
	}
	noExportGoroutines(t)
}
