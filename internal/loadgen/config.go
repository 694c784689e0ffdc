package loadgen

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/observability/config"
)

// Bounds on the settings, so that a typo cannot ask for something absurd.
const (
	maxRate        = 1e6
	maxConcurrency = 10000
	maxUsers       = 100000
)

// Config holds the settings of a load run.
type Config struct {
	// Target is the gateway's base URL.
	Target string
	// Rate is the number of requests started per second. The schedule is
	// open-loop: request i is due at i/Rate seconds whatever the earlier
	// ones are doing.
	Rate float64
	// Duration bounds the run; 0 runs until the context is cancelled
	// (SIGINT or SIGTERM) or MaxRequests is reached.
	Duration time.Duration
	// Concurrency bounds the requests in flight. A request that falls due
	// while all are busy is dropped and counted, not queued, so a slow
	// target cannot slow the schedule down (no coordinated omission).
	Concurrency int
	// Timeout bounds each request.
	Timeout time.Duration
	// ReportInterval is how often a progress line is written; 0 writes none.
	ReportInterval time.Duration
	// Seed seeds the choice of operations; 0 picks a random seed, which
	// the summary reports so that a run can be repeated.
	Seed int64
	// MaxRequests stops the run after that many requests; 0 is no limit.
	MaxRequests int64
	// Users bounds the pool of virtual users whose tokens are kept. Each
	// is used by one request at a time, so it should exceed Concurrency:
	// an operation that finds no idle user turns into a login or sign-up.
	Users int
	// Mix is the relative weight of each operation.
	Mix Mix
}

// DefaultConfig returns the settings of a gentle run against a local
// gateway: 10 requests/s for a minute, at most 16 in flight, 5s per request,
// a progress line every 10s, up to 200 virtual users and DefaultMix.
func DefaultConfig() Config {
	return Config{
		Target:         "http://127.0.0.1:8080",
		Rate:           10,
		Duration:       time.Minute,
		Concurrency:    16,
		Timeout:        5 * time.Second,
		ReportInterval: 10 * time.Second,
		Users:          200,
		Mix:            DefaultMix(),
	}
}

// RegisterFlags adds --target, --rate, --duration, --concurrency,
// --timeout, --report-interval, --seed, --max-requests, --users and --mix
// to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Target, "target", c.Target, "gateway base URL")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "requests started per second (open loop)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to run (0: until SIGINT or SIGTERM)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "most requests in flight; a request due while all are busy is dropped and counted")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "timeout of each request")
	fs.DurationVar(&c.ReportInterval, "report-interval", c.ReportInterval, "how often to write a progress line to stderr (0: never)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the operation mix (0: random, reported in the summary)")
	fs.Int64Var(&c.MaxRequests, "max-requests", c.MaxRequests, "stop after this many requests (0: no limit)")
	fs.IntVar(&c.Users, "users", c.Users, "most virtual users (accounts with their tokens) kept at once; keep it above --concurrency")
	fs.Var(&c.Mix, "mix", "relative weights of the operations, e.g. get=60,fault=0; operations not named keep their weight")
}

// Validate checks the settings.
func (c *Config) Validate(v *config.Validator) {
	_, err := baseurl.Parse(c.Target)
	v.Check(err == nil, "target", "%v", err)
	v.Check(c.Rate > 0 && c.Rate <= maxRate, "rate", "must be greater than 0 and at most %g, got %g", float64(maxRate), c.Rate)
	v.Check(c.Duration >= 0, "duration", "must not be negative, got %s", c.Duration)
	v.Check(c.Concurrency >= 1 && c.Concurrency <= maxConcurrency, "concurrency", "must be between 1 and %d, got %d", maxConcurrency, c.Concurrency)
	v.Positive("timeout", c.Timeout)
	v.Check(c.ReportInterval >= 0, "report-interval", "must not be negative (0 writes no progress lines), got %s", c.ReportInterval)
	v.Check(c.MaxRequests >= 0, "max-requests", "must not be negative (0 is no limit), got %d", c.MaxRequests)
	v.Check(c.Users >= 1 && c.Users <= maxUsers, "users", "must be between 1 and %d, got %d", maxUsers, c.Users)
	v.Check(c.Mix.Err() == nil, "mix", "%v", c.Mix.Err())
}

