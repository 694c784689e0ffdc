// Package jaegerv3 describes Jaeger's stable query API, api_v3
// (jaeger.api_v3.QueryService), which Jaeger v2 serves over gRPC on port
// 16685. Its HTTP gateway under /api/v3 cannot search by attribute (Jaeger
// 2.2 to 2.12 read no attribute parameter there); the gRPC service can, and
// `golden lookup` finds a request's spans by their request_id attribute.
//
// The messages of jaeger-idl's proto/api_v3/query_service.proto are built
// here as protobuf descriptors and used through dynamicpb: the only Go code
// Jaeger publishes for them is internal to its module, and golden needs
// five small messages of it. Traces come back as OTLP TracesData
// (go.opentelemetry.io/proto/otlp/trace/v1), the type the proto names.
package jaegerv3

import (
	"fmt"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The methods of jaeger.api_v3.QueryService golden calls. GetTrace and
// FindTraces stream TracesData; GetServices answers once.
const (
	GetTrace    = "/jaeger.api_v3.QueryService/GetTrace"
	FindTraces  = "/jaeger.api_v3.QueryService/FindTraces"
	GetServices = "/jaeger.api_v3.QueryService/GetServices"
)

// The messages, as in query_service.proto.
var (
	GetTraceRequest      protoreflect.MessageDescriptor
	TraceQueryParameters protoreflect.MessageDescriptor
	FindTracesRequest    protoreflect.MessageDescriptor
	GetServicesRequest   protoreflect.MessageDescriptor
	GetServicesResponse  protoreflect.MessageDescriptor
)

func init() {
	// The imports register the files query_service.proto depends on.
	_ = tracepb.TracesData{}
	_ = timestamppb.Timestamp{}
	_ = durationpb.Duration{}

	field := func(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string, repeated bool) *descriptorpb.FieldDescriptorProto {
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if repeated {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(number), Type: typ.Enum(), Label: label.Enum(), JsonName: proto.String(jsonName(name))}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	const (
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		msg = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
		bl  = descriptorpb.FieldDescriptorProto_TYPE_BOOL
		i32 = descriptorpb.FieldDescriptorProto_TYPE_INT32
		ts  = ".google.protobuf.Timestamp"
		dur = ".google.protobuf.Duration"
	)
	file := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("jaeger/api_v3/query_service.proto"),
		Package:    proto.String("jaeger.api_v3"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"opentelemetry/proto/trace/v1/trace.proto", "google/protobuf/timestamp.proto", "google/protobuf/duration.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("GetTraceRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("trace_id", 1, str, "", false),
				field("start_time", 2, msg, ts, false),
				field("end_time", 3, msg, ts, false),
				field("raw_traces", 4, bl, "", false),
			}},
			{Name: proto.String("TraceQueryParameters"), Field: []*descriptorpb.FieldDescriptorProto{
				field("service_name", 1, str, "", false),
				field("operation_name", 2, str, "", false),
				field("attributes", 3, msg, ".jaeger.api_v3.TraceQueryParameters.AttributesEntry", true),
				field("start_time_min", 4, msg, ts, false),
				field("start_time_max", 5, msg, ts, false),
				field("duration_min", 6, msg, dur, false),
				field("duration_max", 7, msg, dur, false),
				field("search_depth", 8, i32, "", false),
				field("raw_traces", 9, bl, "", false),
			}, NestedType: []*descriptorpb.DescriptorProto{{
				Name:    proto.String("AttributesEntry"),
				Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, str, "", false), field("value", 2, str, "", false)},
				Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
			}}},
			{Name: proto.String("FindTracesRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("query", 1, msg, ".jaeger.api_v3.TraceQueryParameters", false),
			}},
			{Name: proto.String("GetServicesRequest")},
			{Name: proto.String("GetServicesResponse"), Field: []*descriptorpb.FieldDescriptorProto{
				field("services", 1, str, "", true),
			}},
		},
	}
	fd, err := protodesc.NewFile(file, protoregistry.GlobalFiles)
	if err != nil {
		panic(fmt.Sprintf("jaegerv3: %v", err)) // a mistake in the descriptor above
	}
	msgs := fd.Messages()
	GetTraceRequest = msgs.ByName("GetTraceRequest")
	TraceQueryParameters = msgs.ByName("TraceQueryParameters")
	FindTracesRequest = msgs.ByName("FindTracesRequest")
	GetServicesRequest = msgs.ByName("GetServicesRequest")
	GetServicesResponse = msgs.ByName("GetServicesResponse")
}

