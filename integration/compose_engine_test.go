package integration

// docker-compose.yml as it is, run on a real Docker engine by
// `make test-compose` (scripts/test-compose.sh), which provides the engine
// and the images (pulled, or stand-ins from scripts/standin-images.sh).

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"gopkg.in/yaml.v3"

	lg "github.com/golden-stack/golden/internal/loadgen"
	"github.com/golden-stack/golden/internal/lookup"
	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/canary"
)

// composeEngineProject is the compose project the test runs, apart from
// a user's own "golden" one.
const composeEngineProject = "golden-test"

// composeLoadRate is the test's own load through the published gateway
// port, on top of the stack's loadgen service.
const composeLoadRate = 50

// composeLoadMix is the test's mix of requests: the default mix's reads,
// refreshes and faults, with a quarter of its sign-ups and logins. Each of
// those hashes a password with bcrypt (about 110 ms of CPU at the default
// cost on a 2-core machine): at 50 requests/s the default mix needs
// about 1.7 cores for them alone, which leaves a 2-core machine no room.
var composeLoadMix = lg.Mix{SignUp: 3, Login: 4, Refresh: 10, Get: 55, List: 20, Delete: 1, Fault: 7}

// composeGoldenInstances are the golden services in docker-compose.yml
// that serve, with the Consul service each registers as.
var composeGoldenInstances = map[string]string{
	"auth-1": "auth", "auth-2": "auth", "user-1": "user", "user-2": "user", "user-canary": "user", "gateway": "gateway",
}

// composeStack is one run of docker-compose.yml on the engine.
type composeStack struct {
	t       *testing.T
	bin     string
	env     []string
	ports   map[string]int // published port variable -> port
	file    composeFile
	running []string // the services started
	load    *backgroundLoad
}

// compose runs docker-compose with ARGS in the repository root, bounded by
// timeout.
func (s *composeStack) compose(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"-p", composeEngineProject, "-f", "docker-compose.yml"}, args...)...)
	cmd.Dir = composeRoot(s.t)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %s", ctx.Err(), timeout)
	}
	return string(out), err
}

// must is compose that fails the test on an error.
func (s *composeStack) must(timeout time.Duration, args ...string) string {
	s.t.Helper()
	out, err := s.compose(timeout, args...)
	if err != nil {
		s.t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// composeContainer is a line of `docker-compose ps --format json`.
type composeContainer struct {
	Name, Service, State, Health string
	ExitCode                     int
}

// containers lists the project's containers, stopped ones too.
func (s *composeStack) containers() (map[string]composeContainer, error) {
	out, err := s.compose(30*time.Second, "ps", "-a", "--format", "json")
	if err != nil {
		return nil, fmt.Errorf("docker-compose ps: %v: %s", err, out)
	}
	cs := map[string]composeContainer{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var c composeContainer
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("docker-compose ps: %v: %s", err, line)
		}
		cs[c.Service] = c
	}
	return cs, nil
}

// waitHealthy waits until each service's container is healthy.
func (s *composeStack) waitHealthy(timeout time.Duration, services ...string) {
	s.t.Helper()
	eventually(s.t, timeout, fmt.Sprintf("%v healthy", services), func() error {
		cs, err := s.containers()
		if err != nil {
			return err
		}
		for _, svc := range services {
			if c := cs[svc]; c.Health != "healthy" {
				return fmt.Errorf("%s: %s %s", svc, c.State, c.Health)
			}
		}
		return nil
	})
}

// outage stops service for d, then starts it and waits until it is healthy.
func (s *composeStack) outage(service string, d time.Duration) {
	s.t.Helper()
	s.must(time.Minute, "stop", service)
	time.Sleep(d)
	s.must(time.Minute, "start", service)
	s.waitHealthy(time.Minute, service)
}

// url is http://127.0.0.1:<published port of variable>.
func (s *composeStack) url(portVar string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.ports[portVar])
}

// signedIn is url with the sign-in of user admin and the password the
// test gave compose in passwordVar; Go's HTTP client sends it as basic
// auth (and leaves it out of its errors).
func (s *composeStack) signedIn(portVar, passwordVar string) string {
	return "http://admin:" + s.envValue(passwordVar) + "@127.0.0.1:" + strconv.Itoa(s.ports[portVar])
}