// Mix is the relative weight of each operation the generator picks from;
// a weight of 0 turns the operation off. It is a pflag.Value written as
// "signup=10,login=15,...": Set changes only the operations it names.
type Mix struct {
	// SignUp creates an account with a unique username (POST /v1/users).
	SignUp int
	// Login logs a virtual user in (POST /v1/login); when every idle
	// virtual user is logged in already, one of them logs out instead
	// (POST /v1/logout), so that sessions do not pile up in auth.
	Login int
	// Refresh rotates a virtual user's refresh token (POST /v1/refresh).
	Refresh int
	// Get reads the virtual user's own account (GET /v1/users/{id}).
	Get int
	// List reads the next page of accounts (GET /v1/users), each virtual
	// user paging on from where it stopped.
	List int
	// Delete deletes the virtual user's own account (DELETE /v1/users/{id}).
	Delete int
	// Fault sends a request that must fail: a malformed or an
	// expired-looking access token (401), an ID that does not exist (404)
	// or a wrong password (401), in equal shares.
	Fault int
}

// DefaultMix is 10% sign-ups, 15% logins, 10% refreshes, 40% reads of
// one's own account, 15% list pages, 3% deletes and 7% deliberate faults.
func DefaultMix() Mix {
	return Mix{SignUp: 10, Login: 15, Refresh: 10, Get: 40, List: 15, Delete: 3, Fault: 7}
}

// mixOps lists the operations of a Mix in order, with their names.
var mixOps = []Op{OpSignUp, OpLogin, OpRefresh, OpGet, OpList, OpDelete, OpFault}

// weight returns the field of m that holds op's weight.
func (m *Mix) weight(op Op) *int {
	switch op {
	case OpSignUp:
		return &m.SignUp
	case OpLogin:
		return &m.Login
	case OpRefresh:
		return &m.Refresh
	case OpGet:
		return &m.Get
	case OpList:
		return &m.List
	case OpDelete:
		return &m.Delete
	case OpFault:
		return &m.Fault
	}
	return nil
}

// String implements pflag.Value: "signup=10,login=15,...".
func (m *Mix) String() string {
	parts := make([]string, len(mixOps))
	for i, op := range mixOps {
		parts[i] = fmt.Sprintf("%s=%d", op, *m.weight(op))
	}
	return strings.Join(parts, ",")
}

// Set implements pflag.Value. It parses "op=weight,..." and changes only
// the operations named; the operations are signup, login, refresh, get,
// list, delete and fault. Ranges are checked by Err.
func (m *Mix) Set(s string) error {
	next := *m
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("%q is not op=weight", part)
		}
		w := next.weight(Op(strings.TrimSpace(name)))
		if w == nil {
			return fmt.Errorf("unknown operation %q: choose from %s", strings.TrimSpace(name), opNames())
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("weight of %s: %q is not a whole number", strings.TrimSpace(name), strings.TrimSpace(val))
		}
		*w = n
	}
	*m = next
	return nil
}

// Type implements pflag.Value.
func (m *Mix) Type() string { return "weights" }

// Err reports a weight that is negative or too large, or a mix whose
// weights are all 0.
func (m *Mix) Err() error {
	var bad []string
	total := 0
	for _, op := range mixOps {
		w := *m.weight(op)
		if w < 0 || w > math.MaxInt32 {
			bad = append(bad, fmt.Sprintf("weight of %s must be between 0 and %d, got %d", op, math.MaxInt32, w))
			continue
		}
		total += w
	}
	switch {
	case len(bad) > 0:
		return errors.New(strings.Join(bad, "; "))
	case total == 0:
		return errors.New("at least one weight must be greater than 0")
	}
	return nil
}

func opNames() string { return strings.Join(MixOperations(), ", ") }

// MixOperations names the operations a Mix weighs, as --mix spells them.
func MixOperations() []string {
	names := make([]string, len(mixOps))
	for i, op := range mixOps {
		names[i] = string(op)
	}
	return names
}
