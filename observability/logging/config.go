package logging

import (
	"fmt"
	"net"
	"strconv"
	"time"
	"unicode"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

// Config holds the logging settings of a service.
type Config struct {
	// Level is the lowest level written: trace, debug, info, warn or error.
	Level string
	// Format is the stdout format: json or text.
	Format string
	// GELFAddr is the host:port of Graylog's GELF input; empty turns the
	// GELF sink off.
	GELFAddr string
	// GELFProtocol is udp (gzip-compressed, chunked above 1420 bytes) or tcp
	// (NUL-terminated JSON on one connection).
	GELFProtocol string
	// QueueSize bounds the entries waiting for the GELF sink; beyond it
	// entries are dropped and counted, never waited for.
	QueueSize int
	// AccessSample is the fraction, 0 to 1, of successful requests written
	// to the access log; failed requests are always written.
	AccessSample float64
	// FlushInterval is how long info, debug and trace lines may wait to be
	// written to stdout together; 0 writes each line at once. Warn and
	// error lines are written at once, after the lines waiting.
	FlushInterval time.Duration
	// Host is the GELF host field; empty means the machine's hostname, or
	// the service name when that is unknown.
	Host string
}

// MaxQueueSize bounds --gelf-queue-size so a typo cannot reserve gigabytes.
const MaxQueueSize = 1 << 20

// MaxFlushInterval bounds --log-flush-interval: lines that wait longer
// would be late in a tail of the logs and lost in greater numbers by a
// crash.
const MaxFlushInterval = time.Second

// maxHostLen is the longest host field accepted, the DNS name limit.
const maxHostLen = 255

// DefaultConfig returns the defaults: info level, JSON on stdout, GELF off
// (UDP when turned on), a queue of 4096 entries and every request in the
// access log.
func DefaultConfig() Config {
	return Config{
		Level:         "info",
		Format:        "json",
		GELFProtocol:  "udp",
		QueueSize:     4096,
		AccessSample:  1,
		FlushInterval: 2 * time.Millisecond,
	}
}

// RegisterFlags adds --log-level, --log-format, --gelf-addr,
// --gelf-protocol, --gelf-queue-size, --gelf-host and --access-log-sample to
// fs, with the current values of c as defaults (start from DefaultConfig).
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Level, "log-level", c.Level, "log level: trace, debug, info, warn, error")
	fs.StringVar(&c.Format, "log-format", c.Format, "log format on stdout: json or text")
	fs.StringVar(&c.GELFAddr, "gelf-addr", c.GELFAddr, `Graylog GELF input as host:port, such as graylog:12201 ("" turns GELF off)`)
	fs.StringVar(&c.GELFProtocol, "gelf-protocol", c.GELFProtocol, "GELF transport: udp or tcp")
	fs.IntVar(&c.QueueSize, "gelf-queue-size", c.QueueSize, "log entries buffered for GELF; beyond it entries are dropped, never waited for")
	fs.StringVar(&c.Host, "gelf-host", c.Host, `host field of GELF messages ("" = this machine's hostname)`)
	fs.DurationVar(&c.FlushInterval, "log-flush-interval", c.FlushInterval, "how long info and debug lines may wait to be written to stdout together, up to 1s (0: each line at once); warn and error lines are written at once")
	fs.Float64Var(&c.AccessSample, "access-log-sample", c.AccessSample, "fraction of successful requests written to the access log, 0 to 1 (failures are always written)")
}

// Validate checks the settings.
func (c *Config) Validate(v *config.Validator) {
	_, err := logrus.ParseLevel(c.Level)
	v.Check(err == nil && c.Level != "panic" && c.Level != "fatal", "log-level", "%q is not one of trace, debug, info, warn, error", c.Level)
	v.Check(c.Format == "json" || c.Format == "text", "log-format", "%q is not json or text", c.Format)
	if c.GELFAddr != "" {
		host, port, err := net.SplitHostPort(c.GELFAddr)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil:
			v.Check(false, "gelf-addr", "%q is not host:port", c.GELFAddr)
		case host == "":
			v.Check(false, "gelf-addr", "%q has no host", c.GELFAddr)
		case perr != nil || n < 1 || n > 65535:
			v.Check(false, "gelf-addr", "%q has an invalid port", c.GELFAddr)
		}
	}
	v.Check(c.GELFProtocol == "udp" || c.GELFProtocol == "tcp", "gelf-protocol", "%q is not udp or tcp", c.GELFProtocol)
	v.Check(c.QueueSize >= 1 && c.QueueSize <= MaxQueueSize, "gelf-queue-size", "must be between 1 and %d, got %d", MaxQueueSize, c.QueueSize)
	// The negated form also rejects NaN.
	v.Check(c.AccessSample >= 0 && c.AccessSample <= 1, "access-log-sample", "must be between 0 and 1, got %v", c.AccessSample)
	v.Check(c.FlushInterval >= 0 && c.FlushInterval <= MaxFlushInterval, "log-flush-interval", "must be between 0 and %v, got %v", MaxFlushInterval, c.FlushInterval)
	if err := checkHost(c.Host); err != nil {
		v.Check(false, "gelf-host", "%v", err)
	}
}

// checkHost accepts an empty host or a printable one without spaces of at
// most maxHostLen bytes: Graylog shows it as the message source.
func checkHost(h string) error {
	if len(h) > maxHostLen {
		return fmt.Errorf("is %d bytes long, more than %d", len(h), maxHostLen)
	}
	for _, r := range h {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%q contains a space or control character", h)
		}
	}
	return nil
}
