package lookup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/observability/safetext"
)

// ErrTraceNotFound is returned by Jaeger.Trace when Jaeger does not have the
// trace: not sampled, not flushed yet, or expired.
var ErrTraceNotFound = errors.New("trace not found")

// maxJaegerBody bounds what is read of one Jaeger answer.
const maxJaegerBody = 64 << 20

// JaegerTrace is a trace in the JSON of Jaeger's query API (/api/traces),
// which Jaeger v2 still serves in the v1 shape.
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
	Warnings  []string                 `json:"warnings"`
}

// JaegerSpan is one span of a JaegerTrace.
type JaegerSpan struct {
	TraceID       string            `json:"traceID"`
	SpanID        string            `json:"spanID"`
	OperationName string            `json:"operationName"`
	References    []JaegerReference `json:"references"`
	// StartTime is in microseconds since the Unix epoch, Duration in microseconds.
	StartTime uint64      `json:"startTime"`
	Duration  uint64      `json:"duration"`
	Tags      []JaegerTag `json:"tags"`
	Logs      []JaegerLog `json:"logs"`
	ProcessID string      `json:"processID"`
	Warnings  []string    `json:"warnings"`
}

// JaegerReference links a span to another: refType CHILD_OF or FOLLOWS_FROM.
type JaegerReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// JaegerTag is a key/value attribute; Type is string, bool, int64, float64
// or binary, and Value the matching JSON value (numbers are json.Number).
type JaegerTag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// JaegerLog is a span event.
type JaegerLog struct {
	Timestamp uint64      `json:"timestamp"`
	Fields    []JaegerTag `json:"fields"`
}

// JaegerProcess is the service a span came from.
type JaegerProcess struct {
	ServiceName string      `json:"serviceName"`
	Tags        []JaegerTag `json:"tags"`
}

// Jaeger is a client of Jaeger's HTTP query API.
type Jaeger struct {
	base    *url.URL
	ui      *url.URL
	hc      *http.Client
	timeout time.Duration
}

// NewJaeger returns a client of the Jaeger query API at apiURL, for
// example http://localhost:16686, linking traces to the web interface at
// uiURL ("" = apiURL, which serves both in Jaeger v2); timeout bounds each
// request.
func NewJaeger(apiURL, uiURL string, timeout time.Duration) (*Jaeger, error) {
	u, err := baseurl.Parse(apiURL) // the same rules: http(s), host, no credentials
	if err != nil {
		return nil, fmt.Errorf("jaeger URL: %w", err)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("jaeger: timeout must be greater than 0, got %s", timeout)
	}
	j := &Jaeger{base: u, ui: u, hc: &http.Client{}, timeout: timeout}
	if uiURL != "" {
		if j.ui, err = baseurl.Parse(uiURL); err != nil {
			return nil, fmt.Errorf("jaeger UI URL: %w", err)
		}
	}
	return j, nil
}

// TraceURL returns the web interface's page of traceID.
func (j *Jaeger) TraceURL(traceID string) string {
	u := *j.ui
	u.Path = j.ui.Path + "/trace/" + traceID
	return u.String()
}

// Trace fetches one trace by its ID (32 hex digits); ErrTraceNotFound when
// Jaeger does not have it.
func (j *Jaeger) Trace(ctx context.Context, traceID string) (*JaegerTrace, error) {
	id, ok := NormalizeTraceID(traceID)
	if !ok {
		return nil, fmt.Errorf("jaeger: %q is not a trace ID (32 hex digits)", traceID)
	}
	var traces []JaegerTrace
	path := "/api/traces/" + id
	if err := j.get(ctx, path, nil, &traces); err != nil {
		return nil, err
	}
	for i := range traces {
		if got, _ := NormalizeTraceID(traces[i].TraceID); got == id {
			return &traces[i], nil
		}
	}
	return nil, fmt.Errorf("jaeger at %s: GET %s: %w (the answer holds no trace with that ID)", j.base, path, ErrTraceNotFound)
}

