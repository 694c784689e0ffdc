// Package grpcserver builds the gRPC server every golden service runs: mutual
// TLS, the standard grpc.health.v1 service, and an interceptor chain that
// always starts with panic recovery and the request ID, so that every later
// interceptor and handler can rely on both.
package grpcserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/golden-stack/golden/observability/requestid"
)

// Server is a gRPC server bound to its listener, with its health service.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	lis    net.Listener
	log    logrus.FieldLogger
}

type options struct {
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
	extra  []grpc.ServerOption
	log    logrus.FieldLogger
}

// Option configures a Server.
type Option func(*options)

// WithUnaryInterceptors appends interceptors after recovery and request ID,
// in the order given: the first one given sees the request first.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) { o.unary = append(o.unary, i...) }
}

// WithStreamInterceptors is the streaming twin of WithUnaryInterceptors.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.stream = append(o.stream, i...) }
}

// WithServerOptions adds raw grpc.ServerOptions, such as stats handlers.
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

// WithLogger sets the logger for panics and lifecycle events.
func WithLogger(l logrus.FieldLogger) Option { return func(o *options) { o.log = l } }

// Listen binds addr and builds the server. Binding here rather than in Serve
// reports a taken port at start and lets tests listen on port 0.
func Listen(addr string, tlsConf *tls.Config, opts ...Option) (*Server, error) {
	o := options{log: logrus.StandardLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	onPanic := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		o.log.WithField("request_id", requestid.FromContext(ctx)).
			WithField("panic", fmt.Sprint(p)).
			WithField("stack", string(debug.Stack())).
			Error("recovered from panic in RPC handler")
		return status.Error(codes.Internal, "internal error")
	})
	unary := append([]grpc.UnaryServerInterceptor{
		recovery.UnaryServerInterceptor(onPanic),
		requestid.UnaryServerInterceptor(),
	}, o.unary...)
	stream := append([]grpc.StreamServerInterceptor{
		recovery.StreamServerInterceptor(onPanic),
		requestid.StreamServerInterceptor(),
	}, o.stream...)

	srvOpts := append([]grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Clients may ping idle connections, but not flood the server.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Old connections are recycled so that round-robin clients spread
		// over instances that joined after they connected.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: 30 * time.Second}),
	}, o.extra...)

	s := &Server{
		grpc:   grpc.NewServer(srvOpts...),
		health: health.NewServer(),
		lis:    lis,
		log:    o.log,
	}
	// NOT_SERVING until Serve: a probe during start-up must not pass.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	return s, nil
}

// GRPC returns the underlying server, for registering services.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Serving reports whether the server reports SERVING in its health service.
func (s *Server) Serving() bool {
	resp, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// Name implements lifecycle.Component.
func (s *Server) Name() string { return "grpc" }

// Serve marks every registered service SERVING and serves until Shutdown.
func (s *Server) Serve() error {
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.log.WithField("addr", s.lis.Addr().String()).Info("gRPC server listening")
	return s.grpc.Serve(s.lis)
}

// Shutdown reports NOT_SERVING, so health checks take the instance out of
// rotation, then stops accepting and waits for in-flight RPCs; RPCs still
// running when ctx ends are cancelled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return fmt.Errorf("in-flight RPCs cancelled: %w", ctx.Err())
	}
}

// Close releases the listener of a server that will not serve, such as one
// whose service failed to start.
func (s *Server) Close() {
	s.grpc.Stop()
	_ = s.lis.Close()
}
