// Package service sets up what every golden service process shares before
// its own parts: settings (admin port, TLS identity, shutdown deadline,
// logging, tracing, discovery), the logger, the metrics registry, the tracer
// provider and the admin server, and it runs and stops them in order around
// the service's own servers.
package service

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/discovery"
	"github.com/golden-stack/golden/observability/fault"
	"github.com/golden-stack/golden/observability/logging"
	"github.com/golden-stack/golden/observability/security"
	"github.com/golden-stack/golden/observability/tracing"
)

// Settings are the settings every service has.
type Settings struct {
	// Name is the service name; it is not a flag.
	Name string
	// Version is the build version; it is not a flag ("" = from the binary).
	Version   string
	AdminAddr string
	// Track is the track the instance runs on: canary.Stable or
	// canary.Canary.
	Track           string
	TLS             security.Files
	ShutdownTimeout time.Duration
	DebugPages      bool
	Logging         logging.Config
	Tracing         tracing.Config
	Discovery       discovery.Config
	Faults          fault.Config
}

// Defaults returns the default settings of the service name with its admin
// port and certificates from `golden certs` in the folder "certs".
func Defaults(name, adminAddr string) Settings {
	return Settings{
		Name:            name,
		AdminAddr:       adminAddr,
		Track:           canary.Stable,
		TLS:             security.DefaultFiles("certs", name),
		ShutdownTimeout: 15 * time.Second,
		Logging:         logging.DefaultConfig(),
		Tracing:         tracing.DefaultConfig(),
		Discovery:       discovery.DefaultConfig(),
		Faults:          fault.DefaultConfig(),
	}
}

// RegisterFlags adds the shared flags to fs.
func (s *Settings) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.AdminAddr, "admin-addr", s.AdminAddr, "admin HTTP address (/livez, /readyz, /metrics)")
	fs.StringVar(&s.Track, "track", s.Track, `release track of this instance: "stable", or "canary" (gets only the requests the edge routes to the canary)`)
	s.TLS.RegisterFlags(fs)
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", s.ShutdownTimeout, "how long in-flight requests may take to finish after SIGTERM (includes --consul-drain-wait)")
	fs.BoolVar(&s.DebugPages, "debug-pages", s.DebugPages, "serve /debug/requests and /debug/events on the admin port (to loopback clients only) and the channelz gRPC service")
	s.Logging.RegisterFlags(fs)
	s.Tracing.RegisterFlags(fs)
	s.Discovery.RegisterFlags(fs)
	s.Faults.RegisterFlags(fs)
}

// Validate checks the shared settings.
func (s *Settings) Validate(v *config.Validator) {
	v.Addr("admin-addr", s.AdminAddr)
	if err := canary.CheckTrack(s.Track); err != nil {
		v.Check(false, "track", "%v", err)
	}
	s.TLS.Validate(v)
	v.Positive("shutdown-timeout", s.ShutdownTimeout)
	s.Logging.Validate(v)
	s.Tracing.Validate(v)
	s.Discovery.Validate(v)
	s.Faults.Validate(v)
	if s.Discovery.Enabled() {
		v.Check(s.ShutdownTimeout > s.Discovery.DrainWait, "shutdown-timeout", "(%s) must be longer than --consul-drain-wait (%s), or nothing is left for draining requests", s.ShutdownTimeout, s.Discovery.DrainWait)
	}
}
