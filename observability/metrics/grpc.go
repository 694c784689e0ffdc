package metrics

import (
	"context"
	"strings"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/golden-stack/golden/observability/security"
)

const (
	// callerLabel names the calling service on server-side metrics.
	callerLabel = "caller"
	// NoCaller is the caller label value of requests without a verified
	// client certificate, such as plain health probes.
	NoCaller = "none"
)

// Server is the gRPC server half of the golden signals: started, handled
// (by code) and latency of every RPC by method and caller,
// golden_in_flight_requests{server="grpc"}, and rate-limit rejections. Its
// interceptors are safe for concurrent use.
type Server struct {
	exemplars  exemplars
	metrics    *grpcprom.ServerMetrics
	opts       []grpcprom.Option
	inFlight   prometheus.Gauge
	rejections *prometheus.CounterVec
}

// NewServer registers the gRPC server metrics on reg. It fails when reg
// already holds them: create one Server per registry and share it between
// gRPC servers of one process.
func NewServer(reg prometheus.Registerer) (*Server, error) {
	ho := latencyOpts()
	sm := grpcprom.NewServerMetrics(
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramOpts(&ho)),
		grpcprom.WithContextLabels(callerLabel),
	)
	rej := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "golden_ratelimit_rejections_total",
		Help: "Total number of requests refused by the per-caller rate limiter, by caller identity.",
	}, []string{callerLabel})
	if err := registerAll(reg, "gRPC server metrics", sm, rej); err != nil {
		return nil, err
	}
	g, err := inFlight(reg, "grpc")
	if err != nil {
		reg.Unregister(sm)
		reg.Unregister(rej)
		return nil, err
	}
	s := &Server{metrics: sm, inFlight: g, rejections: rej}
	s.opts = []grpcprom.Option{
		grpcprom.WithExemplarFromContext(s.exemplars.grpcFromContext),
		grpcprom.WithLabelsFromContext(callerLabels),
	}
	return s, nil
}

// callerLabels returns the caller label of ctx's RPC: the identity of a
// verified client certificate, so that its values are bounded by the set of
// certificates the CA issued, or NoCaller. Metadata and anything else the
// client chooses freely are never used.
func callerLabels(ctx context.Context) prometheus.Labels {
	return prometheus.Labels{callerLabel: callerOf(ctx)}
}

func callerOf(ctx context.Context) string {
	id, ok := security.PeerIdentity(ctx)
	if !ok {
		return NoCaller
	}
	// Label values must be UTF-8, or the metric would panic.
	return strings.ToValidUTF8(id, "\uFFFD")
}

// UnaryServerInterceptor returns the interceptor that counts unary RPCs in
// flight and records their start, code and latency, with a trace_id
// exemplar when the context carries a sampled span.
//
// Put it as early in the chain as possible: it reads the caller from the TLS
// peer itself and needs nothing from other interceptors, and every
// interceptor after it has its refusals counted with their codes
// (authorization as PermissionDenied or Unauthenticated, the rate limiter as
// ResourceExhausted). A panic that passes through it unrecovered is counted
// in flight and started but not handled, so panic recovery belongs after it.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	prom := s.metrics.UnaryServerInterceptor(s.opts...)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		s.inFlight.Inc()
		defer s.inFlight.Dec()
		return prom(ctx, req, info, handler)
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor; a
// stream is in flight until its handler returns, and its messages are
// counted in grpc_server_msg_received_total and grpc_server_msg_sent_total.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor {
	prom := s.metrics.StreamServerInterceptor(s.opts...)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		s.inFlight.Inc()
		defer s.inFlight.Dec()
		return prom(srv, ss, info, handler)
	}
}

// InitializeMetrics creates, at zero, the series of every method registered
// on srv, so that rates and error ratios read 0 rather than nothing before
// the first call. Call it after registering the services and before Serve.
//
// It is go-grpc-middleware's ServerMetrics.InitializeMetrics: per method it
// creates grpc_server_started_total, grpc_server_handling_seconds and one
// grpc_server_handled_total series for each of the 17 gRPC codes, all with
// caller="" (which Prometheus stores as no caller label), so they add 0 to
// any sum over callers without inventing a caller. That is 21 series per
// method, plus the classic buckets of its histogram.
func (s *Server) InitializeMetrics(srv *grpc.Server) {
	s.metrics.InitializeMetrics(srv)
}

// RateLimitRejected counts one request refused by the rate limiter in
// golden_ratelimit_rejections_total{caller}. It fits
// ratelimit.WithRejectHook, whose key must be the caller identity (a value
// from a bounded set, such as a verified certificate's identity); an empty
// caller counts as NoCaller.
func (s *Server) RateLimitRejected(caller string) {
	if caller == "" {
		caller = NoCaller
	}
	s.rejections.WithLabelValues(strings.ToValidUTF8(caller, "\uFFFD")).Inc()
}

// Client is the gRPC client half of the golden signals: started, handled (by
// code) and latency of every outgoing RPC by method. Its interceptors are
// safe for concurrent use.
type Client struct {
	exemplars exemplars
	metrics   *grpcprom.ClientMetrics
	opts      []grpcprom.Option
}

// NewClient registers the gRPC client metrics on reg. It fails when reg
// already holds them: create one Client per registry and share it between
// the client connections of one process.
func NewClient(reg prometheus.Registerer) (*Client, error) {
	ho := latencyOpts()
	cm := grpcprom.NewClientMetrics(
		grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramOpts(&ho)),
	)
	if err := registerAll(reg, "gRPC client metrics", cm); err != nil {
		return nil, err
	}
	c := &Client{metrics: cm}
	c.opts = []grpcprom.Option{grpcprom.WithExemplarFromContext(c.exemplars.grpcFromContext)}
	return c, nil
}

// UnaryClientInterceptor returns the interceptor that records the start,
// code and latency of outgoing unary RPCs, with a trace_id exemplar when the
// context carries a sampled span.
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return c.metrics.UnaryClientInterceptor(c.opts...)
}

// StreamClientInterceptor is the streaming twin of UnaryClientInterceptor.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return c.metrics.StreamClientInterceptor(c.opts...)
}
