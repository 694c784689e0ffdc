package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/backoff"
)

// maxHeld bounds the bytes a flushWriter holds: beyond it a line is written
// at once, with the lines before it, by the goroutine that logs it (as
// without the writer), so a stdout that blocks slows logging down rather
// than growing memory or losing lines.
const maxHeld = 256 << 10

// maxWrite is PIPE_BUF on Linux: a write to a pipe of at most this many
// bytes is not interleaved with another's, so the lines of services that
// share a stdout (golden all) stay whole. Held lines go out in writes of at
// most this size, cut between lines; a longer line is written alone.
const maxWrite = 4096

// flushWriter holds stdout lines for up to an interval and writes them
// together, up to maxWrite bytes per write system call: a write per line
// was about a fifth of what the access log cost per request on 2 cores. Lines keep their order. A line
// the formatter marks urgent (warn, error, fatal, panic) is written at
// once, after the lines held before it, so only info, debug and trace lines
// wait, and only they are lost if the process dies without Close (a signal
// it cannot catch, a panic no one recovers): at most one interval's worth.
type flushWriter struct {
	out      io.Writer
	interval time.Duration

	// urgent is set by urgentFormatter for the line logrus writes next:
	// logrus formats and writes an entry under its logger's lock, so the
	// flag and the Write it is meant for cannot interleave with another
	// entry's.
	urgent atomic.Bool

	wmu sync.Mutex // held while writing to out: writes keep their order

	mu     sync.Mutex // guards held, spare and closed
	held   []byte
	spare  []byte
	closed bool

	kick     chan struct{} // the first line into an empty buffer wakes run
	stopping context.Context
	stop     context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

// newFlushWriter starts the goroutine that writes what w holds every
// interval.
func newFlushWriter(out io.Writer, interval time.Duration) *flushWriter {
	stopping, stop := context.WithCancel(context.Background())
	w := &flushWriter{
		out:      out,
		interval: interval,
		kick:     make(chan struct{}, 1),
		stopping: stopping,
		stop:     stop,
		done:     make(chan struct{}),
	}
	go w.run()
	return w
}

// Write implements io.Writer. p is copied: logrus reuses its buffer.
func (w *flushWriter) Write(p []byte) (int, error) {
	urgent := w.urgent.Swap(false)
	w.mu.Lock()
	if !urgent && !w.closed && len(w.held)+len(p) <= maxHeld {
		wake := len(w.held) == 0
		w.held = append(w.held, p...)
		w.mu.Unlock()
		if wake {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
		return len(p), nil
	}
	w.mu.Unlock()
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.writeHeld(); err != nil {
		return 0, err
	}
	return w.out.Write(p)
}

// run writes what is held an interval after the first line of a batch
// arrived, so a busy server wakes it once per interval, not once per line.
func (w *flushWriter) run() {
	defer close(w.done)
	defer w.flush()
	for {
		select {
		case <-w.kick:
		case <-w.stopping.Done():
			return
		}
		if !backoff.Sleep(w.stopping, w.interval) {
			return
		}
		w.flush()
	}
}

func (w *flushWriter) flush() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	// No caller is left to hear of a failed write: report it on stderr,
	// as logrus does its own.
	if err := w.writeHeld(); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to write to log, %v\n", err)
	}
}

// writeHeld writes the held lines; the caller holds wmu.
func (w *flushWriter) writeHeld() error {
	w.mu.Lock()
	data := w.held
	if len(data) == 0 {
		w.mu.Unlock()
		return nil
	}
	// Lines logged while data is written go into the other buffer.
	w.held, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	var err error
	for rest := data; len(rest) > 0 && err == nil; {
		n := linesUpTo(rest, maxWrite)
		_, err = w.out.Write(rest[:n])
		rest = rest[n:]
	}
	// Keep the buffer for the next batch: maxHeld bounds it.
	w.mu.Lock()
	w.spare = data[:0]
	w.mu.Unlock()
	return err
}

// linesUpTo returns the length of the longest run of whole lines at the
// start of b that is at most limit bytes long, or of b's first line when
// that line alone is longer (b's last line may lack its newline).
func linesUpTo(b []byte, limit int) int {
	if len(b) <= limit {
		return len(b)
	}
	if i := bytes.LastIndexByte(b[:limit], '\n'); i >= 0 {
		return i + 1
	}
	if i := bytes.IndexByte(b[limit:], '\n'); i >= 0 {
		return limit + i + 1
	}
	return len(b)
}

// close writes what is held and stops the goroutine, waiting at most until
// ctx is done; lines written afterwards go straight to out.
func (w *flushWriter) close(ctx context.Context) error {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		w.stop()
	})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// urgentFormatter marks warn and more severe entries urgent for w, the
// logger's output, before they are written.
type urgentFormatter struct {
	logrus.Formatter
	w *flushWriter
}

// Format implements logrus.Formatter.
func (f urgentFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.Formatter.Format(e)
	if e.Level <= logrus.WarnLevel {
		f.w.urgent.Store(true)
	}
	return b, err
}
