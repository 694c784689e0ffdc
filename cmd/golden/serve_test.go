package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/metrics"
)

// TestServeRejectsBadSettings runs the real command line: every bad value,
// from a flag or from the environment, is refused at start with an error
// that names the setting.
// TestServeRejectsBadSettings: every bad setting, argument or flag of
// serve and all is named in the error, and is a usage error (exit 2).
func TestServeRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
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
		{"all command", []string{"all", "--dir", dir, "--http-addr", "nowhere"}, nil, []string{"--http-addr (GOLDEN_HTTP_ADDR)"}},
		{"all reports every bad value of every service", []string{"all", "--dir", dir, "--http-addr", "nowhere", "--user-addr", "x", "--log-level", "loud", "--otlp-endpoint", "no port"},
			nil, []string{"--http-addr (GOLDEN_HTTP_ADDR)", "--user-addr (GOLDEN_USER_ADDR)", "--log-level (GOLDEN_LOG_LEVEL)", "--otlp-endpoint (GOLDEN_OTLP_ENDPOINT)"}},
		{"all from env", []string{"all", "--dir", dir}, map[string]string{"GOLDEN_HTTP_ADDR": ":nope"}, []string{"GOLDEN_HTTP_ADDR"}},
		{"all: two services on one port", []string{"all", "--dir", dir, "--http-addr", "127.0.0.1:8181", "--user-addr", "127.0.0.1:0", "--auth-addr", "127.0.0.1:0", "--gateway-admin-addr", ":8181"},
			nil, []string{"--gateway-admin-addr (GOLDEN_GATEWAY_ADMIN_ADDR): port 8181 is also --http-addr's"}},
		{"unknown service", []string{"serve", "billing"}, nil, []string{"billing"}},
		{"no service", []string{"serve"}, nil, []string{"auth, user or gateway"}},
		{"extra argument", []string{"serve", "user", "extra"}, nil, []string{"extra"}},
		{"unknown flag", []string{"serve", "user", "--colour"}, nil, []string{"--colour"}},
		{"all: unknown flag", []string{"all", "--grpc-addr", ":1"}, nil, []string{"--grpc-addr"}},
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
				// A setting is named once, even one that all three
				// services of `golden all` share.
				n := strings.Count(err.Error(), w)
				if n == 0 || (strings.HasPrefix(w, "--") && strings.Contains(w, "(GOLDEN_") && n != 1) {
					t.Errorf("error mentions %q %d times:\n%v", w, n, err)
				}
			}
			if code := exitCode(err); code != exitUsage {
				t.Errorf("exit status %d, want %d (usage)", code, exitUsage)
			}
		})
	}
}

// TestBusyPortNamesSettingAndReleasesPorts starts each service, and
// `golden all`, with one of its ports already taken: the command must fail
// (not panic) with an error naming the flag that set the port, as the
// command spells it, and leave every other port it was given free again.
func TestBusyPortNamesSettingAndReleasesPorts(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if _, err := pki.Ensure(certs, pki.EnsureOptions{Names: []string{"auth", "user", "gateway"}}); err != nil {
		t.Fatal(err)
	}
	serveFlags := func(name string) []string {
		return []string{"serve", name, "--log-level", "error",
			"--tls-ca", filepath.Join(certs, "ca.crt"),
			"--tls-cert", filepath.Join(certs, name+".crt"),
			"--tls-key", filepath.Join(certs, name+".key"),
		}
	}
	tests := []struct {
		name  string
		args  []string
		ports []string // flags given a free port
		busy  string   // flag given the busy port
	}{
		{"user grpc", append(serveFlags("user"), "--token-public-key", filepath.Join(certs, "token-signing.pub")), []string{"admin-addr"}, "grpc-addr"},
		{"user admin", append(serveFlags("user"), "--token-public-key", filepath.Join(certs, "token-signing.pub")), []string{"grpc-addr"}, "admin-addr"},
		{"auth grpc", append(serveFlags("auth"), "--token-private-key", filepath.Join(certs, "token-signing.key")), []string{"admin-addr"}, "grpc-addr"},
		{"auth admin", append(serveFlags("auth"), "--token-private-key", filepath.Join(certs, "token-signing.key")), []string{"grpc-addr"}, "admin-addr"},
		{"gateway http", serveFlags("gateway"), []string{"admin-addr"}, "http-addr"},
		{"gateway admin", serveFlags("gateway"), []string{"http-addr"}, "admin-addr"},
		{"all: user's port", []string{"all", "--dir", dir}, []string{"http-addr", "auth-addr", "gateway-admin-addr", "auth-admin-addr", "user-admin-addr"}, "user-addr"},
		{"all: auth's admin port", []string{"all", "--dir", dir}, []string{"http-addr", "auth-addr", "user-addr", "gateway-admin-addr", "user-admin-addr"}, "auth-admin-addr"},
		{"all: gateway's port", []string{"all", "--dir", dir}, []string{"auth-addr", "user-addr", "gateway-admin-addr", "auth-admin-addr", "user-admin-addr"}, "http-addr"},
		{"all: gateway's admin port", []string{"all", "--dir", dir}, []string{"http-addr", "auth-addr", "user-addr", "auth-admin-addr", "user-admin-addr"}, "gateway-admin-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			args := append(slices.Clone(tt.args), "--"+tt.busy, busy.Addr().String())
			var free []string
			for _, flag := range tt.ports {
				addr := testbackend.FreeAddr(t)
				free = append(free, addr)
				args = append(args, "--"+flag, addr)
			}
			cmd := newRootCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(args)
			err = cmd.Execute()
			if err == nil {
				t.Fatalf("no error with --%s busy; output %q", tt.busy, out.String())
			}
			if want := config.Setting(tt.busy) + ": listen tcp"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
				t.Errorf("error does not name %q and the busy address:\n%v", want, err)
			}
			for i, addr := range free {
				lis, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("--%s %s still taken after the failed start: %v", tt.ports[i], addr, err)
					continue
				}
				_ = lis.Close()
			}
		})
	}
}

