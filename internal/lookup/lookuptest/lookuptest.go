// Package lookuptest is a fake Jaeger query API for tests, answering in the
// JSON shape Jaeger v2 (1.65) writes: GET /api/traces/{id}, GET
// /api/services and GET /api/traces?service=...&tags=..., with Jaeger's
// {"data":...,"errors":...} envelope and its 404 for an unknown trace.
package lookuptest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Jaeger is a fake Jaeger query API. Its methods are safe for concurrent use.
type Jaeger struct {
	*httptest.Server

	mu       sync.Mutex
	traces   map[string]json.RawMessage // by 32-digit ID
	order    []string
	requests []string
	fail     int
	delay    time.Duration
}

// NewJaeger starts a fake Jaeger, closed at the end of the test.
func NewJaeger(t testing.TB) *Jaeger {
	t.Helper()
	j := &Jaeger{traces: map[string]json.RawMessage{}}
	j.Server = httptest.NewServer(http.HandlerFunc(j.serve))
	t.Cleanup(j.Close)
	return j
}

// AddTrace stores a trace given as Jaeger's JSON of one trace
// ({"traceID":...,"spans":[...],"processes":{...}}).
func (j *Jaeger) AddTrace(t testing.TB, raw string) {
	t.Helper()
	var tr struct {
		TraceID string `json:"traceID"`
	}
	if err := json.Unmarshal([]byte(raw), &tr); err != nil || tr.TraceID == "" {
		t.Fatalf("lookuptest: bad trace JSON (%v): %s", err, raw)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	id := pad(tr.TraceID)
	if _, ok := j.traces[id]; !ok {
		j.order = append(j.order, id)
	}
	j.traces[id] = json.RawMessage(raw)
}

// Fail makes every later request answer status with a Jaeger error body; 0 stops it.
func (j *Jaeger) Fail(status int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fail = status
}

// SetDelay makes every later answer wait d first (or until the client gives up).
func (j *Jaeger) SetDelay(d time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.delay = d
}

// Requests returns the path and query of every request so far.
func (j *Jaeger) Requests() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.requests...)
}

type envelope struct {
	Data   any        `json:"data"`
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
	Errors []apiError `json:"errors"`
}

type apiError struct {
	Code int    `json:"code,omitempty"`
	Msg  string `json:"msg"`
}

func (j *Jaeger) serve(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	j.requests = append(j.requests, r.URL.RequestURI())
	fail, delay := j.fail, j.delay
	j.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail != 0 {
		jaegerError(w, fail, "storage unavailable: badger: database closed")
		return
	}
	switch p := r.URL.Path; {
	case r.Method != http.MethodGet:
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	case p == "/api/services":
		j.services(w)
	case p == "/api/traces":
		j.search(w, r)
	case strings.HasPrefix(p, "/api/traces/"):
		j.trace(w, strings.TrimPrefix(p, "/api/traces/"))
	default:
		http.Error(w, "404 page not found", http.StatusNotFound) // gorilla/mux's answer
	}
}

func (j *Jaeger) trace(w http.ResponseWriter, id string) {
	if len(id) == 0 || len(id) > 32 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
		jaegerError(w, http.StatusBadRequest, "strconv.ParseUint: parsing \""+id+"\": invalid syntax")
		return
	}
	j.mu.Lock()
	raw, ok := j.traces[pad(id)]
	j.mu.Unlock()
	if !ok {
		jaegerError(w, http.StatusNotFound, "trace not found")
		return
	}
	writeJSON(w, envelope{Data: []json.RawMessage{raw}})
}

func (j *Jaeger) services(w http.ResponseWriter) {
	set := map[string]bool{}
	for _, t := range j.all() {
		for _, p := range t.Processes {
			set[p.ServiceName] = true
		}
	}
	services := []string{}
	for s := range set {
		services = append(services, s)
	}
	sort.Strings(services)
	writeJSON(w, envelope{Data: services, Total: len(services)})
}

// search finds traces with a span of the service carrying every tag.
func (j *Jaeger) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service := q.Get("service")
	if service == "" {
		jaegerError(w, http.StatusBadRequest, "parameter 'service' is required")
		return
	}
	tags := map[string]string{}
	if s := q.Get("tags"); s != "" {
		if err := json.Unmarshal([]byte(s), &tags); err != nil {
			jaegerError(w, http.StatusBadRequest, "malformed 'tags' parameter: "+err.Error())
			return
		}
	}
	for _, p := range []string{"start", "end"} {
		if q.Get(p) == "" {
			continue
		}
		var n int64
		if _, err := fmt.Sscan(q.Get(p), &n); err != nil {
			jaegerError(w, http.StatusBadRequest, "unable to parse param '"+p+"'")
			return
		}
	}
	found := []json.RawMessage{}
	j.mu.Lock()
	order := append([]string(nil), j.order...)
	j.mu.Unlock()
	for _, id := range order {
		j.mu.Lock()
		raw := j.traces[id]
		j.mu.Unlock()
		var t trace
		_ = json.Unmarshal(raw, &t)
		if t.matches(service, tags) {
			found = append(found, raw)
		}
	}
	writeJSON(w, envelope{Data: found, Total: len(found)})
}

