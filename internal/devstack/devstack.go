// Package devstack runs the observability backends of `golden dev` on this
// machine, without Docker: Consul, Jaeger, Mailpit, Alertmanager and
// Prometheus, from the binaries scripts/install-backends.sh builds into its
// cache, each with the project's own configuration (prometheus/,
// alertmanager/, jaeger/) rendered for loopback. Everything binds 127.0.0.1;
// data and logs stay under one state folder.
//
// The integration tests start the same binaries through internal/testbackend,
// which uses this package's Versions, Dir, Binary, RenderJaegerConfig and
// readiness checks.
package devstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/golden-stack/golden/observability/config"
)

// Ports are the loopback ports of what a person opens in a browser or points
// a tool at. The backends' other ports (Consul's Serf and server RPC,
// Jaeger's OTLP/HTTP and admin ports, Mailpit's SMTP) are picked free at
// start.
type Ports struct {
	Consul, Prometheus, Alertmanager, Jaeger, Mailpit int
	// JaegerGRPC is Jaeger's query API over gRPC (api_v3), which
	// `golden lookup` reads.
	JaegerGRPC int
	// OTLP is Jaeger's OTLP/gRPC receiver, where the services send spans.
	OTLP int
}

// DefaultPorts are the ports docker-compose.yml publishes, so the URLs of
// README.md work with either.
func DefaultPorts() Ports {
	return Ports{Consul: 8500, Prometheus: 9090, Alertmanager: 9093, Jaeger: 16686, JaegerGRPC: 16685, Mailpit: 8025, OTLP: 4317}
}

// Options configure a Stack.
type Options struct {
	// Root is the repository's top folder, which holds prometheus/,
	// alertmanager/ and jaeger/.
	Root string
	// BackendsDir is the backend cache (Dir when empty).
	BackendsDir string
	// StateDir receives the rendered configuration, the backends' data and
	// one log file per backend (logs/NAME.log).
	StateDir string
	Ports    Ports
	// Taken are ports the caller binds once the backends run (golden dev's
	// services). The backends' other ports are picked apart from them and
	// from Ports, or a port that was free a moment ago could be handed to
	// both.
	Taken []int
}

// Validate reports every bad option at once, each named by its flag in
// `golden dev` (config.Invalid).
func (o Options) Validate() error {
	var v config.Validator
	v.Check(o.StateDir != "", "dir", "must be set")
	named := []struct {
		flag string
		port int
	}{
		{"consul-port", o.Ports.Consul}, {"prometheus-port", o.Ports.Prometheus}, {"alertmanager-port", o.Ports.Alertmanager},
		{"jaeger-port", o.Ports.Jaeger}, {"jaeger-grpc-port", o.Ports.JaegerGRPC}, {"mailpit-port", o.Ports.Mailpit}, {"otlp-port", o.Ports.OTLP},
	}
	seen := map[int]string{}
	for _, n := range named {
		if n.port <= 0 || n.port > 65535 {
			v.Check(false, n.flag, "must be a port from 1 to 65535, got %d", n.port)
			continue
		}
		if other, ok := seen[n.port]; ok {
			v.Check(false, n.flag, "port %d is also --%s", n.port, other)
		}
		seen[n.port] = n.flag
	}
	for _, f := range []string{"prometheus/prometheus.yml", "alertmanager/alertmanager.yml", "jaeger/config.yaml"} {
		if _, err := os.Stat(filepath.Join(o.Root, f)); err != nil {
			v.Check(false, "root", "must be the repository's top folder, which holds %s: %v", f, err)
			break
		}
	}
	for _, name := range backends {
		_, err := Binary(o.BackendsDir, name)
		v.Check(err == nil, "backends-dir", "%v", err)
	}
	return v.Err()
}

// backends are the binaries a Stack runs, in start order.
var backends = []string{"consul", "jaeger", "mailpit", "alertmanager", "prometheus"}

// Stack is a running set of backends.
type Stack struct {
	// ConsulAddr is Consul's HTTP API, host:port.
	ConsulAddr string
	// JaegerGRPCAddr is Jaeger's query API over gRPC, host:port.
	JaegerGRPCAddr string
	// OTLPAddr is Jaeger's OTLP/gRPC receiver, host:port.
	OTLPAddr string
	// JaegerURL, PrometheusURL, AlertmanagerURL, ConsulURL and MailpitURL
	// are the web interfaces and APIs.
	JaegerURL, PrometheusURL, AlertmanagerURL, ConsulURL, MailpitURL string
	// LogDir holds one log file per backend.
	LogDir string

	procs []*process
}

// readyTimeout bounds each backend's start.
const readyTimeout = time.Minute

