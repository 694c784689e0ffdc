package tracing

import (
	"context"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/golden-stack/golden/observability/requestid"
)

// RequestIDKey is the span attribute that carries the request ID, the same
// name logs use, so a span and its log lines are found by one value.
const RequestIDKey = attribute.Key("request_id")

// TrackKey is the resource attribute of the instance's release track
// (stable or canary), on every span it exports.
const TrackKey = attribute.Key("golden.track")

// ServerOption returns the grpc.ServerOption that gives every incoming RPC
// a server span, continuing the caller's trace from the traceparent
// metadata. Server-fault codes (Internal, Unavailable, ...) set the span
// status to Error; client faults such as NotFound do not.
func (p *Provider) ServerOption() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(p.sdk),
		otelgrpc.WithPropagators(p.propagator),
	))
}

// DialOption returns the grpc.DialOption that gives every outgoing RPC a
// client span and sends its trace context in the call's metadata.
func (p *Provider) DialOption() grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(p.sdk),
		otelgrpc.WithPropagators(p.propagator),
	))
}

// UnaryServerInterceptor sets the request ID as the "request_id" attribute
// of the RPC's server span. It must run after requestid's interceptor, as
// it does in the services' chains; the span
// itself comes from ServerOption, which starts it before any interceptor.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		tagRequestID(ctx)
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		tagRequestID(ss.Context())
		return handler(srv, ss)
	}
}

// tagRequestID puts the context's request ID on the context's span; it
// costs nothing when either is missing or the span is not recorded.
func tagRequestID(ctx context.Context) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if id := requestid.FromContext(ctx); id != "" {
		span.SetAttributes(RequestIDKey.String(id))
	}
}
