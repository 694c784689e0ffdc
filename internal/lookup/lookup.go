// Package lookup finds everything the stack recorded about one request: its
// log lines in Graylog and its spans in Jaeger, joined into one timeline.
//
// Logs are found by their request_id field. The trace IDs they carry
// (trace_id) name the traces to fetch from Jaeger. When the logs name no
// trace, because there are none or Graylog failed, Jaeger is searched for
// spans tagged with the request ID instead, so a request whose logs were
// lost is still found.
package lookup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/golden-stack/golden/internal/graylog"
	"github.com/golden-stack/golden/observability/requestid"
)

// Backend names, as they appear in BackendError.
const (
	BackendGraylog = "graylog"
	BackendJaeger  = "jaeger"
)

// Fields are the log fields a lookup asks Graylog for. Graylog stores a
// GELF field name's dots as underscores: grpc.method is searched as
// grpc_method.
var Fields = []string{
	"timestamp", "source", "message", "level", "request_id", "trace_id", "span_id",
	"service", "instance", "grpc_service", "grpc_method", "method", "grpc_code",
	"http_method", "http_route", "http_status", "duration_ms",
}

// ErrInvalidRequestID is wrapped by Find's error for an ID that
// requestid.Valid refuses; nothing is asked of any backend then.
var ErrInvalidRequestID = errors.New("not a valid request ID: it must be 8 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit")

// CheckRequestID returns an error wrapping ErrInvalidRequestID when
// requestid.Valid refuses id. The ID is quoted in the message, so whatever
// it holds cannot garble the terminal.
func CheckRequestID(id string) error {
	if !requestid.Valid(id) {
		return fmt.Errorf("request ID %q: %w", id, ErrInvalidRequestID)
	}
	return nil
}

// BackendError is a backend that could not answer.
type BackendError struct {
	// Backend is BackendGraylog or BackendJaeger.
	Backend string
	Err     error
}

// Error returns the backend's error, which names the backend and its URL.
func (e *BackendError) Error() string { return e.Err.Error() }

// Unwrap returns the backend's error.
func (e *BackendError) Unwrap() error { return e.Err }

// MarshalJSON writes {"backend":..., "error":...}.
func (e *BackendError) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Backend string `json:"backend"`
		Error   string `json:"error"`
	}{e.Backend, e.Err.Error()})
}

// Kind tells log lines and spans apart in a timeline.
type Kind string

// The kinds of Entry.
const (
	KindLog  Kind = "log"
	KindSpan Kind = "span"
)

