package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"
)

// openMetricsAccept is what Prometheus sends to ask for OpenMetrics, the
// only text format that carries exemplars.
const openMetricsAccept = "application/openmetrics-text; version=1.0.0"

// families gathers g and indexes the families by name.
func families(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// labelsOf returns the labels of m as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// find returns the metric of family name whose labels include want, or nil.
func find(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mf := families(t, g)[name]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		got := labelsOf(m)
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// mustFind is find that fails the test when there is no such metric,
// listing what there is.
func mustFind(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	if m := find(t, g, name, want); m != nil {
		return m
	}
	t.Fatalf("no %s with labels %v; have:\n%s", name, want, strings.Join(labelSets(t, g, name), "\n"))
	return nil
}

// labelSets lists the label sets of family name, sorted, one string each.
func labelSets(t *testing.T, g prometheus.Gatherer, name string) []string {
	t.Helper()
	var out []string
	for _, m := range families(t, g)[name].GetMetric() {
		var parts []string
		for _, lp := range m.GetLabel() {
			parts = append(parts, lp.GetName()+"="+lp.GetValue())
		}
		out = append(out, strings.Join(parts, ","))
	}
	sort.Strings(out)
	return out
}

// seriesCount returns the number of label sets (one per counter, gauge or
// histogram child) in the families whose name starts with prefix; "" counts
// every family.
func seriesCount(t *testing.T, g prometheus.Gatherer, prefix string) int {
	t.Helper()
	n := 0
	for name, mf := range families(t, g) {
		if strings.HasPrefix(name, prefix) {
			n += len(mf.GetMetric())
		}
	}
	return n
}

// counterValue is the value of the counter name with labels want, or 0 when
// it does not exist.
func counterValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	return find(t, g, name, want).GetCounter().GetValue()
}

// gaugeValue is the value of the gauge name with labels want.
func gaugeValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	return mustFind(t, g, name, want).GetGauge().GetValue()
}

// checkLatencyHistogram fails unless h has exactly the RPCBuckets as classic
// buckets and is also a native histogram.
func checkLatencyHistogram(t *testing.T, name string, h *dto.Histogram) {
	t.Helper()
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if !slices.Equal(bounds, RPCBuckets) {
		t.Errorf("%s buckets = %v, want RPCBuckets %v", name, bounds, RPCBuckets)
	}
	if !slices.Contains(bounds, 0.3) {
		t.Errorf("%s has no le=\"0.3\" bucket", name)
	}
	if h.Schema == nil {
		t.Errorf("%s is not a native histogram (no schema)", name)
	} else if s := h.GetSchema(); s != 3 {
		// Factor 1.1 picks schema 3: buckets grow by 2^(1/8) ≈ 1.09.
		t.Errorf("%s native schema = %d, want 3 (bucket factor 1.1)", name, s)
	}
}

// scrape GETs handler with accept and returns the body and Content-Type.
func scrape(t *testing.T, h http.Handler, accept string) (body, contentType string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %s", rec.Code, rec.Body.String())
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b), rec.Header().Get("Content-Type")
}

// exemplarLines returns the exposition lines of family prefix that carry a
// trace_id exemplar.
func exemplarLines(body, prefix string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, `# {trace_id="`) {
			out = append(out, line)
		}
	}
	return out
}

// spanContext returns a valid span context with fixed IDs, sampled or not.
func spanContext(sampled bool) trace.SpanContext {
	cfg := trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.NewSpanContext(cfg)
}

// eventually polls cond every few milliseconds for up to 10 seconds, for
// state that settles on another goroutine (a stream handler returning after
// the client cancelled). It asserts the final state, not how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testContext returns a context that ends with the test, bounded at 30s.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