// signInRequired checks that Prometheus, Alertmanager and Jaeger (through
// jaeger-auth) answer 401 to a request without their sign-in and to one with
// a wrong password, and Jaeger's query API over gRPC Unauthenticated.
func (s *composeStack) signInRequired() {
	t := s.t
	t.Helper()
	for _, c := range []struct{ name, url string }{
		{"Prometheus", s.url("PROMETHEUS_PORT") + "/api/v1/targets"},
		{"Prometheus (wrong password)", "http://admin:wrong@127.0.0.1:" + strconv.Itoa(s.ports["PROMETHEUS_PORT"]) + "/-/ready"},
		{"Alertmanager", s.url("ALERTMANAGER_PORT") + "/api/v2/alerts"},
		{"Alertmanager (wrong password)", "http://admin:wrong@127.0.0.1:" + strconv.Itoa(s.ports["ALERTMANAGER_PORT"]) + "/-/ready"},
		{"Jaeger", s.url("JAEGER_PORT") + "/api/services"},
		{"Jaeger (wrong password)", "http://admin:wrong@127.0.0.1:" + strconv.Itoa(s.ports["JAEGER_PORT"]) + "/"},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without its sign-in: %s, want 401", c.name, resp.Status)
		}
	}
	j, err := lookup.NewJaeger("127.0.0.1:"+strconv.Itoa(s.ports["JAEGER_GRPC_PORT"]), s.url("JAEGER_PORT"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Services(context.Background()); err == nil || !strings.Contains(err.Error(), "sign-in") {
		t.Errorf("Jaeger's query API without sign-in: %v, want Unauthenticated", err)
	}
	t.Log("Prometheus, Alertmanager and Jaeger: 401 (gRPC Unauthenticated) without their sign-in and with a wrong password")
}

// failures logs the requests of the test's load sent in [from, to) and
// fails the test for each unexpected failure among them.
func (s *composeStack) failures(step string, from, to time.Time) {
	s.t.Helper()
	// A request sent just before to may still be in flight: it belongs to
	// this window.
	s.load.Settle(to)
	var total int
	var bad []result
	for _, r := range s.load.Results() {
		if sent := r.end.Add(-r.Latency); sent.Before(from) || !sent.Before(to) {
			continue
		}
		total++
		if r.Outcome == lg.UnexpectedFailure {
			bad = append(bad, r)
		}
	}
	s.t.Logf("%s: %d requests, %d unexpected failures (%s)", step, total, len(bad), to.Sub(from).Round(time.Second))
	for i, r := range bad {
		if i == 5 {
			s.t.Errorf("%s: ... %d more", step, len(bad)-5)
			break
		}
		s.t.Errorf("%s: %s %s sent %s answered %d %s (%v)", step, r.Op, r.RequestID, r.end.Add(-r.Latency).UTC().Format("15:04:05.000"), r.Status, r.Code, r.Err)
	}
}

// composeLeftOut reads GOLDEN_COMPOSE_LEAVE_OUT (the services whose images
// are missing) and adds every service that depends on one of them.
func composeLeftOut(f composeFile) map[string]bool {
	out := map[string]bool{}
	for _, svc := range strings.Fields(os.Getenv("GOLDEN_COMPOSE_LEAVE_OUT")) {
		out[svc] = true
	}
	for changed := true; changed; {
		changed = false
		for name, svc := range f.Services {
			for dep := range svc.DependsOn {
				if out[dep] && !out[name] {
					out[name], changed = true, true
				}
			}
		}
	}
	return out
}

// TestComposeStackOnDockerEngine runs docker-compose.yml on a real Docker
// engine under load: start-up, the targets Prometheus finds through Consul,
// a trace through the services and the database in Jaeger, Alertmanager's
// routes, every auth and user instance restarted, Consul and Jaeger
// stopped for 60 s each, Graylog absent, memory against the limits, and a
// clean stop. It runs only from `make test-compose`.
func TestComposeStackOnDockerEngine(t *testing.T) {
	if os.Getenv("GOLDEN_COMPOSE_ENGINE") == "" {
		t.Skip("runs docker-compose.yml on a Docker engine: make test-compose")
	}
	s := &composeStack{t: t, bin: testbackend.Binary(t, "docker-compose"), file: loadCompose(t), ports: map[string]int{}}

	// Secrets and published ports through the environment, so that no .env
	// of the checkout takes part and nothing clashes with a running stack.
	home := t.TempDir()
	s.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_CONFIG=" + home}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		s.env = append(s.env, "DOCKER_HOST="+h)
	}
	for _, v := range []string{"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "GRAYLOG_ADMIN_PASSWORD", "GRAYLOG_PASSWORD_SECRET", "GRAYLOG_ROOT_PASSWORD_SHA2", "MAILPIT_PASSWORD", "PROMETHEUS_PASSWORD", "ALERTMANAGER_PASSWORD", "JAEGER_PASSWORD", "CANARY_GUARD_TOKEN"} {
		s.env = append(s.env, v+"="+rand.Text())
	}
	for _, v := range []string{"CONSUL_MANAGEMENT_TOKEN", "CONSUL_OPERATOR_TOKEN"} {
		s.env = append(s.env, v+"="+testbackend.UUID(t))
	}
	for _, v := range composePortVars {
		s.ports[v] = testbackend.FreePort(t)
		s.env = append(s.env, v+"="+strconv.Itoa(s.ports[v]))
	}
	empty := home + "/empty.env"
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.env = append(s.env, "COMPOSE_ENV_FILES="+empty)

	leftOut := composeLeftOut(s.file)
	for name := range s.file.Services {
		if !leftOut[name] {
			s.running = append(s.running, name)
		}
	}
	slices.Sort(s.running)
	if len(leftOut) > 0 {
		t.Logf("left out, their images cannot be had here: %s", strings.Join(slices.Sorted(maps.Keys(leftOut)), " "))
	}

	// Whatever an earlier run left, then this run's containers and volumes
	// at the end, failed or not (with the logs of what was unhealthy).
	_, _ = s.compose(2*time.Minute, "down", "-v", "--remove-orphans")
	t.Cleanup(func() {
		if t.Failed() {
			if cs, err := s.containers(); err == nil {
				for svc, c := range cs {
					if c.Health == "unhealthy" || (c.State == "exited" && c.ExitCode != 0) || c.State == "restarting" {
						out, _ := s.compose(30*time.Second, "logs", "--no-color", "--tail", "40", svc)
						t.Logf("%s (%s %s, exit %d):\n%s", svc, c.State, c.Health, c.ExitCode, out)
					}
				}
			}
		}
		if out, err := s.compose(3*time.Minute, "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("docker-compose down -v: %v\n%s", err, out)
		}
	})

	// The load starts first, against a gateway that does not exist yet.
	cfg := lg.DefaultConfig()
	cfg.Target = s.url("GATEWAY_PORT")
	// At most 16 requests in flight (the generator's default): a request
	// that falls due while 16 are waiting is counted as dropped, not sent.
	// Early in a run every request is a sign-up or a login (no virtual user
	// exists yet), and a deeper pool of hashing requests would only queue
	// up on the CPUs past the deadline.
	cfg.Rate, cfg.Duration, cfg.ReportInterval, cfg.Seed = composeLoadRate, 0, 0, 1
	cfg.Mix = composeLoadMix
	s.load = startLoad(t, cfg)
	loadStart := time.Now()

	// Start-up: every service healthy, the one-shot containers exited 0.
	start := time.Now()
	s.must(5*time.Minute, append([]string{"up", "-d", "--no-build", "--pull", "never", "--wait", "--wait-timeout", "180"}, s.running...)...)
	healthy := time.Now()
	t.Logf("start-up: %d services up and healthy in %s", len(s.running), healthy.Sub(start).Round(100*time.Millisecond))
	cs, err := s.containers()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range s.running {
		c, ok := cs[name]
		switch {
		case !ok:
			t.Errorf("%s: no container", name)
		case s.file.Services[name].Restart == "no":
			if c.State != "exited" || c.ExitCode != 0 {
				t.Errorf("one-shot %s: %s, exit code %d, want exited 0", name, c.State, c.ExitCode)
			}
		case s.file.Services[name].Healthcheck != nil:
			if c.Health != "healthy" {
				t.Errorf("%s: %s %s, want healthy", name, c.State, c.Health)
			}
		default:
			if c.State != "running" {
				t.Errorf("%s: %s, want running", name, c.State)
			}
		}
	}

	// Each service's certificate volume holds its own files only: no CA
	// key, no other service's key.
	for kind, want := range map[string]string{
		"certs-auth":         "auth.crt auth.key ca.crt consul.token token-signing.key token-signing.pub",
		"certs-user":         "ca.crt consul.token token-signing.pub user.crt user.key",
		"certs-gateway":      "ca.crt consul.token gateway.crt gateway.key token-signing.pub",
		"prometheus-secrets": "consul.token",
		"canary-guard":       "consul.token webhook-token",
	} {
		if got := strings.Join(strings.Fields(s.inVolume(kind, "ls", "/v")), " "); got != want {
			t.Errorf("volume %s holds %q, want %q", kind, got, want)
		}
	}

	consul, err := api.NewClient(&api.Config{Address: "127.0.0.1:" + strconv.Itoa(s.ports["CONSUL_PORT"]), Token: s.envValue("CONSUL_OPERATOR_TOKEN")})
	if err != nil {
		t.Fatal(err)
	}
	instances := map[string]int{}
	for _, svc := range composeGoldenInstances {
		instances[svc]++
	}
	waitPassing(t, consul, instances, time.Minute)
	time.Sleep(5 * time.Second)
	s.failures("start-up, from the gateway healthy", healthy, time.Now())
	s.consulACLs()
	s.signInRequired()

	// Prometheus: every golden instance up through consul_sd, and the
	// backends' own jobs.
	eventually(t, 90*time.Second, "every target up in Prometheus", func() error {
		return composeTargetsUp(s.signedIn("PROMETHEUS_PORT", "PROMETHEUS_PASSWORD"), leftOut)
	})

	// Jaeger: one trace spans the gateway, auth or user, and the database.
	eventually(t, time.Minute, "a trace from the gateway through user or auth to PostgreSQL", func() error {
		return composeTraceThroughStore(s.signedIn("JAEGER_PORT", "JAEGER_PASSWORD"), time.Time{})
	})

	// Jaeger's query API v3 on its published gRPC port, as `golden lookup`
	// reads it: a request of the load found by its request_id.
	eventually(t, time.Minute, "a request of the load found through Jaeger's api_v3 on 127.0.0.1", s.spansByRequestID)

	// Alertmanager: the routes of alertmanager/alertmanager.yml are loaded.
	if err := composeRoutesLoaded(t, s.signedIn("ALERTMANAGER_PORT", "ALERTMANAGER_PASSWORD")); err != nil {
		t.Error(err)
	}

	// An alert posted to Alertmanager reaches Mailpit as email.
	if !leftOut["mailpit"] {
		s.alertEmailed()
	}

	// The canary gets traffic at weight 20, and the canary alert reaches
	// the guard, which rolls it back.
	if !leftOut["alertmanager"] {
		s.canaryRollsBack()
	}

	// Grafana and Graylog, where their images could be had.
	if !leftOut["grafana"] {
		s.checkGrafana(leftOut)
	}
	if !leftOut["graylog"] {
		s.lookupThroughGraylog()
	}

	// Every golden instance restarted in turn (docker compose restart:
	// SIGTERM, then start): the auth and user instances have a twin, so no
	// request may fail.
	from := time.Now()
	for _, name := range []string{"auth-1", "auth-2", "user-1", "user-2"} {
		t0 := time.Now()
		s.must(time.Minute, "restart", "--no-deps", name)
		s.waitHealthy(time.Minute, name)
		waitPassing(t, consul, instances, time.Minute)
		t.Logf("restart %s: healthy and passing in Consul again after %s", name, time.Since(t0).Round(100*time.Millisecond))
		time.Sleep(2 * time.Second)
	}
	s.failures("restart of every auth and user instance", from, time.Now())

	// The gateway is the one published entry point: while it restarts,
	// connections are refused. No request may get an error answer, and
	// none may fail once it is healthy again.
	gatewayRestart := time.Now()
	s.must(time.Minute, "restart", "--no-deps", "gateway")
	s.waitHealthy(time.Minute, "gateway")
	gatewayBack := time.Now()
	time.Sleep(5 * time.Second)
	var refused, answered int
	for _, r := range s.load.Results() {
		if r.end.Before(gatewayRestart) || r.end.After(gatewayBack) || r.Outcome != lg.UnexpectedFailure {
			continue
		}
		if r.Status == 0 {
			refused++
		} else {
			answered++
			t.Errorf("restart gateway: %s %s answered %d %s", r.Op, r.RequestID, r.Status, r.Code)
		}
	}
	t.Logf("restart gateway: healthy again after %s; %d requests found no gateway meanwhile, %d error answers",
		gatewayBack.Sub(gatewayRestart).Round(100*time.Millisecond), refused, answered)
	s.failures("after the gateway's restart", gatewayBack, time.Now())

	// Consul stopped for 60 s, then started.
	from = time.Now()
	s.outage("consul", 60*time.Second)
	t0 := time.Now()
	waitPassing(t, consul, instances, time.Minute)
	t.Logf("consul: every instance passing %s after Consul was healthy again", time.Since(t0).Round(100*time.Millisecond))
	time.Sleep(5 * time.Second)
	s.failures("Consul stopped 60 s and started", from, time.Now())

	// Jaeger stopped for 60 s, then started: the services keep serving,
	// count the spans they could not deliver, and their spans reach it
	// again.
	spanTotal := func(metric string) (float64, error) {
		return promQuery(s.signedIn("PROMETHEUS_PORT", "PROMETHEUS_PASSWORD"), `sum(`+metric+`{job="golden"})`)
	}
	droppedBefore, err := spanTotal("golden_trace_spans_dropped_total")
	if err != nil {
		t.Errorf("spans dropped before Jaeger's outage: %v", err)
	}
	from = time.Now()
	s.outage("jaeger", 60*time.Second)
	jaegerBack := time.Now()
	exportedBack, err := spanTotal("golden_trace_spans_exported_total")
	if err != nil {
		t.Errorf("spans exported when Jaeger is back: %v", err)
	}
	eventually(t, 90*time.Second, "new traces in Jaeger after its restart", func() error {
		return composeTraceThroughStore(s.signedIn("JAEGER_PORT", "JAEGER_PASSWORD"), jaegerBack)
	})
	eventually(t, time.Minute, "the spans lost while Jaeger was away counted in Prometheus", func() error {
		dropped, err := spanTotal("golden_trace_spans_dropped_total")
		if err == nil && dropped <= droppedBefore {
			err = fmt.Errorf("golden_trace_spans_dropped_total %.0f, %.0f before the outage", dropped, droppedBefore)
		}
		return err
	})
	eventually(t, time.Minute, "spans exported again in Prometheus", func() error {
		exported, err := spanTotal("golden_trace_spans_exported_total")
		if err == nil && exported <= exportedBack {
			err = fmt.Errorf("golden_trace_spans_exported_total %.0f, %.0f when Jaeger came back", exported, exportedBack)
		}
		return err
	})
	s.failures("Jaeger stopped 60 s and started", from, time.Now())

	// Graylog absent: every instance keeps serving (the checks above) and
	// counts the GELF messages it holds in its queue or dropped.
	if leftOut["graylog"] {
		for inst := range composeGoldenInstances {
			var v [3]float64
			for i, q := range []string{
				`sum(golden_log_messages_sent_total{sink="gelf",instance=~"%s:.*"})`,
				`sum(golden_log_messages_queued{sink="gelf",instance=~"%s:.*"})`,
				`sum(golden_log_messages_dropped_total{sink="gelf",instance=~"%s:.*"})`,
			} {
				if v[i], err = promQuery(s.signedIn("PROMETHEUS_PORT", "PROMETHEUS_PASSWORD"), fmt.Sprintf(q, inst)); err != nil {
					t.Errorf("%s: %v", inst, err)
				}
			}
			t.Logf("graylog absent: %s sent %.0f GELF messages, holds %.0f, dropped %.0f", inst, v[0], v[1], v[2])
			if v[0] != 0 || v[1]+v[2] == 0 {
				t.Errorf("%s: with Graylog absent, want nothing sent and the messages held or dropped counted", inst)
			}
		}
	}

	// Memory after 3 minutes of load at 50 requests/s: under 80% of each
	// container's limit.
	if d := 3*time.Minute - time.Since(loadStart); d > 0 {
		time.Sleep(d)
	}
	s.memoryUnderLimits(0.8)
	s.failures("the whole run, from the gateway healthy to its restart", healthy, gatewayRestart)
	s.failures("the whole run, from the gateway healthy again", gatewayBack, time.Now())

	// Stop: every golden container exits 0 within its stop_grace_period
	// (compose sends SIGKILL after it: exit code 137).
	sum := s.load.Stop()
	t.Logf("load: %d requests in %.0f s (%.1f/s), %d dropped as %d were in flight, %d unexpected failures in all (start-up and the gateway's restart included)",
		sum.Requests, sum.DurationSeconds, sum.Rate, sum.Dropped, cfg.Concurrency, sum.UnexpectedFailures)
	t0 = time.Now()
	s.must(3*time.Minute, "stop")
	t.Logf("docker compose stop: %s", time.Since(t0).Round(100*time.Millisecond))
	cs, err = s.containers()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range s.running {
		c := cs[name]
		golden := s.file.Services[name].Image == composeGoldenImage
		switch {
		case c.ExitCode == 0:
		case golden:
			t.Errorf("%s exited %d on stop, want 0", name, c.ExitCode)
		default:
			t.Logf("stop: %s exited %d", name, c.ExitCode)
		}
	}
}

