package canaryguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/golden-stack/golden/internal/canaryguard"
)

const secret = "9f2c6b1e-guard-secret-d41d8cd98f00b204"

// call is one call of a fakeRollback.
type call struct {
	service, reason string
}

// fakeRollback records its calls; services in stable are already at
// weight 0, services in fail fail.
type fakeRollback struct {
	mu     sync.Mutex
	calls  []call
	stable map[string]bool
	fail   map[string]bool
}

func (f *fakeRollback) rollback(ctx context.Context, service, reason string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{service, reason})
	if f.fail[service] {
		return false, errors.New("consul: connection refused")
	}
	return !f.stable[service], nil
}

func (f *fakeRollback) services() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, c := range f.calls {
		s = append(s, c.service)
	}
	return s
}

// testAlert is an alert of a notification, as Alertmanager encodes it.
type testAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    string            `json:"startsAt"`
	EndsAt      string            `json:"endsAt"`
}

// firing returns a firing guarded alert for service.
func firing(service string) testAlert {
	return testAlert{
		Status:      "firing",
		Labels:      map[string]string{"alertname": canaryguard.DefaultAlertName, "service": service, "signal": "errors", "severity": "page"},
		Annotations: map[string]string{"summary": service + " canary fails more than stable"},
		StartsAt:    "2030-01-02T15:04:05.123Z",
		EndsAt:      "0001-01-01T00:00:00Z",
	}
}

