package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	lg "github.com/golden-stack/golden/internal/loadgen"
	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/security"
	"github.com/golden-stack/golden/services/auth"
	"github.com/golden-stack/golden/services/gateway"
	"github.com/golden-stack/golden/services/user"
)

// fleet is two instances of auth and of user and a gateway, in this
// process, discovered through a real Consul and sharing a real PostgreSQL
// database, as docker-compose.yml runs them.
type fleet struct {
	t          *testing.T
	certs      string
	consulAddr string
	db         string
	httpAddr   string // the gateway's, fixed so that load can start first
	adminURL   string // the gateway's admin server, once started
	mu         sync.Mutex
	running    map[string]*member
}

// member is one running instance.
type member struct {
	stop     func()
	grpcAddr string
}

// start starts the instance name ("auth-1", "user-2", "gateway").
func (f *fleet) start(name string) {
	f.t.Helper()
	var (
		svc  interface{ Run(context.Context) error }
		addr string
	)
	fail := func(err error) {
		f.t.Helper()
		if err != nil {
			f.t.Fatalf("starting %s: %v", name, err)
		}
	}
	switch kind, _, _ := strings.Cut(name, "-"); kind {
	case "user":
		c := userConfig(f.certs)
		enableConsul(&c.Settings, f.consulAddr)
		c.Store, c.DB.URL = "postgres", f.db
		u, err := user.New(c)
		fail(err)
		svc, addr = u, u.GRPCAddr()
	case "auth":
		c := auth.DefaultConfig()
		c.TLS = security.DefaultFiles(f.certs, "auth")
		c.GRPC.Addr, c.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
		c.Token.PrivateKey = filepath.Join(f.certs, "token-signing.key")
		c.Logging.Level = "error"
		enableConsul(&c.Settings, f.consulAddr)
		c.Store, c.DB.URL = "postgres", f.db
		a, err := auth.New(c)
		fail(err)
		svc, addr = a, a.GRPCAddr()
	case "gateway":
		c := gateway.DefaultConfig()
		c.TLS = security.DefaultFiles(f.certs, "gateway")
		c.HTTPAddr, c.AdminAddr = f.httpAddr, "127.0.0.1:0"
		c.Logging.Level = "error"
		enableConsul(&c.Settings, f.consulAddr)
		gw, err := gateway.New(c)
		fail(err)
		svc, f.adminURL = gw, "http://"+gw.AdminAddr()
	}
	stop := runServiceUntil(f.t, svc)
	f.t.Cleanup(stop)
	f.mu.Lock()
	f.running[name] = &member{stop: stop, grpcAddr: addr}
	f.mu.Unlock()
}

// restart stops name (as SIGTERM does: deregister, drain) and starts a new
// instance in its place, then waits until Consul passes it.
func (f *fleet) restart(name string) {
	f.t.Helper()
	f.mu.Lock()
	m := f.running[name]
	f.mu.Unlock()
	m.stop()
	f.start(name)
}

// registered returns the number of instances of service in Consul's
// catalog, and the number whose checks pass.
func registered(c *api.Client, service string) (all, passing int, err error) {
	entries, _, err := c.Health().Service(service, "", false, nil)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		all++
		if e.Checks.AggregatedStatus() == api.HealthPassing {
			passing++
		}
	}
	return all, passing, nil
}

// waitPassing waits until Consul passes want instances of each service.
func waitPassing(t *testing.T, c *api.Client, want map[string]int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("passing instances %v", want), func() error {
		for svc, n := range want {
			if _, passing, err := registered(c, svc); err != nil || passing != n {
				return fmt.Errorf("%s: %d passing (%v)", svc, passing, err)
			}
		}
		return nil
	})
}

// result is one load generator request with when it ended.
type result struct {
	lg.Result
	end time.Time
}

// backgroundLoad is a load generator running until stopped, which records
// every result with the time it ended.
type backgroundLoad struct {
	mu      sync.Mutex
	results []result
	stop    func() lg.Summary
	stopped atomic.Bool   // Stop returned: no request is in flight
	timeout time.Duration // each request's bound
}

