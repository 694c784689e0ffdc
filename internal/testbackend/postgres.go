package testbackend

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/golden-stack/golden/observability/postgres"
)

// PostgresBin is where Debian's postgresql-15 package installs the server
// (scripts/install-backends.sh postgres installs it where missing): the
// major version docker-compose.yml pins.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// postgresStartTimeout bounds how long a fresh server may take to accept
// connections (about a second here).
const postgresStartTimeout = 30 * time.Second

// Postgres is a PostgreSQL server in a folder of its own, on a loopback port
// chosen once, so that it can be stopped and started again where clients
// expect it. Its superuser is "golden" and needs no password (trust on
// loopback only).
type Postgres struct {
	// Addr is the host:port the server listens on.
	Addr string
	dir  string
	run  []string // the command that runs the server, as the right user
	proc *Process
	dbs  atomic.Int64 // databases made by NewDatabase
}

// StartPostgres initializes a database cluster in a temporary folder and
// starts a server on it, stopped and removed when the test ends. It skips
// the test when PostgreSQL is not installed (fails it under
// GOLDEN_REQUIRE_BACKENDS). initdb refuses to run as root, so as root the
// cluster belongs to the user nobody and the server runs as nobody.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	if _, err := os.Stat(filepath.Join(PostgresBin, "postgres")); err != nil {
		msg := fmt.Sprintf("PostgreSQL 15 not installed in %s: run scripts/install-backends.sh postgres", PostgresBin)
		if os.Getenv("GOLDEN_REQUIRE_BACKENDS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Not t.TempDir: its parents are private to root, and nobody must reach
	// the cluster.
	dir, err := os.MkdirTemp("", "golden-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var asUser []string
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("PostgreSQL as root needs the user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		asUser = []string{"setpriv", "--reuid=" + nobody.Uid, "--regid=" + nobody.Gid, "--clear-groups"}
	}
	data := filepath.Join(dir, "data")
	initdb := append(append([]string{}, asUser...), filepath.Join(PostgresBin, "initdb"),
		"-D", data, "-U", "golden", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, initdb[0], initdb[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	p := &Postgres{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	p.run = append(append([]string{}, asUser...), filepath.Join(PostgresBin, "postgres"),
		"-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		// A test server: no durability, few connections, quick checkpoints.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=100", "-c", "shared_buffers=32MB")
	p.Start(t)
	return p
}

// DSN returns the connection string of the database name: "postgres",
// which initdb creates, or one made by CreateDatabase.
func (p *Postgres) DSN(database string) string {
	return fmt.Sprintf("postgres://golden@%s/%s?sslmode=disable", p.Addr, database)
}

// CreateDatabase creates the database name, for a test of its own.
func (p *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	psql := exec.CommandContext(ctx, filepath.Join(PostgresBin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
		p.DSN("postgres"), "-c", "CREATE DATABASE "+name)
	if out, err := psql.CombinedOutput(); err != nil {
		t.Fatalf("creating database %s: %v\n%s", name, err, out)
	}
	return p.DSN(name)
}

// NewDatabase creates a database of its own for one store under test and
// returns its connection string.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	return p.CreateDatabase(t, fmt.Sprintf("test%d", p.dbs.Add(1)))
}

// Start starts the server (again) on its folder and port, and waits until
// it accepts connections.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	if p.proc != nil && !p.proc.Exited() {
		return
	}
	p.proc = Start(t, p.run[0], p.run[1:]...)
	p.proc.WaitFor(t, postgresStartTimeout, p.ready)
}

// Stop stops the server (fast shutdown: open connections are closed).
func (p *Postgres) Stop() {
	if p.proc != nil {
		p.proc.Stop()
	}
}

// ready reports whether the server accepts connections, as pg_isready does.
func (p *Postgres) ready() error {
	out, err := exec.Command(filepath.Join(PostgresBin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", p.port(), "-t", "2").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_isready: %v %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (p *Postgres) port() string {
	_, port, _ := net.SplitHostPort(p.Addr)
	return port
}

// OpenPool opens the database at dsn as a service does: a pool with the
// schema of m migrated, closed when the test ends.
func OpenPool(t testing.TB, dsn string, m postgres.Migrations) *pgxpool.Pool {
	t.Helper()
	cfg := postgres.DefaultConfig()
	cfg.URL = dsn
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, cfg, m, noop.NewTracerProvider(), nil)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
