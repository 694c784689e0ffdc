package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/golden-stack/golden/internal/graylog/graylogtest"
	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/service"
	"github.com/golden-stack/golden/services/user"
)

// webhook records the notifications Alertmanager sends.
type webhook struct {
	mu   sync.Mutex
	msgs []notification
}

type notification struct {
	received time.Time
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var n notification
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	n.received = time.Now()
	w.mu.Lock()
	w.msgs = append(w.msgs, n)
	w.mu.Unlock()
}

func (w *webhook) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

// find returns the first notification whose alert has
// the given status and labels.
func (w *webhook) find(status string, labels map[string]string) (notification, map[string]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.msgs {
	alerts:
		for _, a := range n.Alerts {
			if a.Status != status {
				continue
			}
			for k, v := range labels {
				if a.Labels[k] != v {
					continue alerts
				}
			}
			return n, a.Annotations, true
		}
	}
	return notification{}, nil, false
}

// renderAlertmanagerConfig is the project's alertmanager.yml with the test
// webhook added to every receiver (in place of the on-call webhook), its
// email sent to the SMTP server at smtpAddr (a real Mailpit), and group
// timings short enough for a test; routes, inhibitions, recipients and
// templates are the project's.
func renderAlertmanagerConfig(t *testing.T, hookURL, smtpAddr string) string {
	t.Helper()
	raw, err := os.ReadFile("../alertmanager/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"].(map[string]any)["smtp_smarthost"] = smtpAddr
	templates, err := filepath.Abs("../alertmanager/templates")
	if err != nil {
		t.Fatal(err)
	}
	cfg["templates"] = []string{templates + "/*.tmpl"}
	var receivers []any
	for _, r := range cfg["receivers"].([]any) {
		rcv := r.(map[string]any)
		rcv["webhook_configs"] = []any{map[string]any{"url": hookURL, "send_resolved": true}}
		receivers = append(receivers, rcv)
	}
	cfg["receivers"] = receivers
	shorten := func(route map[string]any) {
		route["group_wait"], route["group_interval"] = "1s", "5s"
	}
	route := cfg["route"].(map[string]any)
	shorten(route)
	for _, r := range route["routes"].([]any) {
		shorten(r.(map[string]any))
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testbackend.WriteFile(t, t.TempDir(), "alertmanager.yml", out)
}

// pageEmailed checks that Mailpit holds the email of user's fast-burn
// availability page, sent to the on-call address, with the alert's summary,
// runbook and dashboard links in its text.
func pageEmailed(mail *testbackend.Mailpit, annotations map[string]string) error {
	msgs, err := mail.Messages()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m.Subject, "[FIRING") || !strings.Contains(m.Subject, "GoldenAvailabilityBudgetBurn user (page)") ||
			len(m.To) == 0 || m.To[0].Address != "oncall@golden.example" {
			continue
		}
		full, err := mail.Message(m.ID)
		if err != nil {
			return err
		}
		for _, want := range []string{
			annotations["summary"],
			"Runbook:   " + annotations["runbook_url"],
			"Dashboard: " + annotations["dashboard_url"],
		} {
			if !strings.Contains(full.Text, want) {
				return fmt.Errorf("the page's email %q lacks %q:\n%s", m.Subject, want, full.Text)
			}
		}
		return nil
	}
	return fmt.Errorf("no page email to oncall@golden.example among %d messages", len(msgs))
}

// loadgen is a running `golden loadgen`.
type loadgen struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

func startLoadgen(t *testing.T, bin, target string) *loadgen {
	t.Helper()
	l := &loadgen{done: make(chan error, 1)}
	l.cmd = exec.Command(bin, "loadgen", "--target", target, "--rate", "25", "--duration", "0",
		"--concurrency", "32", "--report-interval", "0", "--json")
	l.cmd.Stdout, l.cmd.Stderr = &l.stdout, &l.stderr
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.done <- l.cmd.Wait() }()
	t.Cleanup(func() { _ = l.cmd.Process.Kill() })
	return l
}

