package consul

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestNextWaitIndex(t *testing.T) {
	for _, c := range []struct{ waited, answered, want uint64 }{
		{0, 7, 7}, // first answer
		{7, 9, 9}, // moved on
		{9, 9, 9}, // wait timed out, nothing changed
		{9, 3, 0}, // went backwards (restarted agent): start over
		{0, 0, 1}, // never wait on 0
		{5, 0, 0}, // backwards to 0: start over, then 1
	} {
		if got := nextWaitIndex(c.waited, c.answered); got != c.want {
			t.Errorf("nextWaitIndex(%d, %d) = %d, want %d", c.waited, c.answered, got, c.want)
		}
	}
}

// TestWatch drives Watch with a scripted agent: an answer, an outage of two
// failures, an answer with a lower index (restarted agent), then the end.
func TestWatch(t *testing.T) {
	type answer struct {
		v     string
		index uint64
		err   error
	}
	down := errors.New("connection refused")
	script := []answer{{"a", 10, nil}, {"", 0, down}, {"", 0, down}, {"b", 4, nil}, {"c", 5, nil}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var waited []uint64
	var changed []string
	var failures, firsts, recoveries int
	query := func(opts *api.QueryOptions) (string, *api.QueryMeta, error) {
		if opts.WaitTime != blockingWait || opts.Context() == nil {
			t.Errorf("query options: WaitTime %s, context %v", opts.WaitTime, opts.Context())
		}
		waited = append(waited, opts.WaitIndex)
		n := len(waited) - 1
		if n == len(script)-1 {
			cancel()
		}
		a := script[n]
		if a.err != nil {
			return "", nil, a.err
		}
		return a.v, &api.QueryMeta{LastIndex: a.index}, nil
	}
	Watch(ctx, query, Handler[string]{
		Changed: func(v string) { changed = append(changed, v) },
		Failed: func(err error, since time.Time, first bool) {
			failures++
			if first {
				firsts++
			}
			if !errors.Is(err, down) || since.IsZero() {
				t.Errorf("Failed(%v, %v)", err, since)
			}
		},
		Recovered: func(time.Time) { recoveries++ },
	})
	// After a failure the watch asks afresh (index 0); after the agent
	// answered a lower index it still waits on that one.
	wantWaited := []uint64{0, 10, 0, 0, 4}
	if len(waited) != len(wantWaited) {
		t.Fatalf("queries waited on %v, want %v", waited, wantWaited)
	}
	for i := range wantWaited {
		if waited[i] != wantWaited[i] {
			t.Fatalf("queries waited on %v, want %v", waited, wantWaited)
		}
	}
	if len(changed) != 2 || changed[0] != "a" || changed[1] != "b" {
		t.Errorf("Changed got %v, want [a b] (the last answer came after cancel)", changed)
	}
	if failures != 2 || firsts != 1 || recoveries != 1 {
		t.Errorf("failures %d (first %d), recoveries %d; want 2 (1), 1", failures, firsts, recoveries)
	}
}
