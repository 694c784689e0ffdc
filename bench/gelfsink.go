package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// gelfSinkEnv in a process's environment makes ServeGELFSinkIfChild serve
// a GELF sink there.
const gelfSinkEnv = "GOLDEN_BENCH_GELF_SINK"

// gelfSinkTimeout bounds the sink's start, each query and its exit.
const gelfSinkTimeout = 10 * time.Second

// GELFSink is a UDP listener on loopback that reads GELF datagrams and
// throws them away, counting them: a Graylog input. It runs in a process
// of its own, this program started again, because in the servers' process
// its reads would count in their CPU per call and its wake-ups would
// queue with their goroutines, which Graylog on another machine does not
// do. Pid gives its process for its own CPU figures.
type GELFSink struct {
	addr string
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{} // closed when the process has exited

	mu    sync.Mutex  // one query at a time
	lines chan string // the process's stdout, line by line
}

// GELFSinkStats counts what a GELFSink received.
type GELFSinkStats struct {
	Datagrams, Bytes int64
}

// ServeGELFSinkIfChild must come first in main (and in TestMain) of every
// program that calls StartGELFSink: in the process StartGELFSink starts,
// it serves the sink until its stdin closes and exits; anywhere else it
// returns at once.
func ServeGELFSinkIfChild() {
	if os.Getenv(gelfSinkEnv) == "" {
		return
	}
	if err := serveGELFSink(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "GELF sink:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveGELFSink listens, writes its address as the first line to out, then
// answers every line read from in with "datagrams bytes" received so far,
// until in ends.
func serveGELFSink(in io.Reader, out io.Writer) error {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer c.Close()
	var datagrams, bytes atomic.Int64
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				datagrams.Add(1)
				bytes.Add(int64(n))
			}
		}
	}()
	if _, err := fmt.Fprintln(out, c.LocalAddr()); err != nil {
		return err
	}
	r := bufio.NewScanner(in)
	for r.Scan() {
		if _, err := fmt.Fprintf(out, "%d %d\n", datagrams.Load(), bytes.Load()); err != nil {
			return err
		}
	}
	return r.Err()
}

// StartGELFSink starts the sink's process and waits for its address.
func StartGELFSink() (*GELFSink, error) {
	if os.Getenv(gelfSinkEnv) != "" {
		return nil, errors.New("GELF sink: this program does not call bench.ServeGELFSinkIfChild first")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("GELF sink: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), gelfSinkEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("GELF sink: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("GELF sink: %w", err)
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("GELF sink: %w", err)
	}
	s := &GELFSink{cmd: cmd, in: in, done: make(chan struct{}), lines: make(chan string)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			case <-s.done:
				return
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if s.addr, err = s.line(); err != nil {
		s.kill()
		return nil, fmt.Errorf("GELF sink: starting: %w", err)
	}
	return s, nil
}

// line returns the process's next line of output.
func (s *GELFSink) line() (string, error) {
	select {
	case l := <-s.lines:
		return l, nil
	case <-s.done:
		return "", errors.New("the process exited")
	case <-time.After(gelfSinkTimeout):
		return "", fmt.Errorf("no answer after %s", gelfSinkTimeout)
	}
}

// Addr returns the host:port to send GELF to.
func (s *GELFSink) Addr() string { return s.addr }

// Pid returns the sink's process ID.
func (s *GELFSink) Pid() int { return s.cmd.Process.Pid }

// Stats returns what arrived so far.
func (s *GELFSink) Stats() (GELFSinkStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.in, "\n"); err != nil {
		return GELFSinkStats{}, fmt.Errorf("GELF sink: %w", err)
	}
	l, err := s.line()
	if err != nil {
		return GELFSinkStats{}, fmt.Errorf("GELF sink: %w", err)
	}
	var st GELFSinkStats
	d, b, _ := strings.Cut(l, " ")
	if st.Datagrams, err = strconv.ParseInt(d, 10, 64); err == nil {
		st.Bytes, err = strconv.ParseInt(b, 10, 64)
	}
	if err != nil {
		return GELFSinkStats{}, fmt.Errorf("GELF sink: answer %q: %w", l, err)
	}
	return st, nil
}

// Close ends the process: its stdin closes, and it is killed if it has not
// exited within gelfSinkTimeout.
func (s *GELFSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.in.Close()
	select {
	case <-s.done:
		return nil
	case <-time.After(gelfSinkTimeout):
		s.kill()
		return fmt.Errorf("GELF sink: still running %s after its input closed; killed", gelfSinkTimeout)
	}
}

func (s *GELFSink) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}