// startLoad runs a generator with cfg until Stop or the end of the test.
func startLoad(t *testing.T, cfg lg.Config) *backgroundLoad {
	t.Helper()
	l := &backgroundLoad{timeout: cfg.Timeout}
	g, err := lg.New(cfg, lg.WithObserver(func(r lg.Result) {
		l.mu.Lock()
		l.results = append(l.results, result{r, time.Now()})
		l.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan lg.Summary, 1)
	go func() {
		sum, _ := g.Run(ctx)
		done <- sum
	}()
	var once sync.Once
	var sum lg.Summary
	l.stop = func() lg.Summary {
		once.Do(func() {
			cancel()
			sum = <-done
			l.stopped.Store(true)
		})
		return sum
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// Stop ends the load, waits for the requests in flight and returns the
// generator's summary; later calls return the same summary.
func (l *backgroundLoad) Stop() lg.Summary { return l.stop() }

// Settle waits until every request sent before to has ended, so that
// Results holds them: at once when the load has stopped, since Stop waits
// for the requests in flight, and otherwise until their timeout has passed.
func (l *backgroundLoad) Settle(to time.Time) {
	if !l.stopped.Load() {
		time.Sleep(time.Until(to.Add(l.timeout + 500*time.Millisecond)))
	}
}

// Results returns the results recorded so far.
func (l *backgroundLoad) Results() []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// TestTrafficSurvivesRestartsAndOutages runs load at 50 requests/s through
// the gateway while, in turn: (c) the whole fleet starts after the load
// did; (b) every auth and user instance is stopped as SIGTERM does and
// replaced; (a) Consul stops for 30s and comes back empty; (e) PostgreSQL
// stops for 10s. No request may fail unexpectedly except, during (e), with
// a fast 503. (d) Two auth instances rotate one refresh token at once, 100
// times.
func TestTrafficSurvivesRestartsAndOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul, PostgreSQL and five services under load")
	}
	consul := testbackend.NewConsul(t)
	consul.Start(t)
	pg := testbackend.StartPostgres(t)
	f := &fleet{t: t, certs: newCerts(t), consulAddr: consul.HTTPAddr, db: pg.CreateDatabase(t, "golden"),
		httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testbackend.FreePort(t))), running: map[string]*member{}}
	client, err := api.NewClient(&api.Config{Address: consul.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}

	// The load starts first, against a gateway that does not exist yet.
	cfg := lg.DefaultConfig()
	cfg.Target = "http://" + f.httpAddr
	cfg.Rate, cfg.Duration, cfg.ReportInterval, cfg.Concurrency, cfg.Seed = 50, 0, 0, 64, 1
	load := startLoad(t, cfg)
	defer load.Stop()
	// failures returns the unexpected failures among the requests that
	// ended in [from, to).
	failures := func(from, to time.Time) (bad []result, total int) {
		for _, r := range load.Results() {
			if r.end.Before(from) || !r.end.Before(to) {
				continue
			}
			total++
			if r.Outcome == lg.UnexpectedFailure {
				bad = append(bad, r)
			}
		}
		return bad, total
	}
	check := func(step string, from, to time.Time) {
		t.Helper()
		bad, total := failures(from, to)
		t.Logf("%s: %d requests, %d unexpected failures (%s)", step, total, len(bad), to.Sub(from).Round(time.Millisecond))
		for i, r := range bad {
			if i == 5 {
				t.Errorf("%s: ... %d more", step, len(bad)-5)
				break
			}
			t.Errorf("%s: %s %s answered %d %s (%v)", step, r.Op, r.RequestID, r.Status, r.Code, r.Err)
		}
	}

	// (c) Start-up under load: users, auths, then the gateway.
	time.Sleep(time.Second)
	for _, name := range []string{"user-1", "user-2", "auth-1", "auth-2", "gateway"} {
		f.start(name)
	}
	eventually(t, 30*time.Second, "gateway ready", testbackend.HTTPReady(f.adminURL+"/readyz"))
	ready := time.Now()
	waitPassing(t, client, map[string]int{"user": 2, "auth": 2, "gateway": 1}, 30*time.Second)
	time.Sleep(5 * time.Second)
	check("(c) start-up, from gateway ready", ready, time.Now())

	// (b) Each instance of auth and of user stopped and replaced in turn.
	from := time.Now()
	for _, name := range []string{"user-1", "user-2", "auth-1", "auth-2"} {
		f.restart(name)
		waitPassing(t, client, map[string]int{"user": 2, "auth": 2}, 30*time.Second)
		time.Sleep(2 * time.Second)
	}
	check("(b) restart of every auth and user instance", from, time.Now())

	// (a) Consul stopped for 30s; it comes back without any registration.
	from = time.Now()
	consul.Stop()
	time.Sleep(30 * time.Second)
	consul.Start(t) // returns once it has a leader
	leader := time.Now()
	eventually(t, 10*time.Second, "every instance registered again", func() error {
		for svc, n := range map[string]int{"user": 2, "auth": 2, "gateway": 1} {
			if all, _, err := registered(client, svc); err != nil || all != n {
				return fmt.Errorf("%s: %d registered (%v)", svc, all, err)
			}
		}
		return nil
	})
	reregistered := time.Since(leader)
	t.Logf("(a) every instance registered again %s after Consul had a leader", reregistered.Round(time.Millisecond))
	if reregistered > 5*time.Second {
		t.Errorf("(a) re-registration took %s, want within 5s of a leader", reregistered)
	}
	waitPassing(t, client, map[string]int{"user": 2, "auth": 2, "gateway": 1}, 30*time.Second)
	time.Sleep(3 * time.Second)
	check("(a) Consul stopped 30s and started", from, time.Now())

	// (e) PostgreSQL stopped for 10s: each failure a fast 503, then
	// recovery within 5s without restarting anything.
	from = time.Now()
	pg.Stop()
	time.Sleep(10 * time.Second)
	pg.Start(t)
	back := time.Now()
	time.Sleep(10 * time.Second)
	var down, slow, other int
	for _, r := range load.Results() {
		if r.end.Before(from) || r.end.After(back.Add(5*time.Second)) || r.Outcome != lg.UnexpectedFailure {
			continue
		}
		down++
		switch {
		case r.Status != http.StatusServiceUnavailable:
			other++
			if other <= 5 {
				t.Errorf("(e) failure while PostgreSQL was down: %s answered %d %s (%v), want 503", r.Op, r.Status, r.Code, r.Err)
			}
		case r.Latency > time.Second:
			slow++
			if slow <= 5 {
				t.Errorf("(e) 503 after %s, want within 1s", r.Latency)
			}
		}
	}
	t.Logf("(e) PostgreSQL stopped 10s: %d failures, all 503 within 1s but %d slow and %d other", down, slow, other)
	if down == 0 {
		t.Error("(e) no request failed while PostgreSQL was down: the outage was not exercised")
	}
	check("(e) after PostgreSQL's return (+5s)", back.Add(5*time.Second), time.Now())

	// (d) One refresh token rotated on both auth instances at once.
	rotateOnTwoInstances(t, f)

	if rss, err := postgresRSS(); err == nil {
		t.Logf("PostgreSQL resident memory under the load: %d MiB (all its processes; shared buffers counted in each)", rss>>20)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("this process (five services, the load generator, the test) under the load: heap in use %d MiB, %d goroutines", ms.HeapInuse>>20, runtime.NumGoroutine())
}

// rotateOnTwoInstances logs in through auth-1, then rotates the refresh
// token on auth-1 and auth-2 at the same moment, 100 times: exactly one
// wins, and the other's reuse revokes the family on both.
func rotateOnTwoInstances(t *testing.T, f *fleet) {
	t.Helper()
	f.mu.Lock()
	a1, a2 := f.running["auth-1"].grpcAddr, f.running["auth-2"].grpcAddr
	f.mu.Unlock()
	c1 := authv1.NewAuthServiceClient(dial(t, a1, "auth", f.certs, f.certs, "gateway"))
	c2 := authv1.NewAuthServiceClient(dial(t, a2, "auth", f.certs, f.certs, "gateway"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &stack{baseURL: "http://" + f.httpAddr}
	if r := s.call(t, http.MethodPost, "/v1/users", "", map[string]string{"username": "rotator", "email": "rotator@example.com", "password": "correct-horse-battery"}); r.status != http.StatusCreated {
		t.Fatalf("sign-up: %d %v", r.status, r.body)
	}
	for round := range 100 {
		login, err := c1.Login(ctx, &authv1.LoginRequest{Username: "rotator", Password: "correct-horse-battery"})
		if err != nil {
			t.Fatalf("round %d: login: %v", round, err)
		}
		tok := login.GetTokens().GetRefreshToken()
		answers := make([]*authv1.RefreshResponse, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, c := range []authv1.AuthServiceClient{c1, c2} {
			wg.Go(func() { answers[i], errs[i] = c.Refresh(ctx, &authv1.RefreshRequest{RefreshToken: tok}) })
		}
		wg.Wait()
		wins := 0
		var next string
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
				next = answers[i].GetTokens().GetRefreshToken()
			case status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "reuse"):
				t.Fatalf("round %d: the losing rotation answered %v, want Unauthenticated reuse", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d rotations won, want exactly 1", round, wins)
		}
		// The loser's reuse revoked the family: the winner's token is dead
		// on both instances.
		for i, c := range []authv1.AuthServiceClient{c1, c2} {
			if _, err := c.Refresh(ctx, &authv1.RefreshRequest{RefreshToken: next}); status.Code(err) != codes.Unauthenticated {
				t.Fatalf("round %d: the winner's token on auth-%d after the reuse: %v, want Unauthenticated", round, i+1, err)
			}
		}
	}
	t.Logf("(d) 100 rounds of one refresh token rotated on two auth instances at once: exactly one win each, the family revoked on both")
}

// postgresRSS sums the resident memory of the postgres processes on this
// machine (the test's server is the only one).
func postgresRSS() (int64, error) {
	procs, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range procs {
		comm, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kb << 10
			}
		}
	}
	return total, nil
}
