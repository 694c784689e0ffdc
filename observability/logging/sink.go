package logging

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/golden-stack/golden/observability/backoff"
)

// Drop reasons, the reason label of golden_log_messages_dropped_total.
const (
	reasonQueueFull  = "queue_full"  // the queue was full when the entry was logged
	reasonWriteError = "write_error" // encoding or writing the message failed
	reasonShutdown   = "shutdown"    // logged after Close, or still queued when its deadline passed
)

const sinkGELF = "gelf"

// Defaults of the sink's timing; tests shorten them.
const (
	defaultWriteTimeout = 5 * time.Second
	defaultBackoffMin   = 100 * time.Millisecond
	defaultBackoffMax   = 30 * time.Second
	// reportInterval spaces the sink's outage reports on stdout.
	reportInterval = time.Minute
	// defaultLinger is how long the sink's goroutine waits, once it has
	// emptied the queue, before it waits for the next entry. Entries logged
	// meanwhile go into the queue without waking it: under load it wakes
	// once per linger, not once per entry (a wake-up per request was most
	// of what GELF added to a request's latency on 2 cores), and an entry
	// reaches Graylog at most this much later.
	defaultLinger = 2 * time.Millisecond
)

// maxBatch bounds the messages the sink takes off its queue and writes at
// once: with one system call for all of them (sendmmsg for UDP, one write
// for TCP) rather than one each, shipping a line cost a loaded server about
// half as much CPU, the receiver woken once per batch.
const maxBatch = 64

// messageWriter writes GELF messages on a connection of the sink.
type messageWriter interface {
	// WriteMessages writes ms in order and returns how many it wrote before
	// an error; ms[n] is then the message that failed. An encodeError says
	// ms[n] is at fault, not the connection.
	WriteMessages(ms []*gelf.Message) (n int, err error)
	Close() error
}

// sinkMetrics are the counters of one sink.
type sinkMetrics struct {
	sent                              prometheus.Counter
	queueFull, writeError, shutdownDr prometheus.Counter
	queued                            prometheus.Gauge
}

// newSinkMetrics registers the counters on reg, or reuses them when another
// logger of the process (golden all runs several services) registered them.
func newSinkMetrics(reg prometheus.Registerer) (sinkMetrics, error) {
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "golden_log_messages_sent_total",
		Help: "Log messages written to a log sink such as GELF.",
	}, []string{"sink"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "golden_log_messages_dropped_total",
		Help: "Log messages not delivered to a log sink, by reason: queue_full (the sink fell behind), write_error (encoding or network failure), shutdown (logged after or still queued at shutdown).",
	}, []string{"sink", "reason"})
	queued := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "golden_log_messages_queued",
		Help: "Log messages waiting for a log sink such as GELF (while Graylog is away they wait here; a full queue drops what follows, as reason queue_full).",
	}, []string{"sink"})
	if reg != nil {
		var err error
		if sent, err = register(reg, sent); err != nil {
			return sinkMetrics{}, err
		}
		if dropped, err = register(reg, dropped); err != nil {
			return sinkMetrics{}, err
		}
		if queued, err = register(reg, queued); err != nil {
			return sinkMetrics{}, err
		}
	}
	// Creating every series up front shows zeros rather than no data.
	return sinkMetrics{
		sent:       sent.WithLabelValues(sinkGELF),
		queueFull:  dropped.WithLabelValues(sinkGELF, reasonQueueFull),
		writeError: dropped.WithLabelValues(sinkGELF, reasonWriteError),
		shutdownDr: dropped.WithLabelValues(sinkGELF, reasonShutdown),
		queued:     queued.WithLabelValues(sinkGELF),
	}, nil
}

// register registers c, or returns the collector of the same name another
// logger of the process registered (their counts then add up).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("registering log sink metrics: %w", err)
}

// sink owns the queue and the goroutine that writes it to Graylog. Only
// that goroutine touches the connection; callers only enqueue.
type sink struct {
	addr         string
	resolver     *net.Resolver
	dial         func(ctx context.Context) (messageWriter, error)
	writeTimeout time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	linger       time.Duration
	m            sinkMetrics
	statusCtx    context.Context // marks the sink's own entries, which the GELF hook skips
	status       *logrus.Entry   // logs the sink's state changes to stdout only

	queue    chan *gelf.Message
	closing  atomic.Bool
	stopping context.Context // done once close begins: flush and exit
	stop     context.CancelFunc
	done     chan struct{} // closed when run returns
	ctx      context.Context
	cancel   context.CancelFunc // aborts dials, writes and the flush
	once     sync.Once
	unsent   atomic.Int64 // messages dropped by the flush at shutdown
	// State of report; run's goroutine only.
	healthy      bool
	downLogged   bool
	reportedDown time.Time
}

