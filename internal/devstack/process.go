package devstack

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// process is one backend running with its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// startProcess runs bin with args, stdout and stderr appended to
// logDir/name.log.
func startProcess(name, logDir, bin string, env []string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: exec.Command(bin, args...), logPath: logPath, done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	detach(p.cmd)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits, ctx ends or
// timeout passes; the error then carries the end of the process's log.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, ready func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = ready(); err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting (%v); the end of %s:\n%s", p.name, p.err, p.logPath, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (%v); the end of %s:\n%s", p.name, timeout, err, p.logPath, p.logTail())
		case <-tick.C:
		}
	}
}

// logTail returns the last lines of the process's log.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	const keep = 2000
	if len(b) > keep {
		b = b[len(b)-keep:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// stop interrupts the process and kills it when it has not exited within
// grace.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago
// and are not in taken (all held open together, so none is returned twice).
func freePorts(n int, taken map[int]bool) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 100*n {
			return nil, fmt.Errorf("no %d free loopback ports apart from the configured ones in %d tries", n, tries)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l) // held, taken or not, so the kernel picks another
		if p := l.Addr().(*net.TCPAddr).Port; !taken[p] {
			ports = append(ports, p)
		}
	}
	return ports, nil
}