// checkGrafana checks through Grafana's HTTP API that every provisioned
// dashboard is there, that each data source of the stack passes its health
// check and that a panel query returns data, and that Grafana logged no
// provisioning error. (Only where Grafana's image can be pulled: it has no
// stand-in.)
func (s *composeStack) checkGrafana(leftOut map[string]bool) {
	t := s.t
	t.Helper()
	password := s.envValue("GRAFANA_ADMIN_PASSWORD")
	get := func(path string, out any) error {
		req, _ := http.NewRequest(http.MethodGet, s.url("GRAFANA_PORT")+path, nil)
		req.SetBasicAuth("admin", password)
		return composeJSON(req, out)
	}
	var found []struct{ UID string }
	if err := get("/api/search?type=dash-db", &found); err != nil {
		t.Fatalf("grafana search: %v", err)
	}
	for _, d := range loadDashboards(t) {
		if !slices.ContainsFunc(found, func(f struct{ UID string }) bool { return f.UID == d.UID }) {
			t.Errorf("grafana: dashboard %s not provisioned", d.UID)
		}
	}
	for uid := range wantDatasources {
		if leftOut[uid] {
			continue
		}
		var health struct{ Status, Message string }
		if err := get("/api/datasources/uid/"+uid+"/health", &health); err != nil || health.Status != "OK" {
			t.Errorf("grafana: data source %s health: %v %s %s", uid, err, health.Status, health.Message)
		}
	}
	body := `{"from":"now-5m","to":"now","queries":[{"refId":"A","datasource":{"uid":"prometheus"},"expr":"sum(rate(golden_http_requests_total[1m]))","instant":true}]}`
	req, _ := http.NewRequest(http.MethodPost, s.url("GRAFANA_PORT")+"/api/ds/query", strings.NewReader(body))
	req.SetBasicAuth("admin", password)
	req.Header.Set("Content-Type", "application/json")
	var res struct {
		Results map[string]struct {
			Frames []json.RawMessage `json:"frames"`
		} `json:"results"`
	}
	if err := composeJSON(req, &res); err != nil || len(res.Results["A"].Frames) == 0 {
		t.Errorf("grafana: a panel query through /api/ds/query returned no data (%v)", err)
	}
	logs := s.must(time.Minute, "logs", "--no-color", "grafana")
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=error") && strings.Contains(line, "provisioning") {
			t.Errorf("grafana logged a provisioning error: %s", line)
		}
	}
}