type sinkOptions struct {
	writeTimeout, backoffMin, backoffMax time.Duration
	linger                               time.Duration // 0: defaultLinger
	resolver                             *net.Resolver // nil: net.DefaultResolver
}

// newSink starts the sink's goroutine; base is the logger's base entry,
// used for the sink's own state changes.
func newSink(protocol, addr string, queueSize int, o sinkOptions, m sinkMetrics, base *logrus.Entry) *sink {
	ctx, cancel := context.WithCancel(context.Background())
	stopping, stop := context.WithCancel(context.Background())
	statusCtx := context.WithValue(context.Background(), statusKey{}, true)
	s := &sink{
		addr:         addr,
		writeTimeout: o.writeTimeout,
		resolver:     cmp.Or(o.resolver, net.DefaultResolver),
		backoffMin:   o.backoffMin,
		backoffMax:   o.backoffMax,
		linger:       cmp.Or(o.linger, defaultLinger),
		m:            m,
		statusCtx:    statusCtx,
		status:       base.WithContext(statusCtx),
		queue:        make(chan *gelf.Message, queueSize),
		stopping:     stopping,
		stop:         stop,
		done:         make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
		healthy:      true,
	}
	if protocol == "tcp" {
		s.dial = s.dialTCP
	} else {
		s.dial = s.dialUDP
	}
	go s.run()
	return s
}

type statusKey struct{}

// own reports whether e is one of the sink's own status entries: shipping
// "GELF sink unavailable" to the unavailable sink would only add a drop.
func (s *sink) own(e *logrus.Entry) bool { return e.Context == s.statusCtx }

// accepting reports whether the sink takes new messages, counting the entry
// as dropped when it does not: after Close, or when the queue is full. The
// full check spares converting an entry that enqueue would drop anyway.
func (s *sink) accepting() bool {
	if s.closing.Load() {
		s.m.shutdownDr.Inc()
		return false
	}
	if len(s.queue) == cap(s.queue) {
		s.m.queueFull.Inc()
		return false
	}
	return true
}

// enqueue never blocks.
func (s *sink) enqueue(m *gelf.Message) {
	select {
	case s.queue <- m:
		s.m.queued.Inc()
	default:
		s.m.queueFull.Inc()
	}
}

// run writes queued messages until close, then flushes.
func (s *sink) run() {
	defer close(s.done)
	var (
		w        messageWriter
		failures int                                  // consecutive failed dials and writes, for the backoff
		pending  = make([]*gelf.Message, 0, maxBatch) // taken off the queue, not yet written
	)
	defer func() {
		if w != nil {
			_ = w.Close()
		}
	}()
	linger := time.NewTimer(s.linger)
	defer linger.Stop()
	for {
		if len(pending) == 0 {
			if len(s.queue) == 0 {
				linger.Reset(s.linger)
				select {
				case <-linger.C:
				case <-s.stopping.Done():
				}
			}
			select {
			case m := <-s.queue:
				s.m.queued.Dec()
				pending = s.take(append(pending, m))
			case <-s.stopping.Done():
				s.flush(w, nil)
				w = nil // flush closed it
				return
			}
		}
		// Hold the batch until a connection is up; meanwhile the queue
		// buffers and then drops what follows.
		for w == nil {
			if failures > 0 && !backoff.Sleep(s.stopping, backoff.Delay(failures-1, s.backoffMin, s.backoffMax)) {
				s.flush(nil, pending)
				return
			}
			var err error
			if w, err = s.dial(s.ctx); err != nil {
				failures++
				s.report(err)
				continue
			}
		}
		n, err := w.WriteMessages(pending)
		s.m.sent.Add(float64(n))
		if err == nil {
			pending = pending[:0]
			failures = 0
			s.report(nil)
			continue
		}
		// pending[n] failed and is dropped; the rest wait for the next
		// write.
		s.m.writeError.Inc()
		pending = slices.Delete(pending, 0, n+1)
		var enc encodeError
		if errors.As(err, &enc) {
			// The message is at fault, not the connection.
			continue
		}
		failures++
		s.report(err)
		_ = w.Close()
		w = nil
	}
}

