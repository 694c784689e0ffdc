package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
	"github.com/prometheus/client_golang/prometheus"
)

// logMany logs n entries as a request handler would. It returns only if no
// call blocked: a blocking call would hang the test.
func logMany(l *Logger, n int) {
	ctx, _ := requestContext()
	e := l.Entry().WithContext(ctx)
	for i := range n {
		e.WithField("i", i).Info("work done")
	}
}

// totalDropped sums the drop counter over its reasons.
func totalDropped(t testing.TB, reg *prometheus.Registry) float64 {
	return dropped(t, reg, reasonQueueFull) + dropped(t, reg, reasonWriteError) + dropped(t, reg, reasonShutdown)
}

// checkStopped fails unless the sink's goroutine has ended.
func checkStopped(t *testing.T, l *Logger) {
	t.Helper()
	select {
	case <-l.sink.done:
	default:
		t.Error("the sink goroutine still runs after Close")
	}
}

func TestSinkDownNeverBlocks(t *testing.T) {
	const n = 50000
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			addr := freePort(t, proto)
			l, out, reg := newLogger(t, func(c *Config) {
				c.GELFAddr = addr
				c.GELFProtocol = proto
				c.QueueSize = 64
			}, WithWriteTimeout(200*time.Millisecond))

			// What waits for the sink is counted, up to the queue size. The
			// count is read while the entries are logged: UDP to a closed
			// port fails only every other write, and a write that goes
			// through takes a batch as large as this queue, so the queue
			// is empty at moments.
			stop := make(chan struct{})
			maxQueued := make(chan float64)
			go func() {
				highest := 0.0
				for {
					select {
					case <-stop:
						maxQueued <- highest
						return
					case <-time.After(time.Millisecond):
						highest = max(highest, queued(t, reg))
					}
				}
			}()
			logMany(l, n)
			close(stop)
			// The gauge moves just after the queue: one more while the sink
			// has taken a message and not yet counted it.
			if q := <-maxQueued; q < 1 || q > 65 {
				t.Errorf("queued reached %v with the sink down, want 1..65", q)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := l.Close(ctx)
			checkStopped(t, l)
			if q := queued(t, reg); q != 0 {
				t.Errorf("queued = %v after Close, want 0", q)
			}
			drops := totalDropped(t, reg)
			if drops == 0 {
				t.Error("nothing counted as dropped with the sink down")
			}
			// Every entry is accounted for exactly once.
			if got := sent(t, reg) + drops; got != n {
				t.Errorf("sent + dropped = %v, want %d", got, n)
			}
			// The sink reports the outage once on stdout, not per entry.
			if got := strings.Count(out.String(), "GELF sink unavailable"); got != 1 {
				t.Errorf("stdout reports the outage %d times, want once", got)
			}
			if proto == "tcp" && (err == nil || !strings.Contains(err.Error(), "not sent")) {
				t.Errorf("Close error = %v, want one that reports unsent messages", err)
			}
		})
	}
}

