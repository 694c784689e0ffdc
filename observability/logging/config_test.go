package logging

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

func TestConfigFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	defaults := map[string]string{
		"log-level": "info", "log-format": "json", "gelf-addr": "", "gelf-protocol": "udp",
		"gelf-queue-size": "4096", "access-log-sample": "1", "gelf-host": "",
		"log-flush-interval": "2ms",
	}
	for name, want := range defaults {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag --%s not registered", name)
			continue
		}
		if f.DefValue != want {
			t.Errorf("--%s default = %q, want %q", name, f.DefValue, want)
		}
	}
	err := fs.Parse([]string{"--gelf-addr=graylog:12201", "--gelf-protocol=tcp", "--gelf-queue-size=10",
		"--access-log-sample=0.25", "--log-level=debug", "--log-format=text", "--gelf-host=user-1",
		"--log-flush-interval=10ms"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Level: "debug", Format: "text", GELFAddr: "graylog:12201", GELFProtocol: "tcp", QueueSize: 10, AccessSample: 0.25, Host: "user-1", FlushInterval: 10 * time.Millisecond}
	if cfg != want {
		t.Errorf("parsed %+v, want %+v", cfg, want)
	}
	var v config.Validator
	cfg.Validate(&v)
	if err := v.Err(); err != nil {
		t.Errorf("Validate(%+v) = %v", cfg, err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		flag string // "" when valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"udp on", func(c *Config) { c.GELFAddr = "127.0.0.1:12201" }, ""},
		{"sample 0", func(c *Config) { c.AccessSample = 0 }, ""},
		{"bad level", func(c *Config) { c.Level = "loud" }, "--log-level"},
		{"panic level", func(c *Config) { c.Level = "panic" }, "--log-level"},
		{"bad format", func(c *Config) { c.Format = "xml" }, "--log-format"},
		{"addr without port", func(c *Config) { c.GELFAddr = "graylog" }, "--gelf-addr"},
		{"addr without host", func(c *Config) { c.GELFAddr = ":12201" }, "--gelf-addr"},
		{"addr port 0", func(c *Config) { c.GELFAddr = "graylog:0" }, "--gelf-addr"},
		{"addr port text", func(c *Config) { c.GELFAddr = "graylog:gelf" }, "--gelf-addr"},
		{"bad protocol", func(c *Config) { c.GELFProtocol = "http" }, "--gelf-protocol"},
		{"queue 0", func(c *Config) { c.QueueSize = 0 }, "--gelf-queue-size"},
		{"queue huge", func(c *Config) { c.QueueSize = MaxQueueSize + 1 }, "--gelf-queue-size"},
		{"sample negative", func(c *Config) { c.AccessSample = -0.1 }, "--access-log-sample"},
		{"sample above 1", func(c *Config) { c.AccessSample = 1.5 }, "--access-log-sample"},
		{"sample NaN", func(c *Config) { c.AccessSample = math.NaN() }, "--access-log-sample"},
		{"flush at once", func(c *Config) { c.FlushInterval = 0 }, ""},
		{"flush negative", func(c *Config) { c.FlushInterval = -time.Millisecond }, "--log-flush-interval"},
		{"flush too slow", func(c *Config) { c.FlushInterval = MaxFlushInterval + 1 }, "--log-flush-interval"},
		{"host with space", func(c *Config) { c.Host = "my host" }, "--gelf-host"},
		{"host too long", func(c *Config) { c.Host = strings.Repeat("h", 256) }, "--gelf-host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			var v config.Validator
			cfg.Validate(&v)
			err := v.Err()
			if tt.flag == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.flag)
			}
			// New refuses what Validate refuses.
			if _, err := New(cfg, "user", "", nil); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestNewNeedsService(t *testing.T) {
	if _, err := New(DefaultConfig(), "", "", nil); err == nil {
		t.Error("New accepted an empty service name")
	}
}
