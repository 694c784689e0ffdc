package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/metadata"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/service"
	"github.com/golden-stack/golden/services/user"
)

// Names of the servers, as the report shows them.
const (
	Bare   = "bare"
	Golden = "golden"
	Peer   = "peer"
	// GoldenNoGELF is golden with the GELF sink off (stdout JSON logs
	// only), a diagnostic variant that isolates what shipping logs costs.
	GoldenNoGELF = "golden-nogelf"
	// GoldenNoLog is golden with --access-log-sample 0: no access line for
	// a successful call, neither on stdout nor in GELF, a diagnostic
	// variant that isolates what the access log costs (every span and
	// metric stays).
	GoldenNoLog = "golden-nolog"
	// PeerNoLog is the peer chain without its logging interceptor (spans,
	// metrics and recovery only), a diagnostic variant: what the required
	// tracing and metrics libraries cost before a single log line, the
	// floor for any server that traces and measures every call with them.
	PeerNoLog = "peer-nolog"
)

// Names lists the servers in report order, the diagnostic variants included.
var Names = []string{Bare, Golden, GoldenNoGELF, GoldenNoLog, Peer, PeerNoLog}

// stopTimeout bounds how long a server may take to drain and flush.
const stopTimeout = 20 * time.Second

// Server is one running benchmark server.
type Server struct {
	// Name is Bare, Golden or Peer.
	Name string
	addr string
	stop func(context.Context) error
	once sync.Once
	err  error
}

// Addr returns the loopback host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close stops the server, flushing what its instrumentation still holds
// (spans, GELF messages) within a bound. Calling it again does nothing.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		s.err = s.stop(ctx)
	})
	return s.err
}

// Sinks are where the instrumented servers send their telemetry.
type Sinks struct {
	// OTLPAddr is the OTLP/gRPC trace receiver (Jaeger or an OTLPSink).
	OTLPAddr string
	// GELFAddr is the GELF UDP input (a GELFSink).
	GELFAddr string
	// Stdout is what the servers' JSON logs are written to, as a service
	// writes them to its stdout; nil means io.Discard for peer and the
	// process's os.Stdout for golden.
	Stdout *os.File
}

// Start starts the server called name (one of Names).
func Start(name string, certs Certs, sinks Sinks) (*Server, error) {
	switch name {
	case Bare:
		return StartBare(certs)
	case Golden:
		return StartGolden(Golden, certs, sinks, 1)
	case GoldenNoGELF:
		sinks.GELFAddr = ""
		return StartGolden(GoldenNoGELF, certs, sinks, 1)
	case GoldenNoLog:
		return StartGolden(GoldenNoLog, certs, sinks, 0)
	case Peer:
		return startPeer(Peer, certs, sinks, true)
	case PeerNoLog:
		return startPeer(PeerNoLog, certs, sinks, false)
	}
	return nil, fmt.Errorf("unknown server %q: choose one of %v", name, Names)
}

// StartBare serves Handler from a plain grpc-go server with the same mTLS
// credentials and nothing else: no interceptors, no stats handler.
func StartBare(certs Certs) (*Server, error) {
	tlsConf, err := certs.ServerTLS()
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConf)))
	userv1.RegisterUserServiceServer(g, Handler{})
	return serveGRPC(Bare, g, lis, nil), nil
}

// serveGRPC serves g on lis until Close, which drains it and then runs
// after (if any).
func serveGRPC(name string, g *grpc.Server, lis net.Listener, after func(context.Context) error) *Server {
	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	return &Server{Name: name, addr: lis.Addr().String(), stop: func(ctx context.Context) error {
		stopped := make(chan struct{})
		go func() { g.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			g.Stop()
			<-stopped
		}
		err := <-done
		if errors.Is(err, grpc.ErrServerStopped) {
			err = nil
		}
		if after != nil {
			err = errors.Join(err, after(ctx))
		}
		return err
	}}
}