// notify returns a notification (version 4) of alerts, with the fields
// Alertmanager sends that the handler does not read.
func notify(alerts ...testAlert) string {
	if alerts == nil {
		alerts = []testAlert{}
	}
	b, err := json.Marshal(map[string]any{
		"version":           "4",
		"groupKey":          `{}:{alertname="GoldenCanaryWorseThanStable"}`,
		"truncatedAlerts":   0,
		"status":            "firing",
		"receiver":          "canary-guard",
		"groupLabels":       map[string]string{"alertname": canaryguard.DefaultAlertName},
		"commonLabels":      map[string]string{},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager:9093",
		"alerts":            alerts,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// with returns a copy of a with f applied.
func with(a testAlert, f func(*testAlert)) testAlert {
	a.Labels = cloneMap(a.Labels)
	a.Annotations = cloneMap(a.Annotations)
	f(&a)
	return a
}

func cloneMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// guard is a handler under test with what it reports to.
type guard struct {
	h    http.Handler
	rb   *fakeRollback
	reg  *prometheus.Registry
	logs *logtest.Hook
}

func newGuard(t *testing.T, rb *fakeRollback, opts ...canaryguard.Option) *guard {
	t.Helper()
	if rb == nil {
		rb = &fakeRollback{}
	}
	logger, hook := logtest.NewNullLogger()
	reg := prometheus.NewRegistry()
	opts = append([]canaryguard.Option{canaryguard.WithLogger(logger), canaryguard.WithRegisterer(reg)}, opts...)
	h, err := canaryguard.NewHandler(secret, rb.rollback, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &guard{h: h, rb: rb, reg: reg, logs: hook}
}

// request is a request to the handler; auth "" sends no Authorization.
type request struct {
	method string
	auth   string
	body   string
	// chunked hides the body's length, as a streaming sender would.
	chunked bool
}

func (g *guard) do(r request) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodPost
	}
	var body io.Reader = strings.NewReader(r.body)
	if r.chunked {
		body = io.MultiReader(body)
	}
	req := httptest.NewRequest(r.method, "/alerts", body)
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	g.h.ServeHTTP(w, req)
	return w
}

// results returns golden_canary_guard_notifications_total by result.
func (g *guard) results(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "golden_canary_guard_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return got
}

func TestHandler(t *testing.T) {
	const bearer = "Bearer " + secret
	big := notify(with(firing("user"), func(a *testAlert) {
		a.Annotations["description"] = strings.Repeat("x", canaryguard.MaxBodyBytes)
	}))
	for _, c := range []struct {
		name    string
		req     request
		stable  []string
		fail    []string
		opts    []canaryguard.Option
		code    int
		header  [2]string // a header the answer must have, and its value
		calls   []string
		results map[string]float64 // the results that are not 0
	}{
		{
			name:    "GET",
			req:     request{method: http.MethodGet, auth: bearer},
			code:    http.StatusMethodNotAllowed,
			header:  [2]string{"Allow", "POST"},
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "no Authorization",
			req:     request{body: notify(firing("user"))},
			code:    http.StatusUnauthorized,
			header:  [2]string{"WWW-Authenticate", "Bearer"},
			results: map[string]float64{"unauthorized": 1},
		},
		{
			name:    "Basic scheme",
			req:     request{auth: "Basic " + secret, body: notify(firing("user"))},
			code:    http.StatusUnauthorized,
			header:  [2]string{"WWW-Authenticate", "Bearer"},
			results: map[string]float64{"unauthorized": 1},
		},
		{
			name:    "secret without scheme",
			req:     request{auth: secret, body: notify(firing("user"))},
			code:    http.StatusUnauthorized,
			results: map[string]float64{"unauthorized": 1},
		},
		{
			name:    "wrong secret",
			req:     request{auth: "Bearer not-the-secret", body: notify(firing("user"))},
			code:    http.StatusUnauthorized,
			header:  [2]string{"WWW-Authenticate", "Bearer"},
			results: map[string]float64{"unauthorized": 1},
		},
		{
			name:    "prefix of the secret",
			req:     request{auth: bearer[:len(bearer)-1], body: notify(firing("user"))},
			code:    http.StatusUnauthorized,
			results: map[string]float64{"unauthorized": 1},
		},
		{
			name:    "secret and more",
			req:     request{auth: bearer + " x", body: notify(firing("user"))},
			code:    http.StatusUnauthorized,
			results: map[string]float64{"unauthorized": 1},
		},
		{
			name:    "empty Bearer",
			req:     request{auth: "Bearer ", body: notify(firing("user"))},
			code:    http.StatusUnauthorized,
			results: map[string]float64{"unauthorized": 1},
		},
		{
			name:    "not JSON",
			req:     request{auth: bearer, body: "alertname=GoldenCanaryWorseThanStable"},
			code:    http.StatusBadRequest,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "empty body",
			req:     request{auth: bearer},
			code:    http.StatusBadRequest,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "data after the notification",
			req:     request{auth: bearer, body: notify(firing("user")) + "{}"},
			code:    http.StatusBadRequest,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "labels of the wrong type",
			req:     request{auth: bearer, body: `{"version":"4","alerts":[{"status":"firing","labels":["user"]}]}`},
			code:    http.StatusBadRequest,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "version 3",
			req:     request{auth: bearer, body: strings.Replace(notify(firing("user")), `"version":"4"`, `"version":"3"`, 1)},
			code:    http.StatusBadRequest,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "version as a number",
			req:     request{auth: bearer, body: strings.Replace(notify(firing("user")), `"version":"4"`, `"version":4`, 1)},
			code:    http.StatusBadRequest,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "no version",
			req:     request{auth: bearer, body: `{"alerts":[]}`},
			code:    http.StatusBadRequest,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "body too large",
			req:     request{auth: bearer, body: big},
			code:    http.StatusRequestEntityTooLarge,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "body too large, length unknown",
			req:     request{auth: bearer, body: big, chunked: true},
			code:    http.StatusRequestEntityTooLarge,
			results: map[string]float64{"bad_request": 1},
		},
		{
			name:    "firing",
			req:     request{auth: bearer, body: notify(firing("user"))},
			code:    http.StatusOK,
			calls:   []string{"user"},
			results: map[string]float64{"rolled_back": 1},
		},
		{
			name:    "scheme in lower case",
			req:     request{auth: "bearer " + secret, body: notify(firing("user"))},
			code:    http.StatusOK,
			calls:   []string{"user"},
			results: map[string]float64{"rolled_back": 1},
		},
		{
			name: "two alerts of one service",
			req: request{auth: bearer, body: notify(firing("user"), with(firing("user"), func(a *testAlert) {
				a.Labels["signal"] = "latency"
			}))},
			code:    http.StatusOK,
			calls:   []string{"user"},
			results: map[string]float64{"rolled_back": 1},
		},
		{
			name:    "two services",
			req:     request{auth: bearer, body: notify(firing("user"), firing("auth"), firing("user"))},
			code:    http.StatusOK,
			calls:   []string{"user", "auth"},
			results: map[string]float64{"rolled_back": 2},
		},
		{
			name:    "resolved",
			req:     request{auth: bearer, body: notify(with(firing("user"), func(a *testAlert) { a.Status = "resolved" }))},
			code:    http.StatusOK,
			results: map[string]float64{"ignored": 1},
		},
		{
			name: "other alert name",
			req: request{auth: bearer, body: notify(with(firing("user"), func(a *testAlert) {
				a.Labels["alertname"] = "GoldenErrorBudgetBurn"
			}))},
			code:    http.StatusOK,
			results: map[string]float64{"ignored": 1},
		},
		{
			name: "invalid service labels",
			req: request{auth: bearer, body: notify(
				firing("User"),
				firing(""),
				firing("user/../auth"),
				firing("user\n"),
				firing(strings.Repeat("a", 64)),
				with(firing("user"), func(a *testAlert) { delete(a.Labels, "service") }),
				firing("gateway"),
			)},
			code:    http.StatusOK,
			calls:   []string{"gateway"},
			results: map[string]float64{"ignored": 6, "rolled_back": 1},
		},
		{
			name:    "no alerts",
			req:     request{auth: bearer, body: notify()},
			code:    http.StatusOK,
			results: map[string]float64{},
		},
		{
			name:    "already stable",
			req:     request{auth: bearer, body: notify(firing("user"))},
			stable:  []string{"user"},
			code:    http.StatusOK,
			calls:   []string{"user"},
			results: map[string]float64{"already_stable": 1},
		},
		{
			name:    "rollback fails",
			req:     request{auth: bearer, body: notify(firing("user"))},
			fail:    []string{"user"},
			code:    http.StatusServiceUnavailable,
			calls:   []string{"user"},
			results: map[string]float64{"failed": 1},
		},
		{
			name:    "one of two rollbacks fails",
			req:     request{auth: bearer, body: notify(firing("user"), firing("auth"))},
			fail:    []string{"user"},
			code:    http.StatusServiceUnavailable,
			calls:   []string{"user", "auth"},
			results: map[string]float64{"failed": 1, "rolled_back": 1},
		},
		{
			name: "other alert names",
			req: request{auth: bearer, body: notify(firing("user"), with(firing("auth"), func(a *testAlert) {
				a.Labels["alertname"] = "CanaryLatencyRegression"
			}))},
			opts:    []canaryguard.Option{canaryguard.WithAlertNames("CanaryLatencyRegression")},
			code:    http.StatusOK,
			calls:   []string{"auth"},
			results: map[string]float64{"ignored": 1, "rolled_back": 1},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			rb := &fakeRollback{stable: map[string]bool{}, fail: map[string]bool{}}
			for _, s := range c.stable {
				rb.stable[s] = true
			}
			for _, s := range c.fail {
				rb.fail[s] = true
			}
			g := newGuard(t, rb, c.opts...)
			w := g.do(c.req)
			if w.Code != c.code {
				t.Errorf("status %d, want %d (%q)", w.Code, c.code, w.Body.String())
			}
			if w.Code != http.StatusOK && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", w.Header().Get("Content-Type"))
			}
			if len(w.Body.String()) > 200 {
				t.Errorf("answer of %d bytes; want a short message", w.Body.Len())
			}
			if c.header[0] != "" && w.Header().Get(c.header[0]) != c.header[1] {
				t.Errorf("%s: %q, want %q", c.header[0], w.Header().Get(c.header[0]), c.header[1])
			}
			if got := g.rb.services(); strings.Join(got, ",") != strings.Join(c.calls, ",") {
				t.Errorf("rollback called for %q, want %q", got, c.calls)
			}
			got := g.results(t)
			if len(got) != 6 {
				t.Errorf("%d result series, want all 6 from the start: %v", len(got), got)
			}
			for result, v := range got {
				if v != c.results[result] {
					t.Errorf("notifications_total{result=%q} = %v, want %v", result, v, c.results[result])
				}
			}
		})
	}
}

