package lookup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/golden-stack/golden/internal/graylog"
	"github.com/golden-stack/golden/internal/graylog/graylogtest"
	"github.com/golden-stack/golden/internal/lookup"
	"github.com/golden-stack/golden/internal/lookup/lookuptest"
)

const (
	user      = "admin"
	password  = "pw-Zq8!never-print-me"
	requestID = "req-4f1c2a9e"
	traceID   = "4bf92f3577b34da6a3ce929d0e0e4736"
)

var start = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

type stack struct {
	graylog *graylogtest.Server
	jaeger  *lookuptest.Jaeger
	finder  *lookup.Finder
}

func newStack(t *testing.T, opts ...lookup.Option) *stack {
	t.Helper()
	s := &stack{graylog: graylogtest.New(t, graylogtest.WithBasicAuth(user, password)), jaeger: lookuptest.NewJaeger(t)}
	gl, err := graylog.New(s.graylog.URL, graylog.WithBasicAuth(user, password), graylog.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	j, err := lookup.NewJaeger(s.jaeger.Addr, "http://jaeger.example:16686", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.finder, err = lookup.NewFinder(gl, j, opts...); err != nil {
		t.Fatal(err)
	}
	return s
}

// addLogs stores the log lines of the sample request: around the spans of
// lookuptest.SampleTrace, plus one line of another request.
func (s *stack) addLogs() {
	ts := func(ms int) string {
		return start.Add(time.Duration(ms) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	}
	s.graylog.AddMessage(map[string]any{"timestamp": ts(13), "source": "gw-host", "service": "gateway", "instance": "gateway-1", "message": "finished HTTP request",
		"level": 6, "request_id": requestID, "trace_id": traceID, "span_id": "b7ad6b7169203331", "http_method": "GET", "http_route": "GET /v1/users/{id}", "http_status": 404, "duration_ms": 12.5})
	s.graylog.AddMessage(map[string]any{"timestamp": ts(0), "source": "gw-host", "service": "gateway", "message": "request received",
		"level": 7, "request_id": requestID, "trace_id": traceID})
	s.graylog.AddMessage(map[string]any{"timestamp": ts(4), "source": "user-host", "service": "user", "message": "user not found\x1b[2J\ttab",
		"level": 4, "request_id": requestID, "trace_id": traceID, "grpc_service": "golden.user.v1.UserService", "grpc_method": "GetUser", "grpc_code": "NotFound", "duration_ms": 4.2})
	s.graylog.AddMessage(map[string]any{"timestamp": ts(5), "source": "gw-host", "message": "no service field, bad trace id",
		"level": "3", "request_id": requestID, "trace_id": "not-a-trace-id"})
	s.graylog.AddMessage(map[string]any{"timestamp": ts(1), "source": "gw-host", "service": "gateway", "message": "another request",
		"level": 6, "request_id": "req-00000000", "trace_id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
}

func TestFindJoinsLogsAndSpans(t *testing.T) {
	s := newStack(t)
	s.addLogs()
	s.jaeger.AddTrace(t, lookuptest.SampleTrace(traceID, requestID, start))

	res, err := s.finder.Find(context.Background(), requestID)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %v", res.Err())
	}
	if !res.Found || res.Logs != 4 || res.LogsTotal != 4 || res.Spans != 3 {
		t.Errorf("found %v, logs %d/%d, spans %d", res.Found, res.Logs, res.LogsTotal, res.Spans)
	}
	type line struct {
		kind                 lookup.Kind
		service, msg, status string
		depth                int
	}
	want := []line{
		{lookup.KindSpan, "gateway", "GET /v1/users/{id}", "ok", 0},
		{lookup.KindLog, "gateway", "request received", "debug", 0},
		{lookup.KindSpan, "gateway", "golden.user.v1.UserService/GetUser", "error", 1},
		{lookup.KindSpan, "user", "golden.user.v1.UserService/GetUser: user not found", "error", 2},
		{lookup.KindLog, "user", "user not found\x1b[2J\ttab", "warning", 0},
		{lookup.KindLog, "gw-host", "no service field, bad trace id", "error", 0},
		{lookup.KindLog, "gateway", "finished HTTP request", "info", 0},
	}
	if len(res.Timeline) != len(want) {
		t.Fatalf("timeline has %d entries, want %d: %+v", len(res.Timeline), len(want), res.Timeline)
	}
	for i, w := range want {
		e := res.Timeline[i]
		status := e.Level
		if e.Kind == lookup.KindSpan {
			status = e.Status
		}
		if e.Kind != w.kind || e.Service != w.service || e.Message != w.msg || status != w.status || e.Depth != w.depth {
			t.Errorf("entry %d = %s %s %q %s depth %d, want %+v", i, e.Kind, e.Service, e.Message, status, e.Depth, w)
		}
	}
	user := res.Timeline[3]
	if user.GRPCCode != "NotFound" || user.Duration != 5*time.Millisecond || user.ParentSpanID != "53995c3f42cd8ad8" || user.Instance != "user-1" || user.SpanKind != "server" || !user.Time.Equal(start.Add(2*time.Millisecond)) {
		t.Errorf("user span = %+v", user)
	}
	if l := res.Timeline[4]; l.Method != "golden.user.v1.UserService/GetUser" || l.GRPCCode != "NotFound" || l.Duration != 4200*time.Microsecond || l.TraceID != traceID {
		t.Errorf("user log = %+v", l)
	}
	if l := res.Timeline[5]; l.TraceID != "" {
		t.Errorf("a malformed trace_id was kept: %+v", l)
	}

	if len(res.Traces) != 1 {
		t.Fatalf("traces = %+v", res.Traces)
	}
	if tr := res.Traces[0]; tr.TraceID != traceID || !tr.Found || tr.Spans != 3 || tr.Errors != 2 || tr.URL != "http://jaeger.example:16686/trace/"+traceID {
		t.Errorf("trace = %+v", tr)
	}
	wantGraylog := s.graylog.URL + "/search?q=request_id%3A%22" + requestID + "%22&rangetype=relative&from=86400"
	if res.GraylogURL != wantGraylog {
		t.Errorf("Graylog link %q, want %q", res.GraylogURL, wantGraylog)
	}

	// The search asked for what the timeline needs, oldest first.
	r := s.graylog.Requests()[0]
	for k, v := range map[string]string{"query": `request_id:"` + requestID + `"`, "range": "86400", "limit": "500", "sort": "timestamp:asc"} {
		if got := r.Query[k]; len(got) != 1 || got[0] != v {
			t.Errorf("search %s = %q, want %q", k, got, v)
		}
	}
	for _, f := range []string{"timestamp", "source", "message", "level", "request_id", "trace_id", "span_id", "service", "instance", "grpc_method", "method", "grpc_code", "duration_ms", "http_status"} {
		if !strings.Contains(","+r.Query["fields"][0]+",", ","+f+",") {
			t.Errorf("fields %q lack %s", r.Query["fields"], f)
		}
	}
	// The logs named the trace: no span search was needed.
	if reqs := s.jaeger.Requests(); len(reqs) != 1 || reqs[0] != "GetTrace "+traceID {
		t.Errorf("Jaeger requests = %q", reqs)
	}
}

func TestWriteText(t *testing.T) {
	s := newStack(t)
	s.addLogs()
	s.jaeger.AddTrace(t, lookuptest.SampleTrace(traceID, requestID, start))
	res, err := s.finder.Find(context.Background(), requestID)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := lookup.WriteText(&out, res); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.ContainsAny(text, "\x1b\t") {
		t.Errorf("output keeps control characters from a log message:\n%q", text)
	}
	lines := strings.Split(text, "\n")
	if lines[0] != "request "+requestID+": 4 log lines and 3 spans in 1 trace (last 24h0m0s)" {
		t.Errorf("summary line %q", lines[0])
	}
	// Rows in time order, logs and spans interleaved.
	rows := []string{
		"2024-05-01 10:00:00.000000  gateway  span  ok",
		"2024-05-01 10:00:00.000000  gateway  log   debug",
		"2024-05-01 10:00:00.001000  gateway  span  error (NotFound)",
		"2024-05-01 10:00:00.002000  user     span  error (NotFound)",
		"2024-05-01 10:00:00.004000  user     log   warning",
		"2024-05-01 10:00:00.005000  gw-host  log   error",
		"2024-05-01 10:00:00.013000  gateway  log   info",
	}
	if !strings.HasPrefix(lines[2], "TIME (UTC)") {
		t.Fatalf("no header at line 3:\n%s", text)
	}
	for i, want := range rows {
		if got := lines[3+i]; !strings.HasPrefix(got, want) {
			t.Errorf("row %d = %q, want prefix %q", i, got, want)
		}
	}
	for _, want := range []string{
		"12ms      GET /v1/users/{id} [server]",
		"5ms           golden.user.v1.UserService/GetUser: user not found [server]", // indented twice
		"4.2ms     user not found [2J tab  method=golden.user.v1.UserService/GetUser code=NotFound",
		"12.5ms    finished HTTP request  method=GET /v1/users/{id} status=404",
		"Graylog: " + res.GraylogURL,
		"Jaeger:  http://jaeger.example:16686/trace/" + traceID + " (3 spans, 2 with an error)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	s := newStack(t)
	s.addLogs()
	s.jaeger.AddTrace(t, lookuptest.SampleTrace(traceID, requestID, start))
	res, _ := s.finder.Find(context.Background(), requestID)
	var out bytes.Buffer
	if err := lookup.WriteJSON(&out, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `&rangetype=relative&from=86400"`) {
		t.Errorf("the Graylog link is escaped in JSON:\n%s", out.String())
	}
	var doc struct {
		RequestID    string `json:"request_id"`
		Found        *bool  `json:"found"`
		GraylogURL   string `json:"graylog_url"`
		RangeSeconds int64  `json:"range_seconds"`
		Logs         int    `json:"logs"`
		LogsTotal    int    `json:"logs_total"`
		Spans        int    `json:"spans"`
		Traces       []struct {
			TraceID   string `json:"trace_id"`
			JaegerURL string `json:"jaeger_url"`
			Found     bool   `json:"found"`
			Spans     int    `json:"spans"`
			Errors    int    `json:"error_spans"`
		} `json:"traces"`
		Timeline []map[string]any `json:"timeline"`
		Errors   []any            `json:"errors"`
	}
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if doc.RequestID != requestID || doc.Found == nil || !*doc.Found || doc.RangeSeconds != 86400 || doc.Logs != 4 || doc.Spans != 3 ||
		len(doc.Traces) != 1 || !doc.Traces[0].Found || doc.Errors == nil || len(doc.Timeline) != 7 || !strings.Contains(doc.GraylogURL, "&rangetype=relative") {
		t.Fatalf("document = %+v", doc)
	}
	span, log := doc.Timeline[3], doc.Timeline[4]
	if span["kind"] != "span" || span["status"] != "error" || span["grpc_code"] != "NotFound" || span["duration_ms"] != 5.0 || span["depth"] != 2.0 ||
		span["time"] != "2024-05-01T10:00:00.002Z" || span["trace_id"] != traceID {
		t.Errorf("span entry = %v", span)
	}
	if log["kind"] != "log" || log["level"] != "warning" || log["duration_ms"] != 4.2 || log["method"] != "golden.user.v1.UserService/GetUser" {
		t.Errorf("log entry = %v", log)
	}
	if _, ok := log["depth"]; ok {
		t.Errorf("log entry has a depth: %v", log)
	}
}

func TestFindSpansOnly(t *testing.T) {
	s := newStack(t)
	s.jaeger.AddTrace(t, lookuptest.SampleTrace(traceID, requestID, start))
	s.jaeger.AddTrace(t, lookuptest.SampleTrace("0123456789abcdef0123456789abcdef", "req-other-1", start))
	res, err := s.finder.Find(context.Background(), requestID)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Found || res.Logs != 0 || res.Spans != 3 || len(res.Traces) != 1 || res.Traces[0].TraceID != traceID || len(res.Errors) != 0 {
		t.Fatalf("result = %+v", res)
	}
	// The fake refuses a search without both start times, as Jaeger does.
	searches := 0
	for _, r := range s.jaeger.Requests() {
		if strings.HasPrefix(r, "FindTraces ") {
			searches++
			if !strings.HasSuffix(r, " request_id="+requestID) {
				t.Errorf("span search %q lacks the request ID attribute", r)
			}
		}
	}
	if searches == 0 {
		t.Errorf("no span search among %q", s.jaeger.Requests())
	}
}

func TestFindNothing(t *testing.T) {
	s := newStack(t)
	s.addLogs()
	s.jaeger.AddTrace(t, lookuptest.SampleTrace(traceID, requestID, start))
	res, err := s.finder.Find(context.Background(), "req-unknown-id")
	if err != nil {
		t.Fatal(err)
	}
	if res.Found || len(res.Errors) != 0 || len(res.Timeline) != 0 || res.Timeline == nil || res.Traces == nil {
		t.Fatalf("result = %+v", res)
	}
	// Both backends were asked.
	if s.graylog.Count(http.MethodGet, "/api/search/universal/relative") != 1 || len(s.jaeger.Requests()) < 2 {
		t.Errorf("graylog %v, jaeger %q", s.graylog.Requests(), s.jaeger.Requests())
	}
}

func TestFindTraceMissingFromJaeger(t *testing.T) {
	s := newStack(t)
	s.addLogs()
	res, err := s.finder.Find(context.Background(), requestID)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Found || len(res.Errors) != 0 || len(res.Traces) != 1 || res.Traces[0].Found {
		t.Fatalf("result = %+v", res)
	}
	var out bytes.Buffer
	if err := lookup.WriteText(&out, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "(not in Jaeger: not sampled, not flushed yet, or expired)") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestFindBackendErrors(t *testing.T) {
	t.Run("graylog down, spans still found", func(t *testing.T) {
		s := newStack(t)
		s.graylog.FailSearch(http.StatusInternalServerError)
		s.jaeger.AddTrace(t, lookuptest.SampleTrace(traceID, requestID, start))
		res, err := s.finder.Find(context.Background(), requestID)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Errors) != 1 || res.Errors[0].Backend != lookup.BackendGraylog || !strings.Contains(res.Errors[0].Error(), "server error 500") {
			t.Fatalf("errors = %v", res.Err())
		}
		if !res.Found || res.Spans != 3 {
			t.Errorf("spans not found by tag: %+v", res)
		}
	})

	t.Run("jaeger down, logs kept", func(t *testing.T) {
		s := newStack(t)
		s.addLogs()
		s.jaeger.Fail(codes.Internal)
		res, err := s.finder.Find(context.Background(), requestID)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Errors) != 1 || res.Errors[0].Backend != lookup.BackendJaeger {
			t.Fatalf("errors = %v", res.Err())
		}
		for _, w := range []string{"jaeger at " + s.jaeger.Addr, "GetTrace: Internal: storage unavailable"} {
			if !strings.Contains(res.Errors[0].Error(), w) {
				t.Errorf("error %q lacks %q", res.Errors[0], w)
			}
		}
		if !res.Found || res.Logs != 4 {
			t.Errorf("logs lost: %+v", res)
		}
		var be *lookup.BackendError
		if !errors.As(res.Err(), &be) {
			t.Errorf("Err() is not a *BackendError: %v", res.Err())
		}
	})

	t.Run("jaeger timeout", func(t *testing.T) {
		s := newStack(t)
		s.addLogs()
		s.jaeger.SetDelay(10 * time.Second)
		gl, _ := graylog.New(s.graylog.URL, graylog.WithBasicAuth(user, password))
		j, _ := lookup.NewJaeger(s.jaeger.Addr, "http://jaeger.example:16686", 50*time.Millisecond)
		f, _ := lookup.NewFinder(gl, j)
		res, _ := f.Find(context.Background(), requestID)
		if len(res.Errors) != 1 || !errors.Is(res.Errors[0], context.DeadlineExceeded) || !strings.Contains(res.Errors[0].Error(), "no answer within 50ms (timeout)") {
			t.Fatalf("errors = %v", res.Err())
		}
	})

	t.Run("graylog 401", func(t *testing.T) {
		s := newStack(t)
		gl, _ := graylog.New(s.graylog.URL, graylog.WithBasicAuth(user, "wrong-password"))
		j, _ := lookup.NewJaeger(s.jaeger.Addr, "http://jaeger.example:16686", 15*time.Second)
		f, _ := lookup.NewFinder(gl, j)
		res, _ := f.Find(context.Background(), requestID)
		if len(res.Errors) != 1 || !errors.Is(res.Errors[0], graylog.ErrAuthentication) {
			t.Fatalf("errors = %v", res.Err())
		}
	})
}

func TestFindRejectsInvalidIDsWithoutAsking(t *testing.T) {
	s := newStack(t)
	for _, id := range []string{`x" OR *`, "short", "", "-leading-dash", `req-1234"`, "req 12345", "req:12345", "req*12345", strings.Repeat("a", 65)} {
		_, err := s.finder.Find(context.Background(), id)
		if !errors.Is(err, lookup.ErrInvalidRequestID) {
			t.Errorf("Find(%q) = %v, want ErrInvalidRequestID", id, err)
		}
	}
	if n := len(s.graylog.Requests()) + len(s.jaeger.Requests()); n != 0 {
		t.Errorf("%d requests sent for invalid IDs", n)
	}
}

func TestLimitNote(t *testing.T) {
	s := newStack(t, lookup.WithLimit(2))
	s.addLogs()
	s.jaeger.AddTrace(t, lookuptest.SampleTrace(traceID, requestID, start))
	res, _ := s.finder.Find(context.Background(), requestID)
	if res.Logs != 2 || res.LogsTotal != 4 {
		t.Fatalf("logs %d of %d", res.Logs, res.LogsTotal)
	}
	var out bytes.Buffer
	if err := lookup.WriteText(&out, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Only the first 2 of 4 log lines were fetched.") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestNormalizeTraceID(t *testing.T) {
	for in, want := range map[string]string{
		traceID:                            traceID,
		strings.ToUpper(traceID):           traceID,
		"a3ce929d0e0e4736":                 "0000000000000000a3ce929d0e0e4736",
		"00000000000000000000000000000000": "",
		"4bf92f3577b34da6a3ce929d0e0e473":  "",
		"4bf92f3577b34da6a3ce929d0e0e473g": "",
		"../../api/services/x/operations1": "",
	} {
		got, ok := lookup.NormalizeTraceID(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeTraceID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestLevelName(t *testing.T) {
	for lvl, want := range map[int]string{0: "emergency", 1: "alert", 2: "critical", 3: "error", 4: "warning", 5: "notice", 6: "info", 7: "debug", 9: "9"} {
		if got := lookup.LevelName(lvl); got != want {
			t.Errorf("LevelName(%d) = %q, want %q", lvl, got, want)
		}
	}
}
