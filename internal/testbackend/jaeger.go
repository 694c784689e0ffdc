package testbackend

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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
	// MetricsURL is the URL of Jaeger's own Prometheus metrics.
	MetricsURL string
}

// Ports the compose configuration listens on, which the tests look up.
const (
	jaegerOTLPGRPCPort = 4317
	jaegerOTLPHTTPPort = 4318
	jaegerQueryPort    = 16686
	jaegerMetricsPort  = 8888
)

// StartJaeger runs the installed Jaeger with a copy of configFile (such as
// jaeger/config.yaml) rendered for the test by RenderJaegerConfig, and waits
// until its query API answers /api/services and its OTLP/gRPC port accepts
// connections. Jaeger stops when the test ends.
func StartJaeger(t testing.TB, configFile string) *Jaeger {
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
	for _, p := range []int{jaegerOTLPGRPCPort, jaegerOTLPHTTPPort, jaegerQueryPort, jaegerMetricsPort} {
		if ports[p] == 0 {
			t.Fatalf("%s: no 0.0.0.0 listener on port %d", configFile, p)
		}
	}
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	j := &Jaeger{
		Process:      StartEnv(t, jaegerEnv, bin, "--config", file),
		OTLPGRPCAddr: loopback(ports[jaegerOTLPGRPCPort]),
		OTLPHTTPAddr: loopback(ports[jaegerOTLPHTTPPort]),
		QueryURL:     "http://" + loopback(ports[jaegerQueryPort]),
		MetricsURL:   "http://" + loopback(ports[jaegerMetricsPort]) + "/metrics",
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

var (
	commentLine = regexp.MustCompile(`(?m)^\s*#.*\n`)
	listenAddr  = regexp.MustCompile(`\b0\.0\.0\.0:(\d+)\b`)
	hostLine    = regexp.MustCompile(`(?m)^(\s*host:\s*)"?0\.0\.0\.0"?\s*$`)
	portLine    = regexp.MustCompile(`(?m)^(\s*port:\s*)(\d+)\s*$`)
	badgerPaths = regexp.MustCompile(`/badger/([A-Za-z0-9._-]+)`)
)

// RenderJaegerConfig rewrites a Jaeger configuration for a test: it drops
// comment lines, then every
// 0.0.0.0:PORT listen address becomes 127.0.0.1 with the port free(PORT)
// returns, a "host: 0.0.0.0" line becomes 127.0.0.1 and every "port: N"
// line gets free(N) (the Prometheus metrics reader), and every /badger/NAME
// path becomes dir/NAME. ports receives each original port's replacement;
// the same original port always gets the same replacement. It fails when
// anything still listens beyond loopback or writes under /badger.
func RenderJaegerConfig(src []byte, dir string, free func(port int) int, ports map[int]int) ([]byte, error) {
	var convErr error
	mapPort := func(s string) string {
		p, err := strconv.Atoi(s)
		if err != nil || p <= 0 || p > 65535 {
			convErr = fmt.Errorf("invalid port %q", s)
			return s
		}
		if _, ok := ports[p]; !ok {
			ports[p] = free(p)
		}
		return strconv.Itoa(ports[p])
	}
	out := commentLine.ReplaceAllString(string(src), "")
	out = listenAddr.ReplaceAllStringFunc(out, func(m string) string {
		return "127.0.0.1:" + mapPort(listenAddr.FindStringSubmatch(m)[1])
	})
	out = hostLine.ReplaceAllString(out, `${1}127.0.0.1`)
	out = portLine.ReplaceAllStringFunc(out, func(m string) string {
		sub := portLine.FindStringSubmatch(m)
		return sub[1] + mapPort(sub[2])
	})
	// Paths go through a placeholder so that the check below cannot
	// mistake a dir that itself contains "/badger" for a leftover.
	const placeholder = "\x00dir\x00"
	out = badgerPaths.ReplaceAllString(out, placeholder+"/${1}")
	if convErr != nil {
		return nil, convErr
	}
	for _, bad := range []string{"0.0.0.0", "[::]", "/badger"} {
		if strings.Contains(out, bad) {
			return nil, fmt.Errorf("rendered config still contains %q", bad)
		}
	}
	out = strings.ReplaceAll(out, placeholder+"/", filepath.ToSlash(dir)+"/")
	return []byte(out), nil
}
