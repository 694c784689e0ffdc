// Package loadgen sends a realistic, steady mix of requests to the golden
// gateway's HTTP API and summarizes how it answered.
//
// The schedule is open-loop: request i is due i/rate seconds after the
// start, whatever the earlier requests are doing, so a slow target shows up
// as latency and dropped requests instead of quietly lowering the load. A
// request that falls due while --concurrency requests are in flight is
// dropped and counted.
//
// The mix (see Mix) signs up accounts with usernames unique to the run
// ("lg-<run ID>-<n>"), logs them in, rotates their refresh tokens, reads
// their own account and pages through the account list, deletes some, and
// sends a few requests that must fail: a malformed or expired-looking
// access token, an ID that does not exist, a wrong password. Up to
// Config.Users virtual users are kept with their tokens, so memory stays
// bounded however long the run; each is used by one request at a time, so
// a refresh always presents the newest refresh token.
//
// Every request carries a fresh X-Request-ID (requestid.New), reported with
// its Result and, for failed requests, in the Summary, so that `golden
// lookup ID` finds its logs and spans. Passwords and tokens are never
// written anywhere.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/observability/config"
)

// ErrNoResponse reports a run in which no request got an HTTP answer: the
// target was unreachable for the whole run, or no request was sent.
var ErrNoResponse = errors.New("no request got an answer")

// Clock tells the time and waits. The generator reads its schedule from it,
// so tests can run one without waiting; latencies are always measured with
// the real time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Option configures New.
type Option func(*Generator)

// WithClock sets the clock the schedule follows; the default is the real
// one. A nil c keeps the default.
func WithClock(c Clock) Option {
	return func(g *Generator) {
		if c != nil {
			g.clock = c
		}
	}
}

// WithProgress writes a progress line to w every Config.ReportInterval.
// Without it, or with a nil w, no progress is written.
func WithProgress(w io.Writer) Option {
	return func(g *Generator) {
		if w != nil {
			g.progress = w
		}
	}
}

// WithObserver calls fn with the Result of every request, from the
// goroutine that sent it: fn must be safe for concurrent use and quick. A
// nil fn observes nothing.
func WithObserver(fn func(Result)) Option {
	return func(g *Generator) {
		if fn != nil {
			g.observe = fn
		}
	}
}

// Generator sends load to a gateway. Create one with New; each call to Run
// is an independent run.
type Generator struct {
	cfg       Config
	target    string
	client    *http.Client
	transport *http.Transport // non-nil when the client is the generator's own
	clock     Clock
	progress  io.Writer
	observe   func(Result)
}

// New returns a Generator for cfg, or an error naming each invalid setting.
func New(cfg Config, opts ...Option) (*Generator, error) {
	var v config.Validator
	cfg.Validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	u, err := baseurl.Parse(cfg.Target)
	if err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, target: u.String(), clock: realClock{}}
	for _, o := range opts {
		if o != nil {
			o(g)
		}
	}
	if g.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 2 * cfg.Concurrency
		t.MaxIdleConnsPerHost = cfg.Concurrency
		g.transport = t
		g.client = &http.Client{
			Transport: t,
			// A redirect is an answer to report, not to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return g, nil
}

// Run sends requests until Config.Duration has passed, Config.MaxRequests
// have been sent or ctx is cancelled, waits for those in flight (each
// bounded by Config.Timeout; cancelling ctx does not cut them short, so
// they are reported as what they are) and returns the summary.
//
// Failed requests do not end a run: they are counted in the summary. The
// error is non-nil, wrapping ErrNoResponse, only when no request got an
// HTTP answer at all; the summary is complete even then.
func (g *Generator) Run(ctx context.Context) (Summary, error) {
	r := g.newRun()
	r.schedule(ctx)
	r.wg.Wait()
	if g.transport != nil {
		g.transport.CloseIdleConnections()
	}
	s := r.stats.summary(r)
	if s.Requests == 0 {
		return s, fmt.Errorf("%w: no request was sent to %s", ErrNoResponse, g.target)
	}
	if s.TransportErrors == s.Requests {
		return s, fmt.Errorf("%w from %s in %d tries; last error: %v", ErrNoResponse, g.target, s.Requests, r.stats.lastTransportError())
	}
	return s, nil
}