// lookupThroughGraylog runs `golden lookup` in the golden image against
// the real Graylog and Jaeger, for a request of the test's load.
func (s *composeStack) lookupThroughGraylog() {
	t := s.t
	t.Helper()
	time.Sleep(10 * time.Second) // Graylog indexes in batches
	var rid string
	for _, r := range s.load.Results() {
		if r.Outcome == lg.Succeeded && time.Since(r.end) > 10*time.Second {
			rid = r.RequestID
		}
	}
	eventually(t, 2*time.Minute, "golden lookup finds a request of the load in Graylog and Jaeger", func() error {
		out, err := s.compose(time.Minute, "run", "--rm", "--no-deps", "-e", "GOLDEN_JAEGER_ADDR=jaeger:16685",
			"graylog-setup", "lookup", rid)
		if err != nil {
			return fmt.Errorf("golden lookup %s: %v\n%s", rid, err, out)
		}
		return nil
	})
}

// spansByRequestID finds the trace of a finished request of the test's load
// through Jaeger's published api_v3 gRPC port, by its request_id attribute.
func (s *composeStack) spansByRequestID() error {
	var rid string
	for _, r := range s.load.Results() {
		if r.Outcome == lg.Succeeded && time.Since(r.end) > 5*time.Second {
			rid = r.RequestID
		}
	}
	if rid == "" {
		return errors.New("no request of the load finished 5 s ago yet")
	}
	j, err := lookup.NewJaeger("127.0.0.1:"+strconv.Itoa(s.ports["JAEGER_GRPC_PORT"]), s.url("JAEGER_PORT"), 10*time.Second)
	if err != nil {
		return err
	}
	j.SignIn("admin", s.envValue("JAEGER_PASSWORD"))
	traces, err := j.FindTraces(context.Background(), "gateway", map[string]string{"request_id": rid}, time.Now().Add(-time.Hour), time.Now(), 5)
	if err != nil {
		return err
	}
	if len(traces) == 0 {
		return fmt.Errorf("no trace of the gateway with request_id %s", rid)
	}
	return nil
}

