package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// spanCounts is what a provider's export metrics say.
type spanCounts struct {
	exported, queueFull, exportError, queued float64
}

// ended is every sampled span the counts account for.
func (c spanCounts) ended() float64 { return c.exported + c.queueFull + c.exportError + c.queued }

// readSpanCounts gathers the export metrics from reg.
func readSpanCounts(t testing.TB, reg prometheus.Gatherer) spanCounts {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var c spanCounts
	seen := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "golden_trace_spans_exported_total":
				c.exported = m.GetCounter().GetValue()
			case "golden_trace_spans_queued":
				c.queued = m.GetGauge().GetValue()
			case "golden_trace_spans_dropped_total":
				switch label(m, "reason") {
				case reasonQueueFull:
					c.queueFull = m.GetCounter().GetValue()
				case reasonExportError:
					c.exportError = m.GetCounter().GetValue()
				default:
					t.Errorf("golden_trace_spans_dropped_total has reason %q", label(m, "reason"))
				}
			default:
				continue
			}
			seen++
		}
	}
	if seen != 4 {
		t.Fatalf("%d of the 4 export series registered", seen)
	}
	return c
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestExportAccountCountsEverySpan(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	p, err := New(Config{SampleRatio: 1, Environment: "test", QueueSize: 4}, "svc",
		WithExporter(exp), WithRegisterer(reg), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdownReturns(t, p, time.Second) })
	if c := readSpanCounts(t, reg); c != (spanCounts{}) {
		t.Fatalf("before any span: %+v", c)
	}
	end := func(n int) {
		for range n {
			_, span := p.Tracer().Start(context.Background(), "op")
			span.End()
		}
	}

	// The exporter is stuck: four spans fill the queue (a full batch of
	// four then waits in the exporter), the six after them are dropped.
	end(10)
	if c := readSpanCounts(t, reg); c != (spanCounts{queued: 4, queueFull: 6}) {
		t.Fatalf("exporter stuck, 10 spans ended: %+v, want 4 queued and 6 dropped as queue_full", c)
	}

	// Released, the batch goes through and the queue empties.
	close(exp.release)
	c := waitSpanCounts(t, reg, func(c spanCounts) bool { return c.exported == 4 })
	if c != (spanCounts{exported: 4, queueFull: 6}) {
		t.Fatalf("exporter released: %+v, want 4 exported and 6 dropped", c)
	}

	// A batch the exporter fails is counted as export_error.
	exp.setFail(true)
	end(3)
	flush(t, p)
	if c := readSpanCounts(t, reg); c != (spanCounts{exported: 4, queueFull: 6, exportError: 3}) {
		t.Fatalf("3 spans failed by the exporter: %+v", c)
	}
	exp.setFail(false)
	end(2)
	flush(t, p)
	if c := readSpanCounts(t, reg); c != (spanCounts{exported: 6, queueFull: 6, exportError: 3}) {
		t.Fatalf("2 more spans exported: %+v", c)
	}
	if n := exp.exported(); n != 6 {
		t.Errorf("exporter received %d spans, metrics say 6", n)
	}
}

func TestExportAccountSkipsUnsampledSpans(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	close(exp.release)
	reg := prometheus.NewRegistry()
	p, err := New(Config{SampleRatio: 0, Environment: "test", QueueSize: 4}, "svc",
		WithExporter(exp), WithRegisterer(reg), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdownReturns(t, p, time.Second) })
	for range 10 {
		_, span := p.Tracer().Start(context.Background(), "op")
		span.End()
	}
	flush(t, p)
	if c := readSpanCounts(t, reg); c != (spanCounts{}) {
		t.Fatalf("10 unsampled spans: %+v, want nothing counted", c)
	}
}

func TestExportMetricsRegisteredOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := []Option{WithExporter(&blockingExporter{}), WithRegisterer(reg), WithLogger(quietLogger())}
	p, err := New(DefaultConfig(), "svc", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdownReturns(t, p, time.Second) })
	if _, err := New(DefaultConfig(), "svc", opts...); err == nil {
		t.Fatal("a second provider registered the same metrics on the same registry")
	}
	// Export off: nothing to count, nothing registered.
	off := prometheus.NewRegistry()
	if _, err := New(DefaultConfig(), "svc", WithRegisterer(off)); err != nil {
		t.Fatal(err)
	}
	if mfs, _ := off.Gather(); len(mfs) != 0 {
		t.Errorf("export off registered %d metrics", len(mfs))
	}
}

// flush exports what is queued, within a bound.
func flush(t testing.TB, p *Provider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.ForceFlush(ctx) // a failed export is the point of some calls
}

// waitSpanCounts polls the export metrics until done holds, for at most 10 s.
func waitSpanCounts(t testing.TB, reg prometheus.Gatherer, done func(spanCounts) bool) spanCounts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := readSpanCounts(t, reg)
		if done(c) || time.Now().After(deadline) {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
}
