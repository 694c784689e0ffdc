package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestServeRejectsBadSettings runs the real command line: every bad value,
// from a flag or from the environment, is refused at start with an error
// that names the setting.
func TestServeRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"grpc addr", []string{"serve", "user", "--grpc-addr", "nope"}, nil, []string{"--grpc-addr (GOLDEN_GRPC_ADDR)", `"nope"`}},
		{"admin addr", []string{"serve", "user", "--admin-addr", ":http"}, nil, []string{"--admin-addr (GOLDEN_ADMIN_ADDR)"}},
		{"rate limit zero", []string{"serve", "user", "--rate-limit", "0"}, nil, []string{"--rate-limit (GOLDEN_RATE_LIMIT)"}},
		{"rate burst zero", []string{"serve", "auth", "--rate-burst", "0"}, nil, []string{"--rate-burst (GOLDEN_RATE_BURST)"}},
		{"rate limit from env", []string{"serve", "user"}, map[string]string{"GOLDEN_RATE_LIMIT": "fast"}, []string{"GOLDEN_RATE_LIMIT (--rate-limit)", `"fast"`}},
		{"policy", []string{"serve", "user", "--allow", "GetUser"}, nil, []string{"--allow", "Method=identity"}},
		{"policy from env", []string{"serve", "user"}, map[string]string{"GOLDEN_ALLOW": "GetUser=gateway,"}, []string{"GOLDEN_ALLOW (--allow)", "empty identity"}},
		{"tls files", []string{"serve", "user", "--tls-ca", "/nonexistent/ca.crt"}, nil, []string{"--tls-ca (GOLDEN_TLS_CA)", "--tls-cert (GOLDEN_TLS_CERT)", "--tls-key (GOLDEN_TLS_KEY)"}},
		{"token public key", []string{"serve", "user", "--token-public-key", "/nonexistent.pub"}, nil, []string{"--token-public-key (GOLDEN_TOKEN_PUBLIC_KEY)"}},
		{"token issuer", []string{"serve", "user", "--token-issuer", ""}, nil, []string{"--token-issuer (GOLDEN_TOKEN_ISSUER): must be set"}},
		{"bcrypt cost", []string{"serve", "user", "--bcrypt-cost", "99"}, nil, []string{"--bcrypt-cost (GOLDEN_BCRYPT_COST)"}},
		{"shutdown timeout", []string{"serve", "user", "--shutdown-timeout", "0s"}, nil, []string{"--shutdown-timeout (GOLDEN_SHUTDOWN_TIMEOUT)"}},
		{"shutdown timeout from env", []string{"serve", "gateway"}, map[string]string{"GOLDEN_SHUTDOWN_TIMEOUT": "soon"}, []string{"GOLDEN_SHUTDOWN_TIMEOUT (--shutdown-timeout)", `"soon"`}},
		{"log level", []string{"serve", "auth", "--log-level", "loud"}, nil, []string{"--log-level (GOLDEN_LOG_LEVEL)"}},
		{"log format", []string{"serve", "auth", "--log-format", "xml"}, nil, []string{"--log-format (GOLDEN_LOG_FORMAT)"}},
		{"access ttl", []string{"serve", "auth", "--access-ttl", "-1s"}, nil, []string{"--access-ttl (GOLDEN_ACCESS_TTL)"}},
		{"refresh shorter than access", []string{"serve", "auth", "--access-ttl", "1h", "--refresh-ttl", "10m"}, nil, []string{"--refresh-ttl (GOLDEN_REFRESH_TTL)"}},
		{"auth user addr", []string{"serve", "auth", "--user-addr", ""}, nil, []string{"--user-addr (GOLDEN_USER_ADDR): must be set"}},
		{"auth call timeout", []string{"serve", "auth", "--call-timeout", "0s"}, nil, []string{"--call-timeout (GOLDEN_CALL_TIMEOUT)"}},
		{"token private key", []string{"serve", "auth", "--token-private-key", "/nonexistent.key"}, nil, []string{"--token-private-key (GOLDEN_TOKEN_PRIVATE_KEY)"}},
		{"http addr", []string{"serve", "gateway", "--http-addr", "8080"}, nil, []string{"--http-addr (GOLDEN_HTTP_ADDR)"}},
		{"gateway auth addr", []string{"serve", "gateway", "--auth-addr", ""}, nil, []string{"--auth-addr (GOLDEN_AUTH_ADDR): must be set"}},
		{"body limit", []string{"serve", "gateway", "--max-body-bytes", "10"}, nil, []string{"--max-body-bytes (GOLDEN_MAX_BODY_BYTES)"}},
		{"body limit from env", []string{"serve", "gateway"}, map[string]string{"GOLDEN_MAX_BODY_BYTES": "1MB"}, []string{"GOLDEN_MAX_BODY_BYTES (--max-body-bytes)"}},
		{"all reports every bad value", []string{"serve", "user", "--grpc-addr", "x", "--rate-limit", "-1", "--log-level", "loud"}, nil, []string{"--grpc-addr", "--rate-limit", "--log-level"}},
		{"all command", []string{"all", "--http-addr", "nowhere"}, nil, []string{"--http-addr (GOLDEN_HTTP_ADDR)"}},
		{"unknown service", []string{"serve", "billing"}, nil, []string{"billing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cmd := newRootCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(tt.args)
			err := cmd.Execute()
			if err == nil {
				t.Fatalf("no error; output %q", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
