package user

import (
	"context"
	"net"

	"google.golang.org/grpc"

	"github.com/golden-stack/golden/observability/postgres"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/tracing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/bcrypt"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/discovery"
	"github.com/golden-stack/golden/observability/grpcserver"
	"github.com/golden-stack/golden/observability/jwtauth"
	rl "github.com/golden-stack/golden/observability/ratelimit"
	"github.com/golden-stack/golden/observability/security"
	"github.com/golden-stack/golden/observability/service"
)

// Config is the user service's configuration.
type Config struct {
	service.Settings
	GRPC  grpcserver.Config
	Token TokenConfig
	// BcryptCost is the work factor of password hashes.
	BcryptCost int
	// Store is where accounts live: "memory" (this instance only) or
	// "postgres" (the database at DB, shared by every instance).
	Store string
	DB    postgres.Config
}

// TokenConfig is how the user service verifies access tokens: with the
// auth service's public key only.
type TokenConfig struct {
	PublicKey string
	Issuer    string
	Audience  string
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		Settings: service.Defaults("user", ":9102"),
		GRPC: grpcserver.Config{
			Addr:      ":9002",
			RateLimit: 200,
			RateBurst: 400,
			Policy: security.Policy{
				"CreateUser":             {"gateway"},
				"GetUser":                {"gateway"},
				"ListUsers":              {"gateway"},
				"DeleteUser":             {"gateway"},
				"VerifyCredentials":      {"auth"},
				"HealthCheck":            {security.AnyIdentity},
				security.ChannelzMethods: {security.OperatorIdentity},
			},
		},
		Token:      TokenConfig{PublicKey: "certs/token-signing.pub", Issuer: "golden-auth", Audience: "golden"},
		BcryptCost: bcrypt.DefaultCost,
		Store:      "memory",
		DB:         postgres.DefaultConfig(),
	}
}

// RegisterFlags adds every setting to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	c.Settings.RegisterFlags(fs)
	c.GRPC.RegisterFlags(fs)
	fs.StringVar(&c.Token.PublicKey, "token-public-key", c.Token.PublicKey, "public key (PEM) that verifies access tokens")
	fs.StringVar(&c.Token.Issuer, "token-issuer", c.Token.Issuer, "required issuer (iss) of access tokens")
	fs.StringVar(&c.Token.Audience, "token-audience", c.Token.Audience, "required audience (aud) of access tokens")
	fs.IntVar(&c.BcryptCost, "bcrypt-cost", c.BcryptCost, "bcrypt work factor of password hashes (4-31; each step doubles the cost)")
	fs.StringVar(&c.Store, "store", c.Store, `where accounts live: "memory" (this instance only) or "postgres" (the database at --db-url, shared by every instance)`)
	c.DB.RegisterFlags(fs)
}

// Validate checks every setting and names each bad one.
func (c *Config) Validate() error {
	var v config.Validator
	c.Settings.Validate(&v)
	c.GRPC.Validate(&v)
	v.FileExists("token-public-key", c.Token.PublicKey)
	v.Check(c.Token.Issuer != "", "token-issuer", "must be set")
	v.Check(c.Token.Audience != "", "token-audience", "must be set")
	v.Check(c.Store == "memory" || c.Store == "postgres", "store", "%q is not memory or postgres", c.Store)
	if c.Store == "postgres" {
		c.DB.Validate(&v)
	}
	v.Check(c.BcryptCost >= bcrypt.MinCost && c.BcryptCost <= bcrypt.MaxCost, "bcrypt-cost", "must be between %d and %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, c.BcryptCost)
	return v.Err()
}

// publicMethods need no access token: sign-up, the auth service's
// credential check (it holds no user token yet), the service's health RPC,
// and the server's own services (health probes, channelz for operators,
// whom the certificate policy authorizes).
var publicMethods = []string{
	userv1.UserService_CreateUser_FullMethodName,
	userv1.UserService_VerifyCredentials_FullMethodName,
	userv1.UserService_HealthCheck_FullMethodName,
	grpcserver.HealthService,
	grpcserver.ChannelzService,
}

// Service is a running user service process.
type Service struct {
	kit  *service.Kit
	grpc *grpcserver.Server
}

// New validates cfg, binds the service's ports and wires the request path
// (see ListenGRPC) to the UserService server and its traced store.
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
	var err error
	if s.grpc, err = ListenGRPC(s.kit, cfg); err != nil {
		return err
	}
	accounts, err := s.newStore(cfg)
	if err != nil {
		return err
	}
	store := NewTracedStore(accounts, s.kit.Tracing.TracerProvider())
	userv1.RegisterUserServiceServer(s.grpc.GRPC(), NewServer(store, WithHealth(s.grpc.Serving), WithBcryptCost(cfg.BcryptCost)))
	s.kit.Metrics.InitializeMetrics(s.grpc.GRPC()) // every method's series from zero
	s.kit.SetReady(s.grpc.Serving)
	return s.kit.Register(discovery.Instance{Name: cfg.Name, Port: s.grpc.Addr().(*net.TCPAddr).Port}, s.grpc.SetNotServing)
}

// ListenGRPC binds the user service's gRPC server at --grpc-addr with its
// whole request path, in the order a call goes through it; register the
// UserService implementation on it. New does; benchmarks do with a handler
// of their own, so that they measure exactly this chain.
func ListenGRPC(kit *service.Kit, cfg Config) (*grpcserver.Server, error) {
	tlsConf, err := security.ServerConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	pub, err := jwtauth.LoadPublicKey(cfg.Token.PublicKey)
	if err != nil {
		return nil, config.SettingError("token-public-key", err)
	}
	verifier := jwtauth.NewVerifier(pub, cfg.Token.Issuer, cfg.Token.Audience)
	limiter := rl.New(cfg.GRPC.RateLimit, cfg.GRPC.RateBurst, security.IdentityFromContext, rl.WithRejectHook(kit.Metrics.RateLimitRejected))
	var (
		faultable  = grpcserver.AllBut(grpcserver.HealthService, grpcserver.ChannelzService)
		needsCert  = grpcserver.AllBut(grpcserver.HealthService)
		needsToken = grpcserver.AllBut(publicMethods...)
		onPanic    = grpcserver.RecoveryHandler(kit.Log)
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
			// The end user's access token.
			selector.UnaryServerInterceptor(jwtauth.UnaryServerInterceptor(verifier), needsToken),
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
			selector.StreamServerInterceptor(jwtauth.StreamServerInterceptor(verifier), needsToken),
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
	return s.kit.Run(ctx, s.grpc)
}

// Close releases the ports and connections of a service that will not Run,
// such as one of several started together when a later one fails. Run
// releases them otherwise.
func (s *Service) Close() {
	if s.grpc != nil {
		s.grpc.Close()
	}
	s.kit.Close()
}

// newStore returns the account store cfg names. The kit opens (and
// migrates) the PostgreSQL database, and closes it after the servers
// drained.
func (s *Service) newStore(cfg Config) (Store, error) {
	if cfg.Store == "memory" {
		return NewMemoryStore(), nil
	}
	pool, err := s.kit.OpenPostgres(cfg.DB, Migrations)
	if err != nil {
		return nil, err
	}
	return NewPostgresStore(pool), nil
}
