package metrics

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

func TestNewRegistryBuildInfo(t *testing.T) {
	reg := NewRegistry(BuildInfo{Service: "user", Version: "v1.2.3", Revision: "abc123"})
	m := mustFind(t, reg, "golden_build_info", map[string]string{
		"service":   "user",
		"version":   "v1.2.3",
		"revision":  "abc123",
		"goversion": runtime.Version(),
	})
	if v := m.GetGauge().GetValue(); v != 1 {
		t.Errorf("golden_build_info = %v, want 1", v)
	}
	fams := families(t, reg)
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("NewRegistry has no %s", name)
		}
	}
}

func TestBuildInfoResolve(t *testing.T) {
	bi := &debug.BuildInfo{
		Main:     debug.Module{Path: "github.com/golden-stack/golden", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "deadbeef"}},
	}
	for _, tc := range []struct {
		name string
		in   BuildInfo
		bi   *debug.BuildInfo
		want BuildInfo
	}{
		{"nothing known", BuildInfo{}, nil, BuildInfo{unknown, unknown, unknown}},
		{"from the binary", BuildInfo{Service: "auth"}, bi, BuildInfo{"auth", "v0.4.0", "deadbeef"}},
		{"overrides win", BuildInfo{"auth", "v9", "cafe"}, bi, BuildInfo{"auth", "v9", "cafe"}},
		{"no vcs settings", BuildInfo{Service: "auth"}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, BuildInfo{"auth", "(devel)", unknown}},
		{"invalid UTF-8", BuildInfo{Service: "a\xffb"}, nil, BuildInfo{"a\uFFFDb", unknown, unknown}},
	} {
		if got := tc.in.resolve(tc.bi); got != tc.want {
			t.Errorf("%s: resolve = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// A registry must build whatever the labels hold.
	NewRegistry(BuildInfo{Service: "\xff\xfe", Version: "\x00"})
}

func TestHandler(t *testing.T) {
	reg := NewRegistry(BuildInfo{Service: "gateway"})
	h := Handler(reg)
	Handler(reg) // a second handler for one registry shares its metrics

	body, ctype := scrape(t, h, "")
	if !strings.HasPrefix(ctype, "text/plain") {
		t.Errorf("default Content-Type = %q, want the text format", ctype)
	}
	if !strings.Contains(body, "golden_build_info{") {
		t.Error("exposition lacks golden_build_info")
	}
	body, ctype = scrape(t, h, openMetricsAccept)
	if !strings.HasPrefix(ctype, "application/openmetrics-text") {
		t.Errorf("Content-Type for %q = %q, want OpenMetrics", openMetricsAccept, ctype)
	}
	if !strings.HasSuffix(strings.TrimSpace(body), "# EOF") {
		t.Error("OpenMetrics exposition does not end with # EOF")
	}
	// The handler counts its own scrapes; the first two are done.
	if got := counterValue(t, reg, "promhttp_metric_handler_requests_total", map[string]string{"code": "200"}); got != 2 {
		t.Errorf("promhttp_metric_handler_requests_total{code=200} = %v, want 2", got)
	}
}

// TestExemplarsThrottled checks that a set of metrics gives at most one
// exemplar per exemplarInterval, except when asked always (server errors),
// and none for an unsampled span.
func TestExemplarsThrottled(t *testing.T) {
	var e exemplars
	ctx := trace.ContextWithSpanContext(context.Background(), spanContext(true))
	if e.fromContext(ctx, false) == nil {
		t.Fatal("the first request got no exemplar")
	}
	start := time.Now()
	got := 0
	for range 1000 {
		if e.fromContext(ctx, false) != nil {
			got++
		}
	}
	// The loop takes far less than an interval; allow for a slow machine.
	if limit := int(time.Since(start)/exemplarInterval) + 1; got > limit {
		t.Errorf("%d exemplars in %s, want at most %d", got, time.Since(start), limit)
	}
	if l := e.fromContext(ctx, true); l["trace_id"] != spanContext(true).TraceID().String() {
		t.Errorf("always: %v, want the trace ID", l)
	}
	time.Sleep(exemplarInterval)
	if e.fromContext(ctx, false) == nil {
		t.Error("no exemplar after an interval")
	}
	unsampled := trace.ContextWithSpanContext(context.Background(), spanContext(false))
	if l := e.fromContext(unsampled, true); l != nil {
		t.Errorf("unsampled span: %v, want none", l)
	}
}
