package discovery

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

func validConfig() Config {
	c := DefaultConfig()
	c.ConsulAddr = "127.0.0.1:8500"
	c.AdvertiseAddr = "127.0.0.1"
	return c
}

func TestConfigValidate(t *testing.T) {
	emptyFile := filepath.Join(t.TempDir(), "consul.token")
	if err := os.WriteFile(emptyFile, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{DefaultConfig(), validConfig()} {
		var v config.Validator
		c.Validate(&v)
		if err := v.Err(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
	}

	// Discovery off: the other settings do not matter.
	off := Config{AdvertiseAddr: "0.0.0.0"}
	var v config.Validator
	off.Validate(&v)
	if err := v.Err(); err != nil {
		t.Errorf("Validate with discovery off = %v, want nil", err)
	}

	for _, tc := range []struct {
		flag   string
		change func(*Config)
	}{
		{"consul-addr", func(c *Config) { c.ConsulAddr = "localhost" }},
		{"consul-addr", func(c *Config) { c.ConsulAddr = ":8500" }},
		{"consul-addr", func(c *Config) { c.ConsulAddr = "127.0.0.1:http" }},
		{"advertise-addr", func(c *Config) { c.AdvertiseAddr = "" }},
		{"advertise-addr", func(c *Config) { c.AdvertiseAddr = "127.0.0.1:9000" }},
		{"advertise-addr", func(c *Config) { c.AdvertiseAddr = "0.0.0.0" }},
		{"advertise-addr", func(c *Config) { c.AdvertiseAddr = "::" }},
		{"advertise-addr", func(c *Config) { c.AdvertiseAddr = "bad host" }},
		{"consul-check-interval", func(c *Config) { c.CheckInterval = 500 * time.Millisecond }},
		{"consul-check-timeout", func(c *Config) { c.CheckTimeout = 0 }},
		{"consul-check-timeout", func(c *Config) { c.CheckTimeout = c.CheckInterval + time.Second }},
		{"consul-deregister-after", func(c *Config) { c.DeregisterAfter = 59 * time.Second }},
		{"consul-drain-wait", func(c *Config) { c.DrainWait = 0 }},
		{"consul-drain-wait", func(c *Config) { c.DrainWait = RefreshLatency }},
		{"consul-tags", func(c *Config) { c.Tags = []string{"a,b"} }},
		{"consul-tags", func(c *Config) { c.Tags = []string{""} }},
		{"consul-token-file", func(c *Config) { c.TokenFile = "/nonexistent/consul.token" }},
		{"consul-token-file", func(c *Config) { c.TokenFile = emptyFile }},
	} {
		c := validConfig()
		tc.change(&c)
		var v config.Validator
		c.Validate(&v)
		err := v.Err()
		if err == nil {
			t.Errorf("%s: Validate(%+v) = nil, want an error", tc.flag, c)
			continue
		}
		if want := config.Setting(tc.flag); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not name %s", tc.flag, err, want)
		}
	}
}

func TestConfigFlags(t *testing.T) {
	c := DefaultConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--consul-addr=consul:8500", "--advertise-addr=user-1", "--consul-check-interval=3s",
		"--consul-check-timeout=2s", "--consul-deregister-after=2m", "--consul-drain-wait=4s",
		"--consul-tags=blue,canary", "--consul-check-tls-skip-verify=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{ConsulAddr: "consul:8500", AdvertiseAddr: "user-1", CheckInterval: 3 * time.Second,
		CheckTimeout: 2 * time.Second, DeregisterAfter: 2 * time.Minute, DrainWait: 4 * time.Second,
		Tags: []string{"blue", "canary"}}
	if c.ConsulAddr != want.ConsulAddr || c.AdvertiseAddr != want.AdvertiseAddr || c.CheckInterval != want.CheckInterval ||
		c.CheckTimeout != want.CheckTimeout || c.DeregisterAfter != want.DeregisterAfter || c.DrainWait != want.DrainWait ||
		!slices.Equal(c.Tags, want.Tags) || c.CheckTLSSkipVerify {
		t.Errorf("parsed %+v, want %+v", c, want)
	}
}

