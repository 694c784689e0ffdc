// Package lookuptest is a fake of Jaeger's query API v3 over gRPC
// (jaeger.api_v3.QueryService: GetTrace, FindTraces, GetServices) for tests.
// It answers as Jaeger 2.2 does: traces as OTLP TracesData, one message per
// trace, an empty stream for an unknown trace, FindTraces refused without
// both start times, and attributes matched on one span of the service.
// Traces are given in Jaeger's v1 JSON (SampleTrace), which is easier to
// read in a test, and converted to OTLP for the answer.
package lookuptest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/golden-stack/golden/internal/lookup/jaegerv3"
)

// Jaeger is a fake Jaeger query API v3. Its methods are safe for concurrent
// use.
type Jaeger struct {
	// Addr is the gRPC address, host:port.
	Addr string

	mu       sync.Mutex
	traces   map[string]trace // by 32-digit ID
	order    []string
	requests []string
	fail     codes.Code
	delay    time.Duration
}

// NewJaeger starts a fake Jaeger on a loopback port, stopped at the end of
// the test.
func NewJaeger(t testing.TB) *Jaeger {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	j := &Jaeger{Addr: lis.Addr().String(), traces: map[string]trace{}}
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "jaeger.api_v3.QueryService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "GetServices", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(jaegerv3.New(jaegerv3.GetServicesRequest)); err != nil {
				return nil, err
			}
			if err := j.begin(ctx, "GetServices"); err != nil {
				return nil, err
			}
			return jaegerv3.NewGetServicesResponse(j.services()), nil
		}}},
		Streams: []grpc.StreamDesc{
			{StreamName: "GetTrace", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error { return j.getTrace(st) }},
			{StreamName: "FindTraces", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error { return j.findTraces(st) }},
		},
	}, j)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return j
}

// AddTrace stores a trace given as Jaeger's v1 JSON of one trace
// ({"traceID":...,"spans":[...],"processes":{...}}).
func (j *Jaeger) AddTrace(t testing.TB, raw string) {
	t.Helper()
	var tr trace
	if err := json.Unmarshal([]byte(raw), &tr); err != nil || tr.TraceID == "" {
		t.Fatalf("lookuptest: bad trace JSON (%v): %s", err, raw)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	id := pad(tr.TraceID)
	if _, ok := j.traces[id]; !ok {
		j.order = append(j.order, id)
	}
	j.traces[id] = tr
}

// Fail makes every later call fail with code (as Jaeger does when its
// storage fails: Internal); codes.OK stops it.
func (j *Jaeger) Fail(code codes.Code) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fail = code
}

// SetDelay makes every later answer wait d first (or until the client gives up).
func (j *Jaeger) SetDelay(d time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.delay = d
}

// Requests returns every call so far: "GetServices", "GetTrace ID" or
// "FindTraces SERVICE key=value,...".
func (j *Jaeger) Requests() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.requests...)
}

// begin records a call, then waits and fails as set.
func (j *Jaeger) begin(ctx context.Context, call string) error {
	j.mu.Lock()
	j.requests = append(j.requests, call)
	fail, delay := j.fail, j.delay
	j.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if fail != codes.OK {
		return status.Error(fail, "storage unavailable: badger: database closed")
	}
	return nil
}

func (j *Jaeger) getTrace(st grpc.ServerStream) error {
	req := jaegerv3.New(jaegerv3.GetTraceRequest)
	if err := st.RecvMsg(req); err != nil {
		return err
	}
	id := jaegerv3.TraceID(req)
	if err := j.begin(st.Context(), "GetTrace "+id); err != nil {
		return err
	}
	if len(id) == 0 || len(id) > 32 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
		return fmt.Errorf("malform trace ID: %s", id) // Jaeger's own words, as codes.Unknown
	}
	j.mu.Lock()
	tr, ok := j.traces[pad(id)]
	j.mu.Unlock()
	if !ok {
		return nil // Jaeger 2.2 ends the stream empty
	}
	return st.SendMsg(tr.otlp())
}

func (j *Jaeger) findTraces(st grpc.ServerStream) error {
	req := jaegerv3.New(jaegerv3.FindTracesRequest)
	if err := st.RecvMsg(req); err != nil {
		return err
	}
	q := jaegerv3.ParseFindTracesRequest(req)
	keys := make([]string, 0, len(q.Attributes))
	for k, v := range q.Attributes {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	if err := j.begin(st.Context(), "FindTraces "+q.Service+" "+strings.Join(keys, ",")); err != nil {
		return err
	}
	if q.StartMin.IsZero() || q.StartMax.IsZero() {
		return fmt.Errorf("start time min and max are required parameters")
	}
	j.mu.Lock()
	var found []trace
	for _, id := range j.order {
		if tr := j.traces[id]; tr.matches(q.Service, q.Attributes) {
			found = append(found, tr)
		}
	}
	j.mu.Unlock()
	for i, tr := range found {
		if q.Limit > 0 && i >= q.Limit {
			break
		}
		if err := st.SendMsg(tr.otlp()); err != nil {
			return err
		}
	}
	return nil
}

func (j *Jaeger) services() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, tr := range j.traces {
		for _, p := range tr.Processes {
			if !seen[p.ServiceName] {
				seen[p.ServiceName] = true
				out = append(out, p.ServiceName)
			}
		}
	}
	sort.Strings(out)
	return out
}