// Start renders the configuration, starts every backend and waits until each
// answers. On any failure it stops what it started and returns an error
// that carries the end of the failing backend's log.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	state, err := filepath.Abs(o.StateDir)
	if err != nil {
		return nil, err
	}
	s := &Stack{LogDir: filepath.Join(state, "logs")}
	for _, d := range []string{s.LogDir, filepath.Join(state, "config")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	// Consul's three, Mailpit's SMTP, and Jaeger's unpublished listeners.
	taken := map[int]bool{}
	for _, p := range append([]int{o.Ports.Consul, o.Ports.Prometheus, o.Ports.Alertmanager, o.Ports.Jaeger,
		o.Ports.JaegerGRPC, o.Ports.Mailpit, o.Ports.OTLP}, o.Taken...) {
		taken[p] = true
	}
	free, err := freePorts(10, taken)
	if err != nil {
		return nil, err
	}
	spare := free[4:]
	nextSpare := func(int) int {
		p := spare[0]
		spare = spare[1:]
		return p
	}
	s.ConsulAddr, s.OTLPAddr, s.JaegerGRPCAddr = addr(o.Ports.Consul), addr(o.Ports.OTLP), addr(o.Ports.JaegerGRPC)
	s.ConsulURL = "http://" + s.ConsulAddr + "/ui/"
	s.JaegerURL = "http://" + addr(o.Ports.Jaeger)
	s.PrometheusURL = "http://" + addr(o.Ports.Prometheus)
	s.AlertmanagerURL = "http://" + addr(o.Ports.Alertmanager)
	s.MailpitURL = "http://" + addr(o.Ports.Mailpit)
	smtpAddr := addr(free[3])

	// Jaeger: the compose config with the published ports kept, the rest free.
	jaegerPorts := map[int]int{JaegerQueryPort: o.Ports.Jaeger, JaegerQueryGRPCPort: o.Ports.JaegerGRPC, JaegerOTLPGRPCPort: o.Ports.OTLP}
	jaegerSrc, err := os.ReadFile(filepath.Join(root, "jaeger", "config.yaml"))
	if err != nil {
		return nil, err
	}
	if n := len(listenAddr.FindAll(jaegerSrc, -1)) + len(portLine.FindAll(jaegerSrc, -1)); n > len(jaegerPorts)+len(spare) {
		return nil, fmt.Errorf("jaeger/config.yaml has %d listeners, more than golden dev has ports for", n)
	}
	jaegerCfg, err := RenderJaegerConfig(jaegerSrc, filepath.Join(state, "jaeger"), nextSpare, jaegerPorts)
	if err != nil {
		return nil, fmt.Errorf("jaeger/config.yaml: %w", err)
	}
	jaegerMetrics := addr(jaegerPorts[JaegerMetricsPort])

	amCfg, err := renderAlertmanagerConfig(root, smtpAddr)
	if err != nil {
		return nil, err
	}
	promCfg, err := renderPrometheusConfig(root, map[string]string{
		"localhost:9090":    addr(o.Ports.Prometheus),
		"alertmanager:9093": addr(o.Ports.Alertmanager),
		"consul:8500":       s.ConsulAddr,
		"jaeger:8888":       jaegerMetrics,
	})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"jaeger.yaml": jaegerCfg, "alertmanager.yml": amCfg, "prometheus.yml": promCfg}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(state, "config", name), data, 0o600); err != nil {
			return nil, err
		}
	}
	cfgFile := func(name string) string { return filepath.Join(state, "config", name) }

	type backend struct {
		env   []string
		args  []string
		ready func() error
	}
	plan := map[string]backend{
		"consul": {args: []string{
			"agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1",
			"-http-port", strconv.Itoa(o.Ports.Consul),
			"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
			"-serf-lan-port", strconv.Itoa(free[0]), "-serf-wan-port", strconv.Itoa(free[1]), "-server-port", strconv.Itoa(free[2]),
			// As consul/consul.hcl: Prometheus text on /v1/agent/metrics.
			"-hcl", `telemetry { prometheus_retention_time = "2m" disable_hostname = true }`,
		}, ready: ConsulLeader(s.ConsulAddr)},
		// Jaeger does not trace itself.
		"jaeger": {env: []string{"OTEL_TRACES_SAMPLER=always_off"}, args: []string{"--config", cfgFile("jaeger.yaml")},
			ready: all(HTTPReady(s.JaegerURL+"/api/services"), tcpReady(s.OTLPAddr), tcpReady(s.JaegerGRPCAddr))},
		"mailpit": {args: []string{
			"--listen", addr(o.Ports.Mailpit), "--smtp", smtpAddr,
			"--database", filepath.Join(state, "mailpit.db"), "--disable-version-check", "--quiet",
		}, ready: HTTPReady(s.MailpitURL + "/readyz")},
		"alertmanager": {args: []string{
			"--config.file=" + cfgFile("alertmanager.yml"),
			"--storage.path=" + filepath.Join(state, "alertmanager"),
			"--web.listen-address=" + addr(o.Ports.Alertmanager),
			"--cluster.listen-address=", // one instance, no gossip
			"--log.level=warn",
		}, ready: HTTPReady(s.AlertmanagerURL + "/-/ready")},
		"prometheus": {args: []string{
			"--config.file=" + cfgFile("prometheus.yml"),
			"--storage.tsdb.path=" + filepath.Join(state, "prometheus"),
			"--web.listen-address=" + addr(o.Ports.Prometheus),
			"--enable-feature=exemplar-storage,native-histograms",
			"--log.level=warn",
		}, ready: HTTPReady(s.PrometheusURL + "/-/ready")},
	}
	ready := make([]func() error, 0, len(backends))
	for _, name := range backends {
		b := plan[name]
		bin, err := Binary(o.BackendsDir, name)
		if err != nil {
			s.Stop()
			return nil, err
		}
		p, err := startProcess(name, s.LogDir, bin, b.env, b.args...)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
		ready = append(ready, b.ready)
	}
	// They start side by side; each is waited for in turn.
	for i, p := range s.procs {
		if err := p.waitReady(ctx, readyTimeout, ready[i]); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Stop stops every backend, the last started first, each within 10 s.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop(10 * time.Second)
	}
}