// loadSummary is the part of loadgen's JSON summary the test reads.
type loadSummary struct {
	Requests           int64            `json:"requests"`
	Succeeded          int64            `json:"succeeded"`
	ExpectedFailures   int64            `json:"expected_failures"`
	UnexpectedFailures int64            `json:"unexpected_failures"`
	TransportErrors    int64            `json:"transport_errors"`
	ByStatus           map[string]int64 `json:"by_status"`
	FailedRequests     []struct {
		ID     string `json:"id"`
		Status int    `json:"status"`
		Code   string `json:"code"`
		Route  string `json:"route"`
	} `json:"failed_request_ids"`
}

// stop ends the generator with SIGTERM and returns its summary.
func (l *loadgen) stop(t *testing.T) loadSummary {
	t.Helper()
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatalf("loadgen: %v\n%s", err, l.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("loadgen did not stop")
	}
	var s loadSummary
	if err := json.Unmarshal(l.stdout.Bytes(), &s); err != nil {
		t.Fatalf("loadgen summary: %v\n%s", err, l.stdout.String())
	}
	return s
}

// goldenCmd runs golden with args, env (KEY=VALUE) added to its environment
// only, and returns its output; it fails the test if golden fails.
func goldenCmd(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("golden %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// exitCodeOf returns the exit status in err from exec, 0 for none, -1 for a
// command that did not run.
func exitCodeOf(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// consulACLs runs `golden consul setup` against c (NewConsulWithACLs), as
// docker-compose.yml's consul-setup does, and returns the folder holding
// <service>/consul.token and prometheus/consul.token, and the operator's
// secret.
func consulACLs(t *testing.T, bin string, c *testbackend.Consul) (tokens, operator string) {
	t.Helper()
	operator = testbackend.UUID(t)
	tokens = t.TempDir()
	goldenCmd(t, bin, []string{"CONSUL_HTTP_TOKEN=" + c.ManagementToken, "GOLDEN_CONSUL_OPERATOR_TOKEN=" + operator},
		"consul", "setup", "--consul-addr", c.HTTPAddr, "--services", "auth,user,gateway",
		"--export", tokens, "--prometheus-token-file", filepath.Join(tokens, "prometheus", "consul.token"))
	return tokens, operator
}

// TestEndToEndFaultToAlertToLookup makes one fault visible through every
// signal on real backends (Consul, Jaeger, Prometheus with the project's
// rules, Alertmanager with the project's routes) under steady load from
// golden loadgen: 20% Unavailable on user's GetUser pages through the
// fast-burn availability alert, a failed request is found end to end with
// golden lookup, and a user instance restarts under load without a failed
// request. The timeline is logged. Consul runs with ACLs, default deny, as
// in docker-compose.yml: every service, Prometheus and golden fault use the
// tokens `golden consul setup` made, and a service's token cannot set a
// fault.
func TestEndToEndFaultToAlertToLookup(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: several minutes against every backend")
	}
	bin := buildGolden(t)
	consul := testbackend.NewConsulWithACLs(t)
	consul.Start(t)
	tokens, operator := consulACLs(t, bin, consul)
	jaeger := testbackend.StartJaeger(t, "../jaeger/config.yaml")
	logs := captureGELF(t)
	hook := &webhook{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	mail := testbackend.StartMailpit(t)
	am := testbackend.StartAlertmanager(t, renderAlertmanagerConfig(t, hookSrv.URL, mail.SMTPAddr))

	observe := func(st *service.Settings) {
		enableConsul(st, consul.HTTPAddr)
		st.Discovery.TokenFile = filepath.Join(tokens, st.Name, "consul.token")
		st.Tracing.Endpoint = jaeger.OTLPGRPCAddr
		st.Logging.Level = "info"
		st.Logging.GELFAddr = logs.reader.Addr()
		st.Logging.AccessSample = 1
	}
	s, userCfg := startStackOnPostgres(t, observe)
	user2, err := user.New(userCfg)
	if err != nil {
		t.Fatal(err)
	}
	stopUser2 := runServiceUntil(t, user2)
	t.Cleanup(stopUser2)

	prom := testbackend.StartPrometheus(t, renderPrometheusConfigWithAlerts(t, consul.HTTPAddr, filepath.Join(tokens, "prometheus", "consul.token"), strings.TrimPrefix(am.URL, "http://")))
	eventually(t, time.Minute, "Prometheus scraping every instance", func() error {
		_, err := upTargets(prom, 4)
		return err
	})

	load := startLoadgen(t, bin, s.baseURL)
	time.Sleep(20 * time.Second) // a healthy baseline in every window

	// A service's token may read its faults, not set them.
	cmd := exec.Command(bin, "fault", "set", "--consul-addr", consul.HTTPAddr, "--service", "user", "--method", "GetUser", "--error-rate", "1")
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_TOKEN_FILE="+filepath.Join(tokens, "user", "consul.token"))
	if out, err := cmd.CombinedOutput(); exitCodeOf(err) != 4 || !strings.Contains(string(out), "refused") {
		t.Fatalf("golden fault set with user's token: %v\n%s", err, out)
	}
	opEnv := []string{"CONSUL_HTTP_TOKEN=" + operator}
	faultAt := time.Now()
	goldenCmd(t, bin, opEnv, "fault", "set", "--consul-addr", consul.HTTPAddr, "--service", "user", "--method", "GetUser",
		"--error-rate", "0.2", "--code", "Unavailable")
	page := map[string]string{"alertname": "GoldenAvailabilityBudgetBurn", "service": "user", "severity": "page", "long_window": "1h"}
	var fired notification
	var annotations map[string]string
	eventually(t, 6*time.Minute, "fast-burn page for user at the webhook", func() error {
		var ok bool
		if fired, annotations, ok = hook.find("firing", page); !ok {
			return fmt.Errorf("%d notifications so far", hook.count())
		}
		return nil
	})
	for _, k := range []string{"summary", "description"} {
		if annotations[k] == "" {
			t.Errorf("alert annotation %s is empty", k)
		}
	}
	for _, k := range []string{"runbook_url", "dashboard_url"} {
		if !strings.HasPrefix(annotations[k], "http") {
			t.Errorf("alert annotation %s = %q, want a link", k, annotations[k])
		}
	}
	// The page reaches the on-call's mailbox too, with the same links.
	eventually(t, time.Minute, "the page's email in Mailpit", func() error {
		return pageEmailed(mail, annotations)
	})
	goldenCmd(t, bin, opEnv, "fault", "clear", "--consul-addr", consul.HTTPAddr, "--service", "user", "--method", "GetUser")
	clearedAt := time.Now()

	// A failed request from the loadgen's summary, looked up end to end.
	summary := load.stop(t)
	var failedID string
	for _, f := range summary.FailedRequests {
		if f.Status == http.StatusServiceUnavailable {
			failedID = f.ID
			break
		}
	}
	if failedID == "" {
		t.Fatalf("no 503 among the failed requests of the load: %+v", summary)
	}
	out := runLookup(t, bin, logs, jaeger, failedID)
	for _, want := range []string{"user", "golden.user.v1.UserService/GetUser", "error", "injected fault"} {
		if !strings.Contains(out, want) {
			t.Errorf("lookup of %s lacks %q", failedID, want)
		}
	}
	t.Logf("golden lookup %s:\n%s", failedID, out)

	// A user instance restarts under load: no client request fails.
	load2 := startLoadgen(t, bin, s.baseURL)
	time.Sleep(5 * time.Second)
	stopUser2()
	restarted, err := user.New(userCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runServiceUntil(t, restarted))
	eventually(t, time.Minute, "restarted instance passing in Consul", func() error {
		_, err := upTargets(prom, 4)
		return err
	})
	time.Sleep(5 * time.Second)
	summary2 := load2.stop(t)
	if summary2.UnexpectedFailures != 0 || summary2.TransportErrors != 0 || summary2.Requests == 0 {
		t.Errorf("restart under load: %d requests, %d unexpected failures, %d transport errors: %+v",
			summary2.Requests, summary2.UnexpectedFailures, summary2.TransportErrors, summary2.FailedRequests)
	}

	// The alert resolves once the fast window is clean again.
	load3 := startLoadgen(t, bin, s.baseURL)
	var resolved notification
	eventually(t, 8*time.Minute, "fast-burn page resolved at the webhook", func() error {
		var ok bool
		if resolved, _, ok = hook.find("resolved", page); !ok {
			return fmt.Errorf("not resolved yet")
		}
		return nil
	})
	load3.stop(t)
	t.Logf("timeline: fault at T, page at T+%s, fault cleared at T+%s, resolved at T+%s; load during the fault: %d requests, %d unexpected failures; restart under load: %d requests, 0 failed",
		fired.received.Sub(faultAt).Round(time.Second), clearedAt.Sub(faultAt).Round(time.Second),
		resolved.received.Sub(faultAt).Round(time.Second), summary.Requests, summary.UnexpectedFailures, summary2.Requests)
}

// startStackOnPostgres starts the three services with their accounts and
// sessions in a new PostgreSQL database, each service's settings passed
// through observe first, and returns the stack and the configuration of
// one more user instance made the same way, for the test to start.
func startStackOnPostgres(t *testing.T, observe func(*service.Settings)) (*stack, user.Config) {
	t.Helper()
	db := testbackend.StartPostgres(t).CreateDatabase(t, "golden")
	certs := newCerts(t)
	s := startStackWithCerts(t, certs, func(sc *stackConfig) {
		for _, st := range []*service.Settings{&sc.user.Settings, &sc.auth.Settings, &sc.gateway.Settings} {
			observe(st)
		}
		sc.user.Store, sc.user.DB.URL = "postgres", db
		sc.auth.Store, sc.auth.DB.URL = "postgres", db
	})
	cfg := userConfig(certs)
	observe(&cfg.Settings)
	cfg.Store, cfg.DB.URL = "postgres", db
	return s, cfg
}

// renderPrometheusConfigWithAlerts is renderPrometheusConfig sending alerts
// to the Alertmanager at amAddr.
func renderPrometheusConfigWithAlerts(t *testing.T, consulAddr, tokenFile, amAddr string) string {
	t.Helper()
	path := renderPrometheusConfig(t, consulAddr, tokenFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["alerting"] = map[string]any{"alertmanagers": []any{map[string]any{
		"static_configs": []any{map[string]any{"targets": []string{amAddr}}},
	}}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testbackend.WriteFile(t, t.TempDir(), "prometheus-alerts.yml", out)
}

// runLookup runs golden lookup for id, with Graylog replayed from the GELF
// messages captured for it and Jaeger real.
func runLookup(t *testing.T, bin string, logs *gelfCapture, jaeger *testbackend.Jaeger, id string) string {
	t.Helper()
	fake := graylogtest.New(t)
	for _, m := range logs.withRequestID(id) {
		fields := map[string]any{
			"timestamp": time.UnixMilli(int64(m.TimeUnix * 1000)).UTC().Format("2006-01-02T15:04:05.000Z"),
			"source":    m.Host, "message": m.Short, "level": m.Level,
		}
		for k, v := range m.Extra {
			fields[strings.TrimPrefix(k, "_")] = v
		}
		fake.AddMessage(fields)
	}
	cmd := exec.Command(bin, "lookup", id, "--graylog-url", fake.URL, "--graylog-user", "admin",
		"--graylog-password", "admin-password", "--jaeger-addr", jaeger.QueryGRPCAddr, "--jaeger-url", jaeger.QueryURL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("golden lookup %s: %v\n%s", id, err, out.String())
	}
	return out.String()
}
