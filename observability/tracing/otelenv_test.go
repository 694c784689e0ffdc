package tracing

import (
	"context"
	"fmt"
	"testing"

	"github.com/golden-stack/golden/internal/testbackend"
)

// TestStandardEnvironment sets the standard OpenTelemetry variables with
// --otlp-endpoint unset, as users of any other OpenTelemetry service would:
// spans reach the real Jaeger at OTEL_EXPORTER_OTLP_ENDPOINT, under
// OTEL_SERVICE_NAME, with OTEL_RESOURCE_ATTRIBUTES.
func TestStandardEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Jaeger")
	}
	j := testbackend.StartJaeger(t, jaegerConfig)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.OTLPGRPCAddr)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_SERVICE_NAME", "renamed-by-env")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments")
	p, err := New(DefaultConfig(), "user", WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.TracerProvider().Tracer("test").Start(context.Background(), "from-env")
	id := span.SpanContext().TraceID()
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr := fetchTrace(t, j.QueryURL, id, 1)
	proc := tr.Processes[tr.Spans[0].ProcessID]
	tags := map[string]string{}
	for _, kv := range proc.Tags {
		tags[kv.Key] = fmt.Sprint(kv.Value)
	}
	if proc.ServiceName != "renamed-by-env" || tags["team"] != "payments" {
		t.Errorf("process %q with tags %v, want renamed-by-env with team=payments", proc.ServiceName, tags)
	}
}

// TestStandardSampler lets OTEL_TRACES_SAMPLER replace the
// --trace-sample-ratio sampler.
func TestStandardSampler(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	p, exp := newTestProvider(t, "user", nil)
	_, span := p.TracerProvider().Tracer("test").Start(context.Background(), "dropped")
	span.End()
	if got := flushed(t, p, exp); len(got) != 0 {
		t.Errorf("%d spans exported with OTEL_TRACES_SAMPLER=always_off, want 0", len(got))
	}
}
