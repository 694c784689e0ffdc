package fault

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/golden-stack/golden/observability/backoff"
)

// MessagePrefix starts the status message of every injected failure, so
// that access logs and clients can tell it from a real one.
const MessagePrefix = "injected fault: "

// Kinds of fault, the kind label of the metrics and fault.kind on spans and
// log entries.
const (
	KindError   = "error"
	KindLatency = "latency"
)

// Span attribute keys of injected faults.
const (
	AttrInjected = attribute.Key("fault.injected")
	AttrKind     = attribute.Key("fault.kind")
	AttrCode     = attribute.Key("fault.code")
	AttrDelayMS  = attribute.Key("fault.latency_ms")
)

// EventInjected is the span event added per injection.
const EventInjected = "fault injected"

// exempt lists the method prefixes no fault applies to: gRPC's own
// services, so that health checks and debugging work while a service is
// broken on purpose.
var exempt = []string{
	"/grpc.health.v1.Health/",
	"/grpc.channelz.v1.Channelz/",
	"/grpc.reflection.",
}

// UnaryServerInterceptor injects the faults in force for each call's
// method: a delay first, if drawn, then an error, if drawn, instead of the
// handler. Put it right after the observers (metrics, access log, tracing)
// so that they see injected faults as the caller does.
func (w *Watcher) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	if !w.Enabled() {
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(ctx, req)
		}
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := w.inject(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor:
// the fault hits the stream before the handler sees it.
func (w *Watcher) StreamServerInterceptor() grpc.StreamServerInterceptor {
	if !w.Enabled() {
		return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return handler(srv, ss)
		}
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := w.inject(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// ruleFor returns the fault in force for fullMethod: its own key's, else
// the service's AllMethods one; nil when none applies.
func (w *Watcher) ruleFor(fullMethod string) (r *rule, method string) {
	set := w.rules.Load()
	if set == nil || len(*set) == 0 {
		return nil, ""
	}
	for _, p := range exempt {
		if strings.HasPrefix(fullMethod, p) {
			return nil, ""
		}
	}
	method = fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	now := w.now()
	if r = (*set)[method]; r != nil && r.active(now) {
		return r, method
	}
	if r = (*set)[AllMethods]; r != nil && r.active(now) {
		return r, method
	}
	return nil, ""
}

// inject applies fullMethod's fault to the call with ctx and returns the
// error the call must end with, or nil to go on.
func (w *Watcher) inject(ctx context.Context, fullMethod string) error {
	r, method := w.ruleFor(fullMethod)
	if r == nil {
		return nil
	}
	span := trace.SpanFromContext(ctx)
	if r.latencyRate > 0 && w.rand() < r.latencyRate {
		d := r.delay(w.rand())
		code := codes.OK
		if !backoff.Sleep(ctx, d) {
			code = status.FromContextError(ctx.Err()).Code()
		}
		w.count(ctx, method, KindLatency, code)
		mark(span, KindLatency, code, AttrDelayMS.Float64(ms(d)))
		e := w.log.WithFields(logrus.Fields{
			"fault.injected": true, "fault.kind": KindLatency, "fault.latency_ms": ms(d), "fault.method": r.method,
		}).WithContext(ctx)
		if code != codes.OK {
			e.WithField("fault.code", code.String()).Warn("injected latency outlasted the call")
			return status.Errorf(code, MessagePrefix+"the call ended during %s of injected latency: %v", d, ctx.Err())
		}
		e.Debug("injected latency")
	}
	if r.errorRate > 0 && w.rand() < r.errorRate {
		w.count(ctx, method, KindError, r.code)
		mark(span, KindError, r.code)
		w.log.WithFields(logrus.Fields{
			"fault.injected": true, "fault.kind": KindError, "fault.code": r.code.String(), "fault.method": r.method,
		}).WithContext(ctx).Warn("injected an error")
		return status.Errorf(r.code, MessagePrefix+"%s on %s/%s (error rate %v)", r.code, w.service, r.method, r.errorRate)
	}
	return nil
}

// count adds one injection, with a trace_id exemplar when the call's span
// is sampled.
func (w *Watcher) count(ctx context.Context, method, kind string, code codes.Code) {
	c := w.injected.WithLabelValues(w.service, method, kind, code.String())
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsSampled() {
		if ea, ok := c.(prometheus.ExemplarAdder); ok {
			ea.AddWithExemplar(1, prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	c.Inc()
}

// mark says on span that a fault was injected. An error decides the call's
// outcome, so fault.kind says "error" once one was injected.
func mark(span trace.Span, kind string, code codes.Code, extra ...attribute.KeyValue) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(AttrInjected.Bool(true), AttrKind.String(kind))
	attrs := append([]attribute.KeyValue{AttrKind.String(kind), AttrCode.String(code.String())}, extra...)
	span.AddEvent(EventInjected, trace.WithAttributes(attrs...))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
