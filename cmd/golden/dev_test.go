package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/lookup"
	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/config"
)

// lockedBuffer is an output a running command writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDevRunsTheWholeStory runs `golden dev` for real, as a user without
// Docker would: the backends start from the cache, a login leaves one trace
// across gateway, auth and user in Jaeger, Prometheus scrapes every target
// of the project's prometheus.yml through Consul and static targets, a fault
// set with `golden fault` fails sign-ups until it is cleared, and Ctrl-C
// stops the services and every backend.
func TestDevRunsTheWholeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul, Jaeger, Mailpit, Alertmanager and Prometheus")
	}
	for _, name := range []string{"consul", "jaeger", "mailpit", "alertmanager", "prometheus"} {
		testbackend.Binary(t, name) // skips (or fails under make test) when one is missing
	}
	port := func() string { return strconv.Itoa(testbackend.FreePort(t)) }
	ports := map[string]string{}
	for _, name := range []string{"consul", "prometheus", "alertmanager", "jaeger", "jaeger-grpc", "otlp", "mailpit"} {
		ports[name] = port()
	}
	loop := func(p string) string { return "127.0.0.1:" + p }
	httpAddr := testbackend.FreeAddr(t)
	args := []string{"dev", "--root", "../..", "--dir", t.TempDir(), "--log-level", "error",
		"--http-addr", httpAddr, "--auth-addr", testbackend.FreeAddr(t), "--user-addr", testbackend.FreeAddr(t),
		"--gateway-admin-addr", testbackend.FreeAddr(t), "--auth-admin-addr", testbackend.FreeAddr(t), "--user-admin-addr", testbackend.FreeAddr(t)}
	for name, p := range ports {
		args = append(args, "--"+name+"-port", p)
	}
	cmd := newRootCmd()
	out := &lockedBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs(args)
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			interrupt()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("golden dev ended with %v", err)
				}
			case <-time.After(2 * time.Minute):
				t.Error("golden dev did not stop within 2 minutes")
			}
		}
	}()

	eventually := func(what string, limit time.Duration, check func() error) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			select {
			case err := <-done:
				stopped = true
				t.Fatalf("%s: golden dev stopped: %v\n%s", what, err, out)
			default:
			}
			if err = check(); err == nil {
				return
			}
		}
		t.Fatalf("%s after %s: %v\n%s", what, limit, err, out)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	// post returns the status and the request ID of the answer.
	post := func(path, body string) (int, string, error) {
		resp, err := client.Post("http://"+httpAddr+path, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Request-Id"), nil
	}
	getJSON := func(url string, into any) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(into)
	}

	// The URLs are printed, then a sign-up works once the gateway finds
	// auth and user in Consul.
	eventually("the URLs printed", 2*time.Minute, func() error {
		for _, want := range []string{"Prometheus    http://" + loop(ports["prometheus"]),
			"Jaeger        http://" + loop(ports["jaeger"]) + "  (query API v3 over gRPC: " + loop(ports["jaeger-grpc"]),
			"Consul        http://" + loop(ports["consul"]) + "/ui/", "Mailpit       http://" + loop(ports["mailpit"]),
			"Alertmanager  http://" + loop(ports["alertmanager"]), "golden is running: gateway http://" + httpAddr} {
			if !strings.Contains(out.String(), want) {
				return fmt.Errorf("no %q yet", want)
			}
		}
		return nil
	})
	eventually("a sign-up", time.Minute, func() error {
		code, _, err := post("/v1/users", `{"username":"dev-alice","email":"dev-alice@example.com","password":"correct-horse-battery"}`)
		if err != nil {
			return err
		}
		if code != http.StatusCreated {
			return fmt.Errorf("sign-up answered %d", code)
		}
		return nil
	})
	code, requestID, err := post("/v1/login", `{"username":"dev-alice","password":"correct-horse-battery"}`)
	if err != nil || code != http.StatusOK {
		t.Fatalf("login answered %d (%v)", code, err)
	}

	// Jaeger: the login's trace, found by its request ID, spans all three.
	jaeger, err := lookup.NewJaeger(loop(ports["jaeger-grpc"]), "http://"+loop(ports["jaeger"]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eventually("the login's trace in Jaeger", time.Minute, func() error {
		traces, err := jaeger.FindTraces(ctx, "gateway", map[string]string{"request_id": requestID},
			time.Now().Add(-5*time.Minute), time.Now().Add(time.Minute), 5)
		if err != nil {
			return err
		}
		for _, tr := range traces {
			services := map[string]bool{}
			for _, p := range tr.Processes {
				services[p.ServiceName] = true
			}
			if services["gateway"] && services["auth"] && services["user"] {
				return nil
			}
		}
		return fmt.Errorf("%d traces for request %s, none spanning gateway, auth and user", len(traces), requestID)
	})

	// Prometheus: every target of prometheus.yml is up, the three services
	// found through Consul.
	eventually("every Prometheus target up", 90*time.Second, func() error {
		var body struct {
			Data struct {
				ActiveTargets []testbackend.Target `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON("http://"+loop(ports["prometheus"])+"/api/v1/targets?state=active", &body); err != nil {
			return err
		}
		up := map[string]bool{}
		for _, tg := range body.Data.ActiveTargets {
			if tg.Health != "up" {
				return fmt.Errorf("%s %s is %s: %s", tg.ScrapePool, tg.ScrapeURL, tg.Health, tg.LastError)
			}
			up[tg.ScrapePool+"/"+tg.Labels["service"]] = true
		}
		for _, want := range []string{"golden/gateway", "golden/auth", "golden/user", "prometheus/", "alertmanager/", "consul/", "jaeger/"} {
			if !up[want] {
				return fmt.Errorf("no target %s up (have %v)", want, up)
			}
		}
		return nil
	})

	// A fault set with `golden fault` fails sign-ups until it is cleared.
	fault := func(args ...string) {
		t.Helper()
		c := newRootCmd()
		var fout bytes.Buffer
		c.SetOut(&fout)
		c.SetErr(&fout)
		c.SetArgs(append(append([]string{"fault"}, args...), "--consul-addr", loop(ports["consul"])))
		if err := c.Execute(); err != nil {
			t.Fatalf("golden fault %v: %v\n%s", args, err, fout.String())
		}
	}
	n := 0
	signUp := func(want int) func() error {
		return func() error {
			n++
			code, _, err := post("/v1/users", fmt.Sprintf(`{"username":"dev-u%d","email":"dev-u%d@example.com","password":"correct-horse-battery"}`, n, n))
			if err != nil {
				return err
			}
			if code != want {
				return fmt.Errorf("sign-up answered %d, want %d", code, want)
			}
			return nil
		}
	}
	fault("set", "--service", "user", "--method", "CreateUser", "--error-rate", "1", "--code", "Unavailable")
	eventually("the fault answered at the gateway", 30*time.Second, signUp(http.StatusServiceUnavailable))
	fault("clear", "--all")
	eventually("sign-ups back after the fault is cleared", 30*time.Second, signUp(http.StatusCreated))

	// Ctrl-C: the command ends cleanly and nothing it started still listens.
	interrupt()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("golden dev ended with %v\n%s", err, out)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("golden dev did not stop within 2 minutes")
	}
	if !strings.Contains(out.String(), "stopped consul, jaeger, mailpit, alertmanager and prometheus") {
		t.Errorf("no line saying the backends stopped:\n%s", out)
	}
	for name, p := range ports {
		if c, err := net.DialTimeout("tcp", loop(p), time.Second); err == nil {
			c.Close()
			t.Errorf("%s port %s still accepts connections after golden dev stopped", name, p)
		}
	}
}

// TestDevRejectsBadSettings: golden dev names every bad value of its own and
// of `golden all` at once, as a usage error, before starting anything.
func TestDevRejectsBadSettings(t *testing.T) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"dev", "--root", t.TempDir(), "--dir", t.TempDir(), "--backends-dir", t.TempDir(),
		"--consul-port", "0", "--prometheus-port", "9", "--alertmanager-port", "9", "--log-level", "loud"})
	err := cmd.Execute()
	var invalid *config.Invalid
	if !errors.As(err, &invalid) || exitCode(err) != exitUsage {
		t.Fatalf("err = %v (exit %d), want a usage error", err, exitCode(err))
	}
	for _, want := range []string{"consul-port", "alertmanager-port", "port 9 is also --prometheus-port", "root", "prometheus/prometheus.yml",
		"backends-dir", "scripts/install-backends.sh consul", "log-level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(out.String(), "starting") {
		t.Errorf("golden dev started something with bad settings:\n%s", out.String())
	}
}
