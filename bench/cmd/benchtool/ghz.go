package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/bench"
	"github.com/golden-stack/golden/observability/requestid"
)

type ghzFlags struct {
	env, bin            string
	duration, fixedDur  time.Duration
	connections, conc   int
	skipFirst, fixedRPS int
	fixedRounds         int
	fixedFraction       float64
}

func newGHZCmd() *cobra.Command {
	f := ghzFlags{
		bin:      bench.GHZBinary(),
		duration: 15 * time.Second, fixedDur: 10 * time.Second,
		connections: 4, conc: 32, skipFirst: 1000, fixedRounds: 3, fixedFraction: 0.5,
	}
	cmd := &cobra.Command{
		Use:   "ghz",
		Short: "Run ghz against every server of cmd/benchserver: flat out, then in rounds at one fixed rate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGHZ(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.env, "env", "", "file benchserver wrote (required)")
	fs.StringVar(&f.bin, "ghz", f.bin, "ghz binary (scripts/install-backends.sh ghz)")
	fs.DurationVar(&f.duration, "duration", f.duration, "length of each flat-out run")
	fs.DurationVar(&f.fixedDur, "fixed-duration", f.fixedDur, "length of each fixed-rate run (0: none)")
	fs.IntVar(&f.connections, "connections", f.connections, "client connections")
	fs.IntVar(&f.conc, "concurrency", f.conc, "calls in flight")
	fs.IntVar(&f.skipFirst, "skip-first", f.skipFirst, "calls left out of each run's statistics (warm-up)")
	fs.IntVar(&f.fixedRounds, "fixed-rounds", f.fixedRounds, "fixed-rate rounds, each running every server once (the table shows their medians)")
	fs.IntVar(&f.fixedRPS, "rps", f.fixedRPS, "rate of the fixed-rate runs (0: --fixed-fraction of the slowest flat-out RPS)")
	fs.Float64Var(&f.fixedFraction, "fixed-fraction", f.fixedFraction, "fraction of the slowest server's flat-out RPS used as the fixed rate")
	return cmd
}

func runGHZ(ctx context.Context, w io.Writer, f ghzFlags) error {
	switch {
	case f.env == "":
		return fmt.Errorf("--env: must be set")
	case f.duration <= 0 || f.fixedDur < 0:
		return fmt.Errorf("--duration must be positive and --fixed-duration not negative")
	case f.fixedRounds < 1:
		return fmt.Errorf("--fixed-rounds must be at least 1, got %d", f.fixedRounds)
	case f.connections < 1 || f.conc < f.connections:
		return fmt.Errorf("--concurrency (%d) must be at least --connections (%d), which must be at least 1", f.conc, f.connections)
	case !(f.fixedFraction > 0 && f.fixedFraction <= 1):
		return fmt.Errorf("--fixed-fraction must be in (0, 1], got %v", f.fixedFraction)
	}
	env, err := bench.ReadEnv(f.env)
	if err != nil {
		return err
	}
	token, err := env.Token()
	if err != nil {
		return err
	}
	files := bench.Certs{Dir: env.Certs}.Files(bench.CallerName)
	base := bench.GHZOptions{
		Bin: f.bin, Call: "golden.user.v1.UserService.GetUser",
		Data: fmt.Sprintf(`{"id":%q}`, bench.UserID),
		// Every server gets the token, so every request is the same size,
		// and a new request ID per call, as the gateway sends one.
		Metadata: map[string]string{
			"authorization":       "Bearer " + token,
			requestid.MetadataKey: "{{.UUID}}",
		},
		Files:       bench.TLSFiles{CA: files.CA, Cert: files.Cert, Key: files.Key},
		ServerName:  bench.ServerName,
		Connections: f.connections, Concurrency: f.conc, SkipFirst: f.skipFirst,
	}
	// The contract as compiled in, for ghz (see bench.WriteProtoset).
	protoset := filepath.Join(os.TempDir(), fmt.Sprintf("golden-user-%d.protoset", os.Getpid()))
	if err := bench.WriteProtoset(protoset, userv1.File_golden_user_v1_user_proto); err != nil {
		return err
	}
	defer os.Remove(protoset)
	base.Protoset = protoset
	before := sinkStats(env)

	flat := map[string]bench.GHZResult{}
	for _, name := range env.Order {
		o := base
		o.Addr, o.Duration = env.Servers[name], f.duration
		r, err := runOne(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		flat[name] = r
	}
	fmt.Fprintf(w, "Flat out: `ghz --connections %d --concurrency %d --duration %s --skipFirst %d`, mTLS with the gateway certificate, `authorization: Bearer <JWT>` and a new `x-request-id` (ghz's `{{.UUID}}`) as metadata to every server.\n\n",
		f.connections, f.conc, f.duration, f.skipFirst)
	fmt.Fprint(w, ghzTable(env.Order, flat))

	if f.fixedDur > 0 {
		rps := f.fixedRPS
		if rps == 0 {
			slowest := math.Inf(1)
			for _, r := range flat {
				slowest = math.Min(slowest, r.RPS)
			}
			rps = max(100, int(slowest*f.fixedFraction)/100*100)
		}
		// Rounds interleave the servers, as the per-RPC rounds do: the tail
		// moves more from minute to minute on a shared machine than from
		// server to server, and round i of each server shares its minute.
		fixed := map[string][]bench.GHZResult{}
		for range f.fixedRounds {
			for _, name := range env.Order {
				o := base
				o.Addr, o.Duration, o.RPS, o.SkipFirst = env.Servers[name], f.fixedDur, rps, min(f.skipFirst, rps)
				r, err := runOne(ctx, o)
				if err != nil {
					return fmt.Errorf("%s at %d RPS: %w", name, rps, err)
				}
				fixed[name] = append(fixed[name], r)
			}
		}
		medians := map[string]bench.GHZResult{}
		for name, rs := range fixed {
			medians[name] = medianGHZ(rs)
		}
		fmt.Fprintf(w, "\nFixed rate: the same with `--rps %d --duration %s --skipFirst %d` (%s of the slowest server's flat-out rate), so latency is compared at equal load below saturation, in %d interleaved rounds (each runs every server once). RPS and the percentiles are the medians of the rounds, calls and failures their sums. ghz's RPS counts only the calls after the skipped ones, so it reads below the rate asked.\n\n",
			rps, f.fixedDur, min(f.skipFirst, rps), fractionText(f), f.fixedRounds)
		fmt.Fprint(w, ghzTable(env.Order, medians))
		fmt.Fprint(w, p99Rounds(env.Order, fixed, medians))
	}

	after := sinkStats(env)
	fmt.Fprintf(w, "\nTelemetry during the ghz runs: %s GELF datagrams reached the UDP listener", bench.Num(float64(after.gelf-before.gelf), 0))
	if n := after.gelf - before.gelf; n > 0 {
		// The listener only reads and counts: this is the floor of what a
		// GELF message costs the receiving side, not Graylog's cost.
		fmt.Fprintf(w, " (a process of its own, %s µs of CPU per datagram)", bench.Num(float64(after.gelfCPU-before.gelfCPU)/1e3/float64(n), 1))
	}
	switch env.OTLPKind {
	case "jaeger":
		fmt.Fprintf(w, "; Jaeger accepted %s spans and refused %s.\n",
			bench.Num(after.accepted-before.accepted, 0), bench.Num(after.refused-before.refused, 0))
	default:
		fmt.Fprintf(w, "; the discarding OTLP receiver got %s spans.\n", bench.Num(float64(after.spans-before.spans), 0))
	}
	return nil
}

func fractionText(f ghzFlags) string {
	if f.fixedRPS > 0 {
		return "set by --rps, not a fraction"
	}
	return fmt.Sprintf("%.0f%%", f.fixedFraction*100)
}

// medianGHZ is one row for several runs of a server: the median of their
// RPS and of each percentile, their calls, statuses and errors summed.
func medianGHZ(rs []bench.GHZResult) bench.GHZResult {
	m := bench.GHZResult{Statuses: map[string]int64{}, Errors: map[string]int64{}}
	for _, r := range rs {
		m.Count += r.Count
		for k, n := range r.Statuses {
			m.Statuses[k] += n
		}
		for k, n := range r.Errors {
			m.Errors[k] += n
		}
	}
	median := func(of func(bench.GHZResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = of(r)
		}
		return bench.Median(v)
	}
	m.RPS = median(func(r bench.GHZResult) float64 { return r.RPS })
	m.Average = time.Duration(median(func(r bench.GHZResult) float64 { return float64(r.Average) }))
	m.P50 = time.Duration(median(func(r bench.GHZResult) float64 { return float64(r.P50) }))
	m.P90 = time.Duration(median(func(r bench.GHZResult) float64 { return float64(r.P90) }))
	m.P99 = time.Duration(median(func(r bench.GHZResult) float64 { return float64(r.P99) }))
	return m
}

// p99Rounds lists each server's p99 round by round, then golden's p99
// against the peer chain's (and without access lines, against the peer's
// without its logging interceptor) in medians (medianGHZ of runs) and in
// each round: with fewer than two rounds, nothing.
func p99Rounds(order []string, runs map[string][]bench.GHZResult, medians map[string]bench.GHZResult) string {
	var b strings.Builder
	var parts []string
	for _, name := range order {
		rs := runs[name]
		if len(rs) < 2 {
			return ""
		}
		ms := make([]string, len(rs))
		for i, r := range rs {
			ms[i] = fmt.Sprintf("%.2f", r.P99.Seconds()*1e3)
		}
		parts = append(parts, name+" "+strings.Join(ms, ", "))
	}
	fmt.Fprintf(&b, "\n- **p99 by round** (ms): %s\n", strings.Join(parts, "; "))
	ratio := func(a, c string) {
		x, y := runs[a], runs[c]
		if len(x) == 0 || len(x) != len(y) {
			return
		}
		rounds := make([]string, len(x))
		for i := range x {
			rounds[i] = bench.Ratio(float64(x[i].P99), float64(y[i].P99))
		}
		fmt.Fprintf(&b, "- **%s / %s p99**: %s (by round: %s)\n", a, c,
			bench.Ratio(float64(medians[a].P99), float64(medians[c].P99)), strings.Join(rounds, ", "))
	}
	ratio(bench.Golden, bench.Peer)
	ratio(bench.GoldenNoLog, bench.PeerNoLog)
	return b.String()
}

// runOne runs ghz once, bounded well beyond its own duration.
func runOne(ctx context.Context, o bench.GHZOptions) (bench.GHZResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Duration+90*time.Second)
	defer cancel()
	return bench.RunGHZ(ctx, o)
}

func ghzTable(order []string, res map[string]bench.GHZResult) string {
	t := bench.Table{
		Header: []string{"server", "RPS", "p50", "p90", "p99", "calls", "failed", "RPS vs bare", "p50 vs bare", "p99 vs bare"},
		Right:  map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true},
	}
	bare := res[bench.Bare]
	var notes []string
	for _, name := range order {
		r := res[name]
		t.Rows = append(t.Rows, []string{
			name, bench.Num(r.RPS, 0), bench.MS(r.P50), bench.MS(r.P90), bench.MS(r.P99),
			bench.Num(float64(r.Count), 0), bench.Num(float64(r.Failed()), 0),
			bench.Ratio(r.RPS, bare.RPS), bench.Ratio(float64(r.P50), float64(bare.P50)), bench.Ratio(float64(r.P99), float64(bare.P99)),
		})
		if r.Failed() > 0 {
			notes = append(notes, fmt.Sprintf("- %s errors: %s", name, r.TopErrors(3)))
		}
	}
	out := t.String()
	if len(notes) > 0 {
		out += "\n" + strings.Join(notes, "\n") + "\n"
	}
	return out
}

type sinkCounts struct {
	gelf, spans       int64
	gelfCPU           time.Duration
	accepted, refused float64
}

// sinkStats reads what reached the sinks so far; zeros when a sink cannot
// be read (the report then shows no delivery, which is the honest answer).
func sinkStats(env bench.Env) sinkCounts {
	var c sinkCounts
	client := &http.Client{Timeout: 5 * time.Second}
	if resp, err := client.Get(env.StatsURL); err == nil {
		var st bench.SinkStats
		if json.NewDecoder(resp.Body).Decode(&st) == nil {
			c.gelf, c.gelfCPU, c.spans = st.GELFDatagrams, time.Duration(st.GELFCPUNanos), st.OTLPSpans
		}
		resp.Body.Close()
	}
	if env.JaegerMetricsURL != "" {
		c.accepted, c.refused, _ = bench.ReceiverSpans(env.JaegerMetricsURL)
	}
	return c
}
