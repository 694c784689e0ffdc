package metrics

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

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
//
// Its series are those of go-grpc-middleware's prometheus provider, with the
// caller label, and its interceptors are go-grpc-middleware's
// interceptors.UnaryServerInterceptor and StreamServerInterceptor reporting
// to it. Unlike the provider, it resolves the series of a method and caller
// once and keeps them: the provider looked up five series by their label
// values on every call. In BenchmarkUnaryServerInterceptor that was 2.3 µs,
// 11 allocations and 1 KB per call; it is 0.4 µs and one allocation.
type Server struct {
	exemplars  exemplars
	started    *prometheus.CounterVec
	handled    *prometheus.CounterVec
	received   *prometheus.CounterVec
	sent       *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	inFlight   prometheus.Gauge
	rejections *prometheus.CounterVec

	mu     sync.RWMutex
	series map[seriesKey]*serverSeries
}

// seriesKey names the series of one method and caller.
type seriesKey struct {
	typ                     interceptors.GRPCType
	service, method, caller string
}

// serverSeries are the series of one method and caller. Handled counters
// are resolved per code on first use, so that a caller's series exist only
// for the codes it got, as with the provider.
type serverSeries struct {
	key                     seriesKey
	started, received, sent prometheus.Counter
	latency                 prometheus.Observer
	handled                 [numCodes]atomic.Pointer[prometheus.Counter]
}

// numCodes is the number of gRPC codes, OK to Unauthenticated.
const numCodes = int(codes.Unauthenticated) + 1

// NewServer registers the gRPC server metrics on reg. It fails when reg
// already holds them: create one Server per registry and share it between
// gRPC servers of one process.
func NewServer(reg prometheus.Registerer) (*Server, error) {
	labels := []string{"grpc_type", "grpc_service", "grpc_method", callerLabel}
	withCode := []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code", callerLabel}
	ho := latencyOpts()
	ho.Name = "grpc_server_handling_seconds"
	ho.Help = "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	s := &Server{
		started:  counter("grpc_server_started_total", "Total number of RPCs started on the server.", labels),
		handled:  counter("grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.", withCode),
		received: counter("grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", labels),
		sent:     counter("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", labels),
		latency:  prometheus.NewHistogramVec(ho, labels),
		rejections: counter("golden_ratelimit_rejections_total",
			"Total number of requests refused by the per-caller rate limiter, by caller identity.", []string{callerLabel}),
		series: make(map[seriesKey]*serverSeries),
	}
	cs := []prometheus.Collector{s.started, s.handled, s.received, s.sent, s.latency, s.rejections}
	if err := registerAll(reg, "gRPC server metrics", cs...); err != nil {
		return nil, err
	}
	g, err := inFlight(reg, "grpc")
	if err != nil {
		for _, c := range cs {
			reg.Unregister(c)
		}
		return nil, err
	}
	s.inFlight = g
	return s, nil
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
	report := interceptors.UnaryServerInterceptor(reportable{s})
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		s.inFlight.Inc()
		defer s.inFlight.Dec()
		return report(ctx, req, info, handler)
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor; a
// stream is in flight until its handler returns, and its messages are
// counted in grpc_server_msg_received_total and grpc_server_msg_sent_total.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor {
	report := interceptors.StreamServerInterceptor(reportable{s})
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		s.inFlight.Inc()
		defer s.inFlight.Dec()
		return report(srv, ss, info, handler)
	}
}

// reportable is a Server as go-grpc-middleware's interceptors report to it.
type reportable struct{ s *Server }

// ServerReporter counts the RPC as started and returns the reporter of its
// method and caller. The caller is the identity of a verified client
// certificate, so that its values are bounded by the set of certificates
// the CA issued, or NoCaller; metadata and anything else the client chooses
// freely are never used.
func (rep reportable) ServerReporter(ctx context.Context, meta interceptors.CallMeta) (interceptors.Reporter, context.Context) {
	s := rep.s
	r := &serverReporter{
		server:   s,
		series:   s.seriesOf(seriesKey{typ: meta.Typ, service: meta.Service, method: meta.Method, caller: callerOf(ctx)}),
		exemplar: s.exemplars.grpcFromContext(ctx),
	}
	add(r.series.started, r.exemplar)
	return r, ctx
}

