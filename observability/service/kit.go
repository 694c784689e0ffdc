package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/golden-stack/golden/observability/admin"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/discovery"
	"github.com/golden-stack/golden/observability/fault"
	"github.com/golden-stack/golden/observability/grpcclient"
	"github.com/golden-stack/golden/observability/grpcserver"
	"github.com/golden-stack/golden/observability/lifecycle"
	"github.com/golden-stack/golden/observability/logging"
	"github.com/golden-stack/golden/observability/metrics"
	"github.com/golden-stack/golden/observability/postgres"
	"github.com/golden-stack/golden/observability/tracing"
)

// Kit is the shared part of a running service process: logger, metrics,
// tracer provider and admin server. Build it with Start, hang the service's
// own servers on it, and Run them together.
type Kit struct {
	Settings
	// Log is the service's base log entry (service and instance fields).
	Log *logrus.Entry
	// Registry holds every metric the process exposes on /metrics.
	Registry *prometheus.Registry
	// Tracing is the service's tracer provider.
	Tracing *tracing.Provider
	// Instance names this process in logs, spans and metrics:
	// advertised-host:admin-port.
	Instance string
	// Logger writes the access log (its interceptors and HTTP middleware).
	Logger *logging.Logger
	// Metrics are the gRPC server's golden signals (its interceptors).
	Metrics *metrics.Server
	// Faults injects the faults set in Consul (its interceptors).
	Faults *fault.Watcher

	admin      *admin.Server
	client     *metrics.Client
	registrar  *discovery.Registrar
	faultsUsed bool // a gRPC server was bound, so the watcher runs
	ready      atomic.Pointer[func() bool]
	db         *pgxpool.Pool // OpenPostgres's, closed after the servers drained
}

// Start builds the kit from validated settings: it binds the admin port,
// then sets up logging, metrics and tracing. Close it if the service fails to
// start after this; Run closes it otherwise.
func Start(s Settings) (*Kit, error) {
	lis, err := net.Listen("tcp", s.AdminAddr)
	if err != nil {
		return nil, config.SettingError("admin-addr", err)
	}
	// The instance is named as others reach it: the advertised host (the
	// hostname unless set) and the admin port. Logs, spans and, through the
	// Consul Meta "instance", Prometheus all use this one name.
	host := s.Discovery.AdvertiseAddr
	// One version everywhere: metrics, spans and the Consul registration.
	build := metrics.BuildInfo{Service: s.Name, Version: s.Version}.Resolve()
	s.Version = build.Version
	k := &Kit{Settings: s}
	k.admin = admin.New(lis, func() bool {
		ready := k.ready.Load()
		return ready != nil && (*ready)()
	})
	k.Instance = net.JoinHostPort(host, strconv.Itoa(k.AdminPort()))
	if err := k.start(build); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

// start sets up what Start builds after the admin port.
func (k *Kit) start(build metrics.BuildInfo) error {
	s := k.Settings
	var err error
	k.Registry = metrics.NewRegistry(build)
	k.admin.Handle("GET /metrics", metrics.Handler(k.Registry))
	if s.DebugPages {
		k.admin.EnableDebugPages()
	}
	if k.Logger, err = logging.New(s.Logging, s.Name, k.Instance, k.Registry, logging.WithField(logging.FieldTrack, s.Track)); err != nil {
		return err
	}
	k.Log = k.Logger.Entry()
	if k.Tracing, err = tracing.New(s.Tracing, s.Name,
		tracing.WithServiceVersion(s.Version), tracing.WithInstanceID(k.Instance), tracing.WithLogger(k.Log), tracing.WithRegisterer(k.Registry),
		tracing.WithAttributes(tracing.TrackKey.String(s.Track))); err != nil {
		return err
	}
	if k.Metrics, err = metrics.NewServer(k.Registry); err != nil {
		return err
	}
	if k.client, err = metrics.NewClient(k.Registry); err != nil {
		return err
	}
	if k.Faults, err = fault.New(s.Faults, s.Discovery.ConsulAddr, s.Name,
		fault.WithLogger(k.Log), fault.WithRegisterer(k.Registry),
		fault.WithConsulTokenFile(s.Discovery.TokenFile), fault.WithTrack(s.Track)); err != nil {
		return err
	}
	return nil
}

// SetReady makes the admin server's /readyz follow ready.
func (k *Kit) SetReady(ready func() bool) { k.ready.Store(&ready) }

// AdminAddr returns the address the admin server listens on.
func (k *Kit) AdminAddr() string { return k.admin.Addr().String() }

// AdminPort returns the port the admin server listens on.
func (k *Kit) AdminPort() int { return k.admin.Addr().(*net.TCPAddr).Port }

// ListenGRPC binds the service's gRPC server at addr (the --grpc-addr
// setting) with mutual TLS, the kit's logger and, with --debug-pages,
// channelz and request tracing. opts carry the service's stats handler and
// interceptor chain, written out by the service in request order.
func (k *Kit) ListenGRPC(addr string, tlsConf *tls.Config, opts ...grpc.ServerOption) (*grpcserver.Server, error) {
	o := []grpcserver.Option{grpcserver.WithLogger(k.Log), grpcserver.WithServerOptions(opts...)}
	if k.DebugPages {
		o = append(o, grpcserver.WithDebugPages())
	}
	srv, err := grpcserver.Listen(addr, tlsConf, o...)
	if err != nil {
		return nil, config.SettingError("grpc-addr", err)
	}
	k.faultsUsed = k.Faults.Enabled()
	return srv, nil
}

// dbStartTimeout bounds connecting to the database and migrating it at
// start, including the wait for another instance's migration.
const dbStartTimeout = 3 * time.Minute

// OpenPostgres opens the service's PostgreSQL database as c says, its
// schema brought up to date by m, its queries traced and its pool in the
// metrics. A database that cannot be reached fails the start with an error
// naming --db-url and its host. The kit closes the pool after the servers
// drained (Run), or in Close.
func (k *Kit) OpenPostgres(c postgres.Config, m postgres.Migrations) (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dbStartTimeout)
	defer cancel()
	pool, err := postgres.Open(ctx, c, m, k.Tracing.TracerProvider(), k.Registry)
	if err != nil {
		return nil, err
	}
	k.db = pool
	return pool, nil
}

