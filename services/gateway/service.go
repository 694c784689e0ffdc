package gateway

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/discovery"
	"github.com/golden-stack/golden/observability/grpcclient"
	"github.com/golden-stack/golden/observability/lifecycle"
	"github.com/golden-stack/golden/observability/metrics"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/service"
)

// Config is the gateway's configuration.
type Config struct {
	service.Settings
	HTTPAddr     string
	AuthAddr     string
	UserAddr     string
	CallTimeout  time.Duration
	MaxBodyBytes int64
	// CanaryHeader makes the gateway honour the X-Canary header, with
	// which a client picks its track.
	CanaryHeader bool
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		Settings:     service.Defaults("gateway", ":9100"),
		HTTPAddr:     ":8080",
		AuthAddr:     "localhost:9001",
		UserAddr:     "localhost:9002",
		CallTimeout:  5 * time.Second,
		MaxBodyBytes: 1 << 20,
		CanaryHeader: true,
	}
}

// RegisterFlags adds every setting to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	c.Settings.RegisterFlags(fs)
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP/JSON API listen address")
	fs.StringVar(&c.AuthAddr, "auth-addr", c.AuthAddr, "auth service address (gRPC target)")
	fs.StringVar(&c.UserAddr, "user-addr", c.UserAddr, "user service address (gRPC target)")
	fs.DurationVar(&c.CallTimeout, "call-timeout", c.CallTimeout, "deadline of each downstream gRPC call")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest accepted request body in bytes")
	fs.BoolVar(&c.CanaryHeader, "canary-header", c.CanaryHeader, `honour the X-Canary request header ("always": every canary, "never": stable), for testers; off, only the weights in Consul route to canaries`)
}

// Validate checks every setting and names each bad one.
func (c *Config) Validate() error {
	var v config.Validator
	c.Settings.Validate(&v)
	v.Addr("http-addr", c.HTTPAddr)
	v.Check(c.AuthAddr != "", "auth-addr", "must be set")
	v.Check(c.UserAddr != "", "user-addr", "must be set")
	v.Positive("call-timeout", c.CallTimeout)
	v.Check(c.MaxBodyBytes >= 1024, "max-body-bytes", "must be at least 1024, got %d", c.MaxBodyBytes)
	return v.Err()
}

// Service is a running gateway process.
type Service struct {
	kit     *service.Kit
	http    *lifecycle.HTTPServer
	weights *canary.Weights
	conns   []*grpc.ClientConn
}

// New validates cfg, binds the gateway's ports and wires the request path:
// request ID -> span -> metrics by route -> access log -> panic recovery ->
// route -> strict JSON decoding -> gRPC call with a deadline over mTLS to
// auth or user (found through Consul, or at static addresses) -> gRPC status
// mapped to an HTTP status. Each call goes to the stable or the canary
// track of the service it calls, as the X-Canary header or the weights in
// Consul decide.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kit, err := service.Start(cfg.Settings)
	if err != nil {
		return nil, err
	}
	s := &Service{kit: kit}
	if err := s.start(cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// start builds what New builds after the kit; on error, close releases it.
func (s *Service) start(cfg Config) error {
	// Reads are retried once on another instance; writes are not.
	authConn, err := s.kit.Dial("auth", cfg.AuthAddr)
	if err != nil {
		return config.SettingError("auth-addr", err)
	}
	s.conns = append(s.conns, authConn)
	userConn, err := s.kit.Dial("user", cfg.UserAddr, grpcclient.ServiceConfig(
		userv1.UserService_GetUser_FullMethodName, userv1.UserService_ListUsers_FullMethodName))
	if err != nil {
		return config.SettingError("user-addr", err)
	}
	s.conns = append(s.conns, userConn)
	httpMetrics, err := metrics.NewHTTP(s.kit.Registry)
	if err != nil {
		return err
	}
	// The canary weights, followed in Consul KV, pick each request's track.
	s.weights, err = canary.NewWeights(cfg.Discovery.ConsulAddr, cfg.Discovery.TokenFile, s.kit.Log, s.kit.Registry)
	if err != nil {
		return err
	}
	router, err := NewRouter(s.weights.Current, cfg.CanaryHeader, s.kit.Registry)
	if err != nil {
		return err
	}
	api := NewHandler(authv1.NewAuthServiceClient(authConn), userv1.NewUserServiceClient(userConn),
		WithCallTimeout(cfg.CallTimeout), WithMaxBodyBytes(cfg.MaxBodyBytes), WithLogger(s.kit.Log), WithRouter(router))

	handler := requestid.Middleware( // the client's X-Request-ID, or a new one
		s.kit.Tracing.Middleware( // a span per request, named by route
			httpMetrics.Middleware( // golden signals by route
				s.kit.Logger.HTTPMiddleware( // one access log line per request
					recoverPanics(s.kit.Log, // a panic becomes a 500
						api)))))

	lis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return config.SettingError("http-addr", err)
	}
	s.http = lifecycle.NewHTTPServer("http", lis, handler)

	var draining atomic.Bool
	// Ready once auth and user each have an instance to call: no request
	// meets an empty list at start-up.
	s.kit.SetReady(func() bool {
		return !draining.Load() && grpcclient.Ready(authConn) && grpcclient.Ready(userConn)
	})
	return s.kit.Register(discovery.Instance{
		Name:      cfg.Name,
		Port:      lis.Addr().(*net.TCPAddr).Port,
		HTTPCheck: &discovery.HTTPCheck{Port: s.kit.AdminPort()},
	}, func() {
		draining.Store(true)
		// Keep-alive clients move to other instances during the drain
		// wait rather than have idle connections closed under them.
		s.http.Drain()
	})
}

// HTTPAddr returns the address the API listens on.
func (s *Service) HTTPAddr() string { return s.http.Addr().String() }

// InstanceID returns the instance's ID in Consul ("" without discovery).
func (s *Service) InstanceID() string { return s.kit.InstanceID() }

// Instance returns the name of this instance in its logs, spans and metrics.
func (s *Service) Instance() string { return s.kit.Instance }

// AdminAddr returns the address the admin server listens on.
func (s *Service) AdminAddr() string { return s.kit.AdminAddr() }

// Run serves until ctx ends, then deregisters, finishes in-flight requests
// within the shutdown timeout and flushes spans and logs. It returns nil
// after a clean shutdown.
func (s *Service) Run(ctx context.Context) error {
	defer s.closeConns()
	return s.kit.Run(ctx, s.weights, s.http)
}

// Close releases the ports and connections of a service that will not Run,
// such as one of several started together when a later one fails. Run
// releases them otherwise.
func (s *Service) Close() {
	if s.http != nil {
		_ = s.http.Close()
	}
	s.closeConns()
	s.kit.Close()
}

func (s *Service) closeConns() {
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.Close())
	}
	if err := errors.Join(errs...); err != nil {
		s.kit.Log.WithError(err).Warn("closing client connections")
	}
}
