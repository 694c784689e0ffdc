package testbackend

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/devstack"
)

// Jaeger is a Jaeger v2 process started by StartJaeger.
type Jaeger struct {
	*Process
	// OTLPGRPCAddr is the OTLP/gRPC receiver, host:port.
	OTLPGRPCAddr string
	// OTLPHTTPAddr is the OTLP/HTTP receiver, host:port.
	OTLPHTTPAddr string
	// QueryURL is the base URL of the query API and UI, without a trailing slash.
	QueryURL string
	// QueryGRPCAddr is the gRPC query API (api_v2 and api_v3), host:port.
	QueryGRPCAddr string
	// MetricsURL is the URL of Jaeger's own Prometheus metrics.
	MetricsURL string
}

// Ports the compose configuration listens on, which the tests look up.
const (
	jaegerOTLPGRPCPort  = devstack.JaegerOTLPGRPCPort
	jaegerOTLPHTTPPort  = devstack.JaegerOTLPHTTPPort
	jaegerQueryPort     = devstack.JaegerQueryPort
	jaegerQueryGRPCPort = devstack.JaegerQueryGRPCPort
	jaegerMetricsPort   = devstack.JaegerMetricsPort
)

// StartJaeger runs the installed Jaeger with a copy of configFile (such as
// jaeger/config.yaml) rendered for the test by RenderJaegerConfig, and waits
// until its query API answers /api/services and its OTLP/gRPC port accepts
// connections. Each overlay (such as jaeger/tail-sampling.yaml, which opens
// no port) is loaded after it as it is, with another --config. Jaeger stops
// when the test ends.
func StartJaeger(t testing.TB, configFile string, overlays ...string) *Jaeger {
	t.Helper()
	bin := Binary(t, "jaeger")
	src, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatalf("reading Jaeger config: %v", err)
	}
	dir := t.TempDir()
	ports := map[int]int{}
	rendered, err := RenderJaegerConfig(src, dir, func(int) int { return FreePort(t) }, ports)
	if err != nil {
		t.Fatalf("rendering %s: %v", configFile, err)
	}
	for _, p := range []int{jaegerOTLPGRPCPort, jaegerOTLPHTTPPort, jaegerQueryPort, jaegerQueryGRPCPort, jaegerMetricsPort} {
		if ports[p] == 0 {
			t.Fatalf("%s: no 0.0.0.0 listener on port %d", configFile, p)
		}
	}
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	j := &Jaeger{
		Process:       StartEnv(t, jaegerEnv, bin, JaegerArgs(file, overlays...)...),
		OTLPGRPCAddr:  loopback(ports[jaegerOTLPGRPCPort]),
		OTLPHTTPAddr:  loopback(ports[jaegerOTLPHTTPPort]),
		QueryURL:      "http://" + loopback(ports[jaegerQueryPort]),
		QueryGRPCAddr: loopback(ports[jaegerQueryGRPCPort]),
		MetricsURL:    "http://" + loopback(ports[jaegerMetricsPort]) + "/metrics",
	}
	queryReady := HTTPReady(j.QueryURL + "/api/services")
	j.WaitFor(t, 60*time.Second, func() error {
		if err := queryReady(); err != nil {
			return err
		}
		// Receivers start after extensions: the query API can answer
		// before OTLP listens.
		c, err := net.DialTimeout("tcp", j.OTLPGRPCAddr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return j
}

// jaegerEnv switches off the traces Jaeger's query service makes of itself.
// They go to the OTLP default localhost:4317 (in a container, Jaeger's own
// receiver; here, nothing), and flushing them at exit keeps Jaeger from
// stopping for the exporter's 10s timeout. jaeger/README.md asks compose to
// do the same.
var jaegerEnv = []string{"OTEL_TRACES_SAMPLER=always_off"}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// RenderJaegerConfig is devstack.RenderJaegerConfig: the copy of a Jaeger
// configuration that runs on loopback.
func RenderJaegerConfig(src []byte, dir string, free func(port int) int, ports map[int]int) ([]byte, error) {
	return devstack.RenderJaegerConfig(src, dir, free, ports)
}

// JaegerArgs are Jaeger's command-line arguments for the rendered
// configuration file and the overlays loaded after it.
func JaegerArgs(file string, overlays ...string) []string {
	args := []string{"--config", file}
	for _, o := range overlays {
		args = append(args, "--config", o)
	}
	return args
}
