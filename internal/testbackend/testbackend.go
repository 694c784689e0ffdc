// Package testbackend finds and starts the real backends (Consul,
// Prometheus, Alertmanager, Jaeger, ...) that integration tests run against,
// as built by scripts/install-backends.sh into its cache folder.
//
// A missing binary skips the test, unless GOLDEN_REQUIRE_BACKENDS is set (as
// `make test` does after installing them), where it fails the test: a suite
// that was meant to run against real servers must not pass without them.
package testbackend

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/devstack"
)

// Versions pins each backend (devstack.Versions).
var Versions = devstack.Versions

// Dir returns the cache folder of installed backends (devstack.Dir).
func Dir() string { return devstack.Dir() }

// Binary returns the path of the installed backend name, or skips (fails,
// under GOLDEN_REQUIRE_BACKENDS) the test when it is not installed.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if _, ok := Versions[name]; !ok {
		t.Fatalf("testbackend: unknown backend %q", name)
	}
	p, err := devstack.Binary("", name)
	if err != nil {
		if os.Getenv("GOLDEN_REQUIRE_BACKENDS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return p
}

// handedOut holds every port NewPort returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback TCP port as NewPort does, failing t when
// there is none.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := NewPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreeAddr returns "127.0.0.1:port" for a port from FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// NewPort returns a loopback TCP port that was free a moment ago and that
// it never returned before in this process: the kernel may give a port
// just closed to the next listener, so two ports asked for one backend
// (Jaeger's query and metrics ports) could otherwise be the same.
func NewPort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !handedOut.ports[p] {
			handedOut.ports[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no loopback port that was not handed out before in 100 tries")
}

// Process is a backend started by Start.
type Process struct {
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{}
	err    error
}

// Start runs bin with args until the test ends (or Stop), keeping its
// output, which is printed if the test fails.
func Start(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	return StartEnv(t, nil, bin, args...)
}

// StartEnv is Start with env added to the process's environment.
func StartEnv(t testing.TB, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(bin, args...), output: &syncBuffer{}, done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.Output())
		}
	})
	return p
}

// Stop ends the process (SIGTERM, then SIGKILL after 10s) and waits for it.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.output.String() }

// WaitFor polls ready every 100ms until it returns nil, failing the test
// after timeout or when the process exits.
func (p *Process) WaitFor(t testing.TB, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if p.Exited() {
			t.Fatalf("%s exited during start (%v):\n%s", filepath.Base(p.cmd.Path), p.err, p.Output())
		}
		if err = ready(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %v", filepath.Base(p.cmd.Path), timeout, err)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// HTTPReady returns a WaitFor check that passes once GET url answers 200.
func HTTPReady(url string) func() error { return devstack.HTTPReady(url) }
