package auth

import (
	"context"
	"net"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/timeout"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/discovery"
	"github.com/golden-stack/golden/observability/grpcclient"
	"github.com/golden-stack/golden/observability/grpcserver"
	"github.com/golden-stack/golden/observability/jwtauth"
	"github.com/golden-stack/golden/observability/postgres"
	rl "github.com/golden-stack/golden/observability/ratelimit"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/security"
	"github.com/golden-stack/golden/observability/service"
	"github.com/golden-stack/golden/observability/tracing"
)

// Config is the auth service's configuration.
type Config struct {
	service.Settings
	GRPC grpcserver.Config
	// UserAddr is the user service's address; Login checks credentials there.
	UserAddr string
	// CallTimeout bounds each call to the user service.
	CallTimeout time.Duration
	Token       TokenConfig
	// Store is where refresh tokens live: "memory" (this instance only; a
	// restart logs everyone out) or "postgres" (the database at DB, shared
	// by every instance).
	Store string
	DB    postgres.Config
}

// TokenConfig is how the auth service signs tokens.
type TokenConfig struct {
	PrivateKey string
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		Settings: service.Defaults("auth", ":9101"),
		GRPC: grpcserver.Config{
			Addr:      ":9001",
			RateLimit: 200,
			RateBurst: 400,
			Policy: security.Policy{
				"Login":                  {"gateway"},
				"Refresh":                {"gateway"},
				"Logout":                 {"gateway"},
				"HealthCheck":            {security.AnyIdentity},
				security.ChannelzMethods: {security.OperatorIdentity},
			},
		},
		UserAddr:    "localhost:9002",
		CallTimeout: 5 * time.Second,
		Token: TokenConfig{
			PrivateKey: "certs/token-signing.key",
			Issuer:     "golden-auth",
			Audience:   "golden",
			AccessTTL:  15 * time.Minute,
			RefreshTTL: 24 * time.Hour,
		},
		Store: "memory",
		DB:    postgres.DefaultConfig(),
	}
}

// RegisterFlags adds every setting to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	c.Settings.RegisterFlags(fs)
	c.GRPC.RegisterFlags(fs)
	fs.StringVar(&c.UserAddr, "user-addr", c.UserAddr, "user service address (gRPC target)")
	fs.DurationVar(&c.CallTimeout, "call-timeout", c.CallTimeout, "deadline of each call to the user service")
	fs.StringVar(&c.Token.PrivateKey, "token-private-key", c.Token.PrivateKey, "Ed25519 private key (PEM) that signs access tokens")
	fs.StringVar(&c.Token.Issuer, "token-issuer", c.Token.Issuer, "issuer (iss) written into access tokens")
	fs.StringVar(&c.Token.Audience, "token-audience", c.Token.Audience, "audience (aud) written into access tokens")
	fs.DurationVar(&c.Token.AccessTTL, "access-ttl", c.Token.AccessTTL, "lifetime of access tokens")
	fs.DurationVar(&c.Token.RefreshTTL, "refresh-ttl", c.Token.RefreshTTL, "lifetime of refresh tokens")
	fs.StringVar(&c.Store, "store", c.Store, `where refresh tokens live: "memory" (this instance only) or "postgres" (the database at --db-url, shared by every instance)`)
	c.DB.RegisterFlags(fs)
}

// Validate checks every setting and names each bad one.
func (c *Config) Validate() error {
	var v config.Validator
	c.Settings.Validate(&v)
	c.GRPC.Validate(&v)
	v.Check(c.UserAddr != "", "user-addr", "must be set")
	v.Positive("call-timeout", c.CallTimeout)
	v.FileExists("token-private-key", c.Token.PrivateKey)
	v.Check(c.Token.Issuer != "", "token-issuer", "must be set")
	v.Check(c.Token.Audience != "", "token-audience", "must be set")
	v.Positive("access-ttl", c.Token.AccessTTL)
	v.Positive("refresh-ttl", c.Token.RefreshTTL)
	v.Check(c.Token.RefreshTTL >= c.Token.AccessTTL, "refresh-ttl", "(%s) must not be shorter than --access-ttl (%s)", c.Token.RefreshTTL, c.Token.AccessTTL)
	v.Check(c.Store == "memory" || c.Store == "postgres", "store", "%q is not memory or postgres", c.Store)
	if c.Store == "postgres" {
		c.DB.Validate(&v)
	}
	return v.Err()
}

// Service is a running auth service process.
type Service struct {
	kit   *service.Kit
	grpc  *grpcserver.Server
	users *grpc.ClientConn
}

