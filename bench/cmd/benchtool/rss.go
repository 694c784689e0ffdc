package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/bench"
	"github.com/golden-stack/golden/internal/loadgen"
)

type rssFlags struct {
	env, golden          string
	idle, load, interval time.Duration
	rate                 float64
}

func newRSSCmd() *cobra.Command {
	f := rssFlags{idle: 10 * time.Second, load: 30 * time.Second, interval: time.Second, rate: 200}
	cmd := &cobra.Command{
		Use:   "rss",
		Short: "VmRSS of user, auth and gateway (separate golden serve processes) idle and under golden loadgen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRSS(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.env, "env", "", "file benchserver wrote, for the certificates and sinks (required)")
	fs.StringVar(&f.golden, "golden", "", "golden binary (required)")
	fs.DurationVar(&f.idle, "idle", f.idle, "how long the services sit idle before the idle reading")
	fs.DurationVar(&f.load, "load", f.load, "how long the load runs")
	fs.DurationVar(&f.interval, "interval", f.interval, "RSS sampling interval under load")
	fs.Float64Var(&f.rate, "rate", f.rate, "load in requests per second (golden loadgen --rate)")
	return cmd
}

func runRSS(ctx context.Context, w io.Writer, f rssFlags) error {
	switch {
	case f.env == "" || f.golden == "":
		return errors.New("--env and --golden must be set")
	case f.idle <= 0 || f.load <= 0 || f.interval <= 0 || !(f.rate > 0):
		return errors.New("--idle, --load, --interval and --rate must be positive")
	}
	env, err := bench.ReadEnv(f.env)
	if err != nil {
		return err
	}
	fleet, err := bench.StartFleet(bench.FleetOptions{
		Golden: f.golden, Certs: bench.Certs{Dir: env.Certs},
		OTLPAddr: env.OTLPAddr, GELFAddr: env.GELFAddr,
	})
	if err != nil {
		return err
	}
	// Stop's error only names services that had exited before it; exits that
	// matter to the readings are reported by fleet.Exited() below.
	defer func() { _ = fleet.Stop() }()
	pids := fleet.PIDs()

	if err := bench.Wait(ctx, f.idle); err != nil {
		return err
	}
	idle := map[string]bench.Memory{}
	for name, pid := range pids {
		if idle[name], err = bench.ReadMemory(pid); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}

	sampler := bench.SampleRSS(pids, f.interval)
	how, summary, loadErr := runLoad(ctx, f, fleet.GatewayURL)
	stats, sampleErr := sampler.Stop()
	peak := map[string]bench.Memory{}
	for name, pid := range pids {
		if peak[name], err = bench.ReadMemory(pid); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := errors.Join(loadErr, sampleErr, fleet.Exited()); err != nil {
		return err
	}

	t := bench.Table{
		Header: []string{"service (own process)", fmt.Sprintf("idle after %s", f.idle), "under load: mean", "under load: max", "end of load", "VmHWM (peak since start)"},
		Right:  map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true},
	}
	for _, name := range bench.ServiceNames {
		st := stats[name]
		t.Rows = append(t.Rows, []string{name, bench.MiB(float64(idle[name].RSS)),
			bench.MiB(st.Mean()), bench.MiB(float64(st.Max)), bench.MiB(float64(st.Last)), bench.MiB(float64(peak[name].HWM))})
	}
	fmt.Fprintf(w, "Each service is its own `golden serve` process (built binary, JSON logs to /dev/null, GELF to the UDP listener, spans to %s at 100%% sampling, discovery off). VmRSS from /proc/<pid>/status, sampled every %s under load.\n\n",
		otlpText(env), f.interval)
	fmt.Fprint(w, t.String())
	fmt.Fprintf(w, "\nLoad: %s\n", how)
	if summary != "" {
		fmt.Fprintf(w, "\n%s\n", summary)
	}
	return nil
}

func otlpText(env bench.Env) string {
	if env.OTLPKind == "jaeger" {
		return "Jaeger"
	}
	return "a discarding OTLP receiver"
}

// runLoad drives the gateway with `golden loadgen` when the binary has that
// command, else with internal/loadgen (the generator behind it) in this
// process. It returns how the load was made and its summary.
func runLoad(ctx context.Context, f rssFlags, target string) (how, summary string, err error) {
	cfg := loadgen.DefaultConfig()
	cfg.Target, cfg.Rate, cfg.Duration, cfg.ReportInterval = target, f.rate, f.load, 0
	args := []string{"loadgen", "--target", target, "--rate", fmt.Sprint(f.rate), "--duration", f.load.String(), "--report-interval", "0", "--json"}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	helpErr := exec.CommandContext(hctx, f.golden, "loadgen", "--help").Run()
	cancel()
	if helpErr == nil {
		lctx, cancel := context.WithTimeout(ctx, f.load+2*time.Minute)
		defer cancel()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(lctx, f.golden, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		how = fmt.Sprintf("`golden %s` (default mix and --concurrency %d).", strings.Join(args, " "), cfg.Concurrency)
		if err != nil {
			return how, "", fmt.Errorf("golden loadgen: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		var s loadgen.Summary
		if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
			return how, "", fmt.Errorf("golden loadgen --json: %w", err)
		}
		return how, summaryLine(s, cfg.Concurrency), nil
	}
	g, err := loadgen.New(cfg)
	if err != nil {
		return "", "", err
	}
	s, err := g.Run(ctx)
	how = fmt.Sprintf("internal/loadgen (the generator of `golden loadgen`, which this binary lacks), run in benchtool: rate %g/s for %s, default mix and concurrency %d.",
		f.rate, f.load, cfg.Concurrency)
	return how, summaryLine(s, cfg.Concurrency), err
}

func summaryLine(s loadgen.Summary, concurrency int) string {
	line := fmt.Sprintf("%s requests in %.1fs (%.0f/s of %.0f/s asked), %s succeeded, %s expected failures, %s unexpected failures, %s dropped (all %d slots busy); latency p50 %.1f ms, p99 %.1f ms.",
		bench.Num(float64(s.Requests), 0), s.DurationSeconds, s.Rate, s.TargetRate, bench.Num(float64(s.Succeeded), 0),
		bench.Num(float64(s.ExpectedFailures), 0), bench.Num(float64(s.UnexpectedFailures), 0), bench.Num(float64(s.Dropped), 0),
		concurrency, s.Latency.P50, s.Latency.P99)
	if len(s.ByCode) > 0 {
		codes := make([]string, 0, len(s.ByCode))
		for code, n := range s.ByCode {
			codes = append(codes, fmt.Sprintf("%s %d", code, n))
		}
		sort.Strings(codes)
		line += " Error answers: " + strings.Join(codes, ", ") + "."
	}
	return line
}
