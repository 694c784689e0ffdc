package tracing

import (
	"math"
	"net"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

// Config holds the tracing settings of a service.
type Config struct {
	// Endpoint is the host:port of the OTLP/gRPC receiver (Jaeger v2 on
	// 4317). Empty turns export off; trace context is still created and
	// propagated, so logs keep trace IDs and downstream services still join
	// the caller's trace.
	Endpoint string
	// Insecure sends spans without TLS, as on the compose network.
	Insecure bool
	// SampleRatio is the fraction of new traces recorded, 0 to 1. Requests
	// that arrive with a sampling decision keep it.
	SampleRatio float64
	// Environment is the deployment.environment.name resource attribute.
	Environment string
	// QueueSize bounds the spans waiting for export, the batch being
	// exported included; when full, new spans are dropped (and counted)
	// rather than slowing requests down.
	QueueSize int
}

// MaxQueueSize bounds --trace-queue-size so a typo cannot reserve gigabytes.
const MaxQueueSize = 1 << 20

// DefaultConfig returns the defaults: export off, insecure transport, every
// trace sampled, environment "development", a queue of 2048 spans.
func DefaultConfig() Config {
	return Config{
		Insecure:    true,
		SampleRatio: 1,
		Environment: "development",
		QueueSize:   2048,
	}
}

// RegisterFlags adds --otlp-endpoint, --otlp-insecure, --trace-sample-ratio,
// --deployment-environment and --trace-queue-size to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Endpoint, "otlp-endpoint", c.Endpoint, `OTLP/gRPC trace receiver as host:port, such as jaeger:4317 ("" turns export off; trace context is still propagated)`)
	fs.BoolVar(&c.Insecure, "otlp-insecure", c.Insecure, "send spans to --otlp-endpoint without TLS")
	fs.Float64Var(&c.SampleRatio, "trace-sample-ratio", c.SampleRatio, "fraction of new traces sampled, 0 to 1 (a caller's sampling decision is kept)")
	fs.StringVar(&c.Environment, "deployment-environment", c.Environment, "deployment environment recorded on every span (deployment.environment.name)")
	fs.IntVar(&c.QueueSize, "trace-queue-size", c.QueueSize, "spans buffered for export; beyond it spans are dropped (golden_trace_spans_dropped_total), never waited for")
}

// Validate checks the settings.
func (c *Config) Validate(v *config.Validator) {
	if c.Endpoint != "" {
		host, port, err := net.SplitHostPort(c.Endpoint)
		n, perr := strconv.Atoi(port)
		v.Check(err == nil && host != "" && perr == nil && n > 0 && n <= 65535,
			"otlp-endpoint", "%q is not host:port with a host and a port from 1 to 65535 (no scheme, such as jaeger:4317)", c.Endpoint)
	}
	v.Check(!math.IsNaN(c.SampleRatio) && c.SampleRatio >= 0 && c.SampleRatio <= 1,
		"trace-sample-ratio", "must be from 0 to 1, got %g", c.SampleRatio)
	v.Check(c.Environment != "", "deployment-environment", "must be set")
	v.Check(c.QueueSize >= 1 && c.QueueSize <= MaxQueueSize,
		"trace-queue-size", "must be from 1 to %d, got %d", MaxQueueSize, c.QueueSize)
}
