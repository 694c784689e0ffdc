package tracing

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Drop reasons, the reason label of golden_trace_spans_dropped_total.
const (
	reasonQueueFull   = "queue_full"   // the export queue was full when the span ended
	reasonExportError = "export_error" // the exporter gave up on the span's batch
)

// exportAccount follows every sampled span from its end to its export, so
// that spans lost on the way are counted rather than silently gone. The
// SDK's batch processor drops a span when its queue is full and only keeps a
// private count of it; the account therefore admits spans into that queue
// itself, at most limit at a time (the batch being exported included), and
// gives the processor one slot more than that, so the processor never
// drops and every loss is one the account saw.
type exportAccount struct {
	limit   int64
	pending atomic.Int64 // admitted spans not yet through the exporter

	exported               prometheus.Counter
	queueFull, exportError prometheus.Counter
	collectors             []prometheus.Collector // to register
}

func newExportAccount(limit int) *exportAccount {
	a := &exportAccount{limit: int64(limit)}
	a.exported = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "golden_trace_spans_exported_total",
		Help: "Sampled spans the exporter delivered to the trace receiver (Jaeger).",
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "golden_trace_spans_dropped_total",
		Help: "Sampled spans never delivered, by reason: queue_full (the export queue, --trace-queue-size, was full: Jaeger slow or away), export_error (the exporter gave up on the batch).",
	}, []string{"reason"})
	// Creating both series up front shows zeros rather than no data.
	a.queueFull = dropped.WithLabelValues(reasonQueueFull)
	a.exportError = dropped.WithLabelValues(reasonExportError)
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "golden_trace_spans_queued",
		Help: "Sampled spans ended and not yet through the exporter, the batch being exported included; at most --trace-queue-size.",
	}, func() float64 { return float64(a.pending.Load()) })
	a.collectors = []prometheus.Collector{a.exported, dropped, queued}
	return a
}

// register adds the account's metrics to reg.
func (a *exportAccount) register(reg prometheus.Registerer) error {
	for _, c := range a.collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// admittingProcessor stands in front of the batch processor: it passes on
// the sampled spans the account admits and counts the others as dropped.
type admittingProcessor struct {
	sdktrace.SpanProcessor
	account *exportAccount
}

// OnEnd implements sdktrace.SpanProcessor.
func (p admittingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return // the batch processor ignores these as well
	}
	a := p.account
	if a.pending.Add(1) > a.limit {
		a.pending.Add(-1)
		a.queueFull.Inc()
		return
	}
	p.SpanProcessor.OnEnd(s)
}

// countingExporter counts each batch by the exporter's verdict and releases
// its spans from the account.
type countingExporter struct {
	sdktrace.SpanExporter
	account *exportAccount
}

// ExportSpans implements sdktrace.SpanExporter.
func (e countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	n := len(spans)
	e.account.pending.Add(-int64(n))
	if err != nil {
		e.account.exportError.Add(float64(n))
	} else {
		e.account.exported.Add(float64(n))
	}
	return err
}
