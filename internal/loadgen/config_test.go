package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"until signal", func(c *Config) { c.Duration, c.ReportInterval = 0, 0 }, ""},
		{"https with path", func(c *Config) { c.Target = "https://gw.example.com/api/" }, ""},
		{"no scheme", func(c *Config) { c.Target = "127.0.0.1:8080" }, "--target (GOLDEN_TARGET)"},
		{"ftp", func(c *Config) { c.Target = "ftp://host" }, "--target (GOLDEN_TARGET)"},
		{"credentials", func(c *Config) { c.Target = "http://u:p@host" }, "must not contain credentials"},
		{"query", func(c *Config) { c.Target = "http://host/?a=b" }, "--target (GOLDEN_TARGET)"},
		{"zero rate", func(c *Config) { c.Rate = 0 }, "--rate (GOLDEN_RATE)"},
		{"huge rate", func(c *Config) { c.Rate = 1e9 }, "--rate (GOLDEN_RATE)"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "--duration (GOLDEN_DURATION)"},
		{"zero concurrency", func(c *Config) { c.Concurrency = 0 }, "--concurrency (GOLDEN_CONCURRENCY)"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "--timeout (GOLDEN_TIMEOUT)"},
		{"negative report interval", func(c *Config) { c.ReportInterval = -1 }, "--report-interval (GOLDEN_REPORT_INTERVAL)"},
		{"negative max requests", func(c *Config) { c.MaxRequests = -1 }, "--max-requests (GOLDEN_MAX_REQUESTS)"},
		{"zero users", func(c *Config) { c.Users = 0 }, "--users (GOLDEN_USERS)"},
		{"negative weight", func(c *Config) { c.Mix.Get = -1 }, "--mix (GOLDEN_MIX): weight of get"},
		{"all weights zero", func(c *Config) { c.Mix = Mix{} }, "--mix (GOLDEN_MIX): at least one weight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			var v config.Validator
			c.Validate(&v)
			err := v.Err()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestAllBadValuesAreReportedTogether(t *testing.T) {
	c := DefaultConfig()
	c.Rate, c.Concurrency, c.Timeout = -1, 0, 0
	var v config.Validator
	c.Validate(&v)
	err := v.Err()
	for _, flag := range []string{"--rate", "--concurrency", "--timeout"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("error does not name %s: %v", flag, err)
		}
	}
}

func TestMixFlag(t *testing.T) {
	c := DefaultConfig()
	fs := pflag.NewFlagSet("loadgen", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--mix", "get=60, fault=0", "--mix", "delete=1"}); err != nil {
		t.Fatal(err)
	}
	want := Mix{SignUp: 10, Login: 15, Refresh: 10, Get: 60, List: 15, Delete: 1, Fault: 0}
	if c.Mix != want {
		t.Errorf("mix %+v, want %+v", c.Mix, want)
	}
	if got := c.Mix.String(); got != "signup=10,login=15,refresh=10,get=60,list=15,delete=1,fault=0" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []string{"get", "get=x", "bogus=1", "get=1.5"} {
		m := DefaultMix()
		if err := m.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		} else if m != DefaultMix() {
			t.Errorf("failed Set(%q) changed the mix", bad)
		}
	}
}

func TestDefaultMixAddsUpTo100(t *testing.T) {
	m := DefaultMix()
	total := 0
	for _, op := range mixOps {
		total += *m.weight(op)
	}
	if total != 100 {
		t.Errorf("default weights add up to %d", total)
	}
}
