// Package backoff spaces out retries of a remote that is down (Consul,
// Graylog, ...): exponential growth with a cap, and jitter so that
// instances that lost the remote together do not retry in step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry number attempt (0 for the first
// retry): lo doubled per attempt and capped at hi, then jittered down to
// between half and all of it.
func Delay(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits d (nothing when d <= 0) or until ctx ends, reporting whether
// ctx is still live: the wait between two retries of a loop that stops with
// its context.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
