package grpcserver

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // flags the validation error must name; nil means valid
	}{
		{"valid", []string{"--grpc-addr", "127.0.0.1:9090", "--rate-limit", "10", "--rate-burst", "20", "--allow", "GetUser=gateway"}, nil},
		{"bad addr", []string{"--grpc-addr", "9090", "--rate-limit", "10", "--rate-burst", "1", "--allow", "GetUser=gateway"}, []string{"--grpc-addr"}},
		{"zero rate and burst, no policy", []string{"--grpc-addr", ":9090", "--rate-limit", "0", "--rate-burst", "0"},
			[]string{"--rate-limit", "--rate-burst", "--allow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			c.RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var v config.Validator
			c.Validate(&v)
			err := v.Err()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			for _, flag := range tt.want {
				if !strings.Contains(err.Error(), flag) {
					t.Errorf("error %q does not name %s", err, flag)
				}
			}
		})
	}

	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	new(Config).RegisterFlags(fs)
	if err := fs.Parse([]string{"--allow", "GetUser"}); err == nil || !strings.Contains(err.Error(), "allow") {
		t.Errorf("--allow GetUser: %v, want a parse error naming the flag", err)
	}
}
