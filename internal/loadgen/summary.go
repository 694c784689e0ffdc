package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

const (
	// maxLatencySamples bounds the latencies kept for percentiles: every
	// one up to this many requests, then a uniform random sample of all of
	// them (reservoir sampling), 800 KB at most. The maximum is exact.
	maxLatencySamples = 100_000
	// maxFailedIDs is how many failed request IDs the summary lists.
	maxFailedIDs = 5
	// maxCodes bounds the distinct error codes counted; further ones are
	// counted as "OTHER", so a misbehaving target cannot grow the map.
	maxCodes = 64
	// maxCodeLen bounds an error code as reported.
	maxCodeLen = 64
)

// Summary describes a finished run. Its JSON field names are stable.
type Summary struct {
	// RunID is in the username of every account the run created:
	// "lg-<run ID>-<n>".
	RunID  string `json:"run_id"`
	Target string `json:"target"`
	// Seed repeats the run's choice of operations when given as --seed.
	Seed int64 `json:"seed"`
	// DurationSeconds is the time spent starting requests; those still in
	// flight at its end were then waited for.
	DurationSeconds float64 `json:"duration_s"`
	// Requests counts the requests sent: Succeeded + ExpectedFailures +
	// UnexpectedFailures.
	Requests int64 `json:"requests"`
	// Rate is Requests per second of DurationSeconds; TargetRate the one
	// asked for.
	Rate       float64 `json:"rate"`
	TargetRate float64 `json:"target_rate"`
	Succeeded  int64   `json:"succeeded"`
	// ExpectedFailures counts deliberate faults answered as they must be.
	ExpectedFailures int64 `json:"expected_failures"`
	// UnexpectedFailures counts every other failure, TransportErrors
	// (requests that got no HTTP answer) included.
	UnexpectedFailures int64 `json:"unexpected_failures"`
	TransportErrors    int64 `json:"transport_errors"`
	// Dropped counts requests not sent because they fell due while
	// --concurrency requests were in flight.
	Dropped int64 `json:"dropped"`
	// ByStatus counts answers by HTTP status ("200"); requests without an
	// answer are in TransportErrors only.
	ByStatus map[string]int64 `json:"by_status"`
	// ByCode counts error answers by the error.code of their body.
	ByCode map[string]int64 `json:"by_code"`
	// ByOp counts requests by the operation sent (see Op).
	ByOp map[string]int64 `json:"by_op"`
	// Latency holds percentiles over the requests that got an answer.
	Latency LatencySummary `json:"latency_ms"`
	// FailedRequests lists up to five failed requests, unexpected ones
	// first, for `golden lookup ID`.
	FailedRequests []FailedRequest `json:"failed_request_ids"`
}

// LatencySummary holds latency percentiles in milliseconds.
type LatencySummary struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// FailedRequest is one failed request, to look up by its ID.
type FailedRequest struct {
	ID string `json:"id"`
	// Status is the HTTP status, 0 without an answer.
	Status int `json:"status"`
	// Code is the answer's error.code, or CodeTimeout or CodeNoResponse.
	Code  string `json:"code"`
	Route string `json:"route"`
	// Expected is true for a deliberate fault answered as it must be.
	Expected bool `json:"expected"`
}

// WriteJSON writes s as one indented JSON document.
func (s Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteText writes s for people to read.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "loadgen run %s against %s (seed %d)\n", s.RunID, s.Target, s.Seed)
	fmt.Fprintf(tw, "requests\t%d in %s: %.1f/s of %g/s asked", s.Requests, formatSeconds(s.DurationSeconds), s.Rate, s.TargetRate)
	if s.Dropped > 0 {
		fmt.Fprintf(tw, "; %d more dropped (all --concurrency in flight)", s.Dropped)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "succeeded\t%d\n", s.Succeeded)
	fmt.Fprintf(tw, "expected failures\t%d\t(deliberate faults answered as they must be)\n", s.ExpectedFailures)
	fmt.Fprintf(tw, "unexpected failures\t%d", s.UnexpectedFailures)
	if s.TransportErrors > 0 {
		fmt.Fprintf(tw, "\t(%d without an answer)", s.TransportErrors)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "by status\t%s\n", formatCounts(s.ByStatus))
	fmt.Fprintf(tw, "by error code\t%s\n", formatCounts(s.ByCode))
	fmt.Fprintf(tw, "by operation\t%s\n", formatCounts(s.ByOp))
	fmt.Fprintf(tw, "latency\tp50 %sms  p90 %sms  p99 %sms  max %sms\n",
		formatMS(s.Latency.P50), formatMS(s.Latency.P90), formatMS(s.Latency.P99), formatMS(s.Latency.Max))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.FailedRequests) == 0 {
		return nil
	}
	fmt.Fprintln(w, "failed requests (golden lookup ID):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range s.FailedRequests {
		status, code, kind := strconv.Itoa(f.Status), f.Code, "unexpected"
		if f.Status == 0 {
			status = "-"
		}
		if code == "" {
			code = "-"
		}
		if f.Expected {
			kind = "expected"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.ID, status, code, f.Route, kind)
	}
	return tw.Flush()
}

// formatCounts renders counts as "k=v" in key order, or "-".
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, " ")
}

func formatMS(ms float64) string { return strconv.FormatFloat(ms, 'f', 2, 64) }

func formatSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// formatMillis renders d in milliseconds for progress lines.
func formatMillis(d time.Duration) string { return formatMS(ms(d)) + "ms" }

