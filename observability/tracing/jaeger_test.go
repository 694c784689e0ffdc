package tracing

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/requestid"
)

const jaegerConfig = "../../jaeger/config.yaml"

// jaegerTrace is the part of GET /api/traces/{traceID} the tests read.
type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		ProcessID string     `json:"processID"`
		Tags      []jaegerKV `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string     `json:"serviceName"`
		Tags        []jaegerKV `json:"tags"`
	} `json:"processes"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func tag(kvs []jaegerKV, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

// fetchTrace polls the query API until the trace holds want spans.
func fetchTrace(t *testing.T, queryURL string, id trace.TraceID, want int) jaegerTrace {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(queryURL + "/api/traces/" + id.String())
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%s: %s", resp.Status, body)
		if resp.StatusCode != http.StatusOK {
			continue
		}
		var out struct {
			Data []jaegerTrace `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
		if len(out.Data) == 1 && len(out.Data[0].Spans) >= want {
			return out.Data[0]
		}
	}
	t.Fatalf("trace %s with %d spans not found in Jaeger; last answer %s", id, want, last)
	return jaegerTrace{}
}

// jaegerProvider returns a provider of service exporting to j, with the
// default configuration as modify leaves it (nil: unchanged). The test
// shuts it down.
func jaegerProvider(t *testing.T, j *testbackend.Jaeger, service string, modify func(*Config), opts ...Option) *Provider {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Endpoint = j.OTLPGRPCAddr
	if modify != nil {
		modify(&cfg)
	}
	p, err := New(cfg, service, append([]Option{WithLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJaegerConfigRenders(t *testing.T) {
	src, err := os.ReadFile(jaegerConfig)
	if err != nil {
		t.Fatal(err)
	}
	// The ports and retention jaeger/README.md documents.
	for _, want := range []string{"0.0.0.0:4317", "0.0.0.0:4318", "0.0.0.0:16686", "0.0.0.0:16685", "0.0.0.0:13133",
		"port: 8888", "keys: /badger/key", "values: /badger/data", "ephemeral: false", "spans: 168h"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("%s does not contain %q", jaegerConfig, want)
		}
	}
	dir := t.TempDir()
	ports := map[int]int{}
	next := 30000
	out, err := testbackend.RenderJaegerConfig(src, dir, func(int) int { next++; return next }, ports)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{4317, 4318, 16686, 16685, 13133, 8888} {
		if ports[p] == 0 || !strings.Contains(string(out), strconv.Itoa(ports[p])) {
			t.Errorf("port %d not replaced (map %v)", p, ports)
		}
	}
	for _, want := range []string{"keys: " + filepath.Join(dir, "key"), "values: " + filepath.Join(dir, "data"), "host: 127.0.0.1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered config lacks %q:\n%s", want, out)
		}
	}
}

func TestJaegerIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Jaeger")
	}
	j := testbackend.StartJaeger(t, jaegerConfig)

	newProvider := func(service string) *Provider {
		return jaegerProvider(t, j, service, func(c *Config) { c.Environment = "integration" }, WithInstanceID(service+"-1"))
	}
	gateway, user := newProvider("gateway"), newProvider("user")
	health := dial(t, gateway, startGRPC(t, user))

	// The gateway: one route calling user over gRPC, answering with the
	// trace ID so the test can look the trace up.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/check/{service}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: r.PathValue("service")}); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, trace.SpanContextFromContext(r.Context()).TraceID().String())
	})
	srv := httptest.NewServer(requestid.Middleware(gateway.Middleware(mux)))
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/v1/check/all", nil)
	req.Header.Set(requestid.HeaderName, "it-request-0001")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	traceID, err := trace.TraceIDFromHex(string(body))
	if err != nil {
		t.Fatalf("trace ID %q: %v", body, err)
	}

	// Shutdown flushes: the spans must reach Jaeger without waiting for
	// the batch timeout.
	for _, p := range []*Provider{gateway, user} {
		if err := shutdownReturns(t, p, 10*time.Second); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}

	tr := fetchTrace(t, j.QueryURL, traceID, 4)
	if tr.TraceID != traceID.String() {
		t.Errorf("traceID %q, want %s", tr.TraceID, traceID)
	}
	type node struct{ op, service, parentOp, requestID string }
	byID := map[string]int{}
	for i, s := range tr.Spans {
		byID[s.SpanID] = i
	}
	var got []node
	for _, s := range tr.Spans {
		n := node{op: s.OperationName, service: tr.Processes[s.ProcessID].ServiceName, requestID: tag(s.Tags, "request_id")}
		for _, ref := range s.References {
			if ref.RefType != "CHILD_OF" {
				t.Errorf("span %q has a %s reference", s.OperationName, ref.RefType)
				continue
			}
			i, ok := byID[ref.SpanID]
			if !ok {
				t.Errorf("span %q references span %s, not in the trace", s.OperationName, ref.SpanID)
				continue
			}
			n.parentOp = tr.Spans[i].OperationName + "@" + tr.Processes[tr.Spans[i].ProcessID].ServiceName
		}
		got = append(got, n)
	}
	const rpc = "grpc.health.v1.Health/Check"
	want := []node{
		{op: "GET /v1/check/{service}", service: "gateway", requestID: "it-request-0001"},
		{op: rpc, service: "gateway", parentOp: "GET /v1/check/{service}@gateway"},
		{op: rpc, service: "user", parentOp: rpc + "@gateway", requestID: "it-request-0001"},
		{op: "child", service: "user", parentOp: rpc + "@user"},
	}
	cmp := func(a, b node) int { return strings.Compare(a.op+a.service, b.op+b.service) }
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Errorf("spans in Jaeger:\n got %+v\nwant %+v", got, want)
	}
	for _, p := range tr.Processes {
		for key, v := range map[string]string{
			"deployment.environment.name": "integration",
			"service.instance.id":         p.ServiceName + "-1",
		} {
			if got := tag(p.Tags, key); got != v {
				t.Errorf("process %s tag %s = %q, want %q", p.ServiceName, key, got, v)
			}
		}
	}

	// Jaeger's own metrics are where jaeger/README.md says Prometheus
	// scrapes them, and count the spans just received.
	mresp, err := http.Get(j.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(metrics), "otelcol_receiver_accepted_spans") {
		t.Errorf("%s has no otelcol_receiver_accepted_spans:\n%.2000s", j.MetricsURL, metrics)
	}
}

func TestJaegerGoesDown(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Jaeger")
	}
	j := testbackend.StartJaeger(t, jaegerConfig)
	reg := prometheus.NewRegistry()
	p := jaegerProvider(t, j, "gateway", func(c *Config) { c.QueueSize = 64 }, WithRegisterer(reg))
	srv := httptest.NewServer(requestid.Middleware(p.Middleware(workHandler())))
	defer srv.Close()
	get := func() {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + "/v1/users/1")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Connected and exporting first, so the exporter holds a live
	// connection when Jaeger goes away.
	get()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush with Jaeger up: %v", err)
	}
	// Each request ends two spans: the server's and its handler's work.
	if c := readSpanCounts(t, reg); c != (spanCounts{exported: 2}) {
		t.Fatalf("one request with Jaeger up: %+v, want its 2 spans exported", c)
	}

	j.Stop()
	for range 300 {
		get()
	}
	// Every span is accounted for: none delivered, and the queue of 64
	// full, so most are counted as dropped.
	c := readSpanCounts(t, reg)
	if c.exported != 2 || c.ended() != 602 || c.queueFull == 0 {
		t.Errorf("300 requests with Jaeger down: %+v, want 2 exported and the other 600 queued or dropped, some as queue_full", c)
	}
	err := shutdownReturns(t, p, 2*time.Second)
	t.Logf("Shutdown with Jaeger gone: %v", err)
	noExportGoroutines(t)
}

// TestJaegerTailSampling runs Jaeger with jaeger/tail-sampling.yaml over
// jaeger/config.yaml and sends, at 100% in the services, traces of a gateway
// calling user: 300 that succeed, 20 whose call fails with NotFound (only
// the gateway's client span has status ERROR, as when a request answers
// 404) and 5 that take a second. Every failing and slow trace must be kept
// whole, and about 10% of the others.
func TestJaegerTailSampling(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Jaeger")
	}
	j := testbackend.StartJaeger(t, jaegerConfig, "../../jaeger/tail-sampling.yaml")
	gateway, user := jaegerProvider(t, j, "gateway", nil), jaegerProvider(t, j, "user", nil)
	health := dial(t, gateway, startGRPC(t, user))
	tracer := gateway.Tracer()
	request := func(name, service string, start time.Time) trace.TraceID {
		t.Helper()
		ctx, span := tracer.Start(context.Background(), name, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service}); (err != nil) != (service == "missing") {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return span.SpanContext().TraceID()
	}
	var ok, failing, slow []trace.TraceID
	for range 300 {
		ok = append(ok, request("ok", "", time.Now()))
	}
	for range 20 {
		failing = append(failing, request("failing", "missing", time.Now()))
	}
	for range 5 {
		slow = append(slow, request("slow", "", time.Now().Add(-time.Second)))
	}
	for _, p := range []*Provider{gateway, user} {
		if err := shutdownReturns(t, p, 10*time.Second); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}

	// root, the gateway's client span, user's server span, its child
	const spans = 4
	for _, id := range append(failing, slow...) {
		fetchTrace(t, j.QueryURL, id, spans)
	}
	// The successful traces came first: they were decided before the
	// last slow one was stored; a second covers the batch that follows.
	time.Sleep(time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	kept := 0
	for _, id := range ok {
		resp, err := client.Get(j.QueryURL + "/api/traces/" + id.String())
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Data []jaegerTrace `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			continue
		case resp.StatusCode != http.StatusOK || err != nil:
			t.Fatalf("GET trace %s: %s, %v", id, resp.Status, err)
		case len(out.Data) != 1 || len(out.Data[0].Spans) != spans:
			t.Errorf("trace %s kept in part: %+v", id, out.Data)
		}
		kept++
	}
	// Binomial(300, 0.1): mean 30, standard deviation 5.2.
	if kept < 5 || kept > 75 {
		t.Errorf("%d of %d successful traces kept, want about 10%%", kept, len(ok))
	}
	t.Logf("kept every failing and slow trace and %d of %d successful ones", kept, len(ok))
}