// alertEmailed posts a page to Alertmanager's API and finds its email in
// Mailpit's, through the web interface's sign-in.
func (s *composeStack) alertEmailed() {
	t := s.t
	t.Helper()
	alert := `[{"labels":{"alertname":"ComposeMailCheck","severity":"page","service":"user"},` +
		`"annotations":{"summary":"compose mail check","runbook_url":"http://example.invalid/runbook","dashboard_url":"http://example.invalid/dashboard"}}]`
	resp, err := http.Post(s.signedIn("ALERTMANAGER_PORT", "ALERTMANAGER_PASSWORD")+"/api/v2/alerts", "application/json", strings.NewReader(alert))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting an alert to Alertmanager: %s", resp.Status)
	}
	posted := time.Now()
	eventually(t, time.Minute, "the page's email in Mailpit", func() error {
		req, _ := http.NewRequest(http.MethodGet, s.url("MAILPIT_PORT")+"/api/v1/messages", nil)
		req.SetBasicAuth("admin", s.envValue("MAILPIT_PASSWORD"))
		var list struct {
			Messages []struct {
				Subject string
				To      []struct{ Address string }
			}
		}
		if err := composeJSON(req, &list); err != nil {
			return err
		}
		for _, m := range list.Messages {
			if strings.Contains(m.Subject, "ComposeMailCheck") && len(m.To) > 0 && m.To[0].Address == "oncall@golden.example" {
				return nil
			}
		}
		return fmt.Errorf("%d messages, none the page's", len(list.Messages))
	})
	t.Logf("alertmanager -> mailpit: the page's email arrived %s after the alert", time.Since(posted).Round(100*time.Millisecond))
	// Without the password, Mailpit's API answers 401.
	resp, err = http.Get(s.url("MAILPIT_PORT") + "/api/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("mailpit without sign-in: %s, want 401", resp.Status)
	}
}