// run is the state of one Run.
type run struct {
	*Generator
	id    string
	seed  int64
	rng   *mrand.Rand // the scheduling goroutine's alone
	users *pool
	stats *recorder
	wg    sync.WaitGroup

	signups int64 // usernames handed out; the scheduling goroutine's alone
	sent    int64
	start   time.Time
	stopped time.Time

	answered     atomic.Bool // some request got an HTTP answer
	saidNoAnswer sync.Once   // the first request without one, while none had, was reported
}

func (g *Generator) newRun() *run {
	seed := g.cfg.Seed
	for seed == 0 {
		seed = int64(randomUint64() >> 1)
	}
	return &run{
		Generator: g,
		id:        randomHex(4),
		seed:      seed,
		rng:       mrand.New(mrand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		users:     newPool(g.cfg.Users),
		stats:     newRecorder(maxLatencySamples),
	}
}

// schedule starts requests on the open-loop schedule until the run ends.
func (r *run) schedule(ctx context.Context) {
	r.start = r.clock.Now()
	defer func() { r.stopped = r.clock.Now() }()

	interval := float64(time.Second) / r.cfg.Rate
	var end, nextReport time.Time
	if r.cfg.Duration > 0 {
		end = r.start.Add(r.cfg.Duration)
	}
	if r.cfg.ReportInterval > 0 && r.progress != nil {
		nextReport = r.start.Add(r.cfg.ReportInterval)
	}
	slots := make(chan struct{}, r.cfg.Concurrency)
	var ticks int64
	for ctx.Err() == nil {
		if r.cfg.MaxRequests > 0 && r.sent >= r.cfg.MaxRequests {
			return
		}
		now := r.clock.Now()
		if !end.IsZero() && !now.Before(end) {
			return
		}
		// Progress first, so that a schedule running behind still reports.
		if !nextReport.IsZero() && !now.Before(nextReport) {
			r.report(now)
			nextReport = nextReport.Add(r.cfg.ReportInterval)
			continue
		}
		// Computed from the start rather than by adding intervals, so
		// rounding does not accumulate over a long run.
		due := r.start.Add(time.Duration(float64(ticks) * interval))
		if !now.Before(due) {
			ticks++
			select {
			case slots <- struct{}{}:
				r.sent++
				t := r.plan(r.pickOp())
				r.wg.Add(1)
				go func() {
					defer r.wg.Done()
					defer func() { <-slots }()
					r.execute(ctx, t)
				}()
			default:
				r.stats.drop()
			}
			continue
		}
		wake := due
		if !nextReport.IsZero() && nextReport.Before(wake) {
			wake = nextReport
		}
		if !end.IsZero() && end.Before(wake) {
			wake = end
		}
		select {
		case <-ctx.Done():
		case <-r.clock.After(wake.Sub(now)):
		}
	}
}

// report writes one progress line.
func (r *run) report(now time.Time) {
	p := r.stats.progress()
	elapsed := now.Sub(r.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.requests) / elapsed.Seconds()
	}
	fmt.Fprintf(r.progress, "loadgen: %s elapsed, %d sent (%.1f/s), %d succeeded, %d expected failures, %d unexpected failures, %d dropped, p50 %s, p99 %s\n",
		elapsed.Round(time.Second), p.requests, rate, p.succeeded, p.expected, p.unexpected, p.dropped,
		formatMillis(p.p50), formatMillis(p.p99))
}

// nextUsername returns a username no other run uses: the run ID is random.
func (r *run) nextUsername() string {
	r.signups++
	return "lg-" + r.id + "-" + strconv.FormatInt(r.signups, 36)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b)
}

func randomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