// Services lists the services Jaeger has spans of.
func (j *Jaeger) Services(ctx context.Context) ([]string, error) {
	var services []string
	if err := j.get(ctx, "/api/services", nil, &services); err != nil {
		return nil, err
	}
	return services, nil
}

// FindTraces returns up to limit traces of service between start and end
// having a span with every tag in tags.
func (j *Jaeger) FindTraces(ctx context.Context, service string, tags map[string]string, start, end time.Time, limit int) ([]JaegerTrace, error) {
	q := url.Values{}
	q.Set("service", service)
	q.Set("start", strconv.FormatInt(start.UnixMicro(), 10))
	q.Set("end", strconv.FormatInt(end.UnixMicro(), 10))
	q.Set("limit", strconv.Itoa(limit))
	if len(tags) > 0 {
		b, err := json.Marshal(tags)
		if err != nil {
			return nil, fmt.Errorf("jaeger: encoding tags: %w", err)
		}
		q.Set("tags", string(b))
	}
	var traces []JaegerTrace
	if err := j.get(ctx, "/api/traces", q, &traces); err != nil {
		return nil, err
	}
	return traces, nil
}

// get fetches path and decodes the "data" of Jaeger's answer
// {"data":...,"errors":[{"code","msg"}]} into out.
func (j *Jaeger) get(ctx context.Context, path string, query url.Values, out any) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("jaeger at %s: GET %s: "+format, append([]any{j.base, path}, args...)...)
	}
	u := *j.base
	u.Path = j.base.Path + path
	u.RawQuery = query.Encode()
	rctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("%w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "golden")
	resp, err := j.hc.Do(req)
	var raw []byte
	if err == nil {
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxJaegerBody+1))
		resp.Body.Close()
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return fail("cancelled: %w", ctx.Err())
		case errors.Is(err, context.DeadlineExceeded) || rctx.Err() != nil:
			return fail("no answer within %s (timeout): %w", j.timeout, context.DeadlineExceeded)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("%w", err)
	}
	if len(raw) > maxJaegerBody {
		return fail("answer larger than %d MiB", maxJaegerBody>>20)
	}

	var body struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	// Jaeger writes its error JSON with http.Error, so as text/plain: decode
	// whatever the Content-Type says.
	jsonErr := json.Unmarshal(raw, &body)
	var msgs []string
	for _, e := range body.Errors {
		msgs = append(msgs, e.Msg)
	}
	status := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	switch code := resp.StatusCode; {
	case code == http.StatusNotFound && jsonErr == nil:
		return fail("%w", ErrTraceNotFound)
	case code >= 500:
		return fail("server error %s: %s", status, errorText(msgs, raw))
	case code < 200 || code > 299:
		return fail("%s: %s", status, errorText(msgs, raw))
	case jsonErr != nil:
		return fail("%s but the answer is not JSON (Content-Type %s): %s", status, resp.Header.Get("Content-Type"), safetext.Line(string(raw), 200))
	case len(msgs) > 0 && (len(body.Data) == 0 || string(body.Data) == "null"):
		return fail("%s", safetext.Line(strings.Join(msgs, "; "), 1000))
	}
	if len(body.Data) == 0 || string(body.Data) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body.Data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fail("unexpected answer: %v", err)
	}
	return nil
}

// errorText is Jaeger's error messages, or the start of the body.
func errorText(msgs []string, raw []byte) string {
	if len(msgs) > 0 {
		return safetext.Line(strings.Join(msgs, "; "), 1000)
	}
	if s := safetext.Line(string(raw), 200); s != "" {
		return s
	}
	return "(empty body)"
}

// NormalizeTraceID returns id as 32 lowercase hex digits. Jaeger writes IDs
// whose high half is zero as 16 digits; those are padded. ok is false for
// anything else, including the invalid all-zero ID.
func NormalizeTraceID(id string) (string, bool) {
	if n := len(id); n != 16 && n != 32 {
		return "", false
	}
	id = strings.ToLower(id)
	zero := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
		zero = zero && c == '0'
	}
	if zero {
		return "", false
	}
	return strings.Repeat("0", 32-len(id)) + id, true
}
