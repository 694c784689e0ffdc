// Package service holds the settings every golden service process shares
// (admin port, TLS identity, shutdown deadline, logging) and builds its
// logger from them.
package service

import (
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/security"
)

// Settings are the settings every service has.
type Settings struct {
	// Name is the service name; it is not a flag.
	Name            string
	AdminAddr       string
	TLS             security.Files
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string
}

// Defaults returns the default settings of the service name with its admin
// port and certificates from `golden certs` in the folder "certs".
func Defaults(name, adminAddr string) Settings {
	return Settings{
		Name:            name,
		AdminAddr:       adminAddr,
		TLS:             security.DefaultFiles("certs", name),
		ShutdownTimeout: 15 * time.Second,
		LogLevel:        "info",
		LogFormat:       "json",
	}
}

// RegisterFlags adds the shared flags to fs.
func (s *Settings) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.AdminAddr, "admin-addr", s.AdminAddr, "admin HTTP address (/livez, /readyz)")
	s.TLS.RegisterFlags(fs)
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", s.ShutdownTimeout, "how long in-flight requests may take to finish after SIGTERM")
	fs.StringVar(&s.LogLevel, "log-level", s.LogLevel, "log level: trace, debug, info, warn, error")
	fs.StringVar(&s.LogFormat, "log-format", s.LogFormat, "log format on stdout: json or text")
}

// Validate checks the shared settings.
func (s *Settings) Validate(v *config.Validator) {
	v.Addr("admin-addr", s.AdminAddr)
	s.TLS.Validate(v)
	v.Positive("shutdown-timeout", s.ShutdownTimeout)
	_, err := logrus.ParseLevel(s.LogLevel)
	v.Check(err == nil && s.LogLevel != "panic" && s.LogLevel != "fatal", "log-level", "%q is not one of trace, debug, info, warn, error", s.LogLevel)
	v.Check(s.LogFormat == "json" || s.LogFormat == "text", "log-format", "%q is not json or text", s.LogFormat)
}

// Logger returns the service's logger, writing to stdout with every entry
// carrying the service name. Call it after Validate.
func (s *Settings) Logger() (*logrus.Entry, error) {
	lvl, err := logrus.ParseLevel(s.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.Setting("log-level"), err)
	}
	l := logrus.New()
	l.SetOutput(os.Stdout)
	l.SetLevel(lvl)
	if s.LogFormat == "text" {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	} else {
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	}
	return l.WithField("service", s.Name), nil
}
