package integration

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	lg "github.com/golden-stack/golden/internal/loadgen"
	"github.com/golden-stack/golden/observability/requestid"
)

// TestLoadgenAgainstTheStack runs the load generator against the real
// services: everything it means to succeed must succeed, and its deliberate
// faults must be answered as the API says.
func TestLoadgenAgainstTheStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	s := startStack(t, nil)

	cfg := lg.DefaultConfig()
	cfg.Target = s.baseURL
	cfg.Rate = 1000
	cfg.Duration = 0
	cfg.MaxRequests = 200
	cfg.ReportInterval = 0
	cfg.Seed = 1
	var mu sync.Mutex
	results := map[string]lg.Result{}
	g, err := lg.New(cfg, lg.WithObserver(func(r lg.Result) {
		mu.Lock()
		defer mu.Unlock()
		results[r.RequestID] = r
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := g.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", text.String())

	if sum.Requests != 200 || len(results) != 200 {
		t.Errorf("%d requests, %d distinct request IDs, want 200", sum.Requests, len(results))
	}
	if sum.UnexpectedFailures != 0 {
		t.Errorf("%d unexpected failures: %+v", sum.UnexpectedFailures, sum.FailedRequests)
	}
	if sum.ExpectedFailures == 0 || sum.ByStatus["401"] == 0 {
		t.Errorf("want deliberate faults answered 401/404, got by_status %v", sum.ByStatus)
	}
	for _, op := range []lg.Op{lg.OpSignUp, lg.OpLogin, lg.OpGet, lg.OpList} {
		if sum.ByOp[string(op)] == 0 {
			t.Errorf("no %s requests: %v", op, sum.ByOp)
		}
	}
	if len(sum.FailedRequests) == 0 {
		t.Fatal("no failed_request_ids")
	}
	for _, f := range sum.FailedRequests {
		r, ok := results[f.ID]
		switch {
		case !requestid.Valid(f.ID):
			t.Errorf("invalid request ID %q", f.ID)
		case !ok || r.Status != f.Status || r.Route != f.Route:
			t.Errorf("failed request %+v does not match a request sent (%+v)", f, r)
		case !f.Expected || (f.Status != 401 && f.Status != 404):
			t.Errorf("failed request %+v: want an expected 401 or 404", f)
		}
	}
}
