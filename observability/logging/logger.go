package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/config"
)

// fatalFlushTimeout bounds the GELF flush before a Fatal call exits.
const fatalFlushTimeout = 5 * time.Second

// Logger is a service's logger: a logrus.Logger writing to stdout, its hooks
// and, when configured, the GELF sink. Close it on shutdown.
type Logger struct {
	logger *logrus.Logger
	base   *logrus.Entry
	sink   *sink        // nil when GELF is off
	out    *flushWriter // nil when lines are written at once
	sample float64
}

type options struct {
	out    io.Writer
	flush  time.Duration // replaces Config.FlushInterval when positive
	exit   func(int)
	sink   sinkOptions
	fields logrus.Fields
}

// Option configures a Logger.
type Option func(*options)

// WithField adds key=value to every line, beside service and instance
// (the kit adds the instance's track).
func WithField(key string, value any) Option {
	return func(o *options) {
		if o.fields == nil {
			o.fields = logrus.Fields{}
		}
		o.fields[key] = value
	}
}

// WithOutput replaces stdout, for tests. A nil w keeps stdout.
func WithOutput(w io.Writer) Option {
	return func(o *options) {
		if w != nil {
			o.out = w
		}
	}
}

// WithWriteTimeout sets how long the GELF sink waits for one TCP write, DNS
// lookup or dial before it drops the message and reconnects (default 5s).
// It bounds how long a stalled Graylog holds the sink's goroutine, never a
// log call. A non-positive d keeps the default.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.sink.writeTimeout = d
		}
	}
}

// WithExitFunc replaces os.Exit as what Fatal calls after flushing the GELF
// sink, for tests. A nil exit keeps os.Exit.
func WithExitFunc(exit func(int)) Option {
	return func(o *options) {
		if exit != nil {
			o.exit = exit
		}
	}
}

// withBackoff shortens the reconnect backoff, for tests. A non-positive
// bound keeps its default.
func withBackoff(lo, hi time.Duration) Option {
	return func(o *options) {
		if lo > 0 {
			o.sink.backoffMin = lo
		}
		if hi > 0 {
			o.sink.backoffMax = hi
		}
	}
}

// New validates cfg and builds the logger of one service instance. Every
// entry carries service and instance (the hostname when instance is empty).
// With cfg.GELFAddr set it starts the GELF sink, whose counters
// golden_log_messages_sent_total and golden_log_messages_dropped_total are
// registered on reg (nil registers nothing). New does not contact Graylog:
// the sink connects in the background, so a Graylog that is down delays
// nothing.
func New(cfg Config, service, instance string, reg prometheus.Registerer, opts ...Option) (*Logger, error) {
	var v config.Validator
	cfg.Validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if service == "" {
		return nil, errors.New("logging: the service name must not be empty")
	}
	o := options{
		out:  os.Stdout,
		exit: os.Exit,
		sink: sinkOptions{writeTimeout: defaultWriteTimeout, backoffMin: defaultBackoffMin, backoffMax: defaultBackoffMax},
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	hostname := config.Hostname()
	if instance == "" {
		instance = hostname
	}
	host := cfg.Host
	if host == "" {
		host = hostname
	}

	lvl, err := logrus.ParseLevel(cfg.Level)
	if err != nil { // Validate accepted it; kept for safety.
		return nil, config.SettingError("log-level", err)
	}
	lg := logrus.New()
	lg.SetOutput(o.out)
	lg.SetLevel(lvl)
	if cfg.Format == "text" {
		lg.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	} else {
		// logrus.JSONFormatter's output, without its map and encoding/json.
		lg.SetFormatter(jsonFormatter{})
	}
	l := &Logger{
		logger: lg,
		base:   lg.WithFields(baseFields(o.fields, service, instance)),
		sample: cfg.AccessSample,
	}
	if o.flush > 0 {
		cfg.FlushInterval = o.flush
	}
	if cfg.FlushInterval > 0 {
		l.out = newFlushWriter(o.out, cfg.FlushInterval)
		lg.SetOutput(l.out)
		lg.SetFormatter(urgentFormatter{lg.Formatter, l.out})
	}
	// Order matters: request fields first, so that redaction sees them,
	// then redaction, so that neither stdout nor GELF sees a secret.
	lg.AddHook(contextHook{})
	lg.AddHook(redactHook{})
	if cfg.GELFAddr != "" {
		m, err := newSinkMetrics(reg)
		if err != nil {
			return nil, err
		}
		l.sink = newSink(cfg.GELFProtocol, cfg.GELFAddr, cfg.QueueSize, o.sink, m, l.base)
		lg.AddHook(&gelfHook{host: host, sink: l.sink})
	}
	exit := o.exit
	lg.ExitFunc = func(code int) {
		// Fatal exits right after logging: ship its entry first.
		ctx, cancel := context.WithTimeout(context.Background(), fatalFlushTimeout)
		_ = l.Close(ctx)
		cancel()
		exit(code)
	}
	return l, nil
}

// baseFields returns the fields of every line: extra, then service and
// instance, which extra cannot replace.
func baseFields(extra logrus.Fields, service, instance string) logrus.Fields {
	f := make(logrus.Fields, len(extra)+2)
	maps.Copy(f, extra)
	f[FieldService], f[FieldInstance] = service, instance
	return f
}

// Entry returns the base entry, carrying service and instance. Log request
// work with Entry().WithContext(ctx) so that the entry gets the request's
// fields.
func (l *Logger) Entry() *logrus.Entry { return l.base }

// Logger returns the underlying logrus.Logger. Hooks added to it run after
// the GELF hook, so their fields reach stdout only. Its output and formatter
// hold info lines for the flush interval and write warn lines at once:
// replacing either loses that.
func (l *Logger) Logger() *logrus.Logger { return l.logger }

// AccessSample returns the configured fraction of successful requests
// written to the access log.
func (l *Logger) AccessSample() float64 { return l.sample }

// Close flushes the GELF queue and the lines waiting for stdout within
// ctx's deadline and stops the goroutines writing them; it returns an error
// naming how many GELF messages were not sent. Entries logged afterwards
// still reach stdout. Close may be called more than once.
func (l *Logger) Close(ctx context.Context) error {
	var err error
	if l.sink != nil {
		err = l.sink.close(ctx)
	}
	// Last: the sink reports on stdout.
	if l.out != nil {
		if oerr := l.out.close(ctx); oerr != nil && err == nil {
			err = fmt.Errorf("logging: writing the lines held for stdout: %w", oerr)
		}
	}
	return err
}

// withFlushInterval sets the stdout flush interval past what Validate
// accepts, for tests that must see lines held.
func withFlushInterval(d time.Duration) Option {
	return func(o *options) { o.flush = d }
}

// withResolver makes the GELF sink look Graylog's name up with r, for tests.
func withResolver(r *net.Resolver) Option {
	return func(o *options) { o.sink.resolver = r }
}
