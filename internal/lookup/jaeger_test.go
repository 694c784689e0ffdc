package lookup_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/golden-stack/golden/internal/lookup"
	"github.com/golden-stack/golden/internal/testbackend"
)

// TestJaegerAPIv3AgainstRealJaeger runs the client against a real Jaeger:
// spans sent over OTLP come back through api_v3 by trace ID and by their
// request_id attribute, with service, parent, kind and error status, and an
// unknown trace is ErrTraceNotFound.
func TestJaegerAPIv3AgainstRealJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Jaeger")
	}
	jg := testbackend.StartJaeger(t, "../../jaeger/config.yaml")
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(jg.OTLPGRPCAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("lookup-test"), semconv.ServiceInstanceID("lookup-test-1"))))
	defer func() { _ = tp.Shutdown(ctx) }()
	tracer := tp.Tracer("lookup-test")
	send := func(requestID string) string {
		sctx, root := tracer.Start(ctx, "GET /v1/users/{id}", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("request_id", requestID)))
		_, child := tracer.Start(sctx, "golden.user.v1.UserService/GetUser", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("request_id", requestID), attribute.Int("rpc.grpc.status_code", 5)))
		child.SetStatus(codes.Error, "user not found")
		child.End()
		root.End()
		return root.SpanContext().TraceID().String()
	}
	wanted, other := send("req-wanted-0001"), send("req-other-00001")

	j, err := lookup.NewJaeger(jg.QueryGRPCAddr, jg.QueryURL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var traces []lookup.JaegerTrace
	deadline := time.Now().Add(30 * time.Second)
	for {
		traces, err = j.FindTraces(ctx, "lookup-test", map[string]string{"request_id": "req-wanted-0001"},
			time.Now().Add(-time.Hour), time.Now().Add(time.Minute), 20)
		if err == nil && len(traces) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || len(traces) != 1 || traces[0].TraceID != wanted {
		t.Fatalf("FindTraces by request_id = %d traces (%v), want only %s (not %s)", len(traces), err, wanted, other)
	}

	tr, err := j.Trace(ctx, wanted)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Spans) != 2 {
		t.Fatalf("trace has %d spans, want 2", len(tr.Spans))
	}
	got := map[string]string{}
	for _, s := range tr.Spans {
		kind, errTag, parent := "", "", ""
		for _, tag := range s.Tags {
			switch tag.Key {
			case "span.kind":
				kind = fmt.Sprint(tag.Value)
			case "error":
				errTag = fmt.Sprint(tag.Value)
			}
		}
		if len(s.References) > 0 {
			parent = s.References[0].RefType
		}
		got[s.OperationName] = fmt.Sprintf("%s %s kind=%s error=%s parent=%s", tr.Processes[s.ProcessID].ServiceName, s.TraceID, kind, errTag, parent)
	}
	want := map[string]string{
		"GET /v1/users/{id}":                 "lookup-test " + wanted + " kind=server error= parent=",
		"golden.user.v1.UserService/GetUser": "lookup-test " + wanted + " kind=client error=true parent=CHILD_OF",
	}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("span %q: %q, want %q", op, got[op], w)
		}
	}

	services, err := j.Services(ctx)
	if err != nil || !slices.Contains(services, "lookup-test") {
		t.Errorf("Services = %v (%v), want lookup-test among them", services, err)
	}
	if _, err := j.Trace(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, lookup.ErrTraceNotFound) {
		t.Errorf("unknown trace: %v, want ErrTraceNotFound", err)
	}
}
