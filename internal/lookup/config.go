package lookup

import (
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/internal/graylog"
	"github.com/golden-stack/golden/observability/config"
)

// maxLimit is OpenSearch's default max_result_window: Graylog cannot page
// a search past it.
const maxLimit = 10000

// Config holds the settings of a lookup other than Graylog's (see
// graylog.Config).
type Config struct {
	// JaegerAddr is Jaeger's query API v3 over gRPC, host:port; JaegerURL
	// its web interface, for links.
	JaegerAddr string
	JaegerURL  string
	// JaegerUser and JaegerPassword (or JaegerPasswordFile) sign in to a
	// Jaeger behind golden authproxy; no password, no sign-in.
	JaegerUser         string
	JaegerPassword     string
	JaegerPasswordFile string
	Range              time.Duration
	Limit              int
	// Timeout bounds each request to Graylog or Jaeger.
	Timeout time.Duration
	// TraceTag is the span tag holding the request ID.
	TraceTag string
}

// DefaultConfig returns the settings for a local stack: Jaeger's API on
// localhost:16685 and web interface on localhost:16686, the last 24 hours,
// up to 500 log lines, 15s per request.
func DefaultConfig() Config {
	return Config{
		JaegerAddr: "localhost:16685",
		JaegerURL:  "http://localhost:16686",
		JaegerUser: "admin",
		Range:      24 * time.Hour,
		Limit:      500,
		Timeout:    15 * time.Second,
		TraceTag:   "request_id",
	}
}

// RegisterFlags adds --jaeger-addr, --jaeger-url, --jaeger-user,
// --jaeger-password, --jaeger-password-file, --range, --limit, --timeout and
// --jaeger-tag to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.JaegerAddr, "jaeger-addr", c.JaegerAddr, "Jaeger's query API v3 over gRPC (api_v3, port 16685), host:port")
	fs.StringVar(&c.JaegerURL, "jaeger-url", c.JaegerURL, "Jaeger web interface base URL, for trace links")
	fs.StringVar(&c.JaegerUser, "jaeger-user", c.JaegerUser, "user of Jaeger's sign-in (golden authproxy, as in docker-compose.yml), with --jaeger-password")
	fs.StringVar(&c.JaegerPassword, "jaeger-password", c.JaegerPassword, "password of Jaeger's sign-in (prefer --jaeger-password-file or $"+config.EnvName("jaeger-password")+": flags show in the process list); none: no sign-in")
	fs.StringVar(&c.JaegerPasswordFile, "jaeger-password-file", c.JaegerPasswordFile, "file holding the password of Jaeger's sign-in (one line)")
	fs.DurationVar(&c.Range, "range", c.Range, "how far back to search")
	fs.IntVar(&c.Limit, "limit", c.Limit, "most log lines to fetch")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "timeout of each request to Graylog or Jaeger")
	fs.StringVar(&c.TraceTag, "jaeger-tag", c.TraceTag, `span tag holding the request ID, searched in Jaeger when the logs name no trace ("" to skip)`)
}

// Validate checks the settings.
func (c *Config) Validate(v *config.Validator) {
	err := checkAddr(c.JaegerAddr)
	v.Check(err == nil, "jaeger-addr", "%v", err)
	_, err = baseurl.Parse(c.JaegerURL)
	v.Check(err == nil, "jaeger-url", "%v", err)
	v.Check(c.JaegerPassword == "" || c.JaegerPasswordFile == "", "jaeger-password", "set either it or %s, not both", config.Setting("jaeger-password-file"))
	if c.JaegerPasswordFile != "" {
		v.FileExists("jaeger-password-file", c.JaegerPasswordFile)
	}
	if c.JaegerPassword != "" || c.JaegerPasswordFile != "" {
		v.Check(strings.TrimSpace(c.JaegerUser) != "", "jaeger-user", "must be set with a password")
	}
	v.Positive("range", c.Range)
	v.Check(c.Limit >= 1 && c.Limit <= maxLimit, "limit", "must be between 1 and %d, got %d", maxLimit, c.Limit)
	v.Positive("timeout", c.Timeout)
}

// NewFinder returns a Finder with these settings, reading logs through
// logs. Call it after Validate.
func (c *Config) NewFinder(logs *graylog.Client) (*Finder, error) {
	j, err := NewJaeger(c.JaegerAddr, c.JaegerURL, c.Timeout)
	if err != nil {
		return nil, err
	}
	password := c.JaegerPassword
	if c.JaegerPasswordFile != "" {
		var err error
		if password, err = config.ReadPasswordFile(c.JaegerPasswordFile); err != nil {
			return nil, config.SettingError("jaeger-password-file", err)
		}
	}
	if password != "" {
		j.SignIn(c.JaegerUser, password)
	}
	return NewFinder(logs, j, WithRange(c.Range), WithLimit(c.Limit), WithTraceTag(c.TraceTag))
}
