package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/golden-stack/golden/bench"
)

func readBench(path string) ([]bench.BenchStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := bench.ParseBenchOutput(f)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results", path)
	}
	return bench.GroupBench(lines), nil
}

func find(groups []bench.BenchStats, name string) (bench.BenchStats, bool) {
	for _, g := range groups {
		if g.Name == name {
			return g, true
		}
	}
	return bench.BenchStats{}, false
}

func newRPCTableCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rpc-table FILE",
		Short: "Markdown table of BenchmarkUnaryRPC and BenchmarkJWTVerify results in FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			groups, err := readBench(args[0])
			if err != nil {
				return err
			}
			out, err := rpcTable(groups)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
}

func rpcTable(groups []bench.BenchStats) (string, error) {
	med := map[string]bench.BenchStats{}
	t := bench.Table{
		Header: []string{"server", "ns/op", "cpu-ns/op", "B/op", "allocs/op", "ns/op vs bare", "runs", "ns/op min–max"},
		Right:  map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true},
	}
	bare, ok := find(groups, "BenchmarkUnaryRPC/"+bench.Bare)
	if !ok {
		return "", errors.New("no BenchmarkUnaryRPC/bare results")
	}
	for _, name := range bench.Names {
		g, ok := find(groups, "BenchmarkUnaryRPC/"+name)
		if !ok {
			continue
		}
		med[name] = g
		lo, hi := g.Range("ns/op")
		t.Rows = append(t.Rows, []string{
			name, bench.Num(g.Median("ns/op"), 0), bench.Num(g.Median("cpu-ns/op"), 0),
			bench.Num(g.Median("B/op"), 0), bench.Num(g.Median("allocs/op"), 0),
			bench.Ratio(g.Median("ns/op"), bare.Median("ns/op")), fmt.Sprint(len(g.Runs)),
			bench.Num(lo, 0) + "–" + bench.Num(hi, 0),
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Request %d bytes, response %d bytes (protobuf), plus an `authorization: Bearer <JWT>` header and a new `x-request-id` on every call.\n\n",
		proto.Size(bench.Request()), proto.Size(bench.Response))
	b.WriteString(t.String())
	b.WriteString("\n")
	ratio := func(a, c string) {
		x, okx := med[a]
		y, oky := med[c]
		if !okx || !oky {
			return
		}
		fmt.Fprintf(&b, "- **%s / %s**: ns/op %s, cpu-ns/op %s%s, allocs/op %s, B/op %s\n", a, c,
			bench.Ratio(x.Median("ns/op"), y.Median("ns/op")), bench.Ratio(x.Median("cpu-ns/op"), y.Median("cpu-ns/op")),
			roundRatios(x, y, "cpu-ns/op"),
			bench.Ratio(x.Median("allocs/op"), y.Median("allocs/op")), bench.Ratio(x.Median("B/op"), y.Median("B/op")))
	}
	ratio(bench.Golden, bench.Bare)
	ratio(bench.Golden, bench.Peer)
	ratio(bench.GoldenNoGELF, bench.Bare)
	ratio(bench.GoldenNoGELF, bench.Peer)
	ratio(bench.Peer, bench.Bare)
	ratio(bench.GoldenNoLog, bench.PeerNoLog)
	ratio(bench.PeerNoLog, bench.Peer)
	diff := func(what, a, c string) {
		x, okx := med[a]
		y, oky := med[c]
		if !okx || !oky {
			return
		}
		fmt.Fprintf(&b, "- **%s** (%s − %s): %s ns/op, %s cpu-ns/op, %s B/op, %s allocs/op per call\n", what, a, c,
			bench.Num(x.Median("ns/op")-y.Median("ns/op"), 0), bench.Num(x.Median("cpu-ns/op")-y.Median("cpu-ns/op"), 0),
			bench.Num(x.Median("B/op")-y.Median("B/op"), 0), bench.Num(x.Median("allocs/op")-y.Median("allocs/op"), 0))
	}
	diff("GELF shipping", bench.Golden, bench.GoldenNoGELF)
	diff("golden's access log", bench.Golden, bench.GoldenNoLog)
	diff("the peer's access log", bench.Peer, bench.PeerNoLog)
	diff("golden's other steps", bench.GoldenNoLog, bench.PeerNoLog)
	if j, ok := find(groups, "BenchmarkJWTVerify"); ok {
		fmt.Fprintf(&b, "- **JWT verification alone** (BenchmarkJWTVerify, one goroutine): %s ns/op, %s allocs/op\n",
			bench.Num(j.Median("ns/op"), 0), bench.Num(j.Median("allocs/op"), 0))
	}
	return b.String(), nil
}

// roundRatios is unit's ratio x/y in each round, as " (by round: 0.91×,
// 0.88×)", or "" with fewer than two rounds of each. Run i of every server
// is from round i (scripts/bench.sh interleaves them), so a ratio within a
// round compares servers on the machine of the same minute; how far the
// rounds spread shows how far to trust the ratio of the medians.
func roundRatios(x, y bench.BenchStats, unit string) string {
	if len(x.Runs) < 2 || len(x.Runs) != len(y.Runs) {
		return ""
	}
	parts := make([]string, len(x.Runs))
	for i := range x.Runs {
		a, oka := x.Runs[i].Metrics[unit]
		c, okc := y.Runs[i].Metrics[unit]
		if !oka || !okc {
			return ""
		}
		parts[i] = bench.Ratio(a, c)
	}
	return " (by round: " + strings.Join(parts, ", ") + ")"
}

func newLogCallTableCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logcall-table FILE",
		Short: "Markdown table of observability/logging BenchmarkLogCall results in FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			groups, err := readBench(args[0])
			if err != nil {
				return err
			}
			out, err := logCallTable(groups)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
}

