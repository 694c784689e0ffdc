package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// msgs returns the msg of each entry written so far, in order.
func msgs(t *testing.T, buf *syncBuffer) []string {
	t.Helper()
	var out []string
	for _, e := range buf.entries(t) {
		out = append(out, fmt.Sprint(e["msg"]))
	}
	return out
}

func TestFlushWriterHoldsInfoLinesUntilAWarnLine(t *testing.T) {
	// An hour: only a warn line or Close writes what is held.
	l, buf, _ := newLogger(t, nil, withFlushInterval(time.Hour))
	l.Entry().Info("one")
	l.Entry().Debug("two")
	if got := buf.String(); got != "" {
		t.Fatalf("written before the interval: %q", got)
	}
	l.Entry().Warn("three")
	if got, want := strings.Join(msgs(t, buf), ","), "one,two,three"; got != want {
		t.Errorf("after a warn line: %s, want %s", got, want)
	}
	l.Entry().Info("four")
	l.Entry().Error("five")
	if got, want := strings.Join(msgs(t, buf), ","), "one,two,three,four,five"; got != want {
		t.Errorf("after an error line: %s, want %s", got, want)
	}
}

func TestFlushWriterWritesWithinTheInterval(t *testing.T) {
	l, buf, _ := newLogger(t, func(c *Config) { c.FlushInterval = 20 * time.Millisecond })
	l.Entry().Info("one")
	l.Entry().Info("two")
	deadline := time.Now().Add(waitTimeout)
	for buf.String() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("nothing written %v after two info lines", waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, want := strings.Join(msgs(t, buf), ","), "one,two"; got != want {
		t.Errorf("written: %s, want %s", got, want)
	}
}

func TestFlushWriterCloseWritesWhatIsHeld(t *testing.T) {
	l, buf, _ := newLogger(t, nil, withFlushInterval(time.Hour))
	l.Entry().Info("one")
	closeLogger(t, l)
	if got, want := strings.Join(msgs(t, buf), ","), "one"; got != want {
		t.Fatalf("after Close: %s, want %s", got, want)
	}
	// After Close, lines are written at once.
	l.Entry().Info("two")
	if got, want := strings.Join(msgs(t, buf), ","), "one,two"; got != want {
		t.Errorf("a line after Close: %s, want %s", got, want)
	}
}

func TestFlushWriterFatalWritesWhatIsHeld(t *testing.T) {
	exited := make(chan int, 1)
	l, buf, _ := newLogger(t, nil, withFlushInterval(time.Hour),
		WithExitFunc(func(code int) { exited <- code }))
	l.Entry().Info("one")
	fatal := l.Entry().Fatal // returns here: the exit function does not exit
	fatal("cannot continue")
	if code := <-exited; code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if got, want := strings.Join(msgs(t, buf), ","), "one,cannot continue"; got != want {
		t.Errorf("before exit: %s, want %s", got, want)
	}
}

func TestFlushWriterWritesThroughWhenFull(t *testing.T) {
	buf := &syncBuffer{}
	w := newFlushWriter(buf, time.Hour)
	defer closeFlushWriter(t, w)
	first := bytes.Repeat([]byte("a"), maxHeld-10)
	if _, err := w.Write(first); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "" {
		t.Fatal("wrote less than maxHeld before the interval")
	}
	// Past maxHeld, the line goes out at once, after what was held.
	second := bytes.Repeat([]byte("b"), 20)
	if n, err := w.Write(second); err != nil || n != len(second) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got, want := buf.String(), string(first)+string(second); got != want {
		t.Errorf("wrote %d bytes, want %d: the held lines, then the new one", len(got), len(want))
	}
}

func TestFlushWriterKeepsEveryLineUnderConcurrentLogging(t *testing.T) {
	l, buf, _ := newLogger(t, func(c *Config) { c.FlushInterval = time.Millisecond })
	const goroutines, lines = 8, 300
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range lines {
				if i%50 == 49 {
					l.Entry().WithField("g", g).Warn("warn")
					continue
				}
				l.Entry().WithField("g", g).Info("info")
			}
		})
	}
	wg.Wait()
	closeLogger(t, l)
	// entries fails on a line that is not whole JSON.
	perGoroutine := map[float64]int{}
	for _, e := range buf.entries(t) {
		perGoroutine[e["g"].(float64)]++
	}
	for g := range goroutines {
		if got := perGoroutine[float64(g)]; got != lines {
			t.Errorf("goroutine %d: %d lines written, want %d", g, got, lines)
		}
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

func TestFlushWriterCloseKeepsItsDeadlineOnAStuckOutput(t *testing.T) {
	out := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := newFlushWriter(out, time.Millisecond)
	if _, err := w.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the held line was not written within the wait")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close on a stuck output = %v, want DeadlineExceeded", err)
	}
	close(out.release)
	closeFlushWriter(t, w)
}

func TestFlushWriterReportsAWriteError(t *testing.T) {
	w := newFlushWriter(failingWriter{}, time.Hour)
	defer closeFlushWriter(t, w)
	if _, err := w.Write([]byte("held\n")); err != nil {
		t.Fatalf("a held line failed: %v", err)
	}
	w.urgent.Store(true)
	if _, err := w.Write([]byte("urgent\n")); !errors.Is(err, errWrite) {
		t.Errorf("an urgent line on a failing output = %v, want %v", err, errWrite)
	}
}

var errWrite = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

// closeFlushWriter closes w within waitTimeout.
func closeFlushWriter(t *testing.T, w *flushWriter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

// writeSizes records the size of each write.
type writeSizes struct {
	syncBuffer
	mu    sync.Mutex
	sizes []int
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.sizes = append(w.sizes, len(p))
	w.mu.Unlock()
	return w.syncBuffer.Write(p)
}

// TestFlushWriterWritesWholeLinesUpToPipeBuf: held lines go out in writes
// of at most maxWrite bytes, each ending a line, so that services sharing a
// pipe cannot cut each other's lines; a longer line goes out alone.
func TestFlushWriterWritesWholeLinesUpToPipeBuf(t *testing.T) {
	out := &writeSizes{}
	w := newFlushWriter(out, time.Hour)
	var want bytes.Buffer
	line := append(bytes.Repeat([]byte("x"), 99), '\n')
	for range 100 {
		want.Write(line)
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	long := append(bytes.Repeat([]byte("y"), 3*maxWrite), '\n')
	want.Write(long)
	if _, err := w.Write(long); err != nil {
		t.Fatal(err)
	}
	closeFlushWriter(t, w)
	if out.String() != want.String() {
		t.Fatalf("wrote %d bytes, want the %d held, in order", len(out.String()), want.Len())
	}
	// 100 lines of 100 bytes: 40 per write, then the long line alone.
	if got, want := fmt.Sprint(out.sizes), fmt.Sprint([]int{4000, 4000, 2000, len(long)}); got != want {
		t.Errorf("write sizes %s, want %s", got, want)
	}
}

func TestLinesUpTo(t *testing.T) {
	for _, tt := range []struct {
		b     string
		limit int
		want  int
	}{
		{"", 4, 0},
		{"ab\n", 4, 3},
		{"ab\ncd\nef\n", 7, 6},
		{"abcdefgh\nij\n", 4, 9},
		{"abcdefgh", 4, 8},
		{"ab\ncdefgh", 4, 3},
	} {
		if got := linesUpTo([]byte(tt.b), tt.limit); got != tt.want {
			t.Errorf("linesUpTo(%q, %d) = %d, want %d", tt.b, tt.limit, got, tt.want)
		}
	}
}
