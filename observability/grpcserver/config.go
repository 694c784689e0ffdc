package grpcserver

import (
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/security"
)

// Config holds the settings of a service's gRPC server.
type Config struct {
	Addr string
	// RateLimit and RateBurst shape each caller identity's traffic.
	RateLimit float64
	RateBurst int
	// Policy lists which caller identities may call which method.
	Policy security.Policy
}

// RegisterFlags adds --grpc-addr, --rate-limit, --rate-burst and --allow to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "grpc-addr", c.Addr, "gRPC listen address")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second allowed to each caller identity")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst of requests allowed to each caller identity above --rate-limit")
	fs.Var(&c.Policy, "allow", `caller identities allowed per method: "Method=id1,id2;Method2=*"`)
}

// Validate checks the settings.
func (c *Config) Validate(v *config.Validator) {
	v.Addr("grpc-addr", c.Addr)
	v.Check(c.RateLimit > 0, "rate-limit", "must be greater than 0, got %g", c.RateLimit)
	v.Check(c.RateBurst >= 1, "rate-burst", "must be at least 1, got %d", c.RateBurst)
	v.Check(len(c.Policy) > 0, "allow", "must allow at least one method")
}