type trace struct {
	Spans []struct {
		ProcessID string `json:"processID"`
		Tags      []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

func (t trace) matches(service string, tags map[string]string) bool {
	for _, s := range t.Spans {
		if t.Processes[s.ProcessID].ServiceName != service {
			continue
		}
		hit := 0
		for _, tag := range s.Tags {
			if v, ok := tags[tag.Key]; ok && fmt.Sprint(tag.Value) == v {
				hit++
			}
		}
		if hit == len(tags) {
			return true
		}
	}
	return false
}

func (j *Jaeger) all() []trace {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []trace
	for _, raw := range j.traces {
		var t trace
		_ = json.Unmarshal(raw, &t)
		out = append(out, t)
	}
	return out
}

// jaegerError answers like Jaeger's handleError: JSON written by http.Error,
// so with Content-Type text/plain.
func jaegerError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(envelope{Errors: []apiError{{Code: status, Msg: msg}}})
	http.Error(w, string(b), status)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func pad(id string) string {
	id = strings.ToLower(id)
	if len(id) < 32 {
		id = strings.Repeat("0", 32-len(id)) + id
	}
	return id
}

// SampleTrace returns Jaeger's JSON of a failed GET /v1/users/{id} through
// the gateway to the user service, starting at start:
//
//	+0ms   gateway  GET /v1/users/{id}                  server, ok, 12ms
//	+1ms   gateway  golden.user.v1.UserService/GetUser  client, error NotFound, 8ms
//	+2ms   user     golden.user.v1.UserService/GetUser  server, error NotFound "user not found", 5ms
//
// The spans are listed out of order, as Jaeger may list them. Each span
// carries the tag request_id=requestID.
func SampleTrace(traceID, requestID string, start time.Time) string {
	us := func(offset time.Duration) int64 { return start.Add(offset).UnixMicro() }
	return fmt.Sprintf(`{
  "traceID": %[1]q,
  "spans": [
    {
      "traceID": %[1]q, "spanID": "00f067aa0ba902b7", "flags": 1,
      "operationName": "golden.user.v1.UserService/GetUser",
      "references": [{"refType": "CHILD_OF", "traceID": %[1]q, "spanID": "53995c3f42cd8ad8"}],
      "startTime": %[3]d, "duration": 5000,
      "tags": [
        {"key": "rpc.system", "type": "string", "value": "grpc"},
        {"key": "rpc.service", "type": "string", "value": "golden.user.v1.UserService"},
        {"key": "rpc.method", "type": "string", "value": "GetUser"},
        {"key": "rpc.grpc.status_code", "type": "int64", "value": 5},
        {"key": "request_id", "type": "string", "value": %[2]q},
        {"key": "span.kind", "type": "string", "value": "server"},
        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
        {"key": "otel.status_description", "type": "string", "value": "user not found"},
        {"key": "error", "type": "bool", "value": true},
        {"key": "internal.span.format", "type": "string", "value": "otlp"}
      ],
      "logs": [], "processID": "p2", "warnings": null
    },
    {
      "traceID": %[1]q, "spanID": "b7ad6b7169203331", "flags": 1,
      "operationName": "GET /v1/users/{id}",
      "references": [],
      "startTime": %[4]d, "duration": 12000,
      "tags": [
        {"key": "http.request.method", "type": "string", "value": "GET"},
        {"key": "http.response.status_code", "type": "int64", "value": 404},
        {"key": "request_id", "type": "string", "value": %[2]q},
        {"key": "span.kind", "type": "string", "value": "server"},
        {"key": "internal.span.format", "type": "string", "value": "otlp"}
      ],
      "logs": [], "processID": "p1", "warnings": null
    },
    {
      "traceID": %[1]q, "spanID": "53995c3f42cd8ad8", "flags": 1,
      "operationName": "golden.user.v1.UserService/GetUser",
      "references": [{"refType": "CHILD_OF", "traceID": %[1]q, "spanID": "b7ad6b7169203331"}],
      "startTime": %[5]d, "duration": 8000,
      "tags": [
        {"key": "rpc.system", "type": "string", "value": "grpc"},
        {"key": "rpc.grpc.status_code", "type": "int64", "value": 5},
        {"key": "request_id", "type": "string", "value": %[2]q},
        {"key": "span.kind", "type": "string", "value": "client"},
        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
        {"key": "error", "type": "bool", "value": true}
      ],
      "logs": [{"timestamp": %[5]d, "fields": [{"key": "event", "type": "string", "value": "message"}]}],
      "processID": "p1", "warnings": null
    }
  ],
  "processes": {
    "p1": {"serviceName": "gateway", "tags": [{"key": "service.instance.id", "type": "string", "value": "gateway-1"}, {"key": "telemetry.sdk.language", "type": "string", "value": "go"}]},
    "p2": {"serviceName": "user", "tags": [{"key": "service.instance.id", "type": "string", "value": "user-1"}]}
  },
  "warnings": null
}`, traceID, requestID, us(2*time.Millisecond), us(0), us(time.Millisecond))
}