func TestReason(t *testing.T) {
	g := newGuard(t, nil)
	long := with(firing("auth"), func(a *testAlert) {
		a.Annotations["summary"] = "auth canary: " + strings.Repeat("slow ", 200)
	})
	dirty := with(firing("gateway"), func(a *testAlert) {
		a.Labels["signal"] = "errors\x1b[31m"
		a.Annotations["summary"] = "gateway canary\r\nfails\tmore\x00 than stable"
	})
	bare := with(firing("order"), func(a *testAlert) {
		delete(a.Labels, "signal")
		delete(a.Annotations, "summary")
		a.StartsAt = "0001-01-01T00:00:00Z"
	})
	if w := g.do(request{auth: "Bearer " + secret, body: notify(firing("user"), long, dirty, bare)}); w.Code != http.StatusOK {
		t.Fatalf("status %d %q", w.Code, w.Body.String())
	}
	want := map[string]string{
		"user":    "GoldenCanaryWorseThanStable (signal=errors) fired at 2030-01-02T15:04:05Z: user canary fails more than stable",
		"gateway": "GoldenCanaryWorseThanStable (signal=errors [31m) fired at 2030-01-02T15:04:05Z: gateway canary fails more than stable",
		"order":   "GoldenCanaryWorseThanStable fired: no summary",
	}
	for _, c := range g.rb.calls {
		if len(c.reason) > canaryguard.MaxReasonBytes+len("...") {
			t.Errorf("%s: reason of %d bytes, want at most about %d", c.service, len(c.reason), canaryguard.MaxReasonBytes)
		}
		if strings.ContainsFunc(c.reason, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("%s: reason %q has control characters", c.service, c.reason)
		}
		if w, ok := want[c.service]; ok && c.reason != w {
			t.Errorf("%s: reason\n%q, want\n%q", c.service, c.reason, w)
		}
		if c.service == "auth" && (!strings.Contains(c.reason, ": auth canary: slow slow") || !strings.HasSuffix(c.reason, "...")) {
			t.Errorf("auth: reason %q, want the summary cut with ...", c.reason)
		}
	}
	if len(g.rb.calls) != 4 {
		t.Errorf("%d calls, want 4", len(g.rb.calls))
	}
}

