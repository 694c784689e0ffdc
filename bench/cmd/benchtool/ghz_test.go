package main

import (
	"strings"
	"testing"
	"time"

	"github.com/golden-stack/golden/bench"
)

func TestFixedRateRounds(t *testing.T) {
	run := func(rps float64, p99ms int, failed int64) bench.GHZResult {
		return bench.GHZResult{
			Count: 1000, RPS: rps, P50: time.Millisecond, P90: 2 * time.Millisecond,
			P99:      time.Duration(p99ms) * time.Millisecond,
			Statuses: map[string]int64{"OK": 1000 - failed, "Unavailable": failed},
			Errors:   map[string]int64{"connection refused": failed},
		}
	}
	runs := map[string][]bench.GHZResult{
		bench.Bare:   {run(900, 2, 0), run(1000, 3, 0), run(950, 4, 0)},
		bench.Golden: {run(1000, 9, 0), run(990, 30, 0), run(980, 12, 2)},
		bench.Peer:   {run(1000, 10, 0), run(1000, 20, 0), run(1000, 15, 0)},
	}
	order := []string{bench.Bare, bench.Golden, bench.Peer}

	// The row of a server is the median of its rounds, failures summed.
	m := medianGHZ(runs[bench.Golden])
	if m.RPS != 990 || m.P99 != 12*time.Millisecond || m.Count != 3000 || m.Failed() != 2 || m.Errors["connection refused"] != 2 {
		t.Errorf("median of golden's rounds: RPS %v, p99 %v, %d calls, %d failed, errors %v; want 990, 12ms, 3000, 2, 2 refused",
			m.RPS, m.P99, m.Count, m.Failed(), m.Errors)
	}

	medians := map[string]bench.GHZResult{}
	for name, rs := range runs {
		medians[name] = medianGHZ(rs)
	}
	out := p99Rounds(order, runs, medians)
	for _, want := range []string{
		"**p99 by round** (ms): bare 2.00, 3.00, 4.00; golden 9.00, 30.00, 12.00; peer 10.00, 20.00, 15.00",
		// Medians 12 and 15 ms; the rounds 0.90×, 1.50×, 0.80×.
		"**golden / peer p99**: 0.80× (by round: 0.90×, 1.50×, 0.80×)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, bench.GoldenNoLog) {
		t.Errorf("a ratio of servers that did not run:\n%s", out)
	}
	if out := p99Rounds(order, map[string][]bench.GHZResult{
		bench.Bare: runs[bench.Bare][:1], bench.Golden: runs[bench.Golden][:1], bench.Peer: runs[bench.Peer][:1],
	}, medians); out != "" {
		t.Errorf("one round gave round-by-round figures:\n%s", out)
	}
}
