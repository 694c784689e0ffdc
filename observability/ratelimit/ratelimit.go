// Package ratelimit shapes traffic per caller: each caller identity gets its
// own token bucket, so one noisy client is slowed down without starving the
// others. It implements go-grpc-middleware's ratelimit.Limiter, whose
// interceptors answer ResourceExhausted when a bucket is empty.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxKeys bounds the number of buckets kept. Keys come from verified
// certificates, so the set is small in practice; the bound only protects
// memory from a key function that lets unbounded values through.
const maxKeys = 10000

// idleAfter is how long an unused bucket is kept before it may be dropped. A
// bucket idle that long has refilled completely, so dropping it changes
// nothing for its caller.
const idleAfter = 10 * time.Minute

// PerKey is a set of token buckets, one per key.
type PerKey struct {
	limit    rate.Limit
	burst    int
	key      func(context.Context) string
	now      func() time.Time
	rejected func(key string)

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// Option configures a PerKey.
type Option func(*PerKey)

// WithClock replaces time.Now, for tests. A nil now keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(p *PerKey) {
		if now != nil {
			p.now = now
		}
	}
}

// WithRejectHook calls f with the key of every rejected request, for example
// to count rejections in a metric. A nil f sets no hook.
func WithRejectHook(f func(key string)) Option {
	return func(p *PerKey) {
		if f != nil {
			p.rejected = f
		}
	}
}

// New returns buckets refilling at perSecond requests per second and holding
// at most burst; key picks the bucket of a request's context.
func New(perSecond float64, burst int, key func(context.Context) string, opts ...Option) *PerKey {
	p := &PerKey{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		key:     key,
		now:     time.Now,
		buckets: make(map[string]*bucket),
	}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	return p
}

// Limit takes one token from the bucket of ctx's key and fails when it is
// empty. It never waits.
func (p *PerKey) Limit(ctx context.Context) error {
	k := p.key(ctx)
	now := p.now()
	p.mu.Lock()
	b, ok := p.buckets[k]
	if !ok {
		if len(p.buckets) >= maxKeys {
			p.sweep(now)
		}
		b = &bucket{lim: rate.NewLimiter(p.limit, p.burst)}
		p.buckets[k] = b
	}
	b.lastSeen = now
	allowed := b.lim.AllowN(now, 1)
	p.mu.Unlock()
	if allowed {
		return nil
	}
	if p.rejected != nil {
		p.rejected(k)
	}
	return fmt.Errorf("caller %q is over its limit of %g requests/s (burst %d)", k, float64(p.limit), p.burst)
}

// sweep drops idle buckets; called with mu held when the map is full.
func (p *PerKey) sweep(now time.Time) {
	for k, b := range p.buckets {
		if now.Sub(b.lastSeen) > idleAfter {
			delete(p.buckets, k)
		}
	}
	if len(p.buckets) >= maxKeys {
		// Everything is recent: start over rather than grow without bound.
		clear(p.buckets)
	}
}
