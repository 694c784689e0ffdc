package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestEnvName(t *testing.T) {
	if got := EnvName("grpc-addr"); got != "GOLDEN_GRPC_ADDR" {
		t.Fatalf("EnvName = %q", got)
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"GOLDEN_NAME":    "from-env",
		"GOLDEN_TIMEOUT": "3s",
		"GOLDEN_COUNT":   "7",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	name := fs.String("name", "default", "")
	timeout := fs.Duration("timeout", time.Second, "")
	count := fs.Int("count", 1, "")
	if err := fs.Parse([]string{"--count=9"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs, lookup); err != nil {
		t.Fatal(err)
	}
	if *name != "from-env" || *timeout != 3*time.Second {
		t.Fatalf("env not applied: name=%q timeout=%s", *name, *timeout)
	}
	if *count != 9 {
		t.Fatalf("command line must win over env: count=%d", *count)
	}
}

func TestApplyEnvNamesEveryBadValue(t *testing.T) {
	env := map[string]string{"GOLDEN_TIMEOUT": "soon", "GOLDEN_COUNT": "many", "GOLDEN_ON": "perhaps"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Duration("timeout", time.Second, "")
	fs.Int("count", 1, "")
	fs.Bool("on", false, "")
	err := ApplyEnv(fs, lookup)
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"GOLDEN_TIMEOUT (--timeout)", `"soon"`, "GOLDEN_COUNT (--count)", `"many"`, "GOLDEN_ON (--on)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestValidator(t *testing.T) {
	tests := []struct {
		name  string
		check func(v *Validator)
		want  string // "" means valid
	}{
		{"good addr", func(v *Validator) { v.Addr("grpc-addr", "127.0.0.1:9000") }, ""},
		{"empty host addr", func(v *Validator) { v.Addr("grpc-addr", ":9000") }, ""},
		{"no port", func(v *Validator) { v.Addr("grpc-addr", "localhost") }, "--grpc-addr (GOLDEN_GRPC_ADDR): \"localhost\" is not host:port"},
		{"bad port", func(v *Validator) { v.Addr("admin-addr", ":http") }, "--admin-addr (GOLDEN_ADMIN_ADDR): \":http\" has an invalid port"},
		{"port range", func(v *Validator) { v.Addr("admin-addr", ":70000") }, "--admin-addr"},
		{"zero duration", func(v *Validator) { v.Positive("call-timeout", 0) }, "--call-timeout (GOLDEN_CALL_TIMEOUT): must be greater than 0"},
		{"missing file", func(v *Validator) { v.FileExists("tls-cert", "/nonexistent/x.crt") }, "--tls-cert (GOLDEN_TLS_CERT): cannot read"},
		{"empty file", func(v *Validator) { v.FileExists("tls-key", "") }, "--tls-key (GOLDEN_TLS_KEY): must be set"},
		{"dir not file", func(v *Validator) { v.FileExists("tls-ca", t.TempDir()) }, "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Validator
			tt.check(&v)
			err := v.Err()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
