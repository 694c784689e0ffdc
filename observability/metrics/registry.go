package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// RPCBuckets are the classic histogram buckets, in seconds, of every latency
// histogram in this package. 0.3 is a bucket of its own so that a 300ms
// latency SLO can be computed from buckets exactly.
var RPCBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10}

// Native histogram settings: 1.1 gives buckets about 10% wide; at most 100
// buckets are kept per series, and a series whose buckets were widened to
// stay within that bound is reset to full resolution at most once an hour.
const (
	nativeBucketFactor    = 1.1
	nativeMaxBucketNumber = 100
	nativeMinReset        = time.Hour
)

// unknown is the label value of build information that is not available.
const unknown = "unknown"

// latencyOpts returns the bucket settings shared by every latency histogram:
// classic RPCBuckets and a native histogram. Name and Help are left to the
// caller.
func latencyOpts() prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		// A copy, so that the histogram never shares the exported slice.
		Buckets:                         slices.Clone(RPCBuckets),
		NativeHistogramBucketFactor:     nativeBucketFactor,
		NativeHistogramMaxBucketNumber:  nativeMaxBucketNumber,
		NativeHistogramMinResetDuration: nativeMinReset,
	}
}

// exemplarInterval is the least time between two exemplars of one set of
// metrics (a Server, Client or HTTP). A scrape sees only the latest
// exemplar of a series (a few for a native histogram), so one per request
// bought nothing at high rates but an allocation and a timestamp per
// series per call; below 1/exemplarInterval requests/s every request still
// gets one.
const exemplarInterval = 10 * time.Millisecond

// exemplars hands out trace_id exemplars, at most one per exemplarInterval.
// The zero value is ready to use.
type exemplars struct {
	next atomic.Int64 // Unix nanoseconds from which the next one may go
}

// fromContext returns the trace_id exemplar of ctx's span context, or nil
// when ctx has none or it is not sampled (an exemplar must point at a trace
// that the tracing backend keeps) or when the last one was given less than
// exemplarInterval ago, unless always is set.
func (e *exemplars) fromContext(ctx context.Context, always bool) prometheus.Labels {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	now := time.Now().UnixNano()
	next := e.next.Load()
	if !always && (now < next || !e.next.CompareAndSwap(next, now+int64(exemplarInterval))) {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}

// grpcFromContext is fromContext for go-grpc-middleware's reporters, which
// ask before the call's code is known.
func (e *exemplars) grpcFromContext(ctx context.Context) prometheus.Labels {
	return e.fromContext(ctx, false)
}

// BuildInfo names the running binary in golden_build_info. Empty Version and
// Revision are filled from runtime/debug.ReadBuildInfo (the main module's
// version and the vcs.revision setting); whatever is still empty is reported
// as "unknown".
type BuildInfo struct {
	// Service is the service name, such as "user" or "gateway".
	Service string
	// Version overrides the main module version, for release builds that
	// set it with -ldflags.
	Version string
	// Revision overrides the VCS revision recorded by the Go toolchain.
	Revision string
}

// Resolve returns b with its empty fields filled from the running binary's
// build information, as golden_build_info reports them.
func (b BuildInfo) Resolve() BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return b.resolve(bi)
}

// resolve fills the empty fields of b from bi (nil when the binary carries
// no build information) and "unknown".
func (b BuildInfo) resolve(bi *debug.BuildInfo) BuildInfo {
	if bi != nil {
		if b.Version == "" {
			// "(devel)" is kept: it says the binary was built from a
			// working tree, which is worth knowing.
			b.Version = bi.Main.Version
		}
		if b.Revision == "" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					b.Revision = s.Value
				}
			}
		}
	}
	for _, f := range []*string{&b.Service, &b.Version, &b.Revision} {
		// Label values must be UTF-8; a bad byte must not stop the
		// registry from being built.
		*f = strings.ToValidUTF8(*f, "\uFFFD")
		if *f == "" {
			*f = unknown
		}
	}
	return b
}

// NewRegistry returns a registry holding the Go runtime collector, the
// process collector and golden_build_info for b. Register the Server, Client
// and HTTP metrics of the process on it and serve it with Handler.
func NewRegistry(b BuildInfo) *prometheus.Registry {
	b = b.Resolve()
	reg := prometheus.NewRegistry()
	// A fresh registry and fixed, distinct collectors: these cannot fail.
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(b),
	)
	return reg
}

// newBuildInfo returns the golden_build_info gauge, set to 1 so that its
// labels can be joined onto other series.
func newBuildInfo(b BuildInfo) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "golden_build_info",
		Help: "A metric with a constant '1' value labeled by the service name, version and VCS revision of the binary and the Go version that built it.",
		ConstLabels: prometheus.Labels{
			"service":   b.Service,
			"version":   b.Version,
			"revision":  b.Revision,
			"goversion": runtime.Version(),
		},
	})
	g.Set(1)
	return g
}

// Handler serves the metrics of reg in the format the scraper asks for,
// OpenMetrics included so that exemplars reach Prometheus (which keeps them
// with --enable-feature=exemplar-storage). It also counts its own scrapes in
// promhttp_metric_handler_requests_total,
// promhttp_metric_handler_requests_in_flight and
// promhttp_metric_handler_errors_total on reg. A collector that fails is
// left out of the scrape and counted as an error, rather than failing the
// whole scrape.
//
// Handler may be called more than once for one registry; it panics only if
// reg already holds other collectors under the promhttp_* names.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
}

// inFlightName is the saturation gauge shared by the gRPC server and the
// HTTP middleware.
const inFlightName = "golden_in_flight_requests"

// inFlight returns the golden_in_flight_requests gauge of server on reg,
// registering the gauge vector on first use and reusing it afterwards, so
// that a Server and an HTTP on one registry share it.
func inFlight(reg prometheus.Registerer, server string) (prometheus.Gauge, error) {
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: inFlightName,
		Help: "Number of requests being served, by server (grpc or http): the saturation signal.",
	}, []string{"server"})
	if err := reg.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("metrics: registering %s: %w", inFlightName, err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.GaugeVec)
		if !ok {
			return nil, fmt.Errorf("metrics: registering %s: the registry holds a collector of another type under that name", inFlightName)
		}
		vec = existing
	}
	// Created now, so the series reads 0 before the first request.
	return vec.WithLabelValues(server), nil
}

// registerAll registers cs on reg in order. On failure it unregisters those
// it registered, so that a failed constructor leaves reg as it was. The
// error names what, and says so plainly when it is registered a second time.
func registerAll(reg prometheus.Registerer, what string, cs ...prometheus.Collector) error {
	if reg == nil {
		return fmt.Errorf("metrics: %s: nil prometheus.Registerer", what)
	}
	for i, c := range cs {
		err := reg.Register(c)
		if err == nil {
			continue
		}
		for _, done := range cs[:i] {
			reg.Unregister(done)
		}
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return fmt.Errorf("metrics: %s are already registered on this registry (register them once per registry and share the value): %w", what, err)
		}
		return fmt.Errorf("metrics: registering %s: %w", what, err)
	}
	return nil
}