// New validates cfg, binds the service's ports and wires the request path
// (see listenGRPC) to the AuthService server, which checks credentials with
// the user service (over mTLS, with a deadline) and signs tokens.
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
	key, err := jwtauth.LoadPrivateKey(cfg.Token.PrivateKey)
	if err != nil {
		return config.SettingError("token-private-key", err)
	}
	// A credential check only reads: retried once on another instance.
	if s.users, err = s.kit.Dial("user", cfg.UserAddr,
		grpcclient.ServiceConfig(userv1.UserService_VerifyCredentials_FullMethodName),
		grpc.WithChainUnaryInterceptor(timeout.UnaryClientInterceptor(cfg.CallTimeout))); err != nil {
		return config.SettingError("user-addr", err)
	}
	if s.grpc, err = listenGRPC(s.kit, cfg); err != nil {
		return err
	}
	sessions, err := s.newStore(cfg)
	if err != nil {
		return err
	}
	signer := jwtauth.NewSigner(key, cfg.Token.Issuer, cfg.Token.Audience, cfg.Token.AccessTTL)
	authv1.RegisterAuthServiceServer(s.grpc.GRPC(), NewServer(userv1.NewUserServiceClient(s.users), signer, sessions, s.grpc.Serving))
	s.kit.Metrics.InitializeMetrics(s.grpc.GRPC()) // every method's series from zero
	s.kit.SetReady(s.grpc.Serving)
	return s.kit.Register(discovery.Instance{Name: cfg.Name, Port: s.grpc.Addr().(*net.TCPAddr).Port}, s.grpc.SetNotServing)
}

// listenGRPC binds the auth service's gRPC server at --grpc-addr with its
// whole request path, in the order a call goes through it. It is the user
// service's chain without the access-token check: callers of auth hold no
// token yet, or hold a refresh token that the handlers check.
func listenGRPC(kit *service.Kit, cfg Config) (*grpcserver.Server, error) {
	tlsConf, err := security.ServerConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	limiter := rl.New(cfg.GRPC.RateLimit, cfg.GRPC.RateBurst, security.IdentityFromContext, rl.WithRejectHook(kit.Metrics.RateLimitRejected))
	var (
		faultable = grpcserver.AllBut(grpcserver.HealthService, grpcserver.ChannelzService)
		needsCert = grpcserver.AllBut(grpcserver.HealthService)
		onPanic   = grpcserver.RecoveryHandler(kit.Log)
	)
	return kit.ListenGRPC(cfg.GRPC.Addr, tlsConf,
		// The server span starts first, from the caller's trace context.
		kit.Tracing.ServerOption(),
		grpc.ChainUnaryInterceptor(
			// The caller's request ID, or a new one, for every later step;
			// the request's canary route, for the calls this one makes.
			requestid.UnaryServerInterceptor(),
			canary.UnaryServerInterceptor(),
			// Observers: golden signals by caller, one access log line,
			// the request ID on the span.
			kit.Metrics.UnaryServerInterceptor(),
			kit.Logger.UnaryServerInterceptor(),
			tracing.UnaryServerInterceptor(),
			// Injected faults, inside the observers so that they show
			// them like real ones.
			selector.UnaryServerInterceptor(kit.Faults.UnaryServerInterceptor(), faultable),
			// A panic in anything below becomes Internal.
			recovery.UnaryServerInterceptor(onPanic),
			// Who may call what: the certificate's identity against --allow,
			// then that identity's rate limit.
			selector.UnaryServerInterceptor(security.UnaryServerInterceptor(cfg.GRPC.Policy), needsCert),
			ratelimit.UnaryServerInterceptor(limiter),
		),
		// The streaming twin, step for step (health's Watch is the only
		// stream today).
		grpc.ChainStreamInterceptor(
			requestid.StreamServerInterceptor(),
			canary.StreamServerInterceptor(),
			kit.Metrics.StreamServerInterceptor(),
			kit.Logger.StreamServerInterceptor(),
			tracing.StreamServerInterceptor(),
			selector.StreamServerInterceptor(kit.Faults.StreamServerInterceptor(), faultable),
			recovery.StreamServerInterceptor(onPanic),
			selector.StreamServerInterceptor(security.StreamServerInterceptor(cfg.GRPC.Policy), needsCert),
			ratelimit.StreamServerInterceptor(limiter),
		),
	)
}

// GRPCAddr returns the address the gRPC server listens on.
func (s *Service) GRPCAddr() string { return s.grpc.Addr().String() }

// InstanceID returns the instance's ID in Consul ("" without discovery).
func (s *Service) InstanceID() string { return s.kit.InstanceID() }

// Instance returns the name of this instance in its logs, spans and metrics.
func (s *Service) Instance() string { return s.kit.Instance }

// AdminAddr returns the address the admin server listens on.
func (s *Service) AdminAddr() string { return s.kit.AdminAddr() }

// Run serves until ctx ends, then deregisters, drains in-flight RPCs within
// the shutdown timeout and flushes spans and logs. It returns nil after a
// clean shutdown.
func (s *Service) Run(ctx context.Context) error {
	defer s.users.Close()
	return s.kit.Run(ctx, s.grpc)
}

// Close releases the ports and connections of a service that will not Run,
// such as one of several started together when a later one fails. Run
// releases them otherwise.
func (s *Service) Close() {
	if s.grpc != nil {
		s.grpc.Close()
	}
	if s.users != nil {
		_ = s.users.Close()
	}
	s.kit.Close()
}

// newStore returns the refresh token store cfg names. The kit opens (and
// migrates) the PostgreSQL database, and closes it after the servers
// drained.
func (s *Service) newStore(cfg Config) (RefreshTokens, error) {
	if cfg.Store == "memory" {
		return NewRefreshStore(cfg.Token.RefreshTTL), nil
	}
	pool, err := s.kit.OpenPostgres(cfg.DB, Migrations)
	if err != nil {
		return nil, err
	}
	return NewPostgresRefreshStore(pool, cfg.Token.RefreshTTL), nil
}
