package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/loadgen/loadgentest"
	"github.com/golden-stack/golden/observability/requestid"
)

// fakeClock advances only when waited on, so a schedule runs at once and
// exactly.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// testConfig is a fast run against target: no progress lines, a fixed
// seed, as many requests as fit in max.
func testConfig(target string, maxRequests int64) Config {
	c := DefaultConfig()
	c.Target = target
	c.Rate = maxRate
	c.Duration = 0
	c.MaxRequests = maxRequests
	c.Concurrency = 8
	c.ReportInterval = 0
	c.Seed = 42
	return c
}

func runGen(t *testing.T, cfg Config, opts ...Option) (Summary, error) {
	t.Helper()
	g, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return g.Run(ctx)
}

func TestRunAgainstFakeGateway(t *testing.T) {
	gw := loadgentest.New(t)
	var mu sync.Mutex
	results := map[string]Result{}
	s, err := runGen(t, testConfig(gw.URL, 2000), WithObserver(func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := results[r.RequestID]; dup {
			t.Errorf("request ID %s reported twice", r.RequestID)
		}
		results[r.RequestID] = r
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 2000 || s.Succeeded+s.ExpectedFailures+s.UnexpectedFailures != s.Requests {
		t.Errorf("requests %d = %d + %d + %d, want 2000", s.Requests, s.Succeeded, s.ExpectedFailures, s.UnexpectedFailures)
	}
	if s.UnexpectedFailures != 0 {
		t.Errorf("%d unexpected failures: %+v", s.UnexpectedFailures, s.FailedRequests)
	}
	if s.ExpectedFailures == 0 || s.ByCode["UNAUTHENTICATED"] == 0 || s.ByCode["NOT_FOUND"] == 0 {
		t.Errorf("want deliberate 401s and 404s, got by_code %v", s.ByCode)
	}
	if n := gw.RefreshReuses(); n != 0 {
		t.Errorf("%d refreshes presented a rotated token", n)
	}
	for _, op := range []Op{OpSignUp, OpLogin, OpRefresh, OpGet, OpList, OpDelete, OpBadToken, OpExpiredToken, OpNotFound, OpWrongPassword} {
		if s.ByOp[string(op)] == 0 {
			t.Errorf("no %s requests: %v", op, s.ByOp)
		}
	}
	var statuses int64
	for _, n := range s.ByStatus {
		statuses += n
	}
	if statuses != s.Requests {
		t.Errorf("by_status adds up to %d, want %d", statuses, s.Requests)
	}

	// Every request the gateway saw carried a fresh, valid request ID,
	// reported with the same route and status.
	seen := gw.Requests()
	if len(seen) != 2000 || len(results) != 2000 {
		t.Fatalf("gateway saw %d requests, %d results reported, want 2000", len(seen), len(results))
	}
	for _, req := range seen {
		res, ok := results[req.RequestID]
		switch {
		case !requestid.Valid(req.RequestID):
			t.Errorf("invalid request ID %q", req.RequestID)
		case !ok:
			t.Errorf("request %s not reported", req.RequestID)
		case res.Route != req.Route || res.Status != req.Status || res.Code != req.Code:
			t.Errorf("request %s reported as %s %d %s, gateway answered %s %d %s", req.RequestID, res.Route, res.Status, res.Code, req.Route, req.Status, req.Code)
		}
	}
	if len(s.FailedRequests) != maxFailedIDs {
		t.Fatalf("want %d failed request IDs, got %+v", maxFailedIDs, s.FailedRequests)
	}
	for _, f := range s.FailedRequests {
		res := results[f.ID]
		if !f.Expected || res.Outcome != ExpectedFailure || res.Status != f.Status || res.Code != f.Code || res.Route != f.Route {
			t.Errorf("failed request %+v does not match its result %+v", f, res)
		}
	}
}

func TestMixWeightsAreRespected(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 4000)
	cfg.Mix = Mix{SignUp: 20, Login: 10, Refresh: 10, Get: 30, List: 10, Delete: 5, Fault: 15}
	s, err := runGen(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Ops that stand in for another early in a run or when no user fits
	// are counted with it: logouts with logins, faults together.
	groups := map[string][]Op{
		"signup": {OpSignUp}, "login": {OpLogin, OpLogout}, "refresh": {OpRefresh}, "get": {OpGet},
		"list": {OpList}, "delete": {OpDelete}, "fault": {OpBadToken, OpExpiredToken, OpNotFound, OpWrongPassword},
	}
	want := map[string]int{"signup": 20, "login": 10, "refresh": 10, "get": 30, "list": 10, "delete": 5, "fault": 15}
	for name, ops := range groups {
		var n int64
		for _, op := range ops {
			n += s.ByOp[string(op)]
		}
		got := float64(n) / float64(s.Requests) * 100
		// Binomial standard deviation at 4000 draws is under 0.8 points;
		// 3 points leave room for the substitutions early in the run.
		if d := got - float64(want[name]); d < -3 || d > 3 {
			t.Errorf("%s: %.1f%% of requests, want %d%% ± 3 (by_op %v)", name, got, want[name], s.ByOp)
		}
	}
	if s.UnexpectedFailures != 0 {
		t.Errorf("%d unexpected failures: %+v", s.UnexpectedFailures, s.FailedRequests)
	}
}

func TestRefreshAlwaysPresentsTheNewestToken(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 600)
	// Only refreshes: the first requests sign up and log in users (no
	// user to refresh yet), the rest rotate their tokens over and over.
	cfg.Mix = Mix{Refresh: 1}
	cfg.Users = 20
	s, err := runGen(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := gw.RefreshReuses(); n != 0 {
		t.Errorf("%d refreshes presented a rotated token", n)
	}
	if s.ByOp[string(OpRefresh)] < 500 || s.UnexpectedFailures != 0 {
		t.Errorf("want over 500 refreshes and no failures, got by_op %v, %d unexpected failures", s.ByOp, s.UnexpectedFailures)
	}
}

func TestScheduleFollowsRate(t *testing.T) {
	for _, tc := range []struct {
		rate     float64
		duration time.Duration
		want     int64
	}{
		{rate: 50, duration: 10 * time.Second, want: 500},
		{rate: 3.5, duration: 2 * time.Second, want: 7},
		{rate: 0.5, duration: 10 * time.Second, want: 5},
		{rate: 1000, duration: 1500 * time.Millisecond, want: 1500},
	} {
		gw := loadgentest.New(t)
		cfg := testConfig(gw.URL, 0)
		cfg.Rate, cfg.Duration = tc.rate, tc.duration
		clock := newFakeClock()
		s, err := runGen(t, cfg, WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		// Requests due while all slots are busy are dropped, so the
		// schedule, not the fake's speed, fixes the sum.
		if got := s.Requests + s.Dropped; got != tc.want {
			t.Errorf("rate %g for %s: %d sent + %d dropped, want %d", tc.rate, tc.duration, s.Requests, s.Dropped, tc.want)
		}
		if int64(len(gw.Requests())) != s.Requests {
			t.Errorf("rate %g: gateway saw %d requests, summary says %d", tc.rate, len(gw.Requests()), s.Requests)
		}
		if s.DurationSeconds != tc.duration.Seconds() {
			t.Errorf("rate %g: duration %gs, want %s", tc.rate, s.DurationSeconds, tc.duration)
		}
	}
}

func TestMaxRequestsStopsTheRun(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 37)
	cfg.Rate = 10
	s, err := runGen(t, cfg, WithClock(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 37 || len(gw.Requests()) != 37 {
		t.Errorf("sent %d, gateway saw %d, want 37", s.Requests, len(gw.Requests()))
	}
}

func TestProgressLines(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 0)
	cfg.Rate, cfg.Duration, cfg.ReportInterval = 5, 10*time.Second, 2*time.Second
	var out bytes.Buffer
	if _, err := runGen(t, cfg, WithClock(newFakeClock()), WithProgress(&out)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a line at 2s, 4s, 6s and 8s, got %q", lines)
	}
	for i, l := range lines {
		for _, part := range []string{"loadgen: " + []string{"2s", "4s", "6s", "8s"}[i] + " elapsed", "sent", "unexpected failures", "p50", "p99"} {
			if !strings.Contains(l, part) {
				t.Errorf("line %q lacks %q", l, part)
			}
		}
	}
}

func TestCancelStopsTheRunAndSummarizes(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 0)
	cfg.Rate = 500
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n atomic.Int64
	g, err := New(cfg, WithObserver(func(Result) {
		if n.Add(1) == 20 {
			cancel()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests < 20 || s.Requests != int64(len(gw.Requests())) {
		t.Errorf("summary counts %d requests, gateway saw %d, want at least 20 and equal", s.Requests, len(gw.Requests()))
	}
}

func TestUnreachableTarget(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	var out bytes.Buffer
	s, err := runGen(t, testConfig("http://"+addr, 3), WithProgress(&out))
	// The user hears at once that nothing answers, once.
	if n := strings.Count(out.String(), "loadgen: no answer from http://"+addr+" yet"); n != 1 {
		t.Errorf("progress says %d times that nothing answers, want once:\n%s", n, out.String())
	}
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("want ErrNoResponse, got %v", err)
	}
	if s.Requests != 3 || s.TransportErrors != 3 || s.UnexpectedFailures != 3 || len(s.ByStatus) != 0 {
		t.Errorf("summary %+v", s)
	}
	for _, f := range s.FailedRequests {
		if f.Status != 0 || f.Code != CodeNoResponse || !requestid.Valid(f.ID) || f.Expected {
			t.Errorf("failed request %+v", f)
		}
	}
}

func TestTimeoutIsReported(t *testing.T) {
	release := make(chan struct{})
	gw := loadgentest.New(t, loadgentest.WithHandlerHook(func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release) }) // before the server closes
	cfg := testConfig(gw.URL, 2)
	cfg.Timeout = 50 * time.Millisecond
	s, err := runGen(t, cfg)
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("want ErrNoResponse, got %v", err)
	}
	if s.TransportErrors != 2 || len(s.FailedRequests) != 2 || s.FailedRequests[0].Code != CodeTimeout {
		t.Errorf("summary %+v", s)
	}
}

func TestErrorAnswersAreCountedNotFatal(t *testing.T) {
	srv := newStaticServer(t, http.StatusInternalServerError, `{"error":{"code":"INTERNAL","message":"internal error","request_id":"x"}}`)
	s, err := runGen(t, testConfig(srv, 50))
	if err != nil {
		t.Fatalf("error answers must not fail the run: %v", err)
	}
	if s.UnexpectedFailures != 50 || s.ByStatus["500"] != 50 || s.ByCode["INTERNAL"] != 50 || s.TransportErrors != 0 {
		t.Errorf("summary %+v", s)
	}
	if len(s.FailedRequests) != maxFailedIDs || s.FailedRequests[0].Expected || s.FailedRequests[0].Status != 500 {
		t.Errorf("failed requests %+v", s.FailedRequests)
	}
}

func TestFaultAnsweredWithSuccessIsUnexpected(t *testing.T) {
	srv := newStaticServer(t, http.StatusOK, `{}`)
	cfg := testConfig(srv, 40)
	cfg.Mix = Mix{Fault: 1}
	s, err := runGen(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.UnexpectedFailures != 40 || s.ExpectedFailures != 0 {
		t.Errorf("a fault answered 200 must be unexpected: %+v", s)
	}
}

// newStaticServer answers every request with status and body.
func newStaticServer(t *testing.T, status int, body string) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + lis.Addr().String()
}

func TestSummaryJSONShape(t *testing.T) {
	gw := loadgentest.New(t)
	s, err := runGen(t, testConfig(gw.URL, 300))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"run_id", "target", "seed", "duration_s", "requests", "rate", "target_rate", "succeeded",
		"expected_failures", "unexpected_failures", "transport_errors", "dropped", "by_status", "by_code", "by_op", "latency_ms", "failed_request_ids"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q in %s", k, buf.String())
		}
	}
	lat, _ := doc["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("latency_ms has no number %q: %v", k, lat)
		}
	}
	if p50, mx := lat["p50"].(float64), lat["max"].(float64); p50 <= 0 || p50 > mx {
		t.Errorf("p50 %g, max %g", p50, mx)
	}
	failed, _ := doc["failed_request_ids"].([]any)
	if len(failed) == 0 {
		t.Fatal("no failed_request_ids")
	}
	for _, f := range failed {
		m, _ := f.(map[string]any)
		if id, _ := m["id"].(string); !requestid.Valid(id) {
			t.Errorf("id %v", m["id"])
		}
		for _, k := range []string{"status", "code", "route"} {
			if _, ok := m[k]; !ok {
				t.Errorf("failed request lacks %q: %v", k, m)
			}
		}
	}
	if doc["requests"].(float64) != 300 {
		t.Errorf("requests %v", doc["requests"])
	}
}

