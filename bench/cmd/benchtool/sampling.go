package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/bench"
	"github.com/golden-stack/golden/internal/loadgen"
)

type samplingFlags struct {
	golden, jaegerConfig, tailOverlay string
	rate                              float64
	warmup, load, settle              time.Duration
}

// defaultSamplingFlags are the defaults of the sampling and gc commands.
func defaultSamplingFlags() samplingFlags {
	return samplingFlags{
		jaegerConfig: "jaeger/config.yaml", tailOverlay: "jaeger/tail-sampling.yaml",
		rate: 1000, warmup: 3 * time.Second, load: 20 * time.Second, settle: 7 * time.Second,
	}
}

// addFlags registers the flags the sampling and gc commands share.
func (f *samplingFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.golden, "golden", "", "golden binary (required)")
	fs.StringVar(&f.jaegerConfig, "jaeger-config", f.jaegerConfig, "Jaeger configuration")
	fs.Float64Var(&f.rate, "rate", f.rate, "requests per second through the gateway")
	fs.DurationVar(&f.warmup, "warmup", f.warmup, "load before the measurement, at the same rate")
	fs.DurationVar(&f.load, "load", f.load, "measured load")
	fs.DurationVar(&f.settle, "settle", f.settle, "wait, measured too, after the load and once the services have exported its spans, for Jaeger's writes and tail-sampling decisions (decision_wait 5s)")
}

