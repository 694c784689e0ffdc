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
BenchmarkUnaryRPC/peer-2   100   50000 ns/op   100000 cpu-ns/op   30000 B/op   400 allocs/op
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
		"**JWT verification alone** (BenchmarkJWTVerify, one goroutine): 70,000 ns/op",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
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
`)
	out, err := logCallTable(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| GELF UDP, listener up | 10,000 | 5,000 | 100,000 | 0.500 | 50,000 |",
		"| GELF UDP, nothing listening | 6,000 | 1,000 | 166,667 | 1.000 | none (sink down) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