func TestSinkStalledNeverBlocks(t *testing.T) {
	const n = 50000
	srv := newTCPServer(t, false, 0)
	l, _, reg := newLogger(t, func(c *Config) {
		c.GELFAddr = srv.addr()
		c.GELFProtocol = "tcp"
		c.QueueSize = 64
	}, WithWriteTimeout(200*time.Millisecond), WithOutput(io.Discard))

	// 1 KB per entry, 50 MB in all: more than any socket buffers hold, so
	// the writer blocks and the queue overflows.
	ctx0, _ := requestContext()
	e := l.Entry().WithContext(ctx0).WithField("pad", strings.Repeat("p", 1024))
	for i := range n {
		e.WithField("i", i).Info("work done")
	}
	if dropped(t, reg, reasonQueueFull) == 0 {
		t.Error("no queue_full drops while Graylog does not read")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.Close(ctx) // may report unsent messages: the server never reads
	checkStopped(t, l)
	if got := sent(t, reg) + totalDropped(t, reg); got != n {
		t.Errorf("sent + dropped = %v, want %d", got, n)
	}
}

// TestSinkStalledReconnects fills the socket buffers of a server that never
// reads until a write passes its deadline: the sink must count the drop and
// reconnect rather than wait.
func TestSinkStalledReconnects(t *testing.T) {
	srv := newTCPServer(t, false, 0)
	l, _, reg := newLogger(t, func(c *Config) {
		c.GELFAddr = srv.addr()
		c.GELFProtocol = "tcp"
		c.QueueSize = 16
	}, WithWriteTimeout(100*time.Millisecond), WithOutput(io.Discard))

	big := strings.Repeat("x", 64<<10)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		l.Entry().WithField("blob", big).Info("big entry")
		if i%16 == 0 {
			if dropped(t, reg, reasonWriteError) > 0 && srv.conns.Load() >= 2 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if got := dropped(t, reg, reasonWriteError); got == 0 {
		t.Fatal("no write_error drop: a write to a stalled server did not time out")
	}
	if got := srv.conns.Load(); got < 2 {
		t.Errorf("server saw %d connections, want a reconnect after the write error", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.Close(ctx)
	checkStopped(t, l)
}

func TestSinkReconnectsAfterServerCloses(t *testing.T) {
	// The server closes every connection after one message.
	srv := newTCPServer(t, true, 1)
	l, _, _ := newLogger(t, func(c *Config) { c.GELFAddr = srv.addr(); c.GELFProtocol = "tcp" })

	l.Entry().Info("first")
	waitMessage(t, srv.msgs, "first")
	// Writes to the closed connection may still succeed once or twice
	// before the reset arrives; keep logging until one reaches the server
	// on a new connection.
	deadline := time.After(waitTimeout)
	for {
		l.Entry().Info("again")
		select {
		case m := <-srv.msgs:
			if m.Short == "again" && srv.conns.Load() >= 2 {
				return
			}
		case <-deadline:
			t.Fatalf("no message after the server closed the connection; %d connections", srv.conns.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestCloseFlushesQueue(t *testing.T) {
	const n = 1000
	srv := newTCPServer(t, true, 0)
	l, _, reg := newLogger(t, func(c *Config) {
		c.GELFAddr = srv.addr()
		c.GELFProtocol = "tcp"
		c.QueueSize = 2 * n
	})
	logMany(l, n)
	closeLogger(t, l)
	checkStopped(t, l)

	if got := sent(t, reg); got != n {
		t.Errorf("sent = %v after Close, want %d", got, n)
	}
	timeout := time.After(waitTimeout)
	for i := 0; i < n; i++ {
		select {
		case <-srv.msgs:
		case <-timeout:
			t.Fatalf("server received %d of %d messages", i, n)
		}
	}

	// After Close, entries still reach stdout but not GELF, and count.
	l.Entry().Info("after close")
	if got := dropped(t, reg, reasonShutdown); got != 1 {
		t.Errorf("shutdown drops = %v, want 1", got)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseHonoursDeadline(t *testing.T) {
	srv := newTCPServer(t, false, 0)
	l, _, _ := newLogger(t, func(c *Config) {
		c.GELFAddr = srv.addr()
		c.GELFProtocol = "tcp"
		c.QueueSize = 1000
	}, WithWriteTimeout(time.Hour), WithOutput(io.Discard)) // only Close's deadline can end the writes
	big := strings.Repeat("y", 64<<10)
	for range 500 { // 32 MB, more than loopback socket buffers hold
		l.Entry().WithField("blob", big).Info("big entry")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := l.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want one wrapping context.DeadlineExceeded", err)
	}
	checkStopped(t, l)
}

func TestFatalFlushesBeforeExit(t *testing.T) {
	srv := newTCPServer(t, true, 0)
	exited := make(chan int, 1)
	l, _, _ := newLogger(t, func(c *Config) { c.GELFAddr = srv.addr(); c.GELFProtocol = "tcp" },
		WithExitFunc(func(code int) { exited <- code }))
	l.Entry().Fatal("cannot continue")
	if code := <-exited; code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	checkStopped(t, l) // the exit path closed the sink
	waitMessage(t, srv.msgs, "cannot continue")
}

func TestMetricsSharedByLoggers(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := DefaultConfig()
	cfg.GELFAddr = freePort(t, "udp")
	var loggers []*Logger
	for _, svc := range []string{"auth", "user"} {
		l, err := New(cfg, svc, "", reg, WithOutput(&syncBuffer{}))
		if err != nil {
			t.Fatalf("New(%s): %v", svc, err)
		}
		loggers = append(loggers, l)
	}
	for _, l := range loggers {
		l.Entry().Info("one")
		closeLoggerQuietly(l)
	}
	// Both loggers count into the same series.
	if got := sent(t, reg) + totalDropped(t, reg); got != 2 {
		t.Errorf("sent + dropped = %v over both loggers, want 2", got)
	}
}

func closeLoggerQuietly(l *Logger) {
	ctx, cancel := contextWithTimeout(waitTimeout)
	defer cancel()
	_ = l.Close(ctx)
}

// TestCloseHonoursDeadlineDuringLookup: Graylog's name is being looked up
// at a DNS server that never answers (an absent compose service, whose
// name Docker's DNS forwards and times out) when Close begins. Go's own
// resolver would hold the query until its own timeout; Close must still
// end at its deadline.
func TestCloseHonoursDeadlineDuringLookup(t *testing.T) {
	dns, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// It reads nothing: every query goes unanswered. Closing the queries'
	// sockets at the end ends the lookup left behind.
	var mu sync.Mutex
	var queries []net.Conn
	t.Cleanup(func() {
		dns.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range queries {
			c.Close()
		}
	})
	silent := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", dns.LocalAddr().String())
		if err == nil {
			mu.Lock()
			queries = append(queries, c)
			mu.Unlock()
		}
		return c, err
	}}
	l, _, _ := newLogger(t, func(c *Config) {
		c.GELFAddr = "graylog.golden.test:12201"
		c.GELFProtocol = "udp"
	}, WithWriteTimeout(30*time.Second), withResolver(silent))
	l.Entry().Info("waits for a connection")
	time.Sleep(100 * time.Millisecond) // the sink is now looking up the name

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = l.Close(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s with a 300ms deadline during a DNS lookup", took.Round(time.Millisecond))
	}
	checkStopped(t, l)
}

// batch is a batch of messages as the sink takes it off its queue: small
// ones, one too large for a datagram, and one that cannot be encoded.
func batch() []*gelf.Message {
	small := func(s string) *gelf.Message {
		return &gelf.Message{Version: "1.1", Host: "test", Short: s, TimeUnix: 1, Level: gelf.LOG_INFO}
	}
	large := small("large")
	large.Full = "large\n" + variedText(20<<10)
	bad := small("bad")
	bad.Extra = map[string]any{"_c": make(chan int)} // encoding/json refuses it
	return []*gelf.Message{small("one"), small("two"), large, small("three"), bad, small("four")}
}

// gelfInput starts a GELF input for proto (udp or tcp) and returns its
// address and the messages it receives.
func gelfInput(t *testing.T, proto string) (string, <-chan *gelf.Message) {
	t.Helper()
	if proto == "udp" {
		r := newUDPReader(t)
		return r.addr(), r.msgs
	}
	srv := newTCPServer(t, true, 0)
	return srv.addr(), srv.msgs
}

// TestWriteMessagesBatch: both writers write a batch in order, the large
// message whole among the small ones, and stop at a message that cannot be
// encoded, saying so, so that the sink skips it and writes the rest.
func TestWriteMessagesBatch(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			addr, msgs := gelfInput(t, proto)
			s := &sink{addr: addr, resolver: net.DefaultResolver, writeTimeout: waitTimeout}
			dial := s.dialUDP
			if proto == "tcp" {
				dial = s.dialTCP
			}
			w, err := dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()

			ms := batch()
			n, err := w.WriteMessages(ms)
			var enc encodeError
			if n != 4 || !errors.As(err, &enc) {
				t.Fatalf("WriteMessages = %d, %v; want 4 and an encoding error for the fifth", n, err)
			}
			if n, err := w.WriteMessages(ms[n+1:]); n != 1 || err != nil {
				t.Fatalf("WriteMessages of the rest = %d, %v; want 1, nil", n, err)
			}
			var got []string
			for range 5 {
				select {
				case m := <-msgs:
					got = append(got, m.Short)
					if m.Short == "large" && m.Full != ms[2].Full {
						t.Errorf("large message: %d bytes of full_message, want %d", len(m.Full), len(ms[2].Full))
					}
				case <-time.After(waitTimeout):
					t.Fatalf("received %v, then nothing within %v", got, waitTimeout)
				}
			}
			if want := "one,two,large,three,four"; strings.Join(got, ",") != want {
				t.Errorf("received %s, want %s", strings.Join(got, ","), want)
			}
		})
	}
}

// shortConn is a connection that writes only limit bytes of a write, then
// fails.
type shortConn struct {
	net.Conn
	limit int
}

var errCut = errors.New("connection reset")

func (c shortConn) Write(p []byte) (int, error)      { return min(len(p), c.limit), errCut }
func (c shortConn) SetWriteDeadline(time.Time) error { return nil }

// frameLen is the length of m's TCP frame.
func frameLen(m *gelf.Message) int {
	var b bytes.Buffer
	_ = m.MarshalJSONBuf(&b)
	return b.Len() + 1
}

// TestTCPWriteCutShort: when a write fails part way, the frames written
// whole count as sent and the one cut short is the one that failed.
func TestTCPWriteCutShort(t *testing.T) {
	ms := batch()[:2] // one, two
	one := frameLen(ms[0])
	for _, tt := range []struct {
		limit, want int
	}{
		{0, 0}, {one - 1, 0}, {one, 1}, {one + 1, 1},
	} {
		w := &tcpWriter{conn: shortConn{limit: tt.limit}, timeout: time.Second}
		if n, err := w.WriteMessages(ms); n != tt.want || !errors.Is(err, errCut) {
			t.Errorf("%d bytes written: WriteMessages = %d, %v; want %d, %v", tt.limit, n, err, tt.want, errCut)
		}
	}
}

// TestSinkShipsABurstWhole: a burst of lines, many per batch, all arrive,
// in order, and are counted as sent.
func TestSinkShipsABurstWhole(t *testing.T) {
	const n = 200
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			addr, msgs := gelfInput(t, proto)
			l, _, reg := newLogger(t, func(c *Config) { c.GELFAddr, c.GELFProtocol = addr, proto })
			for i := range n {
				l.Entry().Infof("line %d", i)
			}
			for i := range n {
				waitMessage(t, msgs, fmt.Sprintf("line %d", i))
			}
			closeLogger(t, l)
			if got := sent(t, reg); got != n {
				t.Errorf("sent = %v, want %d", got, n)
			}
		})
	}
}