func TestRegistrationGRPCCheck(t *testing.T) {
	cfg := validConfig()
	cfg.Tags = []string{"blue", TagMetrics}
	reg, err := registration(cfg, Instance{Name: "user", Port: 9002, MetricsPort: 9102, Version: "v1.2.3", Meta: map[string]string{"zone": "a"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if reg.ID != "user-127.0.0.1-9002" || reg.Name != "user" || reg.Address != "127.0.0.1" || reg.Port != 9002 {
		t.Errorf("identity = %q %q %q %d", reg.ID, reg.Name, reg.Address, reg.Port)
	}
	if !slices.Equal(reg.Tags, []string{"blue", TagMetrics}) {
		t.Errorf("tags = %v, want [blue metrics] without duplicates", reg.Tags)
	}
	wantMeta := map[string]string{MetaMetricsPort: "9102", MetaMetricsPath: "/metrics", MetaVersion: "v1.2.3", "zone": "a"}
	for k, v := range wantMeta {
		if reg.Meta[k] != v {
			t.Errorf("Meta[%q] = %q, want %q", k, reg.Meta[k], v)
		}
	}
	c := reg.Check
	if c.GRPC != "127.0.0.1:9002" || !c.GRPCUseTLS || c.TLSServerName != "user" || !c.TLSSkipVerify || c.HTTP != "" {
		t.Errorf("gRPC check = %+v", c)
	}
	if c.Interval != "10s" || c.Timeout != "5s" || c.DeregisterCriticalServiceAfter != "1m0s" {
		t.Errorf("check timings = %q %q %q", c.Interval, c.Timeout, c.DeregisterCriticalServiceAfter)
	}
}

func TestRegistrationHTTPCheck(t *testing.T) {
	cfg := validConfig()
	cfg.AdvertiseAddr = "::1"
	reg, err := registration(cfg, Instance{Name: "gateway", Port: 8080, HTTPCheck: &HTTPCheck{Port: 9100}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if reg.Check.HTTP != "http://[::1]:9100/readyz" || reg.Check.Method != "GET" || reg.Check.GRPC != "" {
		t.Errorf("HTTP check = %+v", reg.Check)
	}
	if reg.ID != "gateway---1-8080" {
		t.Errorf("ID = %q", reg.ID)
	}
	if slices.Contains(reg.Tags, TagMetrics) || reg.Meta[MetaMetricsPort] != "" {
		t.Errorf("no metrics port, yet tags %v meta %v", reg.Tags, reg.Meta)
	}
}

func TestRegistrationErrors(t *testing.T) {
	cfg := validConfig()
	for name, inst := range map[string]Instance{
		"no name":        {Port: 1},
		"no port":        {Name: "user"},
		"bad metrics":    {Name: "user", Port: 1, MetricsPort: 70000},
		"bad meta key":   {Name: "user", Port: 1, Meta: map[string]string{"a.b": "x"}},
		"reserved meta":  {Name: "user", Port: 1, Meta: map[string]string{"consul-x": "x"}},
		"bad check port": {Name: "user", Port: 1, HTTPCheck: &HTTPCheck{}},
		"bad check path": {Name: "user", Port: 1, HTTPCheck: &HTTPCheck{Port: 2, Path: "readyz"}},
	} {
		if _, err := registration(cfg, inst, ""); err == nil {
			t.Errorf("%s: registration(%+v) = nil error", name, inst)
		}
	}
	if _, err := NewRegistrar(DefaultConfig(), Instance{Name: "user", Port: 1}); err == nil || !strings.Contains(err.Error(), "--consul-addr") {
		t.Errorf("NewRegistrar with discovery off = %v, want an error naming --consul-addr", err)
	}
}

func TestTarget(t *testing.T) {
	off := DefaultConfig()
	if target, opts := off.Target("user", "user:9002"); target != "user:9002" || len(opts) != 0 {
		t.Errorf("discovery off: Target = %q, %d options; want the static address alone", target, len(opts))
	}
	on := validConfig()
	target, opts := on.Target("user", "user:9002")
	if target != "consul://127.0.0.1:8500/user?healthy=true" || len(opts) != 1 {
		t.Errorf("discovery on: Target = %q, %d options", target, len(opts))
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	q, err := parseTarget(*u)
	if err != nil || q != (query{agent: "127.0.0.1:8500", service: "user", healthy: true}) {
		t.Errorf("parseTarget(%q) = %+v, %v", target, q, err)
	}
}

func TestParseTargetErrors(t *testing.T) {
	for _, s := range []string{
		"consul:///user",
		"consul://127.0.0.1:8500/",
		"consul://127.0.0.1:8500/a/b",
		"consul://127.0.0.1:8500/user?healthy=maybe",
		"consul://127.0.0.1:8500/user?token=secret",
	} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseTarget(*u); err == nil {
			t.Errorf("parseTarget(%q) = nil error", s)
		}
	}
	u, _ := url.Parse("consul://127.0.0.1:8500/user?tag=blue")
	if q, err := parseTarget(*u); err != nil || q.healthy || q.tag != "blue" {
		t.Errorf("healthy must default to false: %+v, %v", q, err)
	}
}