// logCases are BenchmarkLogCall's sub-benchmarks, with what they mean.
var logCases = []struct{ name, desc string }{
	{"no-gelf", "GELF off (stdout JSON only)"},
	{"udp-healthy", "GELF UDP, listener up"},
	{"udp-down", "GELF UDP, nothing listening"},
	{"tcp-healthy", "GELF TCP, server reading"},
	{"tcp-down", "GELF TCP, connection refused"},
	{"tcp-stalled", "GELF TCP, server never reads"},
}

func logCallTable(groups []bench.BenchStats) (string, error) {
	base, ok := find(groups, "BenchmarkLogCall/no-gelf")
	if !ok {
		return "", errors.New("no BenchmarkLogCall/no-gelf results")
	}
	t := bench.Table{
		Header: []string{"sink", "ns/call", "added vs no GELF", "calls/s (1 goroutine)", "dropped/call", "entries/s shipped", "B/call", "allocs/call"},
		Right:  map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true},
	}
	for _, c := range logCases {
		g, ok := find(groups, "BenchmarkLogCall/"+c.name)
		if !ok {
			continue
		}
		ns := g.Median("ns/op")
		dropped := g.Median("dropped/op")
		shipped := "n/a"
		switch {
		case strings.HasSuffix(c.name, "-down"):
			shipped = "none (sink down)"
		case c.name == "tcp-stalled":
			shipped = "none (sink stalled)"
		case c.name != "no-gelf" && !math.IsNaN(dropped):
			shipped = bench.Num(1e9/ns*(1-dropped), 0)
		}
		dropCell := "n/a"
		if !math.IsNaN(dropped) {
			dropCell = bench.Num(dropped, 3)
		}
		t.Rows = append(t.Rows, []string{
			c.desc, bench.Num(ns, 0), bench.Num(ns-base.Median("ns/op"), 0), bench.Num(1e9/ns, 0),
			dropCell, shipped, bench.Num(g.Median("B/op"), 0), bench.Num(g.Median("allocs/op"), 0),
		})
	}
	out := t.String()
	serial, okS := find(groups, "BenchmarkAccessLog/serial")
	parallel, okP := find(groups, "BenchmarkAccessLog/parallel")
	if okS && okP {
		out += fmt.Sprintf("\nOne access line (BenchmarkAccessLog: a successful unary call's entry on a request's context, to /dev/null with the default 2 ms flush interval, GELF off): "+
			"%s ns and %s ns of CPU from one goroutine, %s allocs; from 32 goroutines %s ns per line (wall, all cores) and %s ns of CPU.\n",
			bench.Num(serial.Median("ns/op"), 0), bench.Num(serial.Median("cpu-ns/op"), 0), bench.Num(serial.Median("allocs/op"), 0),
			bench.Num(parallel.Median("ns/op"), 0), bench.Num(parallel.Median("cpu-ns/op"), 0))
	}
	return out, nil
}