func TestNothingSecretIsWritten(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 1000)
	cfg.ReportInterval = time.Millisecond
	var out bytes.Buffer
	s, err := runGen(t, cfg, WithProgress(&out))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	secrets := gw.Secrets()
	if len(secrets) == 0 {
		t.Fatal("no passwords or tokens seen: the run did too little to tell")
	}
	for _, sec := range secrets {
		if strings.Contains(out.String(), sec) {
			t.Fatalf("a password or token was written:\n%s", out.String())
		}
	}
}

func TestSignUpsAreUniqueAcrossRuns(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 100)
	cfg.Mix = Mix{SignUp: 1}
	// Same seed twice: the run ID, not the seed, keeps usernames apart.
	for range 2 {
		s, err := runGen(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s.Succeeded != 100 {
			t.Fatalf("want 100 sign-ups, got %+v", s)
		}
	}
	if gw.Accounts() != 200 {
		t.Errorf("want 200 accounts, got %d", gw.Accounts())
	}
}

func TestPoolStaysBounded(t *testing.T) {
	gw := loadgentest.New(t)
	cfg := testConfig(gw.URL, 500)
	cfg.Mix = Mix{SignUp: 5, Login: 5}
	cfg.Users = 10
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := g.newRun()
	r.schedule(context.Background())
	r.wg.Wait()
	if n := r.users.len(); n != 10 {
		t.Errorf("pool holds %d users, want 10", n)
	}
	if len(r.users.idle) != 10 {
		t.Errorf("%d idle users after the run, want all 10", len(r.users.idle))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rate = 0
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "--rate (GOLDEN_RATE)") {
		t.Errorf("want an error naming --rate, got %v", err)
	}
}