// jsonName is protoc's JSON name of a field: lowerCamelCase.
func jsonName(name string) string {
	out := make([]byte, 0, len(name))
	upper := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			upper = true
		case upper && c >= 'a' && c <= 'z':
			out = append(out, c-'a'+'A')
			upper = false
		default:
			out = append(out, c)
			upper = false
		}
	}
	return string(out)
}

// New returns an empty message of md.
func New(md protoreflect.MessageDescriptor) *dynamicpb.Message { return dynamicpb.NewMessage(md) }

// NewGetTraceRequest asks for one trace by its ID (32 hex digits), over all
// time.
func NewGetTraceRequest(traceID string) *dynamicpb.Message {
	m := New(GetTraceRequest)
	m.Set(GetTraceRequest.Fields().ByName("trace_id"), protoreflect.ValueOfString(traceID))
	return m
}

// Query is what FindTraces searches for.
type Query struct {
	Service string
	// Attributes must all be on one span of the trace.
	Attributes map[string]string
	// StartMin and StartMax bound the traces' start; Jaeger requires both.
	StartMin, StartMax time.Time
	// Limit is the most traces returned (search_depth).
	Limit int
}

// NewFindTracesRequest encodes q.
func NewFindTracesRequest(q Query) *dynamicpb.Message {
	p := New(TraceQueryParameters)
	f := TraceQueryParameters.Fields()
	p.Set(f.ByName("service_name"), protoreflect.ValueOfString(q.Service))
	attrs := p.Mutable(f.ByName("attributes")).Map()
	for k, v := range q.Attributes {
		attrs.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(v))
	}
	p.Set(f.ByName("start_time_min"), protoreflect.ValueOfMessage(timestamppb.New(q.StartMin).ProtoReflect()))
	p.Set(f.ByName("start_time_max"), protoreflect.ValueOfMessage(timestamppb.New(q.StartMax).ProtoReflect()))
	p.Set(f.ByName("search_depth"), protoreflect.ValueOfInt32(int32(min(q.Limit, 1<<20)))) //nolint:gosec // bounded just above
	m := New(FindTracesRequest)
	m.Set(FindTracesRequest.Fields().ByName("query"), protoreflect.ValueOfMessage(p))
	return m
}

// ParseFindTracesRequest decodes what NewFindTracesRequest encodes (for
// fakes of Jaeger).
func ParseFindTracesRequest(m *dynamicpb.Message) Query {
	p := m.Get(FindTracesRequest.Fields().ByName("query")).Message()
	f := TraceQueryParameters.Fields()
	q := Query{Service: p.Get(f.ByName("service_name")).String(), Attributes: map[string]string{}}
	p.Get(f.ByName("attributes")).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		q.Attributes[k.String()] = v.String()
		return true
	})
	q.StartMin = timestamp(p.Get(f.ByName("start_time_min")).Message())
	q.StartMax = timestamp(p.Get(f.ByName("start_time_max")).Message())
	q.Limit = int(p.Get(f.ByName("search_depth")).Int())
	return q
}

// timestamp reads a google.protobuf.Timestamp held in a dynamic message; the
// zero time when unset.
func timestamp(m protoreflect.Message) time.Time {
	if !m.IsValid() {
		return time.Time{}
	}
	fs := m.Descriptor().Fields()
	return time.Unix(m.Get(fs.ByName("seconds")).Int(), m.Get(fs.ByName("nanos")).Int()).UTC()
}

// TraceID reads the trace_id of a GetTraceRequest (for fakes of Jaeger).
func TraceID(m *dynamicpb.Message) string {
	return m.Get(GetTraceRequest.Fields().ByName("trace_id")).String()
}

// Services reads a GetServicesResponse.
func Services(m *dynamicpb.Message) []string {
	list := m.Get(GetServicesResponse.Fields().ByName("services")).List()
	out := make([]string, 0, list.Len())
	for i := range list.Len() {
		out = append(out, list.Get(i).String())
	}
	return out
}

// NewGetServicesResponse encodes services (for fakes of Jaeger).
func NewGetServicesResponse(services []string) *dynamicpb.Message {
	m := New(GetServicesResponse)
	list := m.Mutable(GetServicesResponse.Fields().ByName("services")).List()
	for _, s := range services {
		list.Append(protoreflect.ValueOfString(s))
	}
	return m
}
