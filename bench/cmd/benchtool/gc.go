package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/bench"
)

type gcFlags struct {
	samplingFlags
	memLimit string
	gogc     []int
}

func newGCCmd() *cobra.Command {
	f := gcFlags{samplingFlags: defaultSamplingFlags(), memLimit: "80MiB", gogc: []int{100, 200, 400}}
	// No tail sampling to wait for: only Jaeger's last writes.
	f.settle = 2 * time.Second
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "CPU and peak RSS of the services per GOGC, with the GOMEMLIMIT they are deployed with, at one rate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGC(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fs := cmd.Flags()
	f.addFlags(fs)
	fs.StringVar(&f.memLimit, "memlimit", f.memLimit, "GOMEMLIMIT of every row (docker-compose.yml's and kubernetes/'s)")
	fs.IntSliceVar(&f.gogc, "gogc", f.gogc, "GOGC of each row; the first is the baseline")
	return cmd
}

func runGC(ctx context.Context, w io.Writer, f gcFlags) error {
	if len(f.gogc) == 0 || f.memLimit == "" {
		return errors.New("--gogc and --memlimit must be set")
	}
	var cases []samplingCase
	for _, g := range f.gogc {
		if g <= 0 {
			return fmt.Errorf("--gogc: %d is not positive", g)
		}
		cases = append(cases, samplingCase{
			name:  fmt.Sprintf("GOGC=%d", g),
			ratio: "1",
			env:   []string{"GOGC=" + strconv.Itoa(g), "GOMEMLIMIT=" + f.memLimit},
		})
	}
	results, err := runSamplingCases(ctx, f.samplingFlags, cases)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "The pipeline of section 5 with every trace stored, `GOMEMLIMIT=%s` in each service as deployed, one row per GOGC (a fresh fleet and Jaeger each); %s requests/s for %s after %s of warm-up. Peak RSS is VmHWM of each process at the end.\n\n",
		f.memLimit, bench.Num(f.rate, 0), f.load, f.warmup)
	t := bench.Table{
		Header: []string{"services", "requests", "services CPU per request", "vs " + cases[0].name},
		Right:  map[int]bool{1: true, 2: true, 3: true},
	}
	for _, name := range bench.ServiceNames {
		t.Header = append(t.Header, "peak RSS "+name)
		t.Right[len(t.Header)-1] = true
	}
	base := float64(results[0].services) / float64(results[0].summary.Requests)
	for i, c := range cases {
		r := results[i]
		n := float64(r.summary.Requests)
		row := []string{c.name, bench.Num(n, 0), micro(r.services, n), bench.Ratio(float64(r.services)/n, base)}
		for _, name := range bench.ServiceNames {
			row = append(row, bench.MiB(float64(r.peakRSS[name])))
		}
		t.Rows = append(t.Rows, row)
	}
	fmt.Fprint(w, t.String())
	var parts []string
	for i, c := range cases {
		parts = append(parts, fmt.Sprintf("%s p99 %.1f ms", c.name, results[i].summary.Latency.P99))
	}
	fmt.Fprintf(w, "\nLoad generator latency: %s.\n", strings.Join(parts, ", "))
	return nil
}
