// Package tracing sets up OpenTelemetry tracing for a golden service: a
// tracer provider that exports spans over OTLP/gRPC to Jaeger, W3C trace
// context and baggage propagation, and the gRPC and HTTP instrumentation that
// creates a span per request and tags it with the request ID.
//
// Tracing never stands in a request's way. The exporter connects lazily and
// sends spans from a background goroutine through a bounded queue; when
// Jaeger is slow or down the queue fills and further spans are dropped, so a
// request costs the same whether Jaeger is up, down or not configured. Every
// dropped span is counted (golden_trace_spans_dropped_total, see
// WithRegisterer).
//
// Wiring, in a service:
//
//	tp, err := tracing.New(cfg.Tracing, "user", tracing.WithLogger(log), tracing.WithRegisterer(reg))
//	srv, err := grpcserver.Listen(addr, tlsConf, grpcserver.WithServerOptions(
//		tp.ServerOption(),
//		grpc.ChainUnaryInterceptor(requestid.UnaryServerInterceptor(), tracing.UnaryServerInterceptor())))
//	conn, err := grpcclient.New(target, "user", files, tp.DialOption())
//	handler := requestid.Middleware(tp.Middleware(apiHandler))
//	lifecycle.Run(ctx, log, timeout, tp, admin, srv) // tp first: flushed last
package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/golden-stack/golden/observability/config"
)

// ScopeName is the instrumentation scope of the spans this package and its
// callers in golden create.
const ScopeName = "github.com/golden-stack/golden"

// maxExportBatchSize is the SDK's default batch; it is lowered for queues
// smaller than one batch.
const maxExportBatchSize = 512

// maxAttributeLength bounds each string attribute value, in characters.
const maxAttributeLength = 2048

// Provider is a service's tracer provider. It implements
// lifecycle.Component: Serve waits, Shutdown flushes the spans still queued,
// so a provider started before the servers is flushed after they drained.
type Provider struct {
	sdk        *sdktrace.TracerProvider
	exporter   sdktrace.SpanExporter // nil when export is off
	propagator propagation.TextMapPropagator
	log        logrus.FieldLogger

	stopOnce sync.Once
	stopped  chan struct{}
}

type options struct {
	version    string
	instanceID string
	exporter   sdktrace.SpanExporter
	log        logrus.FieldLogger
	reg        prometheus.Registerer
	attrs      []attribute.KeyValue
}

// Option configures a Provider.
type Option func(*options)

// WithServiceVersion sets service.version. The default is the main module's
// version from the build information, or "unknown".
func WithServiceVersion(v string) Option {
	return func(o *options) {
		if v != "" {
			o.version = v
		}
	}
}

// WithInstanceID sets service.instance.id, such as the ID the instance is
// registered under in service discovery. The default is a random UUID.
func WithInstanceID(id string) Option {
	return func(o *options) {
		if id != "" {
			o.instanceID = id
		}
	}
}

// WithAttributes adds attrs to the service's resource, so that every span
// carries them (the kit adds the instance's track as golden.track).
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(o *options) { o.attrs = append(o.attrs, attrs...) }
}

// WithExporter sends spans to e instead of OTLP, whatever Config.Endpoint
// says; spans still pass through the bounded batch queue. Tests use it with
// an in-memory exporter.
func WithExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) {
		if e != nil {
			o.exporter = e
		}
	}
}

// WithLogger logs export failures (Jaeger unreachable, spans dropped) to l
// at warning level. It sets OpenTelemetry's process-wide error handler,
// which otherwise writes to the standard library's log.
func WithLogger(l logrus.FieldLogger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithRegisterer registers the export pipeline's metrics on reg:
// golden_trace_spans_exported_total, golden_trace_spans_dropped_total by
// reason and golden_trace_spans_queued. Nothing is registered when export is
// off.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.reg = reg }
}

// New returns the tracer provider of the service named service, exporting
// as cfg says. It sets W3C trace context and baggage as the process-wide
// propagator. It does not connect to the endpoint: the first export does,
// off the request path.
func New(cfg Config, service string, opts ...Option) (*Provider, error) {
	var v config.Validator
	cfg.Validate(&v)
	if service == "" {
		return nil, errors.Join(v.Err(), errors.New("tracing: service name must be set"))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	o := options{version: buildVersion(), instanceID: uuid.NewString()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}

	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		append([]attribute.KeyValue{
			semconv.ServiceName(service),
			semconv.ServiceVersion(o.version),
			semconv.ServiceInstanceID(o.instanceID),
			semconv.DeploymentEnvironmentNameKey.String(cfg.Environment),
		}, o.attrs...)...,
	))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, as every other
	// OpenTelemetry service reads them, win over golden's own attributes.
	if env, err := resource.New(context.Background(), resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, env); err == nil {
			res = merged
		}
	}

	exporter := o.exporter
	if exporter == nil && (cfg.Endpoint != "" || otlpFromEnv()) {
		exporter, err = newOTLPExporter(cfg)
		if err != nil {
			return nil, err
		}
	}

	sdkOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithRawSpanLimits(spanLimits()),
	}
	// Without OTEL_TRACES_SAMPLER, which the SDK reads when given no
	// sampler: parent-based, so that a request that arrives sampled (or
	// not) keeps that decision and a trace is never cut into pieces; only
	// new traces are sampled at the ratio.
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		sdkOpts = append(sdkOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))))
	}
	if exporter != nil {
		// A full queue drops spans instead of blocking the request that
		// ended them; the account counts each one. The processor's own
		// queue has a slot more than the account admits, for ForceFlush's
		// marker.
		account := newExportAccount(cfg.QueueSize)
		if o.reg != nil {
			if err := account.register(o.reg); err != nil {
				return nil, fmt.Errorf("tracing: metrics: %w", err)
			}
		}
		batcher := sdktrace.NewBatchSpanProcessor(countingExporter{exporter, account},
			sdktrace.WithMaxQueueSize(cfg.QueueSize+1),
			sdktrace.WithMaxExportBatchSize(min(maxExportBatchSize, cfg.QueueSize)),
		)
		sdkOpts = append(sdkOpts, sdktrace.WithSpanProcessor(admittingProcessor{batcher, account}))
	}
	// With export off the provider has no processor: spans still get IDs
	// and sampling decisions that propagate downstream, and are discarded
	// when they end.

	if o.log != nil {
		l := o.log
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			l.WithError(err).Warn("tracing: OpenTelemetry error, spans may be lost")
		}))
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTextMapPropagator(prop)

	log := o.log
	if log == nil {
		log = logrus.StandardLogger()
	}
	return &Provider{
		sdk:        sdktrace.NewTracerProvider(sdkOpts...),
		exporter:   exporter,
		propagator: prop,
		log:        log,
		stopped:    make(chan struct{}),
	}, nil
}