func TestFailedRequestsListUnexpectedFirst(t *testing.T) {
	rec := newRecorder(10)
	for i := range 3 {
		rec.record(Result{Op: OpBadToken, RequestID: "expected-" + string(rune('a'+i)), Status: 401, Code: "UNAUTHENTICATED", Outcome: ExpectedFailure, Route: "GET /v1/users/{id}"})
	}
	for i := range 4 {
		rec.record(Result{Op: OpGet, RequestID: "unexpected-" + string(rune('a'+i)), Status: 503, Code: "UNAVAILABLE", Outcome: UnexpectedFailure, Route: "GET /v1/users/{id}"})
	}
	r := &run{Generator: &Generator{cfg: DefaultConfig()}}
	s := rec.summary(r)
	var ids []string
	for _, f := range s.FailedRequests {
		ids = append(ids, f.ID)
	}
	want := []string{"unexpected-a", "unexpected-b", "unexpected-c", "unexpected-d", "expected-a"}
	if !slices.Equal(ids, want) {
		t.Errorf("failed request IDs %v, want %v", ids, want)
	}
	if s.ExpectedFailures != 3 || s.UnexpectedFailures != 4 || s.ByStatus["401"] != 3 || s.ByCode["UNAVAILABLE"] != 4 {
		t.Errorf("summary %+v", s)
	}
}
