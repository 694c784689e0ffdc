// Package grpcserver builds the gRPC server every golden service runs:
// mutual TLS, keepalive limits, the standard grpc.health.v1 service, and
// optionally channelz and grpc-go's request tracing. It also provides the
// pieces of an interceptor chain that only the server knows: the panic
// handler and matchers that exempt the server's own services (health,
// channelz) from interceptors through go-grpc-middleware's selector.
//
// The chain itself is the service's to write, in request order; see
// services/user/service.go for the canonical one.
package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/trace"
	"google.golang.org/grpc"
	channelz "google.golang.org/grpc/channelz/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
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
	debug bool
	extra []grpc.ServerOption
	log   logrus.FieldLogger
}

// Option configures a Server.
type Option func(*options)

// WithServerOptions adds grpc.ServerOptions: the stats handler and the
// interceptor chain (grpc.ChainUnaryInterceptor, grpc.ChainStreamInterceptor).
// Nil ones are skipped.
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) {
		for _, so := range opts {
			if so != nil {
				o.extra = append(o.extra, so)
			}
		}
	}
}

// WithDebugPages traces every call on the admin port's /debug/requests page
// (golang.org/x/net/trace: method, request ID, caller, status, duration)
// and registers the channelz service so that tools like grpcdebug can
// inspect channels and sockets. Channelz is an ordinary method on this mTLS
// port: the authorization policy decides who may call it
// ("grpc.channelz.v1.Channelz/*").
//
// Messages are never shown: grpc-go's own tracing (grpc.EnableTracing)
// prints each request and response in full, passwords and tokens included,
// and protobuf-go's text format does not honour the debug_redact option the
// contracts set on those fields.
func WithDebugPages() Option { return func(o *options) { o.debug = true } }

// traceUnary and traceStream record each call on /debug/requests without
// its messages.
func traceUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	tr := newTrace(ctx, info.FullMethod)
	resp, err := handler(ctx, req)
	finishTrace(tr, err)
	return resp, err
}

func traceStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	tr := newTrace(ss.Context(), info.FullMethod)
	err := handler(srv, ss)
	finishTrace(tr, err)
	return err
}

func newTrace(ctx context.Context, fullMethod string) trace.Trace {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	tr := trace.New("grpc.Server."+service, method)
	caller := "none"
	if p, ok := peer.FromContext(ctx); ok {
		caller = p.Addr.String()
	}
	tr.LazyPrintf("request_id=%s peer=%s", requestid.FromContext(ctx), caller)
	return tr
}

func finishTrace(tr trace.Trace, err error) {
	if err != nil {
		tr.LazyPrintf("%s", status.Code(err))
		tr.SetError()
	}
	tr.Finish()
}

// WithLogger sets the logger for lifecycle events; nil keeps logrus's
// standard logger.
func WithLogger(l logrus.FieldLogger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// Names of the services the server itself registers, for AllBut.
const (
	HealthService   = "grpc.health.v1.Health"
	ChannelzService = "grpc.channelz.v1.Channelz"
)

// AllBut returns a selector.Matcher that matches every call except those to
// the named services ("grpc.health.v1.Health") or full methods
// ("/golden.user.v1.UserService/CreateUser"). Wrap an interceptor with
// selector.UnaryServerInterceptor(i, AllBut(...)) to exempt those calls
// from it: one mechanism for every exemption of the chain.
func AllBut(names ...string) selector.Matcher {
	type method struct{ service, name string }
	services, methods := map[string]bool{}, map[method]bool{}
	for _, n := range names {
		if svc, m, ok := strings.Cut(strings.TrimPrefix(n, "/"), "/"); ok {
			methods[method{svc, m}] = true
		} else {
			services[n] = true
		}
	}
	// Looked up by parts: CallMeta.FullMethod would allocate on every call.
	return selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return !services[c.Service] && !methods[method{c.Service, c.Method}]
	})
}

// RecoveryHandler is the panic handler of go-grpc-middleware's recovery
// interceptor: it logs the panic with its stack and the request ID, and
// answers codes.Internal without details.
func RecoveryHandler(log logrus.FieldLogger) recovery.Option {
	return recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.WithField("request_id", requestid.FromContext(ctx)).
			WithField("panic", fmt.Sprint(p)).
			WithField("stack", string(debug.Stack())).
			Error("recovered from panic in RPC handler")
		return status.Error(codes.Internal, "internal error")
	})
}

// Listen binds addr and builds the server. Binding here rather than in Serve
// reports a taken port at start and lets tests listen on port 0.
func Listen(addr string, tlsConf *tls.Config, opts ...Option) (*Server, error) {
	o := options{log: logrus.StandardLogger()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srvOpts := append([]grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(tlsConf)),
		// Clients may ping idle connections, but not flood the server.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Old connections are recycled so that round-robin clients spread
		// over instances that joined after they connected.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: 30 * time.Second}),
	}, o.extra...)

	if o.debug {
		srvOpts = append(srvOpts, grpc.ChainUnaryInterceptor(traceUnary), grpc.ChainStreamInterceptor(traceStream))
	}
	s := &Server{
		grpc:   grpc.NewServer(srvOpts...),
		health: health.NewServer(),
		lis:    lis,
		log:    o.log,
	}
	// NOT_SERVING until Serve: a probe during start-up must not pass.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if o.debug {
		channelz.RegisterChannelzServiceToServer(s.grpc)
	}
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
	if err := s.grpc.Serve(s.lis); !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	// Shutdown came first (SIGTERM during start-up): a clean stop too.
	return nil
}

// SetNotServing reports NOT_SERVING for every service from now on, so health
// checks take the instance out of rotation before it stops accepting. It is
// the first step of Shutdown, and may be called earlier.
func (s *Server) SetNotServing() { s.health.Shutdown() }

// Shutdown reports NOT_SERVING, so health checks take the instance out of
// rotation, then stops accepting and waits for in-flight RPCs; RPCs still
// running when ctx ends are cancelled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetNotServing()
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
