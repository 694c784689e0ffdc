package loadgen

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	l := newLatencies(10_000)
	// 1..1000 ms in a scrambled order.
	for i := range 1000 {
		l.add(time.Duration((i*7919)%1000+1) * time.Millisecond)
	}
	sorted := append([]time.Duration(nil), l.samples...)
	slices.Sort(sorted)
	got := percentiles(sorted, 50, 90, 99, 100)
	want := []time.Duration{500 * time.Millisecond, 900 * time.Millisecond, 990 * time.Millisecond, 1000 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("percentile %d: %s, want %s", i, got[i], want[i])
		}
	}
	if l.max != time.Second {
		t.Errorf("max %s", l.max)
	}
	if p := percentiles(nil, 50); p[0] != 0 {
		t.Errorf("percentile of nothing: %s", p[0])
	}
	if p := percentiles([]time.Duration{7}, 1, 50, 100); p[0] != 7 || p[2] != 7 {
		t.Errorf("percentiles of one: %v", p)
	}
}

func TestLatencySampleIsBounded(t *testing.T) {
	l := newLatencies(1000)
	// 100k latencies, uniform over 1..100 ms, and one outlier.
	for i := range 100_000 {
		l.add(time.Duration(i%100+1) * time.Millisecond)
	}
	l.add(time.Hour)
	if len(l.samples) != 1000 || l.n != 100_001 {
		t.Fatalf("kept %d of %d samples, want 1000", len(l.samples), l.n)
	}
	if l.max != time.Hour {
		t.Errorf("max %s, want the outlier", l.max)
	}
	sorted := append([]time.Duration(nil), l.samples...)
	slices.Sort(sorted)
	// The sample is random; a uniform one puts the median near 50 ms.
	if p50 := percentiles(sorted, 50)[0]; p50 < 40*time.Millisecond || p50 > 60*time.Millisecond {
		t.Errorf("p50 of the sample %s, want about 50ms", p50)
	}
}

func TestSummaryText(t *testing.T) {
	s := Summary{
		RunID: "0a1b2c3d", Target: "http://127.0.0.1:8080", Seed: 7, DurationSeconds: 2,
		Requests: 20, Rate: 10, TargetRate: 10, Succeeded: 17, ExpectedFailures: 2, UnexpectedFailures: 1,
		ByStatus: map[string]int64{"200": 17, "401": 2, "503": 1}, ByCode: map[string]int64{"UNAUTHENTICATED": 2, "UNAVAILABLE": 1},
		ByOp:    map[string]int64{"get": 18, "bad_token": 2},
		Latency: LatencySummary{P50: 1.5, P90: 2, P99: 3.25, Max: 4},
		FailedRequests: []FailedRequest{
			{ID: "1f2e3d4c5b6a79880f1e2d3c4b5a6978", Status: 503, Code: "UNAVAILABLE", Route: "GET /v1/users/{id}"},
			{ID: "9f2e3d4c5b6a79880f1e2d3c4b5a6978", Status: 401, Code: "UNAUTHENTICATED", Route: "GET /v1/users", Expected: true},
		},
	}
	var buf bytes.Buffer
	if err := s.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"loadgen run 0a1b2c3d against http://127.0.0.1:8080 (seed 7)",
		"20 in 2s: 10.0/s of 10/s asked",
		"unexpected failures  1",
		"200=17 401=2 503=1",
		"UNAUTHENTICATED=2 UNAVAILABLE=1",
		"p50 1.50ms  p90 2.00ms  p99 3.25ms  max 4.00ms",
		"golden lookup ID",
		"1f2e3d4c5b6a79880f1e2d3c4b5a6978  503  UNAVAILABLE      GET /v1/users/{id}  unexpected",
		"9f2e3d4c5b6a79880f1e2d3c4b5a6978  401  UNAUTHENTICATED  GET /v1/users       expected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}