func TestRollbackContext(t *testing.T) {
	var (
		deadline time.Time
		ok       bool
		ctxErr   error
	)
	rb := func(ctx context.Context, service, reason string) (bool, error) {
		deadline, ok = ctx.Deadline()
		ctxErr = ctx.Err()
		return true, nil
	}
	logger, _ := logtest.NewNullLogger()
	h, err := canaryguard.NewHandler(secret, rb, canaryguard.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	// Alertmanager has hung up already: the rollback still runs, bounded.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/alerts", strings.NewReader(notify(firing("user"))))
	req.Header.Set("Authorization", "Bearer "+secret)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !ok || time.Until(deadline) > canaryguard.RollbackTimeout || time.Until(deadline) <= 0 {
		t.Errorf("rollback context deadline %v (set %v), want within %v", deadline, ok, canaryguard.RollbackTimeout)
	}
	if ctxErr != nil {
		t.Errorf("rollback context ended: %v", ctxErr)
	}
}

// TestLogs checks what is logged: one line per rollback or failure with the
// alert's details, and never what a caller presented as credentials.
func TestLogs(t *testing.T) {
	g := newGuard(t, &fakeRollback{fail: map[string]bool{"auth": true}})
	const wrong = "guess-0123456789"
	g.do(request{auth: "Bearer " + wrong, body: notify(firing("user"))})
	g.do(request{auth: "Basic " + wrong, body: notify(firing("user"))})
	g.do(request{auth: "Bearer " + secret, body: "{"})
	g.do(request{auth: "Bearer " + secret, body: notify(firing("user"), firing("auth"))})

	var rolled, failed int
	for _, e := range g.logs.AllEntries() {
		line, err := e.String()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, wrong) || strings.Contains(line, secret) {
			t.Errorf("log line holds a credential: %s", line)
		}
		switch {
		case e.Level == logrus.InfoLevel && e.Data["service"] == "user":
			rolled++
			if e.Data["alertname"] != canaryguard.DefaultAlertName || e.Data["signal"] != "errors" ||
				!strings.Contains(e.Data["reason"].(string), "user canary fails more than stable") {
				t.Errorf("rollback logged as %s", line)
			}
		case e.Level == logrus.WarnLevel && e.Data["service"] == "auth":
			failed++
			if e.Data[logrus.ErrorKey] == nil {
				t.Errorf("failure logged without its error: %s", line)
			}
		}
	}
	if rolled != 1 || failed != 1 {
		t.Errorf("%d rollback and %d failure lines, want 1 and 1", rolled, failed)
	}
	if n := len(g.logs.AllEntries()); n != 5 {
		t.Errorf("%d log lines, want 5 (2 refused, 1 bad, 1 rollback, 1 failure)", n)
	}
}

