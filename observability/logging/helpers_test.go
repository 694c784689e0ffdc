package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

// TestMain fails the run when any test leaves a goroutine behind, such as a
// sink goroutine that Close did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for a message in these tests.
const waitTimeout = 10 * time.Second

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// entries parses the JSON lines written so far.
func (b *syncBuffer) entries(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// newLogger builds a logger writing JSON into a buffer at trace level,
// each line at once (the tests read the buffer right after logging); mod
// adjusts the config. The logger is closed at cleanup.
func newLogger(t testing.TB, mod func(*Config), opts ...Option) (*Logger, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Level = "trace"
	cfg.FlushInterval = 0
	if mod != nil {
		mod(&cfg)
	}
	buf := &syncBuffer{}
	reg := prometheus.NewPedanticRegistry()
	opts = append([]Option{WithOutput(buf), withBackoff(10*time.Millisecond, 50*time.Millisecond)}, opts...)
	l, err := New(cfg, "user", "user-1", reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	return l, buf, reg
}

// counter returns the value of a counter (or gauge) series in reg, 0 when
// absent.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return counterValue(m)
		}
	}
	return 0
}

func counterValue(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func queued(t testing.TB, reg *prometheus.Registry) float64 {
	return counter(t, reg, "golden_log_messages_queued", map[string]string{"sink": "gelf"})
}

func dropped(t testing.TB, reg *prometheus.Registry, reason string) float64 {
	return counter(t, reg, "golden_log_messages_dropped_total", map[string]string{"sink": "gelf", "reason": reason})
}

func sent(t testing.TB, reg *prometheus.Registry) float64 {
	return counter(t, reg, "golden_log_messages_sent_total", map[string]string{"sink": "gelf"})
}

// udpReader receives GELF over UDP with go-gelf's own reader. gelf.Reader has
// no Close, so cleanup stops its goroutine with a final sentinel message.
type udpReader struct {
	r    *gelf.Reader
	msgs chan *gelf.Message
	done chan struct{}
}

const sentinel = "__stop_reader__"

func newUDPReader(t testing.TB) *udpReader {
	t.Helper()
	r, err := gelf.NewReader("127.0.0.1:0")
	if err != nil {
		t.Fatalf("gelf.NewReader: %v", err)
	}
	u := &udpReader{r: r, msgs: make(chan *gelf.Message, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(u.done)
		for {
			m, err := r.ReadMessage()
			if err != nil {
				continue // a lost chunk; the test then times out waiting
			}
			if m.Short == sentinel {
				return
			}
			select {
			case u.msgs <- m:
			default: // the test stopped reading; keep going to reach the sentinel
			}
		}
	}()
	t.Cleanup(func() {
		c, err := net.Dial("udp", r.Addr())
		if err != nil {
			t.Errorf("dial reader: %v", err)
			return
		}
		defer c.Close()
		stop := []byte(`{"version":"1.1","host":"test","short_message":"` + sentinel + `","timestamp":1}`)
		for {
			_, _ = c.Write(stop)
			select {
			case <-u.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	return u
}

func (u *udpReader) addr() string { return u.r.Addr() }

// next returns the next message whose short_message is short.
func (u *udpReader) next(t testing.TB, short string) *gelf.Message {
	t.Helper()
	return waitMessage(t, u.msgs, short)
}

func waitMessage(t testing.TB, msgs <-chan *gelf.Message, short string) *gelf.Message {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case m := <-msgs:
			if m.Short == short {
				return m
			}
		case <-timeout:
			t.Fatalf("no GELF message %q within %s", short, waitTimeout)
			return nil
		}
	}
}

// tcpServer is a GELF TCP input: NUL-terminated JSON frames.
type tcpServer struct {
	lis   net.Listener
	msgs  chan *gelf.Message
	conns atomic.Int32
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  []net.Conn
	// read is false for a stalled server that accepts and never reads.
	read bool
	// closeAfter closes each connection after that many messages (0: never).
	closeAfter int
	// discard reads without parsing and keeps nothing.
	discard bool
}

func newTCPServer(t testing.TB, read bool, closeAfter int) *tcpServer {
	return startTCPServer(t, &tcpServer{msgs: make(chan *gelf.Message, 1<<16), read: read, closeAfter: closeAfter})
}

// startTCPServer makes s listen on loopback and serve until the test ends.
func startTCPServer(t testing.TB, s *tcpServer) *tcpServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.lis = lis
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) addr() string { return s.lis.Addr().String() }

func (s *tcpServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.lis.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open = append(s.open, c)
		s.mu.Unlock()
		if !s.read {
			continue
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *tcpServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	if s.discard {
		_, _ = io.Copy(io.Discard, c)
		return
	}
	br := bufio.NewReader(c)
	for n := 0; s.closeAfter == 0 || n < s.closeAfter; n++ {
		frame, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m gelf.Message
		if err := m.UnmarshalJSON(frame[:len(frame)-1]); err != nil {
			m = gelf.Message{Short: "bad frame: " + err.Error()}
		}
		select {
		case s.msgs <- &m:
		default:
		}
	}
}

func (s *tcpServer) close() {
	_ = s.lis.Close()
	s.mu.Lock()
	for _, c := range s.open {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// freePort returns a loopback port that nothing listens on (for network).
func freePort(t testing.TB, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		_ = c.Close()
		return addr
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return addr
	}
}

// discardUDP is a fast UDP sink for benchmarks: it reads and drops.
func discardUDP(tb testing.TB) string {
	tb.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}
	}()
	tb.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	return c.LocalAddr().String()
}

// discardTCP starts a GELF TCP server on loopback that reads and discards
// what it is sent, as discardUDP does for datagrams: a benchmark's receiver
// that parsed every frame in the benchmark's process would take the cores
// the sink is measured on.
func discardTCP(tb testing.TB) string {
	return startTCPServer(tb, &tcpServer{read: true, discard: true}).addr()
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// closeLogger closes l, failing the test on an error or unsent messages.
func closeLogger(t testing.TB, l *Logger) {
	t.Helper()
	ctx, cancel := contextWithTimeout(waitTimeout)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
