package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/service"
	"github.com/golden-stack/golden/observability/tracing"
	"github.com/golden-stack/golden/services/user"
)

// counterSum adds up the samples of metric whose labels include every
// k="v" of want, in the text exposition at url.
func counterSum(t *testing.T, url, metric string, want ...string) float64 {
	t.Helper()
	_, text := scrape(t, url)
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		for i := 0; i+1 < len(want); i += 2 {
			if !strings.Contains(line, want[i]+`="`+want[i+1]+`"`) {
				continue lines
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			// Exemplars follow the value after " # ".
			if i := strings.Index(line, " # "); i > 0 {
				f = strings.Fields(line[:i])
				v, err = strconv.ParseFloat(f[len(f)-1], 64)
			}
			if err != nil {
				t.Fatalf("%s: %q: %v", url, line, err)
			}
		}
		sum += v
	}
	return sum
}

// renderCanaryAlertmanagerConfig is renderAlertmanagerConfig with the
// canary-guard receiver kept: it calls the guard at guardURL with the
// bearer secret in secretFile, as in docker-compose.yml.
func renderCanaryAlertmanagerConfig(t *testing.T, hookURL, smtpAddr, guardURL, secretFile string) string {
	t.Helper()
	raw, err := os.ReadFile(renderAlertmanagerConfig(t, hookURL, smtpAddr))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range cfg["receivers"].([]any) {
		rcv := r.(map[string]any)
		if rcv["name"] != "canary-guard" {
			continue
		}
		found = true
		rcv["webhook_configs"] = []any{map[string]any{
			"url": guardURL, "send_resolved": false,
			"http_config": map[string]any{"authorization": map[string]any{"type": "Bearer", "credentials_file": secretFile}},
		}}
	}
	if !found {
		t.Fatal("alertmanager.yml has no canary-guard receiver")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testbackend.WriteFile(t, t.TempDir(), "alertmanager-canary.yml", out)
}

// startGuard runs `golden canary guard` until the test ends and returns its
// base URL.
func startGuard(t *testing.T, bin, consulAddr, tokenFile, secretFile string) string {
	t.Helper()
	addr := testbackend.FreeAddr(t)
	cmd := exec.Command(bin, "canary", "guard", "--listen", addr, "--secret-file", secretFile,
		"--consul-addr", consulAddr, "--consul-token-file", tokenFile)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("golden canary guard:\n%s", out.String())
		}
	})
	base := "http://" + addr
	eventually(t, 30*time.Second, "the guard's /livez", func() error {
		resp, err := http.Get(base + "/livez")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
	return base
}

// spanTracks returns the golden.track of every process that sent spans of
// svc to Jaeger in the last hour.
func spanTracks(t *testing.T, queryURL, svc string) map[string]bool {
	t.Helper()
	resp, err := http.Get(queryURL + "/api/traces?" + url.Values{"service": {svc}, "limit": {"200"}, "lookback": {"1h"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
				Tags        []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	tracks := map[string]bool{}
	for _, tr := range body.Data {
		for _, p := range tr.Processes {
			for _, tag := range p.Tags {
				if p.ServiceName == svc && tag.Key == string(tracing.TrackKey) {
					tracks[fmt.Sprint(tag.Value)] = true
				}
			}
		}
	}
	return tracks
}

// TestCanaryRolloutAndAutomaticRollback runs a canary release of the user
// service on real backends (Consul with ACLs, Prometheus with the project's
// rules, Alertmanager with its routes, Jaeger, PostgreSQL) and golden's own
// guard: with weight 0 the canary gets nothing but X-Canary: always; at
// weight N (5, 20, 50) it gets the callers whose bucket is below N, N% ± 5
// of distinct users; at weight 20, a 30% error fault on the canary track only fires
// GoldenCanaryWorseThanStable, the guard sets the weight to 0, the canary
// gets no more traffic and stable never failed. The timeline is logged.
func TestCanaryRolloutAndAutomaticRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: minutes against every backend")
	}
	bin := buildGolden(t)
	consul := testbackend.NewConsulWithACLs(t)
	consul.Start(t)
	tokens, operator := consulACLs(t, bin, consul)
	opEnv := []string{"CONSUL_HTTP_TOKEN=" + operator}
	jaeger := testbackend.StartJaeger(t, "../jaeger/config.yaml")
	secretFile := testbackend.WriteFile(t, t.TempDir(), "canary_guard_token", []byte(testbackend.UUID(t)+"\n"))
	guard := startGuard(t, bin, consul.HTTPAddr, filepath.Join(tokens, "canary-guard", "consul.token"), secretFile)
	hook := &webhook{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	mail := testbackend.StartMailpit(t)
	am := testbackend.StartAlertmanager(t, renderCanaryAlertmanagerConfig(t, hookSrv.URL, mail.SMTPAddr, guard+"/alerts", secretFile))

	observe := func(st *service.Settings) {
		enableConsul(st, consul.HTTPAddr)
		st.Discovery.TokenFile = filepath.Join(tokens, st.Name, "consul.token")
		st.Tracing.Endpoint = jaeger.OTLPGRPCAddr
	}
	s, canaryCfg := startStackOnPostgres(t, observe)
	canaryCfg.Track = canary.Canary
	canaryUser, err := user.New(canaryCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runServiceUntil(t, canaryUser))

	prom := testbackend.StartPrometheus(t, renderPrometheusConfigWithAlerts(t, consul.HTTPAddr, filepath.Join(tokens, "prometheus", "consul.token"), strings.TrimPrefix(am.URL, "http://")))
	eventually(t, time.Minute, "Prometheus scraping every instance, the canary labelled", func() error {
		if _, err := upTargets(prom, 4); err != nil {
			return err
		}
		got, err := prom.Query(`count by (track) (up{job="golden",service="user"})`)
		if err != nil || len(got) != 2 {
			return fmt.Errorf("user targets by track: %v, %v", got, err)
		}
		return nil
	})

	stableMetrics := "http://" + s.user.AdminAddr() + "/metrics"
	canaryMetrics := "http://" + canaryUser.AdminAddr() + "/metrics"
	gatewayMetrics := "http://" + s.gateway.AdminAddr() + "/metrics"
	handled := func(url string, labels ...string) float64 {
		return counterSum(t, url, "grpc_server_handled_total", append([]string{"grpc_service", "golden.user.v1.UserService"}, labels...)...)
	}
	signUp := func(name string, header ...string) {
		t.Helper()
		r := s.call(t, http.MethodPost, "/v1/users", "", map[string]string{
			"username": name, "email": name + "@example.com", "password": "correct horse battery",
		}, header...)
		if r.status != http.StatusCreated {
			t.Fatalf("sign-up %s: HTTP %d %v", name, r.status, r.body)
		}
	}
	// The canary is ready in the gateway's connection before routing to it
	// is measured: with none ready, canary routes fall back to stable.
	eventually(t, 30*time.Second, "a request with X-Canary: always served by the canary", func() error {
		before := handled(canaryMetrics, "grpc_method", "CreateUser")
		signUp(fmt.Sprintf("tester-%d", time.Now().UnixNano()), canary.Header, canary.HeaderAlways)
		if handled(canaryMetrics, "grpc_method", "CreateUser") == before {
			return fmt.Errorf("served by stable")
		}
		return nil
	})

	// Weight 0: nothing reaches the canary, X-Canary: never neither.
	canaryBefore := handled(canaryMetrics)
	for i := range 20 {
		signUp(fmt.Sprintf("weight0-%03d", i))
		signUp(fmt.Sprintf("never-%03d", i), canary.Header, canary.HeaderNever)
	}
	if n := handled(canaryMetrics) - canaryBefore; n != 0 {
		t.Fatalf("weight 0: the canary served %v calls", n)
	}
	if r := s.call(t, http.MethodPost, "/v1/users", "", map[string]string{"username": "x", "email": "x@example.com", "password": "correct horse battery"},
		canary.Header, "sometimes"); r.status != http.StatusBadRequest {
		t.Errorf("X-Canary: sometimes: HTTP %d, want 400", r.status)
	}

	// At weight N the callers whose bucket is below N go to the canary:
	// about N% of distinct users, each sign-up one user.
	setWeight := func(w int) {
		t.Helper()
		goldenCmd(t, bin, opEnv, "canary", "set", "--consul-addr", consul.HTTPAddr, "--service", "user", "--weight", strconv.Itoa(w))
		eventually(t, 30*time.Second, fmt.Sprintf("the gateway following weight %d", w), func() error {
			if got := counterSum(t, gatewayMetrics, "golden_canary_weight", "service", "user"); got != float64(w) {
				return fmt.Errorf("golden_canary_weight = %v", got)
			}
			return nil
		})
	}
	const users = 400
	var shares []string
	for _, w := range []int{5, 20, 50} {
		setWeight(w)
		stable0, canary0 := handled(stableMetrics, "grpc_method", "CreateUser"), handled(canaryMetrics, "grpc_method", "CreateUser")
		expected := 0
		for i := range users {
			name := fmt.Sprintf("share%d-%04d", w, i)
			if canary.Bucket(name) < w {
				expected++
			}
			signUp(name)
		}
		onCanary := handled(canaryMetrics, "grpc_method", "CreateUser") - canary0
		onStable := handled(stableMetrics, "grpc_method", "CreateUser") - stable0
		share := 100 * onCanary / users
		shares = append(shares, fmt.Sprintf("weight %d: %v of %d (%.1f%%)", w, onCanary, users, share))
		if int(onCanary) != expected || onCanary+onStable != users {
			t.Errorf("weight %d: canary %v, stable %v; want %d on the canary by bucket, %d in all", w, onCanary, onStable, expected, users)
		}
		if share < float64(w)-5 || share > float64(w)+5 {
			t.Errorf("weight %d: %.1f%% of distinct users on the canary, want %d ± 5", w, share, w)
		}
	}
	t.Logf("distinct users signed up on the canary: %s", strings.Join(shares, "; "))
	setWeight(20)

	// Load, then a fault on the canary track only.
	load := startLoadgen(t, bin, s.baseURL)
	time.Sleep(20 * time.Second)
	stableFailedBefore := handled(stableMetrics, "grpc_code", "Unavailable")
	faultAt := time.Now()
	goldenCmd(t, bin, opEnv, "fault", "set", "--consul-addr", consul.HTTPAddr, "--service", "user", "--method", "*",
		"--track", "canary", "--error-rate", "0.3", "--code", "Unavailable")
	store, err := canary.NewStore(consul.HTTPAddr, filepath.Join(tokens, "canary-guard", "consul.token"))
	if err != nil {
		t.Fatal(err)
	}
	var rolledBack canary.Setting
	eventually(t, 6*time.Minute, "the guard rolling the canary back", func() error {
		st, err := store.Get(t.Context(), "user")
		if err != nil {
			return err
		}
		if st.Weight != 0 {
			return fmt.Errorf("weight %d; %d notifications at the webhook", st.Weight, hook.count())
		}
		rolledBack = st
		return nil
	})
	alert, _, alerted := hook.find("firing", map[string]string{"alertname": "GoldenCanaryWorseThanStable", "service": "user"})
	if !alerted {
		t.Error("GoldenCanaryWorseThanStable did not reach the people's receivers")
	}
	if rolledBack.By != "golden canary guard" || !strings.Contains(rolledBack.Reason, "GoldenCanaryWorseThanStable") {
		t.Errorf("rollback record %+v: want by the guard, with the alert as reason", rolledBack)
	}
	if n := counterSum(t, guard+"/metrics", "golden_canary_guard_rollbacks_total", "service", "user"); n != 1 {
		t.Errorf("golden_canary_guard_rollbacks_total{service=user} = %v, want 1", n)
	}

	// After the rollback the canary gets nothing; stable never failed.
	eventually(t, 30*time.Second, "the gateway following weight 0", func() error {
		if w := counterSum(t, gatewayMetrics, "golden_canary_weight", "service", "user"); w != 0 {
			return fmt.Errorf("golden_canary_weight = %v", w)
		}
		return nil
	})
	quietFrom := handled(canaryMetrics)
	time.Sleep(10 * time.Second)
	quiet := handled(canaryMetrics) - quietFrom
	summary := load.stop(t)
	stableFailed := handled(stableMetrics, "grpc_code", "Unavailable") - stableFailedBefore
	injected := counterSum(t, canaryMetrics, "golden_faults_injected_total", "kind", "error")
	if quiet != 0 {
		t.Errorf("the canary served %v calls in the 10s after the rollback", quiet)
	}
	if stableFailed != 0 {
		t.Errorf("stable answered Unavailable %v times during the canary's fault", stableFailed)
	}
	if injected == 0 {
		t.Error("the canary injected no error")
	}
	status := goldenCmd(t, bin, append(opEnv, "GOLDEN_PROMETHEUS_URL="+prom.URL), "canary", "status", "--consul-addr", consul.HTTPAddr)
	for _, want := range []string{"user", "golden canary guard", "GoldenCanaryWorseThanStable", "canary"} {
		if !strings.Contains(status, want) {
			t.Errorf("golden canary status lacks %q:\n%s", want, status)
		}
	}
	t.Logf("golden canary status:\n%s", status)
	if tracks := spanTracks(t, jaeger.QueryURL, "user"); !tracks[canary.Canary] || !tracks[canary.Stable] {
		t.Errorf("user's spans in Jaeger carry golden.track %v, want both tracks", tracks)
	}
	alertAt := "never"
	if alerted {
		alertAt = "T+" + alert.received.Sub(faultAt).Round(time.Second).String()
	}
	t.Logf("timeline: canary fault (30%% Unavailable) at T, alert at the people's receivers %s, rollback at T+%s (%s); load: %d requests, %d unexpected failures (the canary's injected errors: %v); stable Unavailable: %v; canary calls in the 10s after: %v",
		alertAt, rolledBack.At.Sub(faultAt).Round(time.Second), rolledBack.Reason,
		summary.Requests, summary.UnexpectedFailures, injected, stableFailed, quiet)
}
