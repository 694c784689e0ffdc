package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"gopkg.in/yaml.v3"

	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/service"
	"github.com/golden-stack/golden/services/user"
)

var services = []string{"auth", "gateway", "user"}

// trafficRound numbers driveTraffic's rounds so user names never repeat.
var trafficRound int

// withConsul turns discovery on in every service of a stack, with checks
// and drain waits short enough for a test, and keeps accounts and refresh
// tokens in the PostgreSQL database at dbURL, where other instances find
// them.
func withConsul(addr, dbURL string) func(*stackConfig) {
	return func(sc *stackConfig) {
		for _, s := range []*service.Settings{&sc.user.Settings, &sc.auth.Settings, &sc.gateway.Settings} {
			enableConsul(s, addr)
		}
		sc.user.Store, sc.user.DB.URL = "postgres", dbURL
		sc.auth.Store, sc.auth.DB.URL = "postgres", dbURL
	}
}

func enableConsul(s *service.Settings, addr string) {
	s.Discovery.ConsulAddr = addr
	s.Discovery.AdvertiseAddr = "127.0.0.1"
	s.Discovery.CheckInterval = time.Second
	s.Discovery.CheckTimeout = time.Second
	s.Discovery.DrainWait = time.Second
}

// renderPrometheusConfig is the project's prometheus.yml pointed at a test
// Consul: 1s scrape and evaluation intervals, the project's rule files, the
// golden job only (the other jobs scrape the compose stack's own parts),
// presenting the Consul token in tokenFile (none when empty: an agent
// without ACLs).
func renderPrometheusConfig(t *testing.T, consulAddr, tokenFile string) string {
	t.Helper()
	raw, err := os.ReadFile("../prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
	rules, err := filepath.Abs("../prometheus/rules")
	if err != nil {
		t.Fatal(err)
	}
	cfg["rule_files"] = []string{rules + "/*.yml"}
	delete(cfg, "alerting")
	var jobs []any
	for _, j := range cfg["scrape_configs"].([]any) {
		job := j.(map[string]any)
		if job["job_name"] != "golden" {
			continue
		}
		sd := job["consul_sd_configs"].([]any)[0].(map[string]any)
		sd["server"] = consulAddr
		sd["refresh_interval"] = "1s"
		auth, ok := sd["authorization"].(map[string]any)
		if !ok {
			t.Fatal("prometheus.yml's consul_sd_configs present no Consul token (authorization)")
		}
		if tokenFile == "" {
			delete(sd, "authorization")
		} else {
			auth["credentials_file"] = tokenFile
		}
		jobs = append(jobs, job)
	}
	if len(jobs) != 1 {
		t.Fatalf("prometheus.yml has %d golden jobs", len(jobs))
	}
	cfg["scrape_configs"] = jobs
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testbackend.WriteFile(t, t.TempDir(), "prometheus.yml", out)
}

// recordingRules returns the names of every recording rule in prometheus/rules.
func recordingRules(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../prometheus/rules/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Record string `yaml:"record"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					seen[r.Record] = true
				}
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// eventually retries check every 250ms until it returns nil or timeout ends.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not after %s: %v", what, timeout, err)
}

func passingInstances(c *api.Client, svc string) ([]string, error) {
	entries, _, err := c.Health().Service(svc, "", true, nil)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Service.ID)
	}
	sort.Strings(ids)
	return ids, nil
}

// TestGoldenSignalsThroughConsulAndPrometheus runs the services against a
// real Consul and a real Prometheus using the project's prometheus.yml and
// rules: the services register (even though Consul starts after them),
// Prometheus finds them with the expected labels, every recording rule
// answers after traffic, and a stopped instance leaves Consul and the target
// list.
func TestGoldenSignalsThroughConsulAndPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul and Prometheus")
	}
	consul := testbackend.NewConsul(t) // ports chosen, agent not running yet
	db := testbackend.StartPostgres(t).CreateDatabase(t, "golden")
	certs := newCerts(t)
	s := startStackWithCerts(t, certs, withConsul(consul.HTTPAddr, db))
	// A second user instance sharing the accounts in PostgreSQL; stopped
	// later in the test.
	cfg2 := userConfig(certs)
	enableConsul(&cfg2.Settings, consul.HTTPAddr)
	cfg2.Store, cfg2.DB.URL = "postgres", db
	user2, err := user.New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	stopUser2 := runServiceUntil(t, user2)
	id2 := user2.InstanceID()

	// Consul comes up after the services: they register once it appears.
	consul.Start(t)
	client, err := api.NewClient(&api.Config{Address: consul.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "every instance passing in Consul", func() error {
		for svc, want := range map[string]int{"auth": 1, "gateway": 1, "user": 2} {
			ids, err := passingInstances(client, svc)
			if err != nil {
				return err
			}
			if len(ids) != want {
				return fmt.Errorf("%s: passing %v, want %d", svc, ids, want)
			}
		}
		return nil
	})

	prom := testbackend.StartPrometheus(t, renderPrometheusConfig(t, consul.HTTPAddr, ""))
	var targets []testbackend.Target
	eventually(t, time.Minute, "Prometheus scraping every instance", func() error {
		targets, err = upTargets(prom, 4)
		return err
	})
	// The instance label is the name the instance's logs and spans carry.
	instances := []string{s.user.Instance(), s.auth.Instance(), s.gateway.Instance(), user2.Instance()}
	for _, tg := range targets {
		l := tg.Labels
		// No instance of the test is a canary: track is stable.
		if !slices.Contains(services, l["service"]) || l["job"] != "golden" || l["version"] == "" ||
			!slices.Contains(instances, l["instance"]) || l["track"] != "stable" {
			t.Errorf("target labels %v", l)
		}
		if _, leaked := l["__meta_consul_health"]; leaked {
			t.Errorf("health copied into a label: %v", l)
		}
		t.Logf("target %s service=%s instance=%s version=%s %s", tg.ScrapeURL, l["service"], l["instance"], l["version"], tg.Health)
	}

	// Traffic of every kind through the gateway, with distinct users,
	// paths and request IDs.
	secrets := driveTraffic(t, s, 40)

	// Every recording rule answers; the golden signals do so per service.
	// Rules that legitimately stay empty on this traffic are listed with
	// the reason.
	emptyOK := map[string]string{
		"service_caller:golden_ratelimit_rejections:rate5m": "no caller is rate limited by this traffic",
	}
	perService := regexp.MustCompile(`^(service|service_method|service_le|service_method_le|service_track|service_track_le|slo):`)
	for _, rule := range recordingRules(t) {
		if reason, ok := emptyOK[rule]; ok {
			t.Logf("rule %s not checked: %s", rule, reason)
			continue
		}
		eventually(t, time.Minute, "rule "+rule, func() error {
			samples, err := prom.Query(rule)
			if err != nil {
				return err
			}
			if len(samples) == 0 {
				return fmt.Errorf("no data")
			}
			if !perService.MatchString(rule) {
				return nil
			}
			got := map[string]bool{}
			for _, smp := range samples {
				got[smp.Metric["service"]] = true
			}
			for _, svc := range services {
				if !got[svc] {
					return fmt.Errorf("no series for service %q (have %v)", svc, got)
				}
			}
			return nil
		})
	}
	t.Logf("%d dashboard queries verified against Prometheus", verifyDashboardQueries(t, prom))
	for _, q := range []string{
		`service:golden_requests:rate5m`, `service:golden_errors:ratio_rate5m`,
		`service:golden_latency_seconds:p99_5m`, `service:golden_in_flight_requests:sum`,
	} {
		samples, _ := prom.Query(q)
		for _, smp := range samples {
			t.Logf("%s{service=%q} = %v", q, smp.Metric["service"], smp.Value[1])
		}
	}

	// Cardinality: no user ID, request ID or raw path becomes a label.
	for name, addr := range map[string]string{"gateway": s.gateway.AdminAddr(), "user": s.user.AdminAddr(), "auth": s.auth.AdminAddr()} {
		series, text := scrape(t, "http://"+addr+"/metrics")
		const bound = 1500
		if series > bound {
			t.Errorf("%s exposes %d series, bound %d", name, series, bound)
		}
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s /metrics contains %q", name, secret)
			}
		}
		t.Logf("%s: %d series on /metrics", name, series)
	}

	// Both user instances served the traffic (round robin through Consul).
	for _, inst := range []string{s.user.Instance(), user2.Instance()} {
		samples, err := prom.Query(`sum(grpc_server_handled_total{service="user",instance="` + inst + `"})`)
		if err != nil || len(samples) != 1 || samples[0].Value[1] == "0" {
			t.Errorf("user instance %s served nothing: %v %v", inst, samples, err)
		}
	}

	// Stopping an instance: it leaves Consul and the target list, and the
	// traffic goes on without failures on the remaining instance.
	stopUser2()
	eventually(t, 30*time.Second, "stopped instance gone from Consul", func() error {
		ids, err := passingInstances(client, "user")
		if err != nil {
			return err
		}
		if slices.Contains(ids, id2) || len(ids) != 1 {
			return fmt.Errorf("passing %v", ids)
		}
		return nil
	})
	driveTraffic(t, s, 3)
	eventually(t, 30*time.Second, "stopped instance gone from Prometheus targets", func() error {
		targets, err := prom.ActiveTargets()
		if err != nil {
			return err
		}
		for _, tg := range targets {
			if tg.Labels["instance"] == user2.Instance() {
				return fmt.Errorf("%s still a target (%s)", user2.Instance(), tg.Health)
			}
		}
		if len(targets) != 3 {
			return fmt.Errorf("%d targets", len(targets))
		}
		return nil
	})
}

// upTargets returns Prometheus's active targets once exactly n are up.
func upTargets(prom *testbackend.Prometheus, n int) ([]testbackend.Target, error) {
	targets, err := prom.ActiveTargets()
	if err != nil {
		return nil, err
	}
	up := 0
	for _, tg := range targets {
		if tg.Health == "up" {
			up++
		}
	}
	if up != n || len(targets) != n {
		return nil, fmt.Errorf("%d of %d targets up, want %d: %+v", up, len(targets), n, targets)
	}
	return targets, nil
}

// driveTraffic sends n rounds of mixed requests through the gateway and
// returns values that must never appear in metric labels. Every sign-up,
// login and read must succeed.
func driveTraffic(t *testing.T, s *stack, n int) []string {
	t.Helper()
	var never []string
	for range n {
		trafficRound++
		i := trafficRound
		name := fmt.Sprintf("signal%03d", i)
		id := signup(t, s, name)
		access, refresh := login(t, s, name)
		rid := fmt.Sprintf("traffic-%06d-req", i)
		if r := s.call(t, "GET", "/v1/users/"+id, access, nil, "X-Request-ID", rid); r.status != 200 {
			t.Fatalf("read own account: %d %v", r.status, r.body)
		}
		if r := s.call(t, "GET", "/v1/users?page_size=5", access, nil); r.status != 200 {
			t.Fatalf("list: %d %v", r.status, r.body)
		}
		s.call(t, "GET", "/v1/users/00000000-0000-7000-8000-"+fmt.Sprintf("%012d", i), access, nil) // not found
		s.call(t, "GET", "/v1/users/"+id, "not-a-token", nil)                                       // unauthenticated
		s.call(t, "GET", fmt.Sprintf("/no/such/path/%d", i), "", nil)                               // unmatched
		s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": refresh})
		never = append(never, id, rid, fmt.Sprintf("/no/such/path/%d", i))
	}
	return never
}

// scrape returns the number of series in a Prometheus text exposition and
// the text itself.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n, string(raw)
}
