package main

import (
	"strings"
	"testing"

	"github.com/golden-stack/golden/bench"
)

func groups(t *testing.T, out string) []bench.BenchStats {
	t.Helper()
	lines, err := bench.ParseBenchOutput(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return bench.GroupBench(lines)
}

func TestRPCTableHasRatios(t *testing.T) {
	g := groups(t, `
BenchmarkUnaryRPC/bare-2   100   20000 ns/op   40000 cpu-ns/op   10000 B/op   150 allocs/op
BenchmarkUnaryRPC/golden-2   100   100000 ns/op   200000 cpu-ns/op   40000 B/op   450 allocs/op
BenchmarkUnaryRPC/golden-nolog-2   100   60000 ns/op   150000 cpu-ns/op   30000 B/op   300 allocs/op
BenchmarkUnaryRPC/peer-2   100   50000 ns/op   100000 cpu-ns/op   30000 B/op   400 allocs/op
BenchmarkUnaryRPC/peer-nolog-2   100   30000 ns/op   70000 cpu-ns/op   20000 B/op   250 allocs/op
BenchmarkJWTVerify-2   100   70000 ns/op   3200 B/op   58 allocs/op
`)
	out, err := rpcTable(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| golden | 100,000 | 200,000 | 40,000 | 450 | 5.00× |",
		"**golden / bare**: ns/op 5.00×",
		"**golden / peer**: ns/op 2.00×",
		"**peer-nolog / peer**: ns/op 0.60×, cpu-ns/op 0.70×",
		"**golden's access log** (golden − golden-nolog): 40,000 ns/op, 50,000 cpu-ns/op, 10,000 B/op, 150 allocs/op per call",
		"**the peer's access log** (peer − peer-nolog): 20,000 ns/op, 30,000 cpu-ns/op, 10,000 B/op, 150 allocs/op per call",
		"**golden's other steps** (golden-nolog − peer-nolog): 30,000 ns/op, 80,000 cpu-ns/op",
		"**JWT verification alone** (BenchmarkJWTVerify, one goroutine): 70,000 ns/op",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Two rounds: the ratios of each round follow the ratio of medians.
	g = groups(t, `
BenchmarkUnaryRPC/bare-2   100   20000 ns/op   40000 cpu-ns/op
BenchmarkUnaryRPC/golden-2   100   100000 ns/op   90000 cpu-ns/op
BenchmarkUnaryRPC/peer-2   100   50000 ns/op   100000 cpu-ns/op
BenchmarkUnaryRPC/bare-2   100   20000 ns/op   50000 cpu-ns/op
BenchmarkUnaryRPC/golden-2   100   100000 ns/op   100000 cpu-ns/op
BenchmarkUnaryRPC/peer-2   100   50000 ns/op   125000 cpu-ns/op
`)
	if out, err = rpcTable(g); err != nil {
		t.Fatal(err)
	}
	if want := "**golden / peer**: ns/op 2.00×, cpu-ns/op 0.84× (by round: 0.90×, 0.80×),"; !strings.Contains(out, want) {
		t.Errorf("table lacks %q:\n%s", want, out)
	}
	if _, err := rpcTable(groups(t, "BenchmarkUnaryRPC/peer-2 1 1 ns/op\n")); err == nil {
		t.Error("a table without the bare server was made")
	}
}

func TestLogCallTable(t *testing.T) {
	g := groups(t, `
BenchmarkLogCall/no-gelf-2   100   5000 ns/op   3000 B/op   52 allocs/op
BenchmarkLogCall/udp-healthy-2   100   10000 ns/op   0.5 dropped/op   3000 B/op   52 allocs/op
BenchmarkLogCall/udp-down-2   100   6000 ns/op   1 dropped/op   3000 B/op   52 allocs/op
BenchmarkAccessLog/serial-2   100   9000 ns/op   9500 cpu-ns/op   3000 B/op   37 allocs/op
BenchmarkAccessLog/parallel-2   100   8000 ns/op   15000 cpu-ns/op   3000 B/op   37 allocs/op
`)
	out, err := logCallTable(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| GELF UDP, listener up | 10,000 | 5,000 | 100,000 | 0.500 | 50,000 |",
		"| GELF UDP, nothing listening | 6,000 | 1,000 | 166,667 | 1.000 | none (sink down) |",
		"9,000 ns and 9,500 ns of CPU from one goroutine, 37 allocs; from 32 goroutines 8,000 ns per line (wall, all cores) and 15,000 ns of CPU.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
