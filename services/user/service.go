package user

import (
	"context"
	"fmt"
	"net"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/hashicorp/consul/api"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/bcrypt"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
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
	// "consul" (Consul's KV store, shared by every instance).
	Store       string
	StorePrefix string
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
		Token:       TokenConfig{PublicKey: "certs/token-signing.pub", Issuer: "golden-auth", Audience: "golden"},
		BcryptCost:  bcrypt.DefaultCost,
		Store:       "memory",
		StorePrefix: "golden/user",
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
	fs.StringVar(&c.Store, "store", c.Store, `where accounts live: "memory" (this instance only) or "consul" (KV store at --consul-addr, shared by every instance)`)
	fs.StringVar(&c.StorePrefix, "store-prefix", c.StorePrefix, "KV prefix of the consul store")
}

// Validate checks every setting and names each bad one.
func (c *Config) Validate() error {
	var v config.Validator
	c.Settings.Validate(&v)
	c.GRPC.Validate(&v)
	v.FileExists("token-public-key", c.Token.PublicKey)
	v.Check(c.Token.Issuer != "", "token-issuer", "must be set")
	v.Check(c.Token.Audience != "", "token-audience", "must be set")
	v.Check(c.Store == "memory" || c.Store == "consul", "store", "%q is not memory or consul", c.Store)
	v.Check(c.Store != "consul" || c.Discovery.ConsulAddr != "", "store", "consul needs --consul-addr")
	v.Check(c.BcryptCost >= bcrypt.MinCost && c.BcryptCost <= bcrypt.MaxCost, "bcrypt-cost", "must be between %d and %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, c.BcryptCost)
	return v.Err()
}

// publicMethods need no access token: sign-up, the auth service's
// credential check (it holds no user token yet) and health.
var publicMethods = append([]string{
	userv1.UserService_CreateUser_FullMethodName,
	userv1.UserService_VerifyCredentials_FullMethodName,
	userv1.UserService_HealthCheck_FullMethodName,
}, security.PublicMethods...)

// Service is a running user service process.
type Service struct {
	kit  *service.Kit
	grpc *grpcserver.Server
}

// New validates cfg, binds the service's ports and wires the request path:
// mTLS -> [span, request ID, metrics, access log] -> recovery -> caller
// authorization -> per-caller rate limit -> access token -> UserService ->
// store (traced).
func New(cfg Config) (s *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsConf, err := security.ServerConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	pub, err := jwtauth.LoadPublicKey(cfg.Token.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.Setting("token-public-key"), err)
	}
	kit, err := service.Start(cfg.Settings)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			kit.Close()
		}
	}()
	verifier := jwtauth.NewVerifier(pub, cfg.Token.Issuer, cfg.Token.Audience)
	limiter := rl.New(cfg.GRPC.RateLimit, cfg.GRPC.RateBurst, security.IdentityFromContext, rl.WithRejectHook(kit.RateLimitRejected))

	srv, err := kit.ListenGRPC(cfg.GRPC.Addr, tlsConf, grpcserver.WithUnaryInterceptors(
		security.UnaryServerInterceptor(cfg.GRPC.Policy),
		ratelimit.UnaryServerInterceptor(limiter),
		jwtauth.UnaryServerInterceptor(verifier, jwtauth.WithPublicMethods(publicMethods...)),
	))
	if err != nil {
		return nil, err
	}
	accounts, err := newStore(cfg)
	if err != nil {
		srv.Close()
		return nil, err
	}
	store := NewTracedStore(accounts, kit.Tracing.TracerProvider())
	userv1.RegisterUserServiceServer(srv.GRPC(), NewServer(store, WithHealth(srv.Serving), WithBcryptCost(cfg.BcryptCost)))
	kit.SetReady(srv.Serving)

	if err := kit.Register(discovery.Instance{Name: cfg.Name, Port: srv.Addr().(*net.TCPAddr).Port}, srv.SetNotServing); err != nil {
		srv.Close()
		return nil, err
	}
	return &Service{kit: kit, grpc: srv}, nil
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

// newStore returns the account store cfg names.
func newStore(cfg Config) (Store, error) {
	if cfg.Store == "memory" {
		return NewMemoryStore(), nil
	}
	// DefaultConfig reads CONSUL_HTTP_TOKEN and the other standard variables.
	cc := api.DefaultConfig()
	cc.Address = cfg.Discovery.ConsulAddr
	client, err := api.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.Setting("consul-addr"), err)
	}
	s, err := NewConsulStore(client, cfg.StorePrefix)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.Setting("store-prefix"), err)
	}
	return s, nil
}