// Dial connects to the service named server: through Consul when discovery
// is on, at staticAddr otherwise; with client metrics, spans, the request
// ID and the canary route on every call, each call going to an instance
// of the track its route names.
func (k *Kit) Dial(server, staticAddr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	target, dopts := k.Discovery.Target(server, staticAddr, discovery.WithLogger(k.Log))
	dopts = append(dopts,
		k.Tracing.DialOption(),
		grpc.WithChainUnaryInterceptor(k.client.UnaryClientInterceptor(), canary.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(k.client.StreamClientInterceptor(), canary.StreamClientInterceptor()),
	)
	return grpcclient.New(target, server, k.TLS, append(dopts, opts...)...)
}

// Register makes Run keep inst registered in Consul, when discovery is on.
// The registrar runs after every other component, so on shutdown it
// deregisters first: beforeDeregister runs (set NOT_SERVING there), the
// instance leaves Consul, clients stop routing to it during the drain wait,
// and only then do the servers drain.
func (k *Kit) Register(inst discovery.Instance, beforeDeregister func()) error {
	if !k.Discovery.Enabled() {
		return nil
	}
	inst.Version = k.Version
	inst.MetricsPort = k.AdminPort()
	if inst.Meta == nil {
		inst.Meta = map[string]string{}
	}
	inst.Meta[discovery.MetaInstance] = k.Instance
	inst.Meta[canary.MetaTrack] = k.Track
	cfg := k.Discovery
	// The track as a tag too, for Consul's UI and catalog filters.
	cfg.Tags = append(slices.Clone(cfg.Tags), k.Track)
	r, err := discovery.NewRegistrar(cfg, inst, discovery.WithLogger(k.Log), discovery.WithBeforeDeregister(beforeDeregister))
	if err != nil {
		return fmt.Errorf("consul registration: %w", err)
	}
	k.registrar = r
	return nil
}

// InstanceID returns the instance's ID in Consul, or "" without discovery.
func (k *Kit) InstanceID() string {
	if k.registrar == nil {
		return ""
	}
	return k.registrar.ID()
}

// Run serves the admin server, the tracer provider, components and the
// Consul registrar (in that order) until ctx ends, then stops them in
// reverse order within the shutdown timeout: the instance deregisters, the
// service's servers drain, spans are flushed after them, the admin server
// (readiness, metrics) goes next, and the logs queued for Graylog are
// flushed last, all within that one deadline so that a telemetry backend
// that does not answer cannot push the exit past it (and past the
// container's grace period). It returns nil after a clean drain, whether or
// not Jaeger and Graylog took the last spans and logs (what they did not is
// logged as a warning).
func (k *Kit) Run(ctx context.Context, components ...lifecycle.Component) error {
	all := []lifecycle.Component{&logFlush{log: k.Log, logger: k.Logger, stop: make(chan struct{})}, k.admin, k.Tracing}
	if k.faultsUsed {
		all = append(all, k.Faults)
	}
	all = append(all, components...)
	if k.registrar != nil {
		all = append(all, k.registrar)
	}
	err := lifecycle.Run(ctx, k.Log, k.ShutdownTimeout, all...)
	k.closeDB() // after the servers drained: in-flight calls finished
	return err
}

// logFlush is the lifecycle part that flushes the GELF queue and the lines
// held for stdout when stopped.
type logFlush struct {
	log    *logrus.Entry
	logger *logging.Logger
	stop   chan struct{}
}

func (f *logFlush) Name() string { return "logs" }

func (f *logFlush) Serve() error {
	<-f.stop
	return nil
}

// Shutdown flushes until ctx ends. Graylog being down is not the service
// failing: a clean drain still exits 0, and the loss is said on stdout.
func (f *logFlush) Shutdown(ctx context.Context) error {
	close(f.stop)
	if f.logger == nil {
		return nil
	}
	if err := f.logger.Close(ctx); err != nil {
		f.log.WithError(err).Warn("log messages not delivered at shutdown")
	}
	return nil
}

// Close releases what Start acquired, for a service that fails to start.
func (k *Kit) Close() {
	if k.Tracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = k.Tracing.Shutdown(ctx)
		cancel()
	}
	_ = k.admin.Close()
	k.closeDB()
	_ = k.closeLogger()
}

func (k *Kit) closeDB() {
	if k.db != nil {
		k.db.Close()
	}
}

func (k *Kit) closeLogger() error {
	if k.Logger == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return k.Logger.Close(ctx)
}