// Entry is one line of the timeline: a log line or a span.
type Entry struct {
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Service string    `json:"service,omitempty"`
	// Instance is the process that wrote the line or span, when known.
	Instance string `json:"instance,omitempty"`
	// Level is a log line's syslog level name (info, error, ...).
	Level string `json:"level,omitempty"`
	// Status is a span's "ok" or "error".
	Status string `json:"status,omitempty"`
	// GRPCCode is the gRPC status code name, when the line or span has one.
	GRPCCode string `json:"grpc_code,omitempty"`
	// Duration is a span's duration, or the duration_ms a log line reports.
	Duration time.Duration `json:"-"`
	// Message is the log message or the span's operation name (with the
	// error description of a failed span).
	Message string `json:"message"`
	// Method is the gRPC method ("svc/Method") or HTTP request ("GET
	// /v1/users/{id}") a log line names.
	Method string `json:"method,omitempty"`
	// HTTPStatus is the HTTP status an access log line reports.
	HTTPStatus   int    `json:"http_status,omitempty"`
	SpanKind     string `json:"span_kind,omitempty"`
	TraceID      string `json:"trace_id,omitempty"`
	SpanID       string `json:"span_id,omitempty"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
	// Depth is a span's distance from its trace's root.
	Depth int `json:"depth"`
}

// MarshalJSON adds duration_ms (a float) to the fields, and leaves depth out for log lines.
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	var d *float64
	if e.Duration > 0 {
		ms := float64(e.Duration) / float64(time.Millisecond)
		d = &ms
	}
	var depth *int
	if e.Kind == KindSpan {
		depth = &e.Depth
	}
	return marshal(struct {
		plain
		DurationMS *float64 `json:"duration_ms,omitempty"`
		Depth      *int     `json:"depth,omitempty"`
	}{plain(e), d, depth})
}

// TraceLink is a trace that belongs to the request.
type TraceLink struct {
	TraceID string `json:"trace_id"`
	// URL is the trace's page in the Jaeger web interface.
	URL string `json:"jaeger_url"`
	// Found is false when Jaeger does not have the trace (not sampled, not
	// flushed yet, or expired) or was not fetched.
	Found bool `json:"found"`
	// Skipped is true when the trace was not fetched: past the bound on
	// traces, or after Jaeger failed.
	Skipped bool `json:"skipped,omitempty"`
	Spans   int  `json:"spans"`
	Errors  int  `json:"error_spans"`
}

// Result is everything found about one request.
type Result struct {
	RequestID string `json:"request_id"`
	// Found is true when any log line or span was found.
	Found bool `json:"found"`
	// Range is how far back the search went.
	Range time.Duration `json:"-"`
	// GraylogURL is the search's page in the Graylog web interface.
	GraylogURL string `json:"graylog_url"`
	// Logs counts the log lines in Timeline; LogsTotal counts every match,
	// more than Logs when the limit cut the search.
	Logs      int             `json:"logs"`
	LogsTotal int             `json:"logs_total"`
	Spans     int             `json:"spans"`
	Traces    []TraceLink     `json:"traces"`
	Timeline  []Entry         `json:"timeline"`
	Errors    []*BackendError `json:"errors"`
}

// MarshalJSON adds range_seconds to the fields.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return marshal(struct {
		plain
		RangeSeconds int64 `json:"range_seconds"`
	}{plain(r), graylog.RangeSeconds(r.Range)})
}

// marshal is json.Marshal without HTML escaping, which would turn the
// links' "&" into "\u0026".
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Err returns the backend errors joined, or nil when every backend answered.
func (r *Result) Err() error {
	errs := make([]error, len(r.Errors))
	for i, e := range r.Errors {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Finder looks requests up in Graylog and Jaeger.
type Finder struct {
	logs   *graylog.Client
	traces *Jaeger
	rng    time.Duration
	limit  int
	tag    string
	now    func() time.Time
}

// Option configures a Finder.
type Option func(*Finder)

// WithRange sets how far back to search (default 24h).
func WithRange(d time.Duration) Option { return func(f *Finder) { f.rng = d } }

// WithLimit sets the most log lines fetched (default 500).
func WithLimit(n int) Option { return func(f *Finder) { f.limit = n } }

// WithTraceTag sets the span tag that carries the request ID, searched in
// Jaeger when the logs name no trace (default "request_id"; "" turns the
// search off).
func WithTraceTag(key string) Option { return func(f *Finder) { f.tag = key } }

// NewFinder returns a Finder reading logs from Graylog and traces from Jaeger.
func NewFinder(logs *graylog.Client, traces *Jaeger, opts ...Option) (*Finder, error) {
	f := &Finder{logs: logs, traces: traces, rng: 24 * time.Hour, limit: 500, tag: "request_id", now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(f)
		}
	}
	switch {
	case logs == nil || traces == nil:
		return nil, errors.New("lookup: both a Graylog and a Jaeger client are needed")
	case f.rng <= 0:
		return nil, fmt.Errorf("lookup: range must be greater than 0, got %s", f.rng)
	case f.limit <= 0:
		return nil, fmt.Errorf("lookup: limit must be greater than 0, got %d", f.limit)
	}
	return f, nil
}

// maxTraces bounds how many traces are fetched: one request is normally
// one trace, a few with client retries.
const maxTraces = 20

// maxServices bounds the per-service span search.
const maxServices = 50

// Find looks up requestID. The error is only ever for an invalid ID (see
// ErrInvalidRequestID); a backend that fails is reported in Result.Errors
// next to whatever the other found, so a partial answer is not lost.
func (f *Finder) Find(ctx context.Context, requestID string) (*Result, error) {
	if err := CheckRequestID(requestID); err != nil {
		return nil, err
	}
	// The ID's character set has nothing special in Graylog's query syntax;
	// quoting it still keeps the query a single exact term.
	query := "request_id:" + graylog.Phrase(requestID)
	res := &Result{
		RequestID:  requestID,
		Range:      f.rng,
		GraylogURL: f.logs.SearchURL(query, f.rng),
		Traces:     []TraceLink{},
		Timeline:   []Entry{},
		Errors:     []*BackendError{},
	}

	var traceIDs []string
	seen := map[string]bool{}
	sr, err := f.logs.SearchRelative(ctx, graylog.SearchRequest{
		Query: query, Range: f.rng, Limit: f.limit, Sort: "timestamp:asc", Fields: Fields,
	})
	if err != nil {
		res.Errors = append(res.Errors, &BackendError{Backend: BackendGraylog, Err: err})
	} else {
		res.LogsTotal = sr.TotalResults
		for _, m := range sr.Messages {
			e := logEntry(m.Message)
			res.Timeline = append(res.Timeline, e)
			res.Logs++
			if e.TraceID != "" && !seen[e.TraceID] {
				seen[e.TraceID] = true
				traceIDs = append(traceIDs, e.TraceID)
			}
		}
	}

	fetched := map[string]*JaegerTrace{}
	if len(traceIDs) == 0 && f.tag != "" {
		found, err := f.searchSpans(ctx, requestID)
		if err != nil {
			res.Errors = append(res.Errors, &BackendError{Backend: BackendJaeger, Err: err})
		}
		for i := range found {
			id, ok := NormalizeTraceID(found[i].TraceID)
			if ok && !seen[id] {
				seen[id] = true
				traceIDs = append(traceIDs, id)
				fetched[id] = &found[i]
			}
		}
	}

	jaegerFailed := false
	for i, id := range traceIDs {
		link := TraceLink{TraceID: id, URL: f.traces.TraceURL(id)}
		tr := fetched[id]
		switch {
		case tr != nil:
		case i >= maxTraces || jaegerFailed:
			// Linked but not fetched: past the bound, or Jaeger is failing
			// and every further call would only wait for its timeout.
			link.Skipped = true
		default:
			t, err := f.traces.Trace(ctx, id)
			if err != nil && !errors.Is(err, ErrTraceNotFound) {
				res.Errors = append(res.Errors, &BackendError{Backend: BackendJaeger, Err: err})
				jaegerFailed = true
			}
			tr = t
		}
		if tr != nil {
			link.Found = true
			spans := spanEntries(tr, id)
			for _, s := range spans {
				if s.Status == "error" {
					link.Errors++
				}
			}
			link.Spans = len(spans)
			res.Spans += len(spans)
			res.Timeline = append(res.Timeline, spans...)
		}
		res.Traces = append(res.Traces, link)
	}

	sortTimeline(res.Timeline)
	res.Found = len(res.Timeline) > 0
	return res, nil
}

// searchSpans searches every service Jaeger knows for traces with a span
// tagged with the request ID.
func (f *Finder) searchSpans(ctx context.Context, requestID string) ([]JaegerTrace, error) {
	services, err := f.traces.Services(ctx)
	if err != nil {
		return nil, err
	}
	sort.Strings(services)
	if len(services) > maxServices {
		services = services[:maxServices]
	}
	end := f.now()
	start := end.Add(-f.rng)
	var all []JaegerTrace
	for _, svc := range services {
		found, err := f.traces.FindTraces(ctx, svc, map[string]string{f.tag: requestID}, start, end, maxTraces)
		if err != nil {
			return all, err
		}
		all = append(all, found...)
	}
	return all, nil
}

// sortTimeline orders entries by time; at the same instant spans come
// before log lines and parents before children.
func sortTimeline(es []Entry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Kind != b.Kind {
			return a.Kind == KindSpan
		}
		return a.Kind == KindSpan && a.Depth < b.Depth
	})
}

// logEntry converts a Graylog message to an Entry.
func logEntry(m map[string]any) Entry {
	e := Entry{
		Kind:     KindLog,
		Time:     parseTimestamp(str(m["timestamp"])),
		Service:  str(m["service"]),
		Instance: str(m["instance"]),
		Message:  str(m["message"]),
		SpanID:   str(m["span_id"]),
	}
	if e.Service == "" {
		e.Service = str(m["source"])
	}
	switch svc, method := str(m["grpc_service"]), str(m["grpc_method"]); {
	case method != "" && svc != "":
		e.Method = svc + "/" + method
	case method != "":
		e.Method = method
	case str(m["method"]) != "":
		e.Method = str(m["method"])
	case str(m["http_method"]) != "":
		hm, route := str(m["http_method"]), str(m["http_route"])
		// A ServeMux pattern may already start with the method.
		if !strings.HasPrefix(route, hm+" ") {
			route = strings.TrimSpace(hm + " " + route)
		}
		e.Method = route
	}
	if lvl, ok := number(m["level"]); ok {
		e.Level = LevelName(int(lvl))
	} else if s := str(m["level"]); s != "" {
		e.Level = s
	}
	e.GRPCCode = codeName(m["grpc_code"])
	if st, ok := number(m["http_status"]); ok && st >= 100 && st <= 999 {
		e.HTTPStatus = int(st)
	}
	if ms, ok := number(m["duration_ms"]); ok && ms > 0 {
		e.Duration = time.Duration(ms * float64(time.Millisecond))
	}
	// Only a well-formed 32-digit ID is used: it goes into URLs.
	if id := str(m["trace_id"]); len(id) == 32 {
		e.TraceID, _ = NormalizeTraceID(id)
	}
	return e
}

// spanEntries converts a trace's spans to entries, with their depth in the
// trace's tree.
func spanEntries(t *JaegerTrace, traceID string) []Entry {
	parent := map[string]string{}
	for _, s := range t.Spans {
		parent[s.SpanID] = parentOf(s)
	}
	depth := func(id string) int {
		d := 0
		// Bounded by the span count, so a reference cycle cannot loop.
		for p := parent[id]; p != "" && d < len(t.Spans); p = parent[p] {
			if _, known := parent[p]; !known {
				break // the parent is missing from the trace
			}
			d++
		}
		return d
	}
	out := make([]Entry, 0, len(t.Spans))
	for _, s := range t.Spans {
		proc := t.Processes[s.ProcessID]
		e := Entry{
			Kind:         KindSpan,
			Time:         time.UnixMicro(int64(s.StartTime)).UTC(),
			Duration:     time.Duration(s.Duration) * time.Microsecond,
			Service:      proc.ServiceName,
			Instance:     tagString(proc.Tags, "service.instance.id"),
			Message:      s.OperationName,
			SpanKind:     tagString(s.Tags, "span.kind"),
			TraceID:      traceID,
			SpanID:       s.SpanID,
			ParentSpanID: parent[s.SpanID],
			Depth:        depth(s.SpanID),
			Status:       "ok",
		}
		if isError(s.Tags) {
			e.Status = "error"
			if d := tagString(s.Tags, "otel.status_description"); d != "" {
				e.Message += ": " + d
			}
		}
		if v, ok := tagValue(s.Tags, "rpc.grpc.status_code"); ok {
			e.GRPCCode = codeName(v)
		}
		out = append(out, e)
	}
	return out
}

// parentOf returns the span's parent: its CHILD_OF reference, else the first other.
func parentOf(s JaegerSpan) string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	if len(s.References) > 0 {
		return s.References[0].SpanID
	}
	return ""
}

// isError reports a failed span: tagged error=true or otel.status_code=ERROR.
func isError(tags []JaegerTag) bool {
	if v, ok := tagValue(tags, "error"); ok {
		if b, isBool := v.(bool); isBool && b || str(v) == "true" {
			return true
		}
	}
	return strings.EqualFold(tagString(tags, "otel.status_code"), "ERROR")
}

func tagValue(tags []JaegerTag, key string) (any, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

func tagString(tags []JaegerTag, key string) string {
	v, _ := tagValue(tags, key)
	return str(v)
}

// str renders a decoded JSON value as text; "" for nothing.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// number reads a JSON number, also one written as a string.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// codeName renders a gRPC status code, given as a number or a name, by its
// name ("NotFound").
func codeName(v any) string {
	if n, ok := number(v); ok && n >= 0 && n <= 16 && n == float64(int(n)) {
		return codes.Code(uint32(n)).String()
	}
	return str(v)
}

// LevelName returns the syslog name of a GELF level: 0 emergency ... 7 debug.
func LevelName(level int) string {
	names := []string{"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}
	if level < 0 || level >= len(names) {
		return strconv.Itoa(level)
	}
	return names[level]
}

// parseTimestamp reads Graylog's timestamps: "2017-11-05T16:03:41.109Z", or
// with a space and no zone (UTC) as some versions write them.
func parseTimestamp(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