// TestMetrics follows the metrics through notifications that Alertmanager
// repeats: a rollback is counted once, its repeats as already stable.
func TestMetrics(t *testing.T) {
	weights := map[string]int{"user": 10, "auth": 5}
	var mu sync.Mutex
	rb := func(_ context.Context, service, _ string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if weights[service] == 0 {
			return false, nil
		}
		weights[service] = 0
		return true, nil
	}
	logger, _ := logtest.NewNullLogger()
	reg := prometheus.NewRegistry()
	h, err := canaryguard.NewHandler(secret, rb, canaryguard.WithLogger(logger), canaryguard.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	g := &guard{h: h, reg: reg}

	if diff := compareSeries(t, reg, `
golden_canary_guard_notifications_total{result="already_stable"} 0
golden_canary_guard_notifications_total{result="bad_request"} 0
golden_canary_guard_notifications_total{result="failed"} 0
golden_canary_guard_notifications_total{result="ignored"} 0
golden_canary_guard_notifications_total{result="rolled_back"} 0
golden_canary_guard_notifications_total{result="unauthorized"} 0
`); diff != "" {
		t.Errorf("before any notification:\n%s", diff)
	}

	body := notify(firing("user"), firing("auth"), with(firing("user"), func(a *testAlert) { a.Status = "resolved" }))
	for range 3 {
		if w := g.do(request{auth: "Bearer " + secret, body: body}); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	}
	g.do(request{auth: "Bearer wrong", body: body})
	if diff := compareSeries(t, reg, `
golden_canary_guard_notifications_total{result="already_stable"} 4
golden_canary_guard_notifications_total{result="bad_request"} 0
golden_canary_guard_notifications_total{result="failed"} 0
golden_canary_guard_notifications_total{result="ignored"} 3
golden_canary_guard_notifications_total{result="rolled_back"} 2
golden_canary_guard_notifications_total{result="unauthorized"} 1
golden_canary_guard_rollbacks_total{alertname="GoldenCanaryWorseThanStable",service="auth"} 1
golden_canary_guard_rollbacks_total{alertname="GoldenCanaryWorseThanStable",service="user"} 1
`); diff != "" {
		t.Errorf("after three notifications and a refused one:\n%s", diff)
	}
}

// compareSeries gathers reg and returns how its series differ from want,
// one `name{label="value",...} value` a line as in the exposition format,
// or "" when they are the same. (prometheus/testutil would need a module
// of its own.)
func compareSeries(t *testing.T, reg *prometheus.Registry, want string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			got = append(got, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue()))
		}
	}
	var wantLines []string
	for line := range strings.Lines(want) {
		if line = strings.TrimSpace(line); line != "" {
			wantLines = append(wantLines, line)
		}
	}
	if strings.Join(got, "\n") == strings.Join(wantLines, "\n") {
		return ""
	}
	return "got:\n" + strings.Join(got, "\n") + "\nwant:\n" + strings.Join(wantLines, "\n")
}

func TestNewHandlerErrors(t *testing.T) {
	rb := (&fakeRollback{}).rollback
	reg := prometheus.NewRegistry()
	if _, err := canaryguard.NewHandler(secret, rb, canaryguard.WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		secret string
		rb     canaryguard.Rollback
		opts   []canaryguard.Option
	}{
		{"empty secret", "", rb, nil},
		{"secret with a space", "two words", rb, nil},
		{"secret with a newline", secret + "\n", rb, nil},
		{"secret not ASCII", "sécret", rb, nil},
		{"secret too long", strings.Repeat("s", 4097), rb, nil},
		{"no rollback", secret, nil, nil},
		{"no alert names", secret, rb, []canaryguard.Option{canaryguard.WithAlertNames()}},
		{"empty alert name", secret, rb, []canaryguard.Option{canaryguard.WithAlertNames(canaryguard.DefaultAlertName, "")}},
		{"metrics registered already", secret, rb, []canaryguard.Option{canaryguard.WithRegisterer(reg)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := canaryguard.NewHandler(c.secret, c.rb, c.opts...)
			if err == nil || h != nil {
				t.Fatalf("NewHandler = %v, %v; want an error", h, err)
			}
			if c.secret != secret && c.secret != "" && strings.Contains(err.Error(), c.secret) {
				t.Errorf("error holds the secret: %v", err)
			}
		})
	}
	// Nil options change nothing.
	if _, err := canaryguard.NewHandler(secret, rb, nil, canaryguard.WithLogger(nil), canaryguard.WithRegisterer(nil)); err != nil {
		t.Errorf("nil options: %v", err)
	}
}
