package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/golden-stack/golden/internal/graylog/graylogtest"
	"github.com/golden-stack/golden/internal/lookup/lookuptest"
)

const (
	lookupRequestID = "req-7d3e9b21"
	lookupTraceID   = "0af7651916cd43dd8448eb211c80319c"
)

type lookupStack struct {
	graylog *graylogtest.Server
	jaeger  *lookuptest.Jaeger
}

// newLookupStack starts a fake Graylog holding three log lines of
// lookupRequestID and a fake Jaeger holding its trace, the lines falling
// between the spans.
func newLookupStack(t *testing.T) *lookupStack {
	t.Helper()
	s := &lookupStack{graylog: graylogtest.New(t, graylogtest.WithBasicAuth("admin", testPassword)), jaeger: lookuptest.NewJaeger(t)}
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	ts := func(ms int) string {
		return start.Add(time.Duration(ms) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	}
	for _, m := range []map[string]any{
		{"timestamp": ts(3), "service": "user", "message": "finished unary call", "level": 4, "grpc_service": "golden.user.v1.UserService", "grpc_method": "GetUser", "grpc_code": "NotFound", "duration_ms": 3.1},
		{"timestamp": ts(0), "service": "gateway", "message": "request received", "level": 6},
		{"timestamp": ts(12), "service": "gateway", "message": "finished HTTP request", "level": 4, "http_method": "GET", "http_route": "GET /v1/users/{id}", "http_status": 404, "duration_ms": 12.2},
	} {
		m["request_id"], m["trace_id"], m["source"] = lookupRequestID, lookupTraceID, "host-1"
		s.graylog.AddMessage(m)
	}
	s.jaeger.AddTrace(t, lookuptest.SampleTrace(lookupTraceID, lookupRequestID, start))
	return s
}

func (s *lookupStack) args(extra ...string) []string {
	return append([]string{"--graylog-url", s.graylog.URL, "--graylog-password", testPassword,
		"--jaeger-addr", s.jaeger.Addr, "--jaeger-url", lookupJaegerUI, "--timeout", "5s"}, extra...)
}

// lookupJaegerUI is the Jaeger web interface the links point at.
const lookupJaegerUI = "http://jaeger.test:16686"

func TestLookupText(t *testing.T) {
	s := newLookupStack(t)
	out, stderr, err := execute(t, newLookupCmd(), s.args(lookupRequestID, "--jaeger-url", "https://jaeger.example.com")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "request "+lookupRequestID+": 3 log lines and 3 spans in 1 trace (last 24h0m0s)" {
		t.Errorf("summary %q", lines[0])
	}
	// Logs and spans interleaved by time: span, log, span, span, log, log.
	var kinds []string
	for _, l := range lines[3:] {
		f := strings.Fields(l)
		if len(f) < 5 {
			break
		}
		kinds = append(kinds, f[2]+" "+f[3])
	}
	want := []string{"gateway span", "gateway log", "gateway span", "user span", "user log", "gateway log"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("rows %q, want %q\n%s", kinds, want, out)
	}
	for _, w := range []string{
		"error (NotFound)",
		"golden.user.v1.UserService/GetUser: user not found [server]",
		"finished unary call  method=golden.user.v1.UserService/GetUser code=NotFound",
		"finished HTTP request  method=GET /v1/users/{id} status=404",
		"Graylog: " + s.graylog.URL + "/search?q=request_id%3A%22" + lookupRequestID + "%22&rangetype=relative&from=86400",
		"Jaeger:  https://jaeger.example.com/trace/" + lookupTraceID + " (3 spans, 2 with an error)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	assertNoPassword(t, out, stderr)
}

func TestLookupJSON(t *testing.T) {
	s := newLookupStack(t)
	out, _, err := execute(t, newLookupCmd(), s.args(lookupRequestID, "--json", "--range", "2h", "--limit", "50")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var doc struct {
		RequestID    string `json:"request_id"`
		Found        bool   `json:"found"`
		GraylogURL   string `json:"graylog_url"`
		RangeSeconds int    `json:"range_seconds"`
		Logs, Spans  int
		Traces       []struct {
			TraceID   string `json:"trace_id"`
			JaegerURL string `json:"jaeger_url"`
			Found     bool   `json:"found"`
		} `json:"traces"`
		Timeline []struct {
			Time       time.Time `json:"time"`
			Kind       string    `json:"kind"`
			Service    string    `json:"service"`
			Level      string    `json:"level"`
			Status     string    `json:"status"`
			DurationMS float64   `json:"duration_ms"`
			Message    string    `json:"message"`
		} `json:"timeline"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if doc.RequestID != lookupRequestID || !doc.Found || doc.RangeSeconds != 7200 || doc.Logs != 3 || doc.Spans != 3 || len(doc.Errors) != 0 ||
		len(doc.Traces) != 1 || doc.Traces[0].JaegerURL != lookupJaegerUI+"/trace/"+lookupTraceID || !strings.HasSuffix(doc.GraylogURL, "&from=7200") {
		t.Fatalf("document:\n%s", out)
	}
	if len(doc.Timeline) != 6 {
		t.Fatalf("timeline has %d entries:\n%s", len(doc.Timeline), out)
	}
	for i := 1; i < len(doc.Timeline); i++ {
		if doc.Timeline[i].Time.Before(doc.Timeline[i-1].Time) {
			t.Errorf("timeline out of order at %d:\n%s", i, out)
		}
	}
	if e := doc.Timeline[3]; e.Kind != "span" || e.Service != "user" || e.Status != "error" || e.DurationMS != 5 {
		t.Errorf("entry 3 = %+v", e)
	}
	if e := doc.Timeline[4]; e.Kind != "log" || e.Level != "warning" || e.DurationMS != 3.1 {
		t.Errorf("entry 4 = %+v", e)
	}
	r := s.graylog.Requests()[0]
	if r.Query["range"][0] != "7200" || r.Query["limit"][0] != "50" {
		t.Errorf("search query %v", r.Query)
	}
}

func TestLookupNotFound(t *testing.T) {
	s := newLookupStack(t)
	out, stderr, err := execute(t, newLookupCmd(), s.args("req-nobody-knows")...)
	if exitCode(err) != exitNotFound {
		t.Fatalf("exit %d (%v), want %d", exitCode(err), err, exitNotFound)
	}
	if out != "" {
		t.Errorf("text output for nothing found:\n%s", out)
	}
	if !strings.Contains(err.Error(), "no log lines or spans for request req-nobody-knows in the last 24h0m0s") {
		t.Errorf("error %q", err)
	}
	assertNoPassword(t, out, stderr, err.Error())

	out, _, err = execute(t, newLookupCmd(), s.args("req-nobody-knows", "--json")...)
	if exitCode(err) != exitNotFound {
		t.Fatalf("--json: exit %d (%v)", exitCode(err), err)
	}
	var doc struct {
		Found    *bool             `json:"found"`
		Timeline []json.RawMessage `json:"timeline"`
	}
	if json.Unmarshal([]byte(out), &doc) != nil || doc.Found == nil || *doc.Found || doc.Timeline == nil || len(doc.Timeline) != 0 {
		t.Errorf("--json document for nothing found:\n%s", out)
	}
}

func TestLookupBackendErrors(t *testing.T) {
	t.Run("jaeger down", func(t *testing.T) {
		s := newLookupStack(t)
		s.jaeger.Fail(codes.Unavailable)
		out, stderr, err := execute(t, newLookupCmd(), s.args(lookupRequestID)...)
		if exitCode(err) != exitBackend {
			t.Fatalf("exit %d (%v), want %d", exitCode(err), err, exitBackend)
		}
		for _, w := range []string{"jaeger at " + s.jaeger.Addr, "GetTrace: Unavailable: storage unavailable"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q: %v", w, err)
			}
		}
		if !strings.Contains(out, "finished unary call") {
			t.Errorf("the logs Graylog found are not printed:\n%s", out)
		}
		assertNoPassword(t, out, stderr, err.Error())
	})

	t.Run("graylog wrong password", func(t *testing.T) {
		s := newLookupStack(t)
		out, stderr, err := execute(t, newLookupCmd(), s.args(lookupRequestID, "--graylog-password", "wrong-password", "--json")...)
		if exitCode(err) != exitBackend || !strings.Contains(err.Error(), "authentication failed (check --graylog-user/--graylog-password or --graylog-token)") {
			t.Fatalf("exit %d: %v", exitCode(err), err)
		}
		var doc struct {
			Errors []struct{ Backend, Error string } `json:"errors"`
			Spans  int                               `json:"spans"`
		}
		if json.Unmarshal([]byte(out), &doc) != nil || len(doc.Errors) != 1 || doc.Errors[0].Backend != "graylog" || doc.Spans != 3 {
			t.Errorf("document:\n%s", out)
		}
		assertNoPassword(t, out, stderr, err.Error())
	})

	t.Run("graylog timeout", func(t *testing.T) {
		s := newLookupStack(t)
		s.graylog.SetDelay(10 * time.Second)
		_, _, err := execute(t, newLookupCmd(), s.args(lookupRequestID, "--timeout", "100ms")...)
		if exitCode(err) != exitBackend || !strings.Contains(err.Error(), "graylog at "+s.graylog.URL+": GET /api/search/universal/relative: no answer within 100ms (timeout)") {
			t.Fatalf("exit %d: %v", exitCode(err), err)
		}
	})
}

func TestLookupUsageErrors(t *testing.T) {
	s := newLookupStack(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"query injection", s.args(`x" OR *`), `request ID "x\" OR *": not a valid request ID`},
		{"too short", s.args("abc"), `request ID "abc": not a valid request ID`},
		{"escape sequence", s.args("req-\x1b[2J-1234"), `not a valid request ID`},
		{"no ID", s.args(), "name one request ID: golden lookup REQUEST-ID (the X-Request-ID of a response), got 0 arguments"},
		{"two IDs", s.args(lookupRequestID, "req-22222222"), "got 2 arguments"},
		{"unknown flag", s.args(lookupRequestID, "--jason"), "unknown flag: --jason"},
		{"bad limit", s.args(lookupRequestID, "--limit", "0"), "--limit (GOLDEN_LIMIT): must be between 1 and 10000"},
		{"bad range", s.args(lookupRequestID, "--range", "-1h"), "--range (GOLDEN_RANGE)"},
		{"bad jaeger url", s.args(lookupRequestID, "--jaeger-url", "jaeger:16686"), "--jaeger-url (GOLDEN_JAEGER_URL)"},
		{"bad jaeger address", s.args(lookupRequestID, "--jaeger-addr", "http://jaeger:16685"), "--jaeger-addr (GOLDEN_JAEGER_ADDR)"},
		{"no credentials", s.args(lookupRequestID, "--graylog-password", ""), "--graylog-password (GOLDEN_GRAYLOG_PASSWORD): Graylog needs credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := execute(t, newLookupCmd(), tt.args...)
			if exitCode(err) != exitUsage {
				t.Fatalf("exit %d (%v), want %d", exitCode(err), err, exitUsage)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error lacks %q: %v", tt.want, err)
			}
			if strings.Contains(err.Error(), "\x1b") {
				t.Errorf("error carries a terminal escape: %q", err)
			}
			assertNoPassword(t, out, stderr, err.Error())
		})
	}
	if n := len(s.graylog.Requests()) + len(s.jaeger.Requests()); n != 0 {
		t.Errorf("%d backend requests for invalid usage", n)
	}
}

func TestLookupSettingsFromEnv(t *testing.T) {
	s := newLookupStack(t)
	t.Setenv("GOLDEN_GRAYLOG_URL", s.graylog.URL)
	t.Setenv("GOLDEN_GRAYLOG_PASSWORD", testPassword)
	t.Setenv("GOLDEN_JAEGER_ADDR", s.jaeger.Addr)
	out, stderr, err := execute(t, newLookupCmd(), lookupRequestID)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	assertNoPassword(t, out, stderr)

	t.Setenv("GOLDEN_LIMIT", "lots")
	_, _, err = execute(t, newLookupCmd(), lookupRequestID)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), `GOLDEN_LIMIT (--limit): invalid value "lots"`) {
		t.Errorf("exit %d: %v", exitCode(err), err)
	}
}
