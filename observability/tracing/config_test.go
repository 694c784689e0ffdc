package tracing

import (
	"math"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		flag   string // "" for valid
		msg    string
	}{
		{"defaults", func(*Config) {}, "", ""},
		{"endpoint host:port", func(c *Config) { c.Endpoint = "jaeger:4317" }, "", ""},
		{"endpoint ipv6", func(c *Config) { c.Endpoint = "[::1]:4317" }, "", ""},
		{"ratio 0", func(c *Config) { c.SampleRatio = 0 }, "", ""},
		{"ratio 0.25", func(c *Config) { c.SampleRatio = 0.25 }, "", ""},
		{"queue 1", func(c *Config) { c.QueueSize = 1 }, "", ""},
		{"queue max", func(c *Config) { c.QueueSize = MaxQueueSize }, "", ""},
		{"endpoint with scheme", func(c *Config) { c.Endpoint = "http://jaeger:4317" }, "otlp-endpoint", "not host:port"},
		{"endpoint without port", func(c *Config) { c.Endpoint = "jaeger" }, "otlp-endpoint", "not host:port"},
		{"endpoint without host", func(c *Config) { c.Endpoint = ":4317" }, "otlp-endpoint", "not host:port"},
		{"endpoint port 0", func(c *Config) { c.Endpoint = "jaeger:0" }, "otlp-endpoint", "port from 1 to 65535"},
		{"endpoint port too big", func(c *Config) { c.Endpoint = "jaeger:65536" }, "otlp-endpoint", "port from 1 to 65535"},
		{"endpoint port name", func(c *Config) { c.Endpoint = "jaeger:otlp" }, "otlp-endpoint", "port from 1 to 65535"},
		{"ratio negative", func(c *Config) { c.SampleRatio = -0.1 }, "trace-sample-ratio", "from 0 to 1, got -0.1"},
		{"ratio above 1", func(c *Config) { c.SampleRatio = 1.5 }, "trace-sample-ratio", "from 0 to 1, got 1.5"},
		{"ratio NaN", func(c *Config) { c.SampleRatio = math.NaN() }, "trace-sample-ratio", "from 0 to 1, got NaN"},
		{"environment empty", func(c *Config) { c.Environment = "" }, "deployment-environment", "must be set"},
		{"queue 0", func(c *Config) { c.QueueSize = 0 }, "trace-queue-size", "from 1 to 1048576, got 0"},
		{"queue negative", func(c *Config) { c.QueueSize = -5 }, "trace-queue-size", "got -5"},
		{"queue too big", func(c *Config) { c.QueueSize = MaxQueueSize + 1 }, "trace-queue-size", "got 1048577"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			var v config.Validator
			c.Validate(&v)
			err := v.Err()
			if tt.flag == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming --%s", tt.flag)
			}
			if want := config.Setting(tt.flag); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	c := Config{Endpoint: "nope", SampleRatio: 2, QueueSize: 0}
	var v config.Validator
	c.Validate(&v)
	err := v.Err()
	for _, flag := range []string{"otlp-endpoint", "trace-sample-ratio", "deployment-environment", "trace-queue-size"} {
		if err == nil || !strings.Contains(err.Error(), config.Setting(flag)) {
			t.Errorf("error %v does not name --%s", err, flag)
		}
	}
}

func TestConfigFlagsAndEnv(t *testing.T) {
	c := DefaultConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	want := map[string]string{
		"otlp-endpoint":          "",
		"otlp-insecure":          "true",
		"trace-sample-ratio":     "1",
		"deployment-environment": "development",
		"trace-queue-size":       "2048",
	}
	for name, def := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Fatalf("flag --%s not registered", name)
		}
		if f.DefValue != def {
			t.Errorf("--%s default = %q, want %q", name, f.DefValue, def)
		}
	}

	if err := fs.Parse([]string{"--trace-sample-ratio=0.5"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"GOLDEN_OTLP_ENDPOINT":          "jaeger:4317",
		"GOLDEN_OTLP_INSECURE":          "false",
		"GOLDEN_TRACE_SAMPLE_RATIO":     "0.1", // the flag wins
		"GOLDEN_DEPLOYMENT_ENVIRONMENT": "staging",
		"GOLDEN_TRACE_QUEUE_SIZE":       "100",
	}
	if err := config.ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	got := c
	wantCfg := Config{Endpoint: "jaeger:4317", Insecure: false, SampleRatio: 0.5, Environment: "staging", QueueSize: 100}
	if got != wantCfg {
		t.Errorf("config = %+v, want %+v", got, wantCfg)
	}
}