func newSamplingCmd() *cobra.Command {
	f := defaultSamplingFlags()
	cmd := &cobra.Command{
		Use:   "sampling",
		Short: "CPU of the services and of Jaeger per request at one rate, for each way of sampling traces",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSampling(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&f.tailOverlay, "tail-sampling", f.tailOverlay, "overlay that adds tail sampling to --jaeger-config")
	return cmd
}

// samplingCase is one way of running the pipeline: the services' sampling
// ratio and environment, and Jaeger's configuration overlays.
type samplingCase struct {
	name     string
	ratio    string
	env      []string
	overlays []string
}

// samplingResult is what one case measured over the load and the settling
// after it.
type samplingResult struct {
	summary           loadgen.Summary
	services, jaeger  time.Duration      // CPU
	accepted, stored  float64            // spans Jaeger received, and wrote
	kept              map[string]float64 // traces tail sampling kept, by policy
	keptAll, decided  float64            // traces it kept and decided, in all
	servicesByProcess map[string]time.Duration
	peakRSS           map[string]uint64 // VmHWM at the end, bytes
	// spans the services dropped on their way to Jaeger, by reason
	// (golden_trace_spans_dropped_total)
	dropped map[string]float64
}

// droppedSpans is the name of the services' counter of spans lost before
// Jaeger.
const droppedSpans = "golden_trace_spans_dropped_total"

// dropReasons are its reason label's values.
var dropReasons = []string{"queue_full", "export_error"}

// droppedAll is every span the services dropped.
func (r samplingResult) droppedAll() float64 {
	var n float64
	for _, v := range r.dropped {
		n += v
	}
	return n
}

func runSampling(ctx context.Context, w io.Writer, f samplingFlags) error {
	cases := []samplingCase{
		{name: "no trace sampled (`--trace-sample-ratio 0`)", ratio: "0"},
		{name: "every trace (`--trace-sample-ratio 1`, the default)", ratio: "1"},
		{name: "10% in the services (`--trace-sample-ratio 0.1`)", ratio: "0.1"},
		{name: "every trace, tail sampling in Jaeger (`jaeger/tail-sampling.yaml`)", ratio: "1", overlays: []string{f.tailOverlay}},
	}
	results, err := runSamplingCases(ctx, f, cases)
	if err != nil {
		return err
	}
	writeSampling(w, f, cases, results)
	return nil
}

// runSamplingCases measures each case with certificates and a GELF
// listener they share.
func runSamplingCases(ctx context.Context, f samplingFlags, cases []samplingCase) ([]samplingResult, error) {
	switch {
	case f.golden == "":
		return nil, errors.New("--golden must be set")
	case !(f.rate > 0) || f.load <= 0 || f.warmup < 0 || f.settle < 0:
		return nil, errors.New("--rate and --load must be positive, --warmup and --settle not negative")
	}
	jaegerBin, ok := bench.JaegerBinary()
	if !ok {
		return nil, fmt.Errorf("%s is not installed: run scripts/install-backends.sh jaeger", jaegerBin)
	}
	dir, err := os.MkdirTemp("", "golden-bench-pipeline-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	certs, err := bench.EnsureCerts(filepath.Join(dir, "certs"))
	if err != nil {
		return nil, err
	}
	gelf, err := bench.StartGELFSink()
	if err != nil {
		return nil, err
	}
	defer gelf.Close()
	results := make([]samplingResult, len(cases))
	for i, c := range cases {
		logFile := filepath.Join(dir, fmt.Sprintf("jaeger-%d.log", i))
		if results[i], err = runSamplingCase(ctx, f, c, jaegerBin, logFile, certs, gelf.Addr()); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return results, nil
}

// runSamplingCase starts Jaeger (its output to logFile) and the fleet,
// warms up, and measures one case.
func runSamplingCase(ctx context.Context, f samplingFlags, c samplingCase, jaegerBin, logFile string, certs bench.Certs, gelfAddr string) (samplingResult, error) {
	var r samplingResult
	out, err := os.Create(logFile)
	if err != nil {
		return r, err
	}
	defer out.Close()
	j, err := bench.StartJaeger(jaegerBin, f.jaegerConfig, out, 60*time.Second, c.overlays...)
	if err != nil {
		b, _ := os.ReadFile(logFile)
		return r, fmt.Errorf("%w: %s", err, b[max(0, len(b)-2000):])
	}
	defer j.Stop()
	limit := fmt.Sprint(int(4 * f.rate))
	fleet, err := bench.StartFleet(bench.FleetOptions{
		Golden: f.golden, Certs: certs, OTLPAddr: j.OTLPGRPCAddr, GELFAddr: gelfAddr, Env: c.env,
		// The gateway is one caller of user and auth: their per-caller
		// rate limits (200/s by default) must let the load through.
		Args: map[string][]string{
			"user":    {"--trace-sample-ratio", c.ratio, "--bcrypt-cost", "4", "--rate-limit", limit, "--rate-burst", limit},
			"auth":    {"--trace-sample-ratio", c.ratio, "--rate-limit", limit, "--rate-burst", limit},
			"gateway": {"--trace-sample-ratio", c.ratio},
		},
	})
	if err != nil {
		return r, err
	}
	defer func() { _ = fleet.Stop() }()
	pids := fleet.PIDs()

	if f.warmup > 0 {
		if _, err := samplingLoad(ctx, fleet.GatewayURL, f.rate, f.warmup); err != nil {
			return r, fmt.Errorf("warm-up: %w", err)
		}
		// The warm-up's traces are decided and stored before the
		// measurement begins.
		if err := settle(ctx, fleet, f.settle); err != nil {
			return r, fmt.Errorf("after the warm-up: %w", err)
		}
	}
	before, err := readSamplingCounters(j, fleet)
	if err != nil {
		return r, err
	}
	if r.summary, err = samplingLoad(ctx, fleet.GatewayURL, f.rate, f.load); err != nil {
		return r, err
	}
	if err := settle(ctx, fleet, f.settle); err != nil {
		return r, fmt.Errorf("after the load: %w", err)
	}
	after, err := readSamplingCounters(j, fleet)
	if err != nil {
		return r, err
	}
	if err := fleet.Exited(); err != nil {
		return r, err
	}
	r.servicesByProcess, r.peakRSS = map[string]time.Duration{}, map[string]uint64{}
	for name, pid := range pids {
		d := after.cpu[name] - before.cpu[name]
		r.servicesByProcess[name] = d
		r.services += d
		m, err := bench.ReadMemory(pid)
		if err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		r.peakRSS[name] = m.HWM
	}
	r.jaeger = after.jaegerCPU - before.jaegerCPU
	r.dropped = map[string]float64{}
	for name := range pids {
		for _, reason := range dropReasons {
			r.dropped[reason] += after.services[name].Sum(droppedSpans, "reason", reason) - before.services[name].Sum(droppedSpans, "reason", reason)
		}
	}
	r.accepted = after.metrics.Sum("otelcol_receiver_accepted_spans") - before.metrics.Sum("otelcol_receiver_accepted_spans")
	r.stored = after.metrics.Sum("otelcol_exporter_sent_spans") - before.metrics.Sum("otelcol_exporter_sent_spans")
	const tailSampled = "otelcol_processor_tail_sampling_count_traces_sampled"
	r.kept = map[string]float64{}
	for _, policy := range []string{"errors", "slow", "sample"} {
		r.kept[policy] = after.metrics.Sum(tailSampled, "policy", policy, "sampled", "true") - before.metrics.Sum(tailSampled, "policy", policy, "sampled", "true")
	}
	const global = "otelcol_processor_tail_sampling_global_count_traces_sampled"
	r.keptAll = after.metrics.Sum(global, "sampled", "true") - before.metrics.Sum(global, "sampled", "true")
	r.decided = after.metrics.Sum(global) - before.metrics.Sum(global)
	return r, nil
}

// queuedSpans is the name of the services' gauge of spans ended and not
// yet through their exporter.
const queuedSpans = "golden_trace_spans_queued"

// drainTimeout bounds the wait for the services' span queues to empty.
const drainTimeout = 30 * time.Second

// settle waits until every service has exported the spans it ended, then
// d more for Jaeger. A fixed wait alone cut the count short: a service
// sends its last partial batch only when its batch timer fires (5s), and
// tail sampling decides a trace decision_wait (5s) after its first span
// arrives, so traces of the load's last seconds were decided after the
// measurement and the warm-up's within it.
func settle(ctx context.Context, fleet *bench.Fleet, d time.Duration) error {
	drain, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	for {
		services, err := scrapeServices(fleet)
		if err != nil {
			return err
		}
		var queued float64
		for _, m := range services {
			queued += m.Sum(queuedSpans)
		}
		if queued == 0 {
			break
		}
		if err := bench.Wait(drain, 500*time.Millisecond); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%v spans still queued in the services after %s", queued, drainTimeout)
		}
	}
	return bench.Wait(ctx, d)
}

// failed counts the load's failed requests, deliberate and unexpected.
func (r samplingResult) failed() float64 {
	return float64(r.summary.ExpectedFailures + r.summary.UnexpectedFailures)
}

type samplingCounters struct {
	cpu       map[string]time.Duration
	services  map[string]bench.CollectorMetrics // each service's /metrics
	jaegerCPU time.Duration
	metrics   bench.CollectorMetrics // Jaeger's
}

func readSamplingCounters(j *bench.Jaeger, fleet *bench.Fleet) (samplingCounters, error) {
	c := samplingCounters{cpu: map[string]time.Duration{}}
	var err error
	for name, pid := range fleet.PIDs() {
		if c.cpu[name], err = bench.ReadCPU(pid); err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
	}
	if c.services, err = scrapeServices(fleet); err != nil {
		return c, err
	}
	if c.jaegerCPU, err = bench.ReadCPU(j.Pid()); err != nil {
		return c, fmt.Errorf("jaeger: %w", err)
	}
	if c.metrics, err = bench.ScrapeCollector(j.MetricsURL); err != nil {
		return c, fmt.Errorf("jaeger: %w", err)
	}
	return c, nil
}

// scrapeServices reads each service's /metrics, by service name.
func scrapeServices(fleet *bench.Fleet) (map[string]bench.CollectorMetrics, error) {
	out := map[string]bench.CollectorMetrics{}
	for name, url := range fleet.MetricsURLs() {
		m, err := bench.ScrapeCollector(url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = m
	}
	return out, nil
}

// samplingMix is reads and the four faults, no sign-ups or logins beyond
// filling the pool of virtual users: the requests whose tracing is
// measured, not bcrypt's work.
var samplingMix = loadgen.Mix{Get: 70, List: 20, Fault: 10}

// samplingLoad runs internal/loadgen against the gateway in this process.
func samplingLoad(ctx context.Context, target string, rate float64, d time.Duration) (loadgen.Summary, error) {
	cfg := loadgen.DefaultConfig()
	cfg.Target, cfg.Rate, cfg.Duration, cfg.ReportInterval = target, rate, d, 0
	cfg.Mix, cfg.Concurrency = samplingMix, 64
	g, err := loadgen.New(cfg)
	if err != nil {
		return loadgen.Summary{}, err
	}
	s, err := g.Run(ctx)
	if err == nil && s.UnexpectedFailures > 0 {
		err = fmt.Errorf("%d unexpected failures of %d requests: %v", s.UnexpectedFailures, s.Requests, s.ByCode)
	}
	return s, err
}

func writeSampling(w io.Writer, f samplingFlags, cases []samplingCase, res []samplingResult) {
	fmt.Fprintf(w, "user, auth and gateway as separate `golden serve` processes (as in section 4, with `--bcrypt-cost 4` and per-caller rate limits of 4× the load), spans to a Jaeger of their own (jaeger/config.yaml, Badger on disk), fresh for each row. Load: internal/loadgen at %s requests/s through the gateway for %s after %s of warm-up, mix `%s` (reads, and the four deliberate faults: 401s and 404s). CPU from /proc/<pid>/stat over the load, the wait until the services have exported all its spans (their last batch goes when its 5s timer fires) and %s after that (Jaeger's writes and tail-sampling decisions).\n\n",
		bench.Num(f.rate, 0), f.load, f.warmup, samplingMix.String(), f.settle)
	t := bench.Table{
		Header: []string{"traces", "requests", "failed (deliberate)", "services CPU per request", "Jaeger CPU per request", "spans to Jaeger per request", "spans dropped by the services per request", "Jaeger CPU per span received", "spans stored per request"},
		Right:  map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true},
	}
	for i, c := range cases {
		r := res[i]
		n := float64(r.summary.Requests)
		perSpan := "n/a"
		if r.accepted > 0 {
			perSpan = micro(r.jaeger, r.accepted)
		}
		t.Rows = append(t.Rows, []string{
			c.name, bench.Num(n, 0), bench.Num(r.failed(), 0),
			micro(r.services, n), micro(r.jaeger, n), bench.Num(r.accepted/n, 2), bench.Num(r.droppedAll()/n, 2), perSpan, bench.Num(r.stored/n, 2),
		})
	}
	fmt.Fprint(w, t.String())

	off, all, head, tailRes := res[0], res[1], res[2], res[3]
	perReq := func(r samplingResult, cpu time.Duration) float64 {
		return float64(cpu) / float64(time.Microsecond) / float64(r.summary.Requests)
	}
	us := func(r samplingResult, cpu time.Duration) string { return bench.Num(perReq(r, cpu), 0) + " µs" }
	cores := func(r samplingResult, cpu time.Duration) string {
		return fmt.Sprintf("%.2f", perReq(r, cpu)*f.rate/1e6)
	}
	fmt.Fprintf(w, "\n- **Every trace**: Jaeger used %s of CPU per request, %s cores at %s requests/s; the services %s per request, against %s with no trace sampled.\n",
		us(all, all.jaeger), cores(all, all.jaeger), bench.Num(f.rate, 0), us(all, all.services), us(off, off.services))
	fmt.Fprintf(w, "- **10%% in the services**: Jaeger %s per request (%s cores), the services %s; 90%% of failed requests have no trace.\n",
		us(head, head.jaeger), cores(head, head.jaeger), us(head, head.services))
	fmt.Fprintf(w, "- **Tail sampling**: Jaeger %s per request (%s cores), the services %s. Jaeger decided %s traces and kept %s: %s with an error span (the load had %s failed requests), %s slow, %s by the 10%% ratio (a trace can match several); it stored %.0f%% of the spans it received.\n",
		us(tailRes, tailRes.jaeger), cores(tailRes, tailRes.jaeger), us(tailRes, tailRes.services),
		bench.Num(tailRes.decided, 0), bench.Num(tailRes.keptAll, 0), bench.Num(tailRes.kept["errors"], 0), bench.Num(tailRes.failed(), 0),
		bench.Num(tailRes.kept["slow"], 0), bench.Num(tailRes.kept["sample"], 0), 100*ratio(tailRes.stored, tailRes.accepted))
	var parts []string
	for _, name := range bench.ServiceNames {
		parts = append(parts, fmt.Sprintf("%s %s", name, micro(all.servicesByProcess[name], float64(all.summary.Requests))))
	}
	fmt.Fprintf(w, "- Services CPU per request with every trace, by process: %s. Load generator: %s requests, p50 %.1f ms, p99 %.1f ms (every trace).\n",
		strings.Join(parts, ", "), bench.Num(float64(all.summary.Requests), 0), all.summary.Latency.P50, all.summary.Latency.P99)
	parts = parts[:0]
	for i, c := range cases {
		parts = append(parts, fmt.Sprintf("%s: %s", strings.SplitN(c.name, " (", 2)[0], dropDetail(res[i])))
	}
	fmt.Fprintf(w, "- Spans the services dropped (`%s`, queue full or export failed, summed over the three): %s.\n", droppedSpans, strings.Join(parts, "; "))
}

// dropDetail is r's dropped spans, in all and by reason.
func dropDetail(r samplingResult) string {
	parts := make([]string, len(dropReasons))
	for i, reason := range dropReasons {
		parts[i] = fmt.Sprintf("%s %s", reason, bench.Num(r.dropped[reason], 0))
	}
	return fmt.Sprintf("%s (%s)", bench.Num(r.droppedAll(), 0), strings.Join(parts, ", "))
}

// micro is d/n in microseconds, as "12.3 µs".
func micro(d time.Duration, n float64) string {
	if n <= 0 {
		return "n/a"
	}
	return bench.Num(float64(d)/float64(time.Microsecond)/n, 1) + " µs"
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