// canaryRollsBack sets the user service's canary weight to 20 with the
// operator's token, waits for the canary's traffic in Prometheus (tracks
// relabelled from Consul), then posts GoldenCanaryWorseThanStable to
// Alertmanager: its canary-guard route calls the guard with the secret
// web-auth wrote, and the guard sets the weight to 0 with its own token.
func (s *composeStack) canaryRollsBack() {
	t := s.t
	t.Helper()
	client, err := api.NewClient(&api.Config{Address: "127.0.0.1:" + strconv.Itoa(s.ports["CONSUL_PORT"]), Token: s.envValue("CONSUL_OPERATOR_TOKEN")})
	if err != nil {
		t.Fatal(err)
	}
	store := canary.NewStoreOf(client)
	ctx := t.Context()
	if err := store.Set(ctx, "user", canary.Setting{Weight: 20, By: "compose test", At: time.Now()}); err != nil {
		t.Fatalf("canary weight 20 with the operator's token: %v", err)
	}
	prom := s.signedIn("PROMETHEUS_PORT", "PROMETHEUS_PASSWORD")
	eventually(t, 2*time.Minute, "the canary's traffic in Prometheus", func() error {
		v, err := promQuery(prom, `sum(increase(grpc_server_handled_total{job="golden",service="user",track="canary",grpc_service="golden.user.v1.UserService"}[1m]))`)
		if err != nil {
			return err
		}
		if v == 0 {
			return fmt.Errorf("no canary call in the last minute")
		}
		return nil
	})
	alert := `[{"labels":{"alertname":"GoldenCanaryWorseThanStable","severity":"ticket","service":"user","signal":"errors"},` +
		`"annotations":{"summary":"compose canary check"}}]`
	resp, err := http.Post(s.signedIn("ALERTMANAGER_PORT", "ALERTMANAGER_PASSWORD")+"/api/v2/alerts", "application/json", strings.NewReader(alert))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting the canary alert to Alertmanager: %s", resp.Status)
	}
	posted := time.Now()
	eventually(t, time.Minute, "the guard rolling the canary back", func() error {
		st, err := store.Get(ctx, "user")
		if err != nil {
			return err
		}
		if st.Weight != 0 || st.By != "golden canary guard" || !strings.Contains(st.Reason, "compose canary check") {
			return fmt.Errorf("setting %+v", st)
		}
		return nil
	})
	t.Logf("alertmanager -> canary-guard: weight 20 set back to 0 %s after the alert", time.Since(posted).Round(100*time.Millisecond))
}

