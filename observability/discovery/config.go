package discovery

import (
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

// Limits that Config.Validate enforces.
const (
	// MinCheckInterval is the shortest check interval Consul runs; it raises
	// shorter ones to this with a warning.
	MinCheckInterval = time.Second
	// MinDeregisterAfter is the shortest DeregisterCriticalServiceAfter
	// Consul honours: its reaper runs every 30s, so less means "about 1m".
	MinDeregisterAfter = time.Minute
	// MinDrainWait is the shortest allowed wait between deregistering and
	// draining. Clients using ResolverBuilder learn of a deregistration
	// within RefreshLatency; the rest of the margin covers a loaded Consul
	// and RPCs picked just before the update.
	MinDrainWait = time.Second
)

// Config holds the Consul settings of one service instance. With an empty
// ConsulAddr discovery is off: nothing registers and clients dial the static
// addresses they were given.
//
// The Consul client also honours the standard CONSUL_HTTP_SSL,
// CONSUL_CACERT, CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY environment
// variables, and CONSUL_HTTP_TOKEN(_FILE) when TokenFile is empty.
type Config struct {
	// ConsulAddr is the host:port of the Consul agent's HTTP API.
	ConsulAddr string
	// TokenFile holds the instance's Consul ACL token, presented when it
	// registers, watches its faults and resolves its peers. A file, never
	// a value, so that the token stays out of process listings and
	// environment dumps.
	TokenFile string
	// AdvertiseAddr is the host (name or IP, no port) at which other
	// services, Consul's health checks and Prometheus reach this instance.
	AdvertiseAddr string
	// CheckInterval and CheckTimeout shape Consul's health check.
	CheckInterval time.Duration
	CheckTimeout  time.Duration
	// DeregisterAfter is how long a check may stay critical before Consul
	// removes the instance.
	DeregisterAfter time.Duration
	// DrainWait is how long Shutdown waits after deregistering, so that
	// clients stop routing here before the gRPC server drains.
	DrainWait time.Duration
	// Tags are added to every registration, next to TagMetrics.
	Tags []string
	// CheckTLSSkipVerify makes Consul's gRPC health check skip verifying the
	// instance's certificate. It is on by default because a Consul agent
	// knows only the system roots, not golden's private CA, and the check
	// carries no secret: it only decides whether the instance gets traffic,
	// and clients still verify the instance's certificate themselves. Turn
	// it off where the agent has golden's CA (agent config
	// `enable_agent_tls_for_checks = true` with `tls { defaults { ca_file
	// = ".../ca.crt" } }`).
	CheckTLSSkipVerify bool
}

// DefaultConfig returns the defaults: discovery off, advertising the host
// name.
func DefaultConfig() Config {
	return Config{
		AdvertiseAddr:      config.Hostname(),
		CheckInterval:      10 * time.Second,
		CheckTimeout:       5 * time.Second,
		DeregisterAfter:    time.Minute,
		DrainWait:          5 * time.Second,
		CheckTLSSkipVerify: true,
	}
}

// RegisterFlags adds --consul-addr, --consul-token-file, --advertise-addr,
// --consul-check-interval, --consul-check-timeout, --consul-deregister-after,
// --consul-drain-wait, --consul-tags and --consul-check-tls-skip-verify to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ConsulAddr, "consul-addr", c.ConsulAddr, "Consul agent HTTP address (host:port); empty turns discovery off and static peer addresses are used")
	fs.StringVar(&c.TokenFile, "consul-token-file", c.TokenFile, "file holding this service's Consul ACL token (where Consul has ACLs: docker-compose.yml's consul-setup writes one per service)")
	fs.StringVar(&c.AdvertiseAddr, "advertise-addr", c.AdvertiseAddr, "host name or IP (no port) at which other services, Consul and Prometheus reach this instance")
	fs.DurationVar(&c.CheckInterval, "consul-check-interval", c.CheckInterval, "how often Consul probes this instance's health")
	fs.DurationVar(&c.CheckTimeout, "consul-check-timeout", c.CheckTimeout, "how long one Consul health probe may take")
	fs.DurationVar(&c.DeregisterAfter, "consul-deregister-after", c.DeregisterAfter, "how long the health check may stay critical before Consul removes the instance (at least 1m)")
	fs.DurationVar(&c.DrainWait, "consul-drain-wait", c.DrainWait, "how long to wait after deregistering before draining, so that clients stop routing here first")
	fs.StringSliceVar(&c.Tags, "consul-tags", c.Tags, "extra Consul tags of this instance (comma-separated)")
	fs.BoolVar(&c.CheckTLSSkipVerify, "consul-check-tls-skip-verify", c.CheckTLSSkipVerify, "let Consul's gRPC health check skip verifying this instance's certificate (the agent lacks golden's CA)")
}

// Enabled reports whether discovery is on.
func (c *Config) Enabled() bool { return c.ConsulAddr != "" }

// Validate checks the settings. With discovery off only --consul-addr is
// looked at, so a default that does not matter cannot fail a start.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled() {
		return
	}
	host, _, err := net.SplitHostPort(c.ConsulAddr)
	v.Addr("consul-addr", c.ConsulAddr)
	v.Check(err != nil || host != "", "consul-addr", "%q has no host", c.ConsulAddr)
	if c.TokenFile != "" {
		v.FileExists("consul-token-file", c.TokenFile)
		if raw, err := os.ReadFile(c.TokenFile); err == nil {
			v.Check(strings.TrimSpace(string(raw)) != "", "consul-token-file", "%q is empty", c.TokenFile)
		}
	}
	v.Check(validHost(c.AdvertiseAddr), "advertise-addr", "%q is not a host name or IP address without a port", c.AdvertiseAddr)
	if ip := net.ParseIP(c.AdvertiseAddr); ip != nil {
		v.Check(!ip.IsUnspecified(), "advertise-addr", "%q is a wildcard address, not one others can reach", c.AdvertiseAddr)
	}
	v.Check(c.CheckInterval >= MinCheckInterval, "consul-check-interval", "must be at least %s, got %s", MinCheckInterval, c.CheckInterval)
	v.Check(c.CheckTimeout > 0 && c.CheckTimeout <= c.CheckInterval, "consul-check-timeout", "must be greater than 0 and at most --consul-check-interval (%s), got %s", c.CheckInterval, c.CheckTimeout)
	v.Check(c.DeregisterAfter >= MinDeregisterAfter, "consul-deregister-after", "must be at least %s, got %s", MinDeregisterAfter, c.DeregisterAfter)
	v.Check(c.DrainWait >= MinDrainWait, "consul-drain-wait", "must be at least %s (longer than clients take to see a deregistration), got %s", MinDrainWait, c.DrainWait)
	for _, t := range c.Tags {
		// Prometheus joins tags with commas, so one inside a tag breaks
		// relabelling rules such as `.*,metrics,.*`.
		v.Check(t != "" && !strings.ContainsAny(t, ", \t\r\n"), "consul-tags", "tag %q must be non-empty, without commas or spaces", t)
	}
}

// validHost reports whether s is an IP address or a DNS name.
func validHost(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