// trace is a trace in Jaeger's v1 JSON.
type trace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			TraceID string `json:"traceID"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime uint64 `json:"startTime"`
		Duration  uint64 `json:"duration"`
		Tags      []tag  `json:"tags"`
		ProcessID string `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
		Tags        []tag  `json:"tags"`
	} `json:"processes"`
}

type tag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

func (t trace) matches(service string, attrs map[string]string) bool {
	for _, s := range t.Spans {
		if t.Processes[s.ProcessID].ServiceName != service {
			continue
		}
		hit := 0
		for _, tg := range s.Tags {
			if v, ok := attrs[tg.Key]; ok && fmt.Sprint(tg.Value) == v {
				hit++
			}
		}
		if hit == len(attrs) {
			return true
		}
	}
	return false
}

// otlp is the trace as Jaeger's api_v3 sends it: one ResourceSpans per
// process, span kind and status from the tags Jaeger's v1 JSON shows for
// them.
func (t trace) otlp() *tracepb.TracesData {
	td := &tracepb.TracesData{}
	ids := make([]string, 0, len(t.Processes))
	for id := range t.Processes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, pid := range ids {
		p := t.Processes[pid]
		res := &resourcepb.Resource{Attributes: append([]*commonpb.KeyValue{str("service.name", p.ServiceName)}, attrs(p.Tags)...)}
		ss := &tracepb.ScopeSpans{}
		for _, s := range t.Spans {
			if s.ProcessID != pid {
				continue
			}
			sp := &tracepb.Span{
				TraceId:           traceBytes(t.TraceID),
				SpanId:            spanBytes(s.SpanID),
				Name:              s.OperationName,
				StartTimeUnixNano: s.StartTime * 1000,
				EndTimeUnixNano:   (s.StartTime + s.Duration) * 1000,
				Status:            &tracepb.Status{},
			}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" && sp.ParentSpanId == nil {
					sp.ParentSpanId = spanBytes(r.SpanID)
				} else {
					sp.Links = append(sp.Links, &tracepb.Span_Link{TraceId: traceBytes(r.TraceID), SpanId: spanBytes(r.SpanID)})
				}
			}
			var rest []tag
			for _, tg := range s.Tags {
				switch v := fmt.Sprint(tg.Value); tg.Key {
				case "span.kind":
					sp.Kind = tracepb.Span_SpanKind(tracepb.Span_SpanKind_value["SPAN_KIND_"+strings.ToUpper(v)])
				case "otel.status_code":
					if v == "ERROR" {
						sp.Status.Code = tracepb.Status_STATUS_CODE_ERROR
					}
				case "otel.status_description":
					sp.Status.Message = v
				case "error":
					if v == "true" {
						sp.Status.Code = tracepb.Status_STATUS_CODE_ERROR
					}
				default:
					rest = append(rest, tg)
				}
			}
			sp.Attributes = attrs(rest)
			ss.Spans = append(ss.Spans, sp)
		}
		td.ResourceSpans = append(td.ResourceSpans, &tracepb.ResourceSpans{Resource: res, ScopeSpans: []*tracepb.ScopeSpans{ss}})
	}
	return td
}

func attrs(tags []tag) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, len(tags))
	for _, tg := range tags {
		kv := &commonpb.KeyValue{Key: tg.Key, Value: &commonpb.AnyValue{}}
		switch v := tg.Value.(type) {
		case bool:
			kv.Value.Value = &commonpb.AnyValue_BoolValue{BoolValue: v}
		case float64:
			if tg.Type == "int64" {
				kv.Value.Value = &commonpb.AnyValue_IntValue{IntValue: int64(v)}
			} else {
				kv.Value.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: v}
			}
		default:
			kv.Value.Value = &commonpb.AnyValue_StringValue{StringValue: fmt.Sprint(v)}
		}
		out = append(out, kv)
	}
	return out
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// traceBytes and spanBytes decode hex IDs to their OTLP lengths, 16 and 8
// bytes (Jaeger's JSON drops leading zeros of a trace ID's high half).
func traceBytes(id string) []byte { b, _ := hex.DecodeString(pad(id)); return b }

func spanBytes(id string) []byte {
	b, _ := hex.DecodeString(strings.Repeat("0", max(0, 16-len(id))) + strings.ToLower(id))
	return b
}

func pad(id string) string {
	id = strings.ToLower(id)
	if len(id) < 32 {
		id = strings.Repeat("0", 32-len(id)) + id
	}
	return id
}

// SampleTrace returns Jaeger's v1 JSON of a failed GET /v1/users/{id} through
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
