// Package postgres connects a service to its PostgreSQL database: a pgx
// connection pool (pgxpool) whose every query is a span of the request's
// trace (otelpgx: db.system, operation and statement, never parameter
// values), whose statistics are saturation metrics, and whose schema is
// brought up to date at start by the service's embedded goose migrations,
// under a PostgreSQL advisory lock so that instances starting together
// migrate once.
//
// The connection URL is a secret (it may carry the password): it appears in
// no log, error, span or metric; errors name the setting and the host.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/golden-stack/golden/observability/config"
)

// Config holds the database settings of a service.
type Config struct {
	// URL is the connection string, postgres://user:password@host:port/db
	// or the key=value form. It is never printed.
	URL string
	// MaxConns bounds the pool; a request waits for a free connection
	// within its deadline.
	MaxConns int
	// ConnectTimeout bounds each new connection, so that a database that is
	// down fails requests fast instead of piling them up.
	ConnectTimeout time.Duration
}

// DefaultConfig returns the defaults: no URL (the caller decides whether
// one is needed), 10 connections, 2s to connect.
func DefaultConfig() Config {
	return Config{MaxConns: 10, ConnectTimeout: 2 * time.Second}
}

// RegisterFlags adds --db-url, --db-max-conns and --db-connect-timeout.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "db-url", c.URL, "PostgreSQL connection URL, postgres://user:password@host:5432/db (a secret: prefer GOLDEN_DB_URL)")
	fs.IntVar(&c.MaxConns, "db-max-conns", c.MaxConns, "most connections open to PostgreSQL at once")
	fs.DurationVar(&c.ConnectTimeout, "db-connect-timeout", c.ConnectTimeout, "how long a new PostgreSQL connection may take")
}

// Validate checks the settings; the URL must be set and well-formed. Its
// errors never show the URL.
func (c *Config) Validate(v *config.Validator) {
	if c.URL == "" {
		v.Check(false, "db-url", "must be set")
	} else if _, err := c.poolConfig(); err != nil {
		v.Check(false, "db-url", "%v", err)
	}
	v.Check(c.MaxConns >= 1 && c.MaxConns <= 1000, "db-max-conns", "must be between 1 and 1000, got %d", c.MaxConns)
	v.Positive("db-connect-timeout", c.ConnectTimeout)
}

// poolConfig parses the URL. pgx's own parse errors quote the input, so
// they are replaced by one that does not.
func (c *Config) poolConfig() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, errors.New("not a PostgreSQL connection URL (postgres://user:password@host:port/database)")
	}
	if pc.ConnConfig.Host == "" || pc.ConnConfig.Database == "" {
		return nil, errors.New("must name the host and the database")
	}
	pc.MaxConns = int32(c.MaxConns)
	pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	return pc, nil
}

// Target returns host:port/database of the URL, for messages: what the
// URL points at without who connects or with what password.
func (c *Config) Target() string {
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return "(invalid --db-url)"
	}
	return net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))) + "/" + pc.ConnConfig.Database
}

// Migrations are a service's schema: goose SQL files in the folder Dir of
// FS (usually embedded), their applied versions recorded in the table
// Table (one per service, so that services sharing a database keep
// separate histories).
type Migrations struct {
	FS    fs.FS
	Dir   string
	Table string
}

// Open connects to the database cfg names, checks that it answers within
// the connect timeout, applies the migrations (under an advisory lock) and
// returns the pool. Every query is traced with tp, and the pool's metrics
// are registered on reg (nil registers nothing). Errors name --db-url and
// the host, never the password.
func Open(ctx context.Context, cfg Config, m Migrations, tp trace.TracerProvider, reg prometheus.Registerer) (*pgxpool.Pool, error) {
	pc, err := cfg.poolConfig()
	if err != nil {
		return nil, config.SettingError("db-url", err)
	}
	pc.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tp))
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, config.SettingError("db-url", fmt.Errorf("PostgreSQL at %s: %w", cfg.Target(), redact(err, cfg.URL)))
	}
	if err := migrate(ctx, cfg, pool, m); err != nil {
		pool.Close()
		return nil, err
	}
	if reg != nil {
		if err := reg.Register(newPoolCollector(pool)); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: registering pool metrics: %w", err)
		}
	}
	return pool, nil
}

// migrate brings the schema up to date. The advisory lock is polled every
// second for two minutes: an instance that starts while another migrates
// waits for it.
func migrate(ctx context.Context, cfg Config, pool *pgxpool.Pool, m Migrations) error {
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		return config.SettingError("db-url", fmt.Errorf("cannot reach PostgreSQL at %s: %w", cfg.Target(), redact(err, cfg.URL)))
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
	if err != nil {
		return err
	}
	files, err := fs.Sub(m.FS, m.Dir)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithTableName(m.Table), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrating %s: %w", cfg.Target(), redact(err, cfg.URL))
	}
	return nil
}
