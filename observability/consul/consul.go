// Package consul owns golden's connection to Consul: the one place a Consul
// API client is built (the agent's address plus the standard CONSUL_HTTP_*
// environment: token, TLS, namespace) and the blocking-query loop that
// discovery and fault injection both use to follow a value as it changes.
package consul

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/golden-stack/golden/observability/backoff"
)

// NewClient returns a client of the Consul agent at addr (host:port, or a
// URL) that presents the ACL token in tokenFile, read once here. With
// tokenFile empty, api.DefaultConfig's standard variables apply
// (CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL,
// CONSUL_CACERT, ...), so a one-off command needs no golden-specific
// setting. The error names the file, never its content.
func NewClient(addr, tokenFile string) (*api.Client, error) {
	c := api.DefaultConfig()
	c.Address = addr
	if tokenFile != "" {
		c.TokenFile = tokenFile
	}
	return api.NewClient(c)
}

// Watch timings: how long one blocking query waits for a change, the margin
// on top of it that catches an agent that stopped answering without closing
// the connection, the minimum spacing of queries (so that a misbehaving
// agent cannot make a watch spin), and the retry backoff while Consul is
// unreachable.
const (
	blockingWait    = 30 * time.Second
	requestMargin   = 5 * time.Second
	minQueryGap     = 20 * time.Millisecond
	minRetryBackoff = 100 * time.Millisecond
	maxRetryBackoff = 5 * time.Second
)

// Query runs one blocking query with opts (WaitIndex, WaitTime and a
// context set) and returns its answer with the query's metadata.
type Query[T any] func(opts *api.QueryOptions) (T, *api.QueryMeta, error)

// Handler receives what Watch learns. Every field may be nil.
type Handler[T any] struct {
	// Changed gets every answer: the first one, then each one Consul sends
	// when the index moves (which may equal the previous answer).
	Changed func(T)
	// Failed gets every failed query; since is when the current outage
	// began, and first is true for its first failure.
	Failed func(err error, since time.Time, first bool)
	// Recovered is called once when a query succeeds after an outage that
	// began at since, before Changed.
	Recovered func(since time.Time)
}

// Watch runs query as Consul's guidance for blocking queries says until ctx
// ends: it waits on the last index, starts over when the index goes
// backwards (a restarted agent), never waits on index 0, and backs off with
// jitter while the agent cannot be reached.
func Watch[T any](ctx context.Context, query Query[T], h Handler[T]) {
	var (
		index        uint64
		failingSince time.Time
		attempt      int
	)
	for {
		start := time.Now()
		v, next, err := fetch(ctx, query, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// After an error the agent may be a new one whose index
			// restarted lower: a blocking query on the old index would
			// hang for the whole wait, so ask afresh.
			index = 0
			first := failingSince.IsZero()
			if first {
				failingSince = time.Now()
			}
			if h.Failed != nil {
				h.Failed(err, failingSince, first)
			}
			if !backoff.Sleep(ctx, backoff.Delay(attempt, minRetryBackoff, maxRetryBackoff)) {
				return
			}
			attempt++
			continue
		}
		if !failingSince.IsZero() {
			if h.Recovered != nil {
				h.Recovered(failingSince)
			}
			failingSince, attempt = time.Time{}, 0
		}
		index = nextWaitIndex(index, next)
		if h.Changed != nil {
			h.Changed(v)
		}
		if !backoff.Sleep(ctx, minQueryGap-time.Since(start)) {
			return
		}
	}
}

// fetch runs one query, blocking unless index is 0, and returns its answer
// with the index Consul answered.
func fetch[T any](ctx context.Context, query Query[T], index uint64) (T, uint64, error) {
	// Consul adds up to wait/16 of jitter to the wait.
	ctx, cancel := context.WithTimeout(ctx, blockingWait+blockingWait/16+requestMargin)
	defer cancel()
	v, meta, err := query((&api.QueryOptions{WaitIndex: index, WaitTime: blockingWait}).WithContext(ctx))
	if err != nil || meta == nil {
		var zero T
		return zero, 0, err
	}
	return v, meta.LastIndex, nil
}

// nextWaitIndex returns the index the next blocking query should wait on,
// given the one it waited on and the X-Consul-Index Consul answered: start
// over when the index goes backwards, and never wait on index 0.
func nextWaitIndex(waited, answered uint64) uint64 {
	switch {
	case answered < waited:
		return 0
	case answered == 0:
		return 1
	default:
		return answered
	}
}