// spanLimits returns the SDK's span limits (from the OTEL_*_LIMIT
// environment variables, else the defaults) with attribute values bounded.
// A zero or negative limit is replaced by the SDK's default, as the
// deprecated sdktrace.WithSpanLimits did: WithRawSpanLimits would take 0 as
// "record none" and a negative value as "unlimited".
func spanLimits() sdktrace.SpanLimits {
	limits := sdktrace.NewSpanLimits()
	// Attribute values can carry client input (paths, IDs, error
	// messages); a bound keeps one request from making a huge span.
	limits.AttributeValueLengthLimit = maxAttributeLength
	for _, l := range []struct {
		limit *int
		def   int
	}{
		{&limits.AttributeValueLengthLimit, sdktrace.DefaultAttributeValueLengthLimit},
		{&limits.AttributeValueDepthLimit, sdktrace.DefaultAttributeValueDepthLimit},
		{&limits.AttributeCountLimit, sdktrace.DefaultAttributeCountLimit},
		{&limits.EventCountLimit, sdktrace.DefaultEventCountLimit},
		{&limits.AttributePerEventCountLimit, sdktrace.DefaultAttributePerEventCountLimit},
		{&limits.LinkCountLimit, sdktrace.DefaultLinkCountLimit},
		{&limits.AttributePerLinkCountLimit, sdktrace.DefaultAttributePerLinkCountLimit},
	} {
		if *l.limit <= 0 {
			*l.limit = l.def
		}
	}
	return limits
}

func newOTLPExporter(cfg Config) (sdktrace.SpanExporter, error) {
	var opts []otlptracegrpc.Option
	// Without --otlp-endpoint the exporter takes OTEL_EXPORTER_OTLP_*
	// (endpoint, insecure, headers, ...) from the environment itself.
	if cfg.Endpoint != "" {
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
		}
	}
	// New only builds a lazy gRPC client; nothing is dialled here, so the
	// context is unused in practice.
	exp, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, config.SettingError("otlp-endpoint", err)
	}
	return exp, nil
}

// otlpFromEnv reports whether the standard variables name an OTLP endpoint.
func otlpFromEnv() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// buildVersion returns the main module's version, or "unknown" for builds
// that carry none.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "unknown"
}

// TracerProvider returns the provider to create tracers from, such as for
// user.NewTracedStore.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.sdk }

// Tracer returns a tracer of the golden instrumentation scope.
func (p *Provider) Tracer() trace.Tracer { return p.sdk.Tracer(ScopeName) }

// Propagator returns the propagator the provider's instrumentation uses:
// W3C trace context and baggage.
func (p *Provider) Propagator() propagation.TextMapPropagator { return p.propagator }

// Exporting reports whether spans are exported anywhere.
func (p *Provider) Exporting() bool { return p.exporter != nil }

// Name implements lifecycle.Component.
func (p *Provider) Name() string { return "tracing" }

// Serve implements lifecycle.Component: it waits until Shutdown, as the
// export work runs in the background already.
func (p *Provider) Serve() error {
	<-p.stopped
	return nil
}

// ForceFlush exports every span ended so far, waiting until ctx ends.
func (p *Provider) ForceFlush(ctx context.Context) error { return p.sdk.ForceFlush(ctx) }

// shutdownFlushLimit bounds the span flush at shutdown, so that a Jaeger
// that does not answer leaves the rest of the service's shutdown deadline
// to the parts stopped after the tracer (admin server, log flush).
const shutdownFlushLimit = 5 * time.Second

// Shutdown exports the spans still queued and stops the exporter. It
// returns when done or when ctx ends (at most shutdownFlushLimit), whichever is first; in the latter case
// (Jaeger unreachable, say) the export in flight is cancelled and the
// remaining spans are lost, which is logged as a warning, not returned:
// the state of the telemetry backend does not decide the service's exit
// status. Spans ended after Shutdown are dropped.
func (p *Provider) Shutdown(ctx context.Context) error {
	p.stopOnce.Do(func() { close(p.stopped) })
	ctx, cancel := context.WithTimeout(ctx, shutdownFlushLimit)
	defer cancel()
	err := p.sdk.Shutdown(ctx)
	if ctx.Err() != nil && p.exporter != nil {
		// The SDK returns at the deadline but leaves its export goroutine
		// retrying; shutting the exporter down with the expired context
		// cancels that export, so nothing outlives Shutdown for long.
		_ = p.exporter.Shutdown(ctx)
	}
	if err != nil {
		// Jaeger being down is not the service failing: a clean drain
		// still exits 0, and the loss is said here.
		p.log.WithError(err).Warn("tracing: spans not delivered at shutdown")
	}
	return nil
}