// take appends to batch what else is queued, up to maxBatch messages,
// without waiting.
func (s *sink) take(batch []*gelf.Message) []*gelf.Message {
	for len(batch) < maxBatch {
		select {
		case m := <-s.queue:
			s.m.queued.Dec()
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// flush writes pending, then what is queued, with one connection attempt
// at most (w, when not nil, is the connection up) and stops at the first
// failure or when Close's deadline cancels s.ctx: a flush must not retry
// while the process waits to exit. It closes w.
func (s *sink) flush(w messageWriter, pending []*gelf.Message) {
	defer func() {
		if w != nil {
			_ = w.Close()
		}
	}()
	for {
		if len(pending) == 0 {
			select {
			case m := <-s.queue:
				s.m.queued.Dec()
				pending = s.take(append(pending, m))
			default:
				return
			}
		}
		if s.ctx.Err() != nil {
			s.dropQueued(len(pending))
			return
		}
		if w == nil {
			var err error
			if w, err = s.dial(s.ctx); err != nil {
				s.dropQueued(len(pending))
				return
			}
		}
		n, err := w.WriteMessages(pending)
		s.m.sent.Add(float64(n))
		if err != nil {
			s.dropQueued(len(pending) - n)
			return
		}
		pending = pending[:0]
	}
}

// dropQueued counts extra messages plus everything still queued as dropped
// at shutdown.
func (s *sink) dropQueued(extra int) {
	n := extra
	for {
		select {
		case <-s.queue:
			s.m.queued.Dec()
			n++
			continue
		default:
		}
		break
	}
	s.m.shutdownDr.Add(float64(n))
	s.unsent.Add(int64(n))
}

// report logs on stdout when the sink starts failing and when it recovers,
// at most one outage per reportInterval: UDP to a closed port fails every
// other write, and each failure must not add a line.
func (s *sink) report(err error) {
	switch {
	case err != nil && s.healthy:
		s.healthy = false
		if now := time.Now(); s.reportedDown.IsZero() || now.Sub(s.reportedDown) >= reportInterval {
			s.reportedDown = now
			s.downLogged = true
			s.status.WithError(err).WithField("gelf_addr", s.addr).
				Warn("GELF sink unavailable; log entries wait in its queue, and what does not fit is dropped, until it is back")
		}
	case err == nil && !s.healthy:
		s.healthy = true
		if s.downLogged {
			s.downLogged = false
			s.status.WithField("gelf_addr", s.addr).Info("GELF sink available again")
		}
	}
}

// close stops accepting, flushes the queue until ctx ends, then stops the
// goroutine. It returns an error when messages were left unsent.
func (s *sink) close(ctx context.Context) error {
	s.once.Do(func() {
		s.closing.Store(true)
		s.stop()
	})
	stopAbort := context.AfterFunc(ctx, s.cancel)
	defer stopAbort()
	// Every blocking step of run and flush ends when s.ctx is cancelled, so
	// this wait is bounded by ctx.
	<-s.done
	s.cancel()
	if n := s.unsent.Load(); n > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("GELF sink: %d log messages not sent before the deadline: %w", n, err)
		}
		return fmt.Errorf("GELF sink: %d log messages not sent at shutdown: %s unreachable", n, s.addr)
	}
	return nil
}

// dialUDP resolves the address itself, bounded by ctx, and hands go-gelf an
// IP: gelf.NewUDPWriter would resolve without a deadline. Resolving on every
// dial follows Graylog to a new address after a restart.
func (s *sink) dialUDP(ctx context.Context) (messageWriter, error) {
	addr, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr) // an IP: no lookup
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, err
	}
	large, err := gelf.NewUDPWriter(addr)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	w := &udpWriter{conn: conn, large: large, timeout: s.writeTimeout}
	if raddr.IP.To4() != nil {
		w.batch = ipv4.NewPacketConn(conn)
	} else {
		w.batch = ipv6.NewPacketConn(conn)
	}
	return w, nil
}

// compressAbove is the approximate message size above which UDP messages
// are gzipped: below it a message fits one datagram (gelf.ChunkSize) as it
// is, JSON overhead included.
const compressAbove = gelf.ChunkSize / 2

// udpWriter sends the messages that fit one datagram uncompressed, as many
// as it is given with one sendmmsg, and hands the others to go-gelf, which
// gzips them so that they need fewer chunks (at most 128 are allowed).
// go-gelf allocates a new gzip writer, about 800 KB, for every compressed
// message; doing that for every access-log line made GELF the largest cost
// of a request.
type udpWriter struct {
	conn    *net.UDPConn
	batch   batchConn // conn, sending many datagrams in one system call
	large   *gelf.UDPWriter
	timeout time.Duration
	bufs    [maxBatch]bytes.Buffer
	slots   [maxBatch][1][]byte // each message's Buffers, kept between batches
	msgs    []ipv4.Message
}