// silentAddr returns the address of a loopback listener that accepts
// connections and never answers, as a backend that hangs does.
func silentAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// TestServeExitsCleanWithTelemetryDown runs `golden serve user` with
// Graylog (GELF over TCP) and Jaeger refusing connections, then with both
// accepting and never answering: a SIGTERM drain must still end without an
// error (exit 0), since the service itself did not fail, and within
// --shutdown-timeout, since a container's grace period ends in SIGKILL.
func TestServeExitsCleanWithTelemetryDown(t *testing.T) {
	const shutdownTimeout = 3 * time.Second
	for name, telemetry := range map[string]func(testing.TB) string{"refused": testbackend.FreeAddr, "silent": silentAddr} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"user"}}); err != nil {
				t.Fatal(err)
			}
			admin := testbackend.FreeAddr(t)
			cmd := newRootCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs([]string{"serve", "user", "--log-level", "info",
				"--grpc-addr", "127.0.0.1:0", "--admin-addr", admin,
				"--tls-ca", filepath.Join(dir, "ca.crt"), "--tls-cert", filepath.Join(dir, "user.crt"), "--tls-key", filepath.Join(dir, "user.key"),
				"--token-public-key", filepath.Join(dir, "token-signing.pub"),
				"--gelf-addr", telemetry(t), "--gelf-protocol", "tcp", "--otlp-endpoint", telemetry(t),
				"--shutdown-timeout", shutdownTimeout.String()})
			ctx, sigterm := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- cmd.ExecuteContext(ctx) }()
			ready := func() bool {
				resp, err := http.Get("http://" + admin + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}
			for deadline := time.Now().Add(20 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					sigterm()
					t.Fatalf("not ready within 20s: %v", <-done)
				}
			}
			sigterm()
			stopped := time.Now()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("clean drain with Graylog and Jaeger down ended with %v, want exit 0", err)
				}
				// The deadline, plus what the last steps take to return.
				if took := time.Since(stopped); took > shutdownTimeout+time.Second {
					t.Errorf("serve stopped %s after SIGTERM, want within --shutdown-timeout %s", took.Round(time.Millisecond), shutdownTimeout)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not stop within 30s of SIGTERM")
			}
		})
	}
}

// TestVersion prints the build version the metrics report, as a command
// and as --version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("golden %v: %v", args, err)
		}
		want := "golden " + metrics.BuildInfo{}.Resolve().Version
		if !strings.HasPrefix(out.String(), want) {
			t.Errorf("golden %v printed %q, want it to start with %q", args, out.String(), want)
		}
	}
}

// TestAllWithConsulFaultsAndDebugPages runs `golden all` with the kit's
// shared flags, as a user without Docker would: the three services register
// in a real Consul, a fault set in Consul reaches the user service, and the
// debug pages answer.
func TestAllWithConsulFaultsAndDebugPages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul")
	}
	consul := testbackend.NewConsul(t)
	consul.Start(t)
	client, err := api.NewClient(&api.Config{Address: consul.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, userAdmin := testbackend.FreeAddr(t), testbackend.FreeAddr(t)
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"all", "--dir", t.TempDir(), "--log-level", "error",
		"--http-addr", httpAddr, "--auth-addr", testbackend.FreeAddr(t), "--user-addr", testbackend.FreeAddr(t),
		"--gateway-admin-addr", testbackend.FreeAddr(t), "--auth-admin-addr", testbackend.FreeAddr(t), "--user-admin-addr", userAdmin,
		"--consul-addr", consul.HTTPAddr, "--consul-check-interval", "1s", "--consul-check-timeout", "1s", "--consul-drain-wait", "1s",
		"--debug-pages"})
	ctx, sigterm := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		sigterm()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("golden all ended with %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("golden all did not stop within a minute")
		}
	}()
	eventually := func(what string, check func() error) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			select {
			case err := <-done:
				done <- err // for the deferred check
				t.Fatalf("%s: golden all stopped: %v", what, err)
			default:
			}
			if err = check(); err == nil {
				return
			}
		}
		t.Fatalf("%s: %v", what, err)
	}
	eventually("auth, user and gateway passing in Consul", func() error {
		for _, svc := range []string{"auth", "user", "gateway"} {
			entries, _, err := client.Health().Service(svc, "", true, nil)
			if err != nil || len(entries) != 1 {
				return fmt.Errorf("%s: %d passing (%v)", svc, len(entries), err)
			}
		}
		return nil
	})
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("http://" + userAdmin + "/debug/requests"); code != http.StatusOK {
		t.Errorf("GET /debug/requests on user's admin port = %d, want 200", code)
	}
	// Every sign-up fails once the fault reaches the user service.
	if _, err := client.KV().Put(&api.KVPair{Key: "golden/faults/user/CreateUser", Value: []byte(`{"error_rate":1,"code":"Unavailable"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	eventually("the fault answered at the gateway", func() error {
		n++
		body := fmt.Sprintf(`{"username":"u%d","email":"u%d@example.com","password":"correct-horse-battery"}`, n, n)
		resp, err := http.Post("http://"+httpAddr+"/v1/users", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("sign-up answered %d", resp.StatusCode)
		}
		return nil
	})
}