// inVolume runs args in a throwaway container with the project's volume
// mounted read-only at /v, and returns its output.
func (s *composeStack) inVolume(volume string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("docker", append([]string{"run", "--rm", "-v", composeEngineProject + "_" + volume + ":/v:ro", s.file.Services["volume-init"].Image}, args...)...)
	cmd.Env = s.env
	out, err := cmd.Output()
	if err != nil {
		s.t.Errorf("volume %s: %s: %v", volume, strings.Join(args, " "), err)
	}
	return string(out)
}

// consulACLs checks what Consul's ACLs let through on the published port:
// nothing for an anonymous request; for user's token (from its volume), no
// deregistering of an auth instance and no fault written.
func (s *composeStack) consulACLs() {
	t := s.t
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(s.ports["CONSUL_PORT"])
	client := func(token string) *api.Client {
		c, err := api.NewClient(&api.Config{Address: addr, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	status := func(err error) int {
		var se api.StatusError
		if errors.As(err, &se) {
			return se.Code
		}
		if err == nil {
			return http.StatusOK
		}
		return 0
	}
	anon, user, op := client(""), client(strings.TrimSpace(s.inVolume("certs-user", "cat", "/v/consul.token"))), client(s.envValue("CONSUL_OPERATOR_TOKEN"))
	if svcs, _, err := anon.Catalog().Services(nil); err != nil || len(svcs) != 0 {
		t.Errorf("Consul: anonymous catalog read gives %v (%v), want nothing", svcs, err)
	}
	// A key list is filtered by what the token may read; a key read is
	// refused whether or not the key exists.
	if pairs, _, err := anon.KV().List("", nil); err != nil || len(pairs) != 0 {
		t.Errorf("Consul: anonymous KV list: %d keys (%v), want none", len(pairs), err)
	}
	if _, _, err := anon.KV().Get("golden/faults/user/GetUser", nil); status(err) != http.StatusForbidden {
		t.Errorf("Consul: anonymous KV read: %v, want 403", err)
	}
	auths, _, err := op.Health().Service("auth", "", false, nil)
	if err != nil || len(auths) == 0 {
		t.Fatalf("Consul: auth instances for the operator token: %d (%v)", len(auths), err)
	}
	if err := user.Agent().ServiceDeregister(auths[0].Service.ID); status(err) != http.StatusForbidden {
		t.Errorf("Consul: user's token deregistering %s: %v, want 403", auths[0].Service.ID, err)
	}
	if _, err := user.KV().Put(&api.KVPair{Key: "golden/faults/user/GetUser", Value: []byte(`{"error_rate":1}`)}, nil); status(err) != http.StatusForbidden {
		t.Errorf("Consul: user's token writing a fault: %v, want 403", err)
	}
	if _, _, err := user.KV().List("golden/faults/user/", nil); err != nil {
		t.Errorf("Consul: user's token reading its faults: %v", err)
	}
	if _, _, err := op.KV().List("golden/faults/", nil); err != nil {
		t.Errorf("Consul: operator's token reading the faults: %v", err)
	}
	t.Logf("Consul ACLs: anonymous sees no service and no key; user's token cannot deregister %s or write a fault", auths[0].Service.ID)
}

// envValue is the value of a variable the test set for compose.
func (s *composeStack) envValue(name string) string {
	for _, kv := range s.env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// composeJSON sends req and decodes a 200 answer into out.
func composeJSON(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// memoryUnderLimits reports each running container's memory (docker
// stats) against its limit and fails for any at or above the fraction.
func (s *composeStack) memoryUnderLimits(fraction float64) {
	s.t.Helper()
	out := s.must(time.Minute, "stats", "--no-stream", "--format", "json")
	type stat struct{ Name, MemUsage, MemPerc string }
	var rows []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var st stat
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			s.t.Fatalf("docker-compose stats: %v: %s", err, line)
		}
		perc, err := strconv.ParseFloat(strings.TrimSuffix(st.MemPerc, "%"), 64)
		if err != nil {
			s.t.Fatalf("docker-compose stats: %s: MemPerc %q", st.Name, st.MemPerc)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(st.Name, composeEngineProject+"-"), "-1")
		rows = append(rows, fmt.Sprintf("  %-14s %-22s %5.1f%%", name, st.MemUsage, perc))
		if perc >= fraction*100 {
			s.t.Errorf("%s uses %s (%.1f%%) of its memory limit, want under %.0f%%", name, st.MemUsage, perc, fraction*100)
		}
	}
	if len(rows) == 0 {
		s.t.Fatalf("docker-compose stats printed no container:\n%s", out)
	}
	slices.Sort(rows)
	s.t.Logf("memory after 3 minutes at %d requests/s (docker stats):\n%s", composeLoadRate, strings.Join(rows, "\n"))
}

// composeTargetsUp checks that Prometheus has every golden instance up
// through consul_sd and the jobs of the backends that run.
func composeTargetsUp(promURL string, leftOut map[string]bool) error {
	var want []string
	for inst, svc := range composeGoldenInstances {
		want = append(want, fmt.Sprintf("golden %s:%d", inst, composeAdminPorts[svc]))
	}
	for job, inst := range map[string]string{"prometheus": "localhost:9090", "alertmanager": "alertmanager:9093", "consul": "consul:8500", "jaeger": "jaeger:8888", "canary-guard": "canary-guard:9096"} {
		if !leftOut[job] {
			want = append(want, job+" "+inst)
		}
	}
	return promTargetsUp(promURL, want)
}

// composeTraceThroughStore finds a trace, started after since, with spans
// of the gateway, of auth or user, and of a PostgreSQL query.
func composeTraceThroughStore(jaegerURL string, since time.Time) error {
	q := url.Values{"service": {"gateway"}, "limit": {"50"}, "lookback": {"1h"}}
	if !since.IsZero() {
		q.Set("start", strconv.FormatInt(since.UnixMicro(), 10))
		q.Set("end", strconv.FormatInt(time.Now().UnixMicro(), 10))
	}
	resp, err := http.Get(jaegerURL + "/api/traces?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("jaeger search: %s %s", resp.Status, b)
	}
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	for _, tr := range body.Data {
		services := map[string]bool{}
		sql := false
		for _, sp := range tr.Spans {
			services[tr.Processes[sp.ProcessID].ServiceName] = true
			sql = sql || hasTag(sp.Tags, "db.system.name", "postgresql")
		}
		if services["gateway"] && (services["auth"] || services["user"]) && sql {
			return nil
		}
	}
	return fmt.Errorf("none of %d traces of the gateway reaches auth or user and PostgreSQL", len(body.Data))
}

// composeRoutesLoaded checks that Alertmanager runs with the receivers
// and routes of alertmanager/alertmanager.yml.
func composeRoutesLoaded(t *testing.T, amURL string) error {
	resp, err := http.Get(amURL + "/api/v2/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var status struct {
		Config struct {
			Original string `json:"original"`
		} `json:"config"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		return err
	}
	var loaded, file amRouteTree
	if err := yaml.Unmarshal([]byte(status.Config.Original), &loaded); err != nil {
		return fmt.Errorf("alertmanager's loaded config: %v", err)
	}
	if err := yaml.Unmarshal(readRepoFile(t, "alertmanager/alertmanager.yml"), &file); err != nil {
		return err
	}
	got, want := loaded.Route.receivers(), file.Route.receivers()
	if len(want) < 2 || !slices.Equal(got, want) {
		return fmt.Errorf("alertmanager routes to %v, alertmanager.yml to %v", got, want)
	}
	t.Logf("alertmanager: routes to %v loaded", got)
	return nil
}

// amRouteTree is the route tree of an Alertmanager configuration.
type amRouteTree struct {
	Route amRoute `yaml:"route"`
}

type amRoute struct {
	Receiver string    `yaml:"receiver"`
	Routes   []amRoute `yaml:"routes"`
}

// receivers lists the receivers of the tree, depth first.
func (r amRoute) receivers() []string {
	out := []string{r.Receiver}
	for _, c := range r.Routes {
		out = append(out, c.receivers()...)
	}
	return out
}

// promQuery runs an instant query that yields one sample.
func promQuery(promURL, query string) (float64, error) {
	resp, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("%s: %d samples", query, len(body.Data.Result))
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