// ms converts d to milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// latencies keeps every latency up to its capacity, then a uniform random
// sample of all of them (Vitter's Algorithm R), so percentiles stay
// representative with bounded memory; the maximum is tracked exactly.
type latencies struct {
	n       int64
	cap     int
	samples []time.Duration
	max     time.Duration
	rng     *mrand.Rand
}

func newLatencies(capacity int) *latencies {
	return &latencies{cap: capacity, rng: mrand.New(mrand.NewPCG(1, 2))}
}

func (l *latencies) add(d time.Duration) {
	l.n++
	l.max = max(l.max, d)
	if len(l.samples) < l.cap {
		l.samples = append(l.samples, d)
		return
	}
	// Keep d with probability cap/n, in place of a random sample.
	if j := l.rng.Int64N(l.n); j < int64(l.cap) {
		l.samples[j] = d
	}
}

// percentiles returns the nearest-rank percentiles ps (0 < p <= 100) of
// sorted.
func percentiles(sorted []time.Duration, ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if len(sorted) == 0 {
		return out
	}
	for i, p := range ps {
		rank := int(math.Ceil(p / 100 * float64(len(sorted))))
		out[i] = sorted[min(max(rank, 1), len(sorted))-1]
	}
	return out
}

// recorder counts results; it is safe for concurrent use.
type recorder struct {
	mu                             sync.Mutex
	requests, succeeded, expected  int64
	unexpected, transport, dropped int64
	byStatus                       map[int]int64
	byCode                         map[string]int64
	byOp                           map[Op]int64
	lat                            *latencies
	unexpectedIDs, expectedIDs     []FailedRequest
	lastTransportErr               error
}

func newRecorder(latencySamples int) *recorder {
	return &recorder{
		byStatus: make(map[int]int64),
		byCode:   make(map[string]int64),
		byOp:     make(map[Op]int64),
		lat:      newLatencies(latencySamples),
	}
}

func (s *recorder) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped++
}

func (s *recorder) record(res Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.byOp[res.Op]++
	if res.Err != nil {
		s.transport++
		s.lastTransportErr = res.Err
	} else {
		s.byStatus[res.Status]++
		s.lat.add(res.Latency)
		if code := res.Code; code != "" {
			if len(code) > maxCodeLen {
				code = code[:maxCodeLen]
			}
			if _, ok := s.byCode[code]; !ok && len(s.byCode) >= maxCodes {
				code = "OTHER"
			}
			s.byCode[code]++
		}
	}
	f := FailedRequest{ID: res.RequestID, Status: res.Status, Code: res.Code, Route: res.Route}
	switch res.Outcome {
	case Succeeded:
		s.succeeded++
	case ExpectedFailure:
		s.expected++
		if len(s.expectedIDs) < maxFailedIDs {
			f.Expected = true
			s.expectedIDs = append(s.expectedIDs, f)
		}
	default:
		s.unexpected++
		if len(s.unexpectedIDs) < maxFailedIDs {
			s.unexpectedIDs = append(s.unexpectedIDs, f)
		}
	}
}

func (s *recorder) lastTransportError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastTransportErr
}

// progressSnapshot is what a progress line shows.
type progressSnapshot struct {
	requests, succeeded, expected, unexpected, dropped int64
	p50, p99                                           time.Duration
}

func (s *recorder) progress() progressSnapshot {
	s.mu.Lock()
	p := progressSnapshot{requests: s.requests, succeeded: s.succeeded, expected: s.expected, unexpected: s.unexpected, dropped: s.dropped}
	sorted := slices.Clone(s.lat.samples)
	s.mu.Unlock()
	// Sorting a copy keeps the lock short for the requests recording.
	slices.Sort(sorted)
	pc := percentiles(sorted, 50, 99)
	p.p50, p.p99 = pc[0], pc[1]
	return p
}

// summary builds the summary of run r once every request has finished.
func (s *recorder) summary(r *run) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Summary{
		RunID:              r.id,
		Target:             r.target,
		Seed:               r.seed,
		DurationSeconds:    r.stopped.Sub(r.start).Seconds(),
		Requests:           s.requests,
		TargetRate:         r.cfg.Rate,
		Succeeded:          s.succeeded,
		ExpectedFailures:   s.expected,
		UnexpectedFailures: s.unexpected,
		TransportErrors:    s.transport,
		Dropped:            s.dropped,
		ByStatus:           make(map[string]int64, len(s.byStatus)),
		ByCode:             make(map[string]int64, len(s.byCode)),
		ByOp:               make(map[string]int64, len(s.byOp)),
		FailedRequests:     []FailedRequest{},
	}
	if out.DurationSeconds > 0 {
		out.Rate = math.Round(float64(s.requests)/out.DurationSeconds*100) / 100
	}
	for k, v := range s.byStatus {
		out.ByStatus[strconv.Itoa(k)] = v
	}
	for k, v := range s.byCode {
		out.ByCode[k] = v
	}
	for k, v := range s.byOp {
		out.ByOp[string(k)] = v
	}
	sorted := slices.Clone(s.lat.samples)
	slices.Sort(sorted)
	pc := percentiles(sorted, 50, 90, 99)
	out.Latency = LatencySummary{P50: ms(pc[0]), P90: ms(pc[1]), P99: ms(pc[2]), Max: ms(s.lat.max)}
	out.FailedRequests = append(out.FailedRequests, s.unexpectedIDs...)
	out.FailedRequests = append(out.FailedRequests, s.expectedIDs...)
	if len(out.FailedRequests) > maxFailedIDs {
		out.FailedRequests = out.FailedRequests[:maxFailedIDs]
	}
	return out
}