// batchConn is ipv4.PacketConn or ipv6.PacketConn, whose Messages are
// the same type.
type batchConn interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (w *udpWriter) WriteMessages(ms []*gelf.Message) (int, error) {
	done := 0
	for done < len(ms) {
		n, err := w.writeSmall(ms[done:])
		done += n
		if err != nil || done == len(ms) {
			return done, err
		}
		// ms[done] needs more than one datagram.
		w.large.CompressionType = gelf.CompressNone
		if approxSize(ms[done]) > compressAbove {
			w.large.CompressionType = gelf.CompressGzip
		}
		if err := w.large.WriteMessage(ms[done]); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

// writeSmall sends the messages at the start of ms that fit one datagram
// each, up to the first that does not, and returns how many it sent.
func (w *udpWriter) writeSmall(ms []*gelf.Message) (int, error) {
	w.msgs = w.msgs[:0]
	var encErr error
	for i, m := range ms[:min(len(ms), maxBatch)] {
		if approxSize(m) > compressAbove {
			break
		}
		b := &w.bufs[i]
		b.Reset()
		if err := m.MarshalJSONBuf(b); err != nil {
			encErr = encodeError{err}
			break
		}
		if b.Len() > gelf.ChunkSize {
			break // the estimate was short: go-gelf chunks it
		}
		w.slots[i][0] = b.Bytes()
		w.msgs = append(w.msgs, ipv4.Message{Buffers: w.slots[i][:]})
	}
	if len(w.msgs) > 0 {
		if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return 0, err
		}
	}
	sent := 0
	for sent < len(w.msgs) {
		n, err := w.batch.WriteBatch(w.msgs[sent:], 0)
		if err != nil {
			return sent, err
		}
		sent += n
	}
	return sent, encErr
}

func (w *udpWriter) Close() error {
	return errors.Join(w.conn.Close(), w.large.Close())
}

// approxSize estimates the JSON size of m.
func approxSize(m *gelf.Message) int {
	return len(m.Short) + len(m.Full) + len(m.Host) + 64 + len(m.RawExtra)
}

func (s *sink) resolve(ctx context.Context) (string, error) {
	host, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		return "", err
	}
	if net.ParseIP(host) != nil {
		return s.addr, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	// Go's own resolver ends a query in flight at its deadline, not when
	// ctx is cancelled: wait for the answer only as long as ctx lasts, so
	// that the flush at shutdown keeps its deadline (the lookup ends
	// within writeTimeout on its own).
	type answer struct {
		ips []string
		err error
	}
	done := make(chan answer, 1)
	go func() {
		ips, err := s.resolver.LookupHost(ctx, host)
		done <- answer{ips, err}
	}()
	var ips []string
	select {
	case a := <-done:
		if a.err != nil {
			return "", a.err
		}
		ips = a.ips
	case <-ctx.Done():
		return "", ctx.Err()
	}
	// Prefer IPv4: a UDP "connection" uses the first address only, and
	// "localhost" often resolves to ::1 first while Graylog listens on IPv4.
	ip := ips[0]
	for _, a := range ips {
		if p := net.ParseIP(a); p != nil && p.To4() != nil {
			ip = a
			break
		}
	}
	return net.JoinHostPort(ip, port), nil
}

// dialTCP connects with a timeout; the connection is closed when s.ctx is
// cancelled, so a write blocked on a stalled server ends at Close's deadline
// at the latest.
func (s *sink) dialTCP(ctx context.Context) (messageWriter, error) {
	d := net.Dialer{Timeout: s.writeTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	return &tcpWriter{conn: conn, timeout: s.writeTimeout, stopClose: stop}, nil
}

// tcpWriter writes GELF TCP frames: uncompressed JSON ended by a NUL byte.
// It replaces gelf.TCPWriter, which redials and sleeps with a mutex held and
// has no write deadline, so a server that stops reading would block it.
type tcpWriter struct {
	conn      net.Conn
	timeout   time.Duration
	buf       bytes.Buffer
	ends      []int // where each message's frame ends in buf
	stopClose func() bool
}

func (w *tcpWriter) WriteMessages(ms []*gelf.Message) (int, error) {
	w.buf.Reset()
	w.ends = w.ends[:0]
	var encErr error
	for _, m := range ms {
		mark := w.buf.Len()
		// encoding/json escapes control characters, so the frame holds no
		// NUL before its end.
		if err := m.MarshalJSONBuf(&w.buf); err != nil {
			w.buf.Truncate(mark)
			encErr = encodeError{err}
			break
		}
		w.buf.WriteByte(0)
		w.ends = append(w.ends, w.buf.Len())
	}
	if w.buf.Len() > 0 {
		if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return 0, err
		}
		if n, err := w.conn.Write(w.buf.Bytes()); err != nil {
			// The frames written whole count as sent; the one cut short
			// is the one that failed.
			whole, _ := slices.BinarySearch(w.ends, n+1)
			return whole, err
		}
	}
	// A large message leaves a large buffer; do not keep it forever.
	if w.buf.Cap() > 1<<20 {
		w.buf = bytes.Buffer{}
	}
	return len(w.ends), encErr
}

// encodeError is a message that could not be encoded; the connection is fine.
type encodeError struct{ err error }

func (e encodeError) Error() string { return "encoding GELF message: " + e.err.Error() }
func (e encodeError) Unwrap() error { return e.err }

func (w *tcpWriter) Close() error {
	w.stopClose()
	return w.conn.Close()
}
