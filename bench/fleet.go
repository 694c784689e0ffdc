package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// FleetOptions say how to run the three services as separate processes.
type FleetOptions struct {
	// Golden is the golden binary.
	Golden string
	// Certs holds the services' certificates and token keys.
	Certs Certs
	// OTLPAddr and GELFAddr are the trace and log sinks; empty turns that
	// export off.
	OTLPAddr, GELFAddr string
	// Args are more flags by service name, after the ones StartFleet
	// sets, which they override (the last of a flag wins).
	Args map[string][]string
	// Env is added to every service's environment (GOGC=400, ...).
	Env []string
	// StartTimeout bounds how long every service may take to be ready.
	StartTimeout time.Duration
}

// Fleet is user, auth and gateway, each its own `golden serve` process on
// loopback, calling each other over mTLS.
type Fleet struct {
	// GatewayURL is the base URL of the HTTP API.
	GatewayURL string
	procs      []*fleetProc
}

type fleetProc struct {
	name   string
	admin  string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
}

// ServiceNames are the fleet's services, in start order.
var ServiceNames = []string{"user", "auth", "gateway"}

// StartFleet starts user, auth and gateway on free loopback ports, with
// their JSON logs going to /dev/null as stdout, and waits until each
// answers /readyz.
func StartFleet(o FleetOptions) (_ *Fleet, err error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	addrs := map[string]string{}
	for _, k := range []string{"user-grpc", "user-admin", "auth-grpc", "auth-admin", "gateway-http", "gateway-admin"} {
		if addrs[k], err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	common := func(name string) []string {
		f := o.Certs.Files(name)
		args := []string{"serve", name,
			"--admin-addr", addrs[name+"-admin"], "--advertise-addr", "127.0.0.1",
			"--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key,
			"--log-level", "info", "--log-format", "json",
			"--trace-sample-ratio", "1", "--shutdown-timeout", "10s",
		}
		if o.OTLPAddr != "" {
			args = append(args, "--otlp-endpoint", o.OTLPAddr, "--otlp-insecure")
		}
		if o.GELFAddr != "" {
			args = append(args, "--gelf-addr", o.GELFAddr, "--gelf-protocol", "udp")
		}
		return args
	}
	args := map[string][]string{
		"user": append(common("user"), "--grpc-addr", addrs["user-grpc"],
			"--token-public-key", o.Certs.PublicKeyFile()),
		"auth": append(common("auth"), "--grpc-addr", addrs["auth-grpc"], "--user-addr", addrs["user-grpc"],
			"--token-private-key", o.Certs.Dir+"/token-signing.key"),
		"gateway": append(common("gateway"), "--http-addr", addrs["gateway-http"],
			"--auth-addr", addrs["auth-grpc"], "--user-addr", addrs["user-grpc"]),
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close() // the children hold their own descriptors
	f := &Fleet{GatewayURL: "http://" + addrs["gateway-http"]}
	defer func() {
		if err != nil {
			_ = f.Stop()
		}
	}()
	for _, name := range ServiceNames {
		p := &fleetProc{name: name, admin: addrs[name+"-admin"], stderr: &lockedBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(o.Golden, append(args[name], o.Args[name]...)...)
		p.cmd.Stdout, p.cmd.Stderr = devnull, p.stderr
		if o.Env != nil {
			p.cmd.Env = append(os.Environ(), o.Env...)
		}
		dieWithParent(p.cmd)
		if err := p.cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		f.procs = append(f.procs, p)
		if err := p.waitReady(o.StartTimeout); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *fleetProc) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start: %s", p.name, tail(p.stderr.String(), 2000))
		default:
		}
		resp, err := client.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz: %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %v", p.name, timeout, last)
}

// PIDs returns the process ID of each service by name.
func (f *Fleet) PIDs() map[string]int {
	out := map[string]int{}
	for _, p := range f.procs {
		out[p.name] = p.cmd.Process.Pid
	}
	return out
}

// MetricsURLs returns the /metrics URL of each service's admin port by name.
func (f *Fleet) MetricsURLs() map[string]string {
	out := map[string]string{}
	for _, p := range f.procs {
		out[p.name] = "http://" + p.admin + "/metrics"
	}
	return out
}

// Stop sends SIGTERM to every service, gateway first, and waits for each
// (SIGKILL after 20s). It reports services that had exited before it.
func (f *Fleet) Stop() error {
	var errs []error
	var wg sync.WaitGroup
	for i := len(f.procs) - 1; i >= 0; i-- {
		p := f.procs[i]
		select {
		case <-p.done:
			errs = append(errs, fmt.Errorf("%s had exited: %s", p.name, tail(p.stderr.String(), 500)))
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}()
	}
	wg.Wait()
	f.procs = nil
	return errors.Join(errs...)
}

// Exited returns an error naming services that are no longer running.
func (f *Fleet) Exited() error {
	var errs []error
	for _, p := range f.procs {
		select {
		case <-p.done:
			errs = append(errs, fmt.Errorf("%s exited: %s", p.name, tail(p.stderr.String(), 500)))
		default:
		}
	}
	return errors.Join(errs...)
}

// Wait waits d or until ctx ends.
func Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lockedBuffer is a bytes.Buffer safe for a child process and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // bounded: keep the start, where errors are
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