// seriesOf returns the series of k, resolving them on first use.
func (s *Server) seriesOf(k seriesKey) *serverSeries {
	s.mu.RLock()
	ss := s.series[k]
	s.mu.RUnlock()
	if ss != nil {
		return ss
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss = s.series[k]; ss == nil {
		lv := []string{string(k.typ), k.service, k.method, k.caller}
		ss = &serverSeries{
			key:      k,
			started:  s.started.WithLabelValues(lv...),
			received: s.received.WithLabelValues(lv...),
			sent:     s.sent.WithLabelValues(lv...),
			latency:  s.latency.WithLabelValues(lv...),
		}
		s.series[k] = ss
	}
	return ss
}

// handledCounter returns the handled counter of code c.
func (s *Server) handledCounter(ss *serverSeries, c codes.Code) prometheus.Counter {
	k := ss.key
	if int(c) >= numCodes {
		return s.handled.WithLabelValues(string(k.typ), k.service, k.method, c.String(), k.caller)
	}
	if p := ss.handled[c].Load(); p != nil {
		return *p
	}
	counter := s.handled.WithLabelValues(string(k.typ), k.service, k.method, c.String(), k.caller)
	ss.handled[c].Store(&counter)
	return counter
}

// serverReporter reports one RPC to the series of its method and caller,
// each with the RPC's exemplar (nil for most calls).
type serverReporter struct {
	server   *Server
	series   *serverSeries
	exemplar prometheus.Labels
}

// PostCall counts the RPC as handled with its code and records its latency.
func (r *serverReporter) PostCall(err error, d time.Duration) {
	add(r.server.handledCounter(r.series, grpcprom.FromError(err).Code()), r.exemplar)
	if r.exemplar == nil {
		r.series.latency.Observe(d.Seconds())
		return
	}
	r.series.latency.(prometheus.ExemplarObserver).ObserveWithExemplar(d.Seconds(), r.exemplar)
}

// PostMsgSend counts a message sent, unless sending it failed.
func (r *serverReporter) PostMsgSend(_ any, err error, _ time.Duration) {
	if err == nil {
		add(r.series.sent, r.exemplar)
	}
}

// PostMsgReceive counts a message received, unless receiving failed.
func (r *serverReporter) PostMsgReceive(_ any, err error, _ time.Duration) {
	if err == nil {
		add(r.series.received, r.exemplar)
	}
}

// add adds 1 to c, with the exemplar e when there is one.
func add(c prometheus.Counter, e prometheus.Labels) {
	if e == nil {
		c.Inc()
		return
	}
	c.(prometheus.ExemplarAdder).AddWithExemplar(1, e)
}

// InitializeMetrics creates, at zero, the series of every method registered
// on srv, so that rates and error ratios read 0 rather than nothing before
// the first call. Call it after registering the services and before Serve.
//
// It does what go-grpc-middleware's ServerMetrics.InitializeMetrics does:
// per method it creates grpc_server_started_total,
// grpc_server_handling_seconds and one grpc_server_handled_total series for
// each of the 17 gRPC codes, all with caller="" (which Prometheus stores as
// no caller label), so they add 0 to any sum over callers without inventing
// a caller. That is 21 series per method, plus the classic buckets of its
// histogram.
func (s *Server) InitializeMetrics(srv *grpc.Server) {
	for service, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			typ := methodType(m)
			lv := []string{string(typ), service, m.Name, ""}
			s.started.WithLabelValues(lv...)
			s.received.WithLabelValues(lv...)
			s.sent.WithLabelValues(lv...)
			s.latency.WithLabelValues(lv...)
			for _, c := range interceptors.AllCodes {
				s.handled.WithLabelValues(string(typ), service, m.Name, c.String(), "")
			}
		}
	}
}

// methodType is the grpc_type label of m.
func methodType(m grpc.MethodInfo) interceptors.GRPCType {
	switch {
	case m.IsClientStream && m.IsServerStream:
		return interceptors.BidiStream
	case m.IsClientStream:
		return interceptors.ClientStream
	case m.IsServerStream:
		return interceptors.ServerStream
	}
	return interceptors.Unary
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
