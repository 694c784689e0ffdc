package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/golden-stack/golden/observability/config"
)

const secret = "s3cret-pa55"

func TestValidateNamesSettingNeverPassword(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"", "--db-url (GOLDEN_DB_URL): must be set"},
		{"postgres://golden:" + secret + "@[::1", "not a PostgreSQL connection URL"},
		{"postgres://golden:" + secret + "@db:5432/", "must name the host and the database"},
		{"host=db password=" + secret + " port=notaport dbname=golden", "not a PostgreSQL connection URL"},
	} {
		c := DefaultConfig()
		c.URL = tc.url
		var v config.Validator
		c.Validate(&v)
		err := v.Err()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q) = %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("Validate(%q) shows the password: %v", tc.url, err)
		}
	}
	c := DefaultConfig()
	c.URL, c.MaxConns, c.ConnectTimeout = "postgres://golden:"+secret+"@db:5432/golden", 0, 0
	var v config.Validator
	c.Validate(&v)
	for _, want := range []string{"--db-max-conns", "--db-connect-timeout"} {
		if err := v.Err(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want an error naming %s", err, want)
		}
	}
}

func TestTarget(t *testing.T) {
	c := Config{URL: "postgres://golden:" + secret + "@db.example:6543/accounts?sslmode=disable"}
	if got := c.Target(); got != "db.example:6543/accounts" {
		t.Errorf("Target() = %q", got)
	}
}

// TestOpenUnreachable opens a database nobody listens for: a fast error
// naming --db-url and the host, without the password.
func TestOpenUnreachable(t *testing.T) {
	c := DefaultConfig()
	c.URL = "postgres://golden:" + secret + "@127.0.0.1:1/golden?sslmode=disable"
	c.ConnectTimeout = time.Second
	start := time.Now()
	_, err := Open(context.Background(), c, Migrations{}, noop.NewTracerProvider(), nil)
	var bad *config.BadSetting
	if !errors.As(err, &bad) || bad.Flag != "db-url" || !strings.Contains(err.Error(), "127.0.0.1:1/golden") {
		t.Errorf("Open: %v, want an error naming --db-url and 127.0.0.1:1/golden", err)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("Open's error shows the password: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Open took %s to fail", took)
	}
}

func TestRedact(t *testing.T) {
	url := "postgres://golden:" + secret + "@db:5432/golden"
	if got := redact(errors.New("auth failed for "+secret), url).Error(); strings.Contains(got, secret) || !strings.Contains(got, "[redacted]") {
		t.Errorf("redact = %q", got)
	}
	if redact(nil, url) != nil {
		t.Error("redact(nil) != nil")
	}
}
