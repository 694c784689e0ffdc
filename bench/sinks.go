package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/golden-stack/golden/internal/testbackend"
)

// OTLPSink is an OTLP/gRPC trace receiver on loopback that counts the spans
// it is sent and discards them; it stands in for Jaeger where Jaeger is not
// installed.
type OTLPSink struct {
	collectortrace.UnimplementedTraceServiceServer
	srv   *grpc.Server
	lis   net.Listener
	spans atomic.Int64
	done  chan struct{}
}

// StartOTLPSink listens on a free loopback port, without TLS, as Jaeger's
// OTLP receiver does on the compose network.
func StartOTLPSink() (*OTLPSink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP sink: %w", err)
	}
	s := &OTLPSink{srv: grpc.NewServer(), lis: lis, done: make(chan struct{})}
	collectortrace.RegisterTraceServiceServer(s.srv, s)
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(lis)
	}()
	return s, nil
}

// Export counts the spans of req.
func (s *OTLPSink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	var n int64
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += int64(len(ss.GetSpans()))
		}
	}
	s.spans.Add(n)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Addr returns the host:port to export to.
func (s *OTLPSink) Addr() string { return s.lis.Addr().String() }

// Spans returns how many spans arrived so far.
func (s *OTLPSink) Spans() int64 { return s.spans.Load() }

// Close stops the receiver.
func (s *OTLPSink) Close() error {
	s.srv.Stop()
	<-s.done
	return nil
}

// JaegerBinary returns where scripts/install-backends.sh puts Jaeger, and
// whether it is there.
func JaegerBinary() (string, bool) {
	p := filepath.Join(testbackend.Dir(), "jaeger-"+testbackend.Versions["jaeger"], "jaeger")
	_, err := os.Stat(p)
	return p, err == nil
}

// Jaeger is a Jaeger v2 process with the project's configuration on free
// loopback ports, for programs that cannot use testbackend.StartJaeger
// (which needs a testing.TB).
type Jaeger struct {
	// OTLPGRPCAddr is the OTLP/gRPC receiver, host:port.
	OTLPGRPCAddr string
	// MetricsURL is Jaeger's own Prometheus metrics endpoint.
	MetricsURL string
	queryURL   string
	cmd        *exec.Cmd
	dir        string
	done       chan struct{}
}

// Jaeger ports in jaeger/config.yaml, which RenderJaegerConfig remaps.
const (
	jaegerOTLPGRPCPort = 4317
	jaegerQueryPort    = 16686
	jaegerMetricsPort  = 8888
)

// StartJaeger runs the installed Jaeger binary with configFile (such as
// jaeger/config.yaml) rendered by testbackend.RenderJaegerConfig onto free
// loopback ports and a temporary Badger folder, then each overlay (such as
// jaeger/tail-sampling.yaml) as it is, writing its output to out, and waits
// up to timeout for its query API and OTLP receiver.
func StartJaeger(bin, configFile string, out io.Writer, timeout time.Duration, overlays ...string) (*Jaeger, error) {
	src, err := os.ReadFile(configFile)
	if err != nil {
		return nil, fmt.Errorf("reading Jaeger config: %w", err)
	}
	dir, err := os.MkdirTemp("", "golden-bench-jaeger-")
	if err != nil {
		return nil, err
	}
	ports := map[int]int{}
	var freeErr error
	rendered, err := testbackend.RenderJaegerConfig(src, dir, func(int) int {
		p, err := testbackend.NewPort()
		if err != nil {
			freeErr = err
		}
		return p
	}, ports)
	if err = errors.Join(err, freeErr); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("rendering %s: %w", configFile, err)
	}
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, rendered, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	j := &Jaeger{
		OTLPGRPCAddr: loopback(ports[jaegerOTLPGRPCPort]),
		MetricsURL:   "http://" + loopback(ports[jaegerMetricsPort]) + "/metrics",
		queryURL:     "http://" + loopback(ports[jaegerQueryPort]),
		cmd:          exec.Command(bin, testbackend.JaegerArgs(file, overlays...)...),
		dir:          dir,
		done:         make(chan struct{}),
	}
	// Jaeger's self-tracing would go to localhost:4317 and hold up its exit.
	j.cmd.Env = append(os.Environ(), "OTEL_TRACES_SAMPLER=always_off")
	j.cmd.Stdout, j.cmd.Stderr = out, out
	dieWithParent(j.cmd)
	if err := j.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { _ = j.cmd.Wait(); close(j.done) }()
	if err := j.waitReady(timeout); err != nil {
		j.Stop()
		return nil, err
	}
	return j, nil
}

func (j *Jaeger) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-j.done:
			return errors.New("jaeger exited during start")
		default:
		}
		if last = j.ready(client); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("jaeger not ready after %s: %w", timeout, last)
}

func (j *Jaeger) ready(client *http.Client) error {
	resp, err := client.Get(j.queryURL + "/api/services")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/api/services: %s", resp.Status)
	}
	// Receivers start after the query extension.
	c, err := net.DialTimeout("tcp", j.OTLPGRPCAddr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Pid returns Jaeger's process ID.
func (j *Jaeger) Pid() int { return j.cmd.Process.Pid }

// Stop ends Jaeger (SIGTERM, SIGKILL after 10s) and removes its folder.
func (j *Jaeger) Stop() {
	_ = j.cmd.Process.Signal(os.Interrupt)
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		_ = j.cmd.Process.Kill()
		<-j.done
	}
	_ = os.RemoveAll(j.dir)
}

// ReceiverSpans sums otelcol_receiver_accepted_spans and
// otelcol_receiver_refused_spans over every series at an OpenTelemetry
// collector's (Jaeger v2's) metrics URL.
func ReceiverSpans(metricsURL string) (accepted, refused float64, err error) {
	m, err := ScrapeCollector(metricsURL)
	if err != nil {
		return 0, 0, err
	}
	return m.Sum("otelcol_receiver_accepted_spans"), m.Sum("otelcol_receiver_refused_spans"), nil
}

// CollectorMetrics is one scrape of an OpenTelemetry collector's (Jaeger
// v2's) own metrics, by metric family name.
type CollectorMetrics map[string]*dto.MetricFamily

// ScrapeCollector reads the Prometheus text at metricsURL.
func ScrapeCollector(metricsURL string) (CollectorMetrics, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", metricsURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", metricsURL, err)
	}
	return families, nil
}

// Sum adds the values of the counters, gauges or untyped series of name
// (with or without a _total suffix) whose labels include every name-value
// pair of match ("policy", "errors", ...).
func (m CollectorMetrics) Sum(name string, match ...string) float64 {
	var sum float64
	for _, n := range []string{name, name + "_total"} {
		f := m[n]
		if f == nil {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			for i := 0; i+1 < len(match); i += 2 {
				if !hasLabel(s.GetLabel(), match[i], match[i+1]) {
					continue series
				}
			}
			switch {
			case s.Counter != nil:
				sum += s.GetCounter().GetValue()
			case s.Gauge != nil:
				sum += s.GetGauge().GetValue()
			case s.Untyped != nil:
				sum += s.GetUntyped().GetValue()
			}
		}
	}
	return sum
}

func hasLabel(labels []*dto.LabelPair, name, value string) bool {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() (string, error) {
	p, err := testbackend.NewPort()
	if err != nil {
		return "", err
	}
	return loopback(p), nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