// GoldenSettings returns the kit settings of the golden server: the user
// service's defaults on loopback with its certificate, tracing at 100%
// exported to sinks.OTLPAddr, the JSON access log of a share accessSample
// (0 to 1) of successful calls, GELF over UDP to sinks.GELFAddr (none when
// empty), discovery off (no Consul).
func GoldenSettings(certs Certs, sinks Sinks, accessSample float64) service.Settings {
	s := user.DefaultConfig().Settings
	s.AdminAddr = "127.0.0.1:0"
	s.TLS = certs.Files(ServerName)
	s.Logging.Level, s.Logging.Format, s.Logging.AccessSample = "info", "json", accessSample
	s.Logging.GELFAddr, s.Logging.GELFProtocol = sinks.GELFAddr, "udp"
	s.Tracing.Endpoint, s.Tracing.Insecure, s.Tracing.SampleRatio = sinks.OTLPAddr, true, 1
	return s
}

// GoldenRateLimit is the per-caller rate limit of the golden server:
// far above anything a benchmark reaches, so that it is paid for on every
// call but never refuses one.
const GoldenRateLimit = 1e7

// stdoutMu serializes the os.Stdout swap in StartGolden.
var stdoutMu sync.Mutex

// StartGolden serves Handler with golden's full chain, built by the user
// service's own user.ListenGRPC (see services/user/service.go for the
// chain, in request order), with GoldenSettings and GoldenRateLimit, as
// the server called name.
//
// The logger writes to os.Stdout as it is when the kit starts; with
// sinks.Stdout set, os.Stdout is that file while StartGolden runs.
func StartGolden(name string, certs Certs, sinks Sinks, accessSample float64) (_ *Server, err error) {
	cfg := user.DefaultConfig()
	cfg.Settings = GoldenSettings(certs, sinks, accessSample)
	cfg.GRPC.Addr = "127.0.0.1:0"
	cfg.GRPC.RateLimit, cfg.GRPC.RateBurst = GoldenRateLimit, int(GoldenRateLimit)
	cfg.Token.PublicKey = certs.PublicKeyFile()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kit, err := startKit(cfg.Settings, sinks.Stdout)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			kit.Close()
		}
	}()
	srv, err := user.ListenGRPC(kit, cfg)
	if err != nil {
		return nil, err
	}
	userv1.RegisterUserServiceServer(srv.GRPC(), Handler{})
	kit.Metrics.InitializeMetrics(srv.GRPC())
	kit.SetReady(srv.Serving)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kit.Run(ctx, srv) }()
	s := &Server{Name: name, addr: srv.Addr().String(), stop: func(stopCtx context.Context) error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-stopCtx.Done():
			return fmt.Errorf("golden server did not stop: %w", stopCtx.Err())
		}
	}}
	// Serve marks the server SERVING; wait for it so that no call races
	// the start.
	for deadline := time.Now().Add(10 * time.Second); !srv.Serving(); {
		select {
		case err := <-done:
			return nil, fmt.Errorf("golden server stopped during start: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, errors.New("golden server not serving after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s, nil
}

// startKit runs service.Start with os.Stdout set to stdout (when not nil),
// since the kit's logger writes to the os.Stdout of the moment it is built.
func startKit(s service.Settings, stdout *os.File) (*service.Kit, error) {
	if stdout == nil {
		return service.Start(s)
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	saved := os.Stdout
	os.Stdout = stdout
	defer func() { os.Stdout = saved }()
	return service.Start(s)
}

// PeerHistogramBuckets are the handling-time buckets of go-grpc-middleware's
// example server.
var PeerHistogramBuckets = []float64{0.001, 0.01, 0.1, 0.3, 0.6, 1, 3, 6, 9, 20, 30, 60, 90, 120}

// startPeer serves Handler with the chain of go-grpc-middleware's example
// server (examples/server/main.go), its token check left out:
//
//	mTLS -> otelgrpc stats handler (always sample, batch OTLP export to
//	sinks.OTLPAddr) -> prometheus server metrics (handling-time histogram,
//	exemplars, a context label) -> logrus logging interceptor (JSON,
//	one line per finished call) -> recovery -> Handler
//
// The logrus logger writes to sinks.Stdout (io.Discard when nil); the
// peer sends no GELF. Without logCalls (PeerNoLog) the logging interceptor
// is left out; the recovery handler still logs a panic.
func startPeer(name string, certs Certs, sinks Sinks, logCalls bool) (_ *Server, err error) {
	tlsConf, err := certs.ServerTLS()
	if err != nil {
		return nil, err
	}
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(sinks.OTLPAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("peer: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("peer")))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	defer func() {
		if err != nil {
			_ = tp.Shutdown(context.Background())
		}
	}()
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	srvMetrics := grpcprom.NewServerMetrics(
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(PeerHistogramBuckets)),
		grpcprom.WithContextLabels("tenant_name"),
	)
	reg := prometheus.NewRegistry()
	if err := reg.Register(srvMetrics); err != nil {
		return nil, err
	}
	exemplarFromContext := func(ctx context.Context) prometheus.Labels {
		if span := trace.SpanContextFromContext(ctx); span.IsSampled() {
			return prometheus.Labels{"traceID": span.TraceID().String()}
		}
		return nil
	}
	labelsFromContext := func(ctx context.Context) prometheus.Labels {
		tenant := metadata.ExtractIncoming(ctx).Get("tenant-name")
		if tenant == "" {
			tenant = "unknown"
		}
		return prometheus.Labels{"tenant_name": tenant}
	}

	var out io.Writer = io.Discard
	if sinks.Stdout != nil {
		out = sinks.Stdout
	}
	logger := logrus.New()
	logger.SetOutput(out)
	logger.SetFormatter(&logrus.JSONFormatter{})
	rpcLogger := logger.WithFields(logrus.Fields{"service": "gRPC/server", "component": "peer"})
	logTraceID := func(ctx context.Context) logging.Fields {
		if span := trace.SpanContextFromContext(ctx); span.IsSampled() {
			return logging.Fields{"traceID", span.TraceID().String()}
		}
		return nil
	}

	panicsTotal := promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "grpc_req_panics_recovered_total",
		Help: "Total number of gRPC requests recovered from internal panic.",
	})
	onPanic := func(p any) error {
		panicsTotal.Inc()
		rpcLogger.WithField("panic", p).WithField("stack", string(debug.Stack())).Error("recovered from panic")
		return status.Error(codes.Internal, "internal error")
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	chain := []grpc.UnaryServerInterceptor{srvMetrics.UnaryServerInterceptor(
		grpcprom.WithExemplarFromContext(exemplarFromContext),
		grpcprom.WithLabelsFromContext(labelsFromContext),
	)}
	if logCalls {
		chain = append(chain, logging.UnaryServerInterceptor(LogrusLogger(rpcLogger),
			logging.WithLogOnEvents(logging.FinishCall), logging.WithFieldsFromContext(logTraceID)))
	}
	chain = append(chain, recovery.UnaryServerInterceptor(recovery.WithRecoveryHandler(onPanic)))
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))),
		grpc.ChainUnaryInterceptor(chain...),
	)
	userv1.RegisterUserServiceServer(g, Handler{})
	srvMetrics.InitializeMetrics(g)
	return serveGRPC(name, g, lis, tp.Shutdown), nil
}

// LogrusLogger adapts a logrus logger to go-grpc-middleware's logging
// interceptor, after the adapter in its logrus example, keeping every field
// (the example's keeps only the first) and not writing to the shared
// logger (the example's reassigns it on every call, a data race).
func LogrusLogger(l logrus.FieldLogger) logging.Logger {
	return logging.LoggerFunc(func(_ context.Context, lvl logging.Level, msg string, fields ...any) {
		f := make(logrus.Fields, len(fields)/2)
		for i := logging.Fields(fields).Iterator(); i.Next(); {
			k, v := i.At()
			f[k] = v
		}
		e := l.WithFields(f)
		switch lvl {
		case logging.LevelDebug:
			e.Debug(msg)
		case logging.LevelInfo:
			e.Info(msg)
		case logging.LevelWarn:
			e.Warn(msg)
		default:
			e.Error(msg)
		}
	})
}
