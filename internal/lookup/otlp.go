package lookup

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// fromOTLP converts Jaeger's api_v3 answer (OTLP TracesData, one or more
// messages per trace) to traces, in the order their first span came. Span
// kind and status become the tags Jaeger's v1 JSON shows for them
// (span.kind, error, otel.status_code, otel.status_description), so that
// the timeline reads them the same whichever API delivered the trace.
func fromOTLP(data []*tracepb.TracesData) []JaegerTrace {
	var out []JaegerTrace
	index := map[string]int{}
	for _, td := range data {
		for _, rs := range td.GetResourceSpans() {
			proc := JaegerProcess{Tags: tagsOf(rs.GetResource().GetAttributes())}
			proc.ServiceName = tagString(proc.Tags, "service.name")
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					traceID := hex.EncodeToString(sp.GetTraceId())
					i, ok := index[traceID]
					if !ok {
						i = len(out)
						index[traceID] = i
						out = append(out, JaegerTrace{TraceID: traceID, Processes: map[string]JaegerProcess{}})
					}
					t := &out[i]
					// One process per resource and trace, named as Jaeger names them.
					pid := processID(t, proc)
					t.Spans = append(t.Spans, spanOf(sp, traceID, pid))
				}
			}
		}
	}
	return out
}

// processID returns the ID of proc in t, adding it as p1, p2, ... when new.
func processID(t *JaegerTrace, proc JaegerProcess) string {
	for id, p := range t.Processes {
		if p.ServiceName == proc.ServiceName && sameTags(p.Tags, proc.Tags) {
			return id
		}
	}
	id := "p" + strconv.Itoa(len(t.Processes)+1)
	t.Processes[id] = proc
	return id
}

func sameTags(a, b []JaegerTag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || fmt.Sprint(a[i].Value) != fmt.Sprint(b[i].Value) {
			return false
		}
	}
	return true
}

func spanOf(sp *tracepb.Span, traceID, pid string) JaegerSpan {
	s := JaegerSpan{
		TraceID:       traceID,
		SpanID:        hex.EncodeToString(sp.GetSpanId()),
		OperationName: sp.GetName(),
		StartTime:     sp.GetStartTimeUnixNano() / 1000,
		ProcessID:     pid,
		Tags:          tagsOf(sp.GetAttributes()),
	}
	if end, start := sp.GetEndTimeUnixNano(), sp.GetStartTimeUnixNano(); end > start {
		s.Duration = (end - start) / 1000
	}
	if p := sp.GetParentSpanId(); len(p) > 0 {
		s.References = append(s.References, JaegerReference{RefType: "CHILD_OF", TraceID: traceID, SpanID: hex.EncodeToString(p)})
	}
	for _, l := range sp.GetLinks() {
		s.References = append(s.References, JaegerReference{RefType: "FOLLOWS_FROM", TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	if k := sp.GetKind(); k != tracepb.Span_SPAN_KIND_UNSPECIFIED {
		kind := strings.ToLower(strings.TrimPrefix(k.String(), "SPAN_KIND_"))
		s.Tags = append(s.Tags, JaegerTag{Key: "span.kind", Type: "string", Value: kind})
	}
	if st := sp.GetStatus(); st.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		s.Tags = append(s.Tags,
			JaegerTag{Key: "error", Type: "bool", Value: true},
			JaegerTag{Key: "otel.status_code", Type: "string", Value: "ERROR"})
		if m := st.GetMessage(); m != "" {
			s.Tags = append(s.Tags, JaegerTag{Key: "otel.status_description", Type: "string", Value: m})
		}
	}
	return s
}

// tagsOf converts OTLP attributes to tags; numbers become json.Number, as
// Jaeger's JSON decodes.
func tagsOf(attrs []*commonpb.KeyValue) []JaegerTag {
	out := make([]JaegerTag, 0, len(attrs))
	for _, kv := range attrs {
		t := JaegerTag{Key: kv.GetKey()}
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			t.Type, t.Value = "string", v.StringValue
		case *commonpb.AnyValue_BoolValue:
			t.Type, t.Value = "bool", v.BoolValue
		case *commonpb.AnyValue_IntValue:
			t.Type, t.Value = "int64", json.Number(strconv.FormatInt(v.IntValue, 10))
		case *commonpb.AnyValue_DoubleValue:
			t.Type, t.Value = "float64", json.Number(strconv.FormatFloat(v.DoubleValue, 'g', -1, 64))
		case *commonpb.AnyValue_BytesValue:
			t.Type, t.Value = "binary", hex.EncodeToString(v.BytesValue)
		default: // arrays and maps, as text
			t.Type, t.Value = "string", kv.GetValue().String()
		}
		out = append(out, t)
	}
	return out
}
