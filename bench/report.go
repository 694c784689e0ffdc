package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// BenchLine is one result line of `go test -bench`.
type BenchLine struct {
	// Name is the benchmark's name without the -GOMAXPROCS suffix.
	Name string
	// N is the number of iterations.
	N int64
	// Metrics maps each unit ("ns/op", "allocs/op", ...) to its value.
	Metrics map[string]float64
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// ParseBenchOutput reads the result lines of `go test -bench` output and
// ignores every other line.
func ParseBenchOutput(r io.Reader) ([]BenchLine, error) {
	var out []BenchLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		l := BenchLine{Name: procsSuffix.ReplaceAllString(f[0], ""), N: n, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			l.Metrics[f[i+1]] = v
		}
		if ok {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// BenchStats are the runs of one benchmark, as repeated with -count.
type BenchStats struct {
	Name string
	Runs []BenchLine
}

// Median returns the median of unit over the runs, NaN when no run has it.
func (s BenchStats) Median(unit string) float64 {
	var v []float64
	for _, r := range s.Runs {
		if x, ok := r.Metrics[unit]; ok {
			v = append(v, x)
		}
	}
	return Median(v)
}

// Median returns the median of v (the mean of the middle two for an even
// count), NaN for none; it sorts v in place.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Range returns the smallest and largest value of unit over the runs.
func (s BenchStats) Range(unit string) (lo, hi float64) {
	lo, hi = math.NaN(), math.NaN()
	for _, r := range s.Runs {
		x, ok := r.Metrics[unit]
		if !ok {
			continue
		}
		if math.IsNaN(lo) || x < lo {
			lo = x
		}
		if math.IsNaN(hi) || x > hi {
			hi = x
		}
	}
	return lo, hi
}

// GroupBench groups lines by benchmark name, in order of first appearance.
func GroupBench(lines []BenchLine) []BenchStats {
	var out []BenchStats
	idx := map[string]int{}
	for _, l := range lines {
		i, ok := idx[l.Name]
		if !ok {
			i = len(out)
			idx[l.Name] = i
			out = append(out, BenchStats{Name: l.Name})
		}
		out[i].Runs = append(out[i].Runs, l)
	}
	return out
}

// Table is a Markdown table.
type Table struct {
	Header []string
	Rows   [][]string
	// Right lists the columns to align right (numbers).
	Right map[int]bool
}

// String renders the table as GitHub-flavoured Markdown.
func (t Table) String() string {
	var b strings.Builder
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	b.WriteString("|")
	for _, h := range t.Header {
		b.WriteString(" " + cell(h) + " |")
	}
	b.WriteString("\n|")
	for i := range t.Header {
		if t.Right[i] {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("|")
		for _, c := range r {
			b.WriteString(" " + cell(c) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Num formats x with a thousands separator and prec decimals; NaN is "n/a".
func Num(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	s := strconv.FormatFloat(math.Abs(x), 'f', prec, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	if x < 0 {
		return "-" + b.String()
	}
	return b.String()
}

// Ratio formats a/b as "1.23×"; "n/a" when either is missing or b is 0.
func Ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}

// MS formats d in milliseconds with two decimals.
func MS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// MiB formats bytes in mebibytes with one decimal.
func MiB(bytes float64) string { return fmt.Sprintf("%.1f MiB", bytes/(1<<20)) }
