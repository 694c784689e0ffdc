package lifecycle

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// journal records component events in the order they happen.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, e)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// fake is a Component whose Serve blocks until Shutdown, or returns serveErr
// at once when set.
type fake struct {
	name        string
	j           *journal
	serveErr    error
	shutdownErr error
	started     chan struct{}
	stop        chan struct{}
	stopOnce    sync.Once
}

func newFake(name string, j *journal) *fake {
	return &fake{name: name, j: j, started: make(chan struct{}), stop: make(chan struct{})}
}

func (f *fake) Name() string { return f.name }

func (f *fake) Serve() error {
	close(f.started)
	if f.serveErr != nil {
		return f.serveErr
	}
	<-f.stop
	return nil
}

func (f *fake) Shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		f.j.add("shutdown without deadline: " + f.name)
	}
	f.j.add("shutdown " + f.name)
	f.stopOnce.Do(func() { close(f.stop) })
	return f.shutdownErr
}

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func TestRunStopsInReverseOrderWhenContextEnds(t *testing.T) {
	j := &journal{}
	a, b, c := newFake("a", j), newFake("b", j), newFake("c", j)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, quiet(), 5*time.Second, a, b, c) }()
	for _, f := range []*fake{a, b, c} {
		<-f.started
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after the context ended", err)
	}
	if got, want := j.get(), []string{"shutdown c", "shutdown b", "shutdown a"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestRunStopsAllWhenOneFails(t *testing.T) {
	j := &journal{}
	boom := errors.New("boom")
	a, b, c := newFake("a", j), newFake("b", j), newFake("c", j)
	b.serveErr = boom
	err := Run(t.Context(), quiet(), 5*time.Second, a, b, c)
	if err == nil || !errors.Is(err, boom) || !strings.Contains(err.Error(), "b: boom") {
		t.Fatalf("Run = %v, want an error naming b and wrapping its failure", err)
	}
	if got, want := j.get(), []string{"shutdown c", "shutdown b", "shutdown a"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

// stopsAlone is a Component whose Serve returns nil without being asked to.
type stopsAlone struct{ *fake }

func (s stopsAlone) Serve() error { return nil }

func TestRunComponentStoppingOnItsOwnIsAFailure(t *testing.T) {
	j := &journal{}
	a := newFake("a", j)
	err := Run(t.Context(), quiet(), 5*time.Second, a, stopsAlone{newFake("b", j)})
	if err == nil || !strings.Contains(err.Error(), "stopped on its own") {
		t.Fatalf("Run = %v, want an error saying a component stopped on its own", err)
	}
	if got, want := j.get(), []string{"shutdown b", "shutdown a"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestRunReportsShutdownErrors(t *testing.T) {
	j := &journal{}
	a, b := newFake("a", j), newFake("b", j)
	stuck := errors.New("could not flush")
	a.shutdownErr = stuck
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Run(ctx, quiet(), 5*time.Second, a, b)
	if err == nil || !errors.Is(err, stuck) || !strings.Contains(err.Error(), "a: shutdown: could not flush") {
		t.Fatalf("Run = %v, want an error naming a's shutdown failure", err)
	}
	if got, want := j.get(), []string{"shutdown b", "shutdown a"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want every component shut down: %v", got, want)
	}
}

// neverStops is a Component whose Serve ignores Shutdown until the test ends.
type neverStops struct {
	started, release chan struct{}
}

func (n *neverStops) Name() string                   { return "stuck" }
func (n *neverStops) Serve() error                   { close(n.started); <-n.release; return nil }
func (n *neverStops) Shutdown(context.Context) error { return nil }

func TestRunGivesUpAfterTimeout(t *testing.T) {
	j := &journal{}
	a := newFake("a", j)
	stuck := &neverStops{started: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(stuck.release) })

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, quiet(), 200*time.Millisecond, a, stuck) }()
	<-a.started
	<-stuck.started
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "1 component(s) still running after 200ms") {
		t.Fatalf("Run = %v, want an error about the component still running", err)
	}
	if got := j.get(); !slices.Equal(got, []string{"shutdown a"}) {
		t.Errorf("events = %v, want a shut down", got)
	}
}

func TestRunWithoutComponents(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Run(ctx, quiet(), time.Second); err != nil {
		t.Errorf("Run() with nothing to run = %v", err)
	}
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func TestHTTPServerServesAndDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/fast", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fast") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "slow")
	})
	srv := NewHTTPServer("web", listenLoopback(t), mux)
	if srv.Name() != "web" {
		t.Errorf("Name() = %q, want web", srv.Name())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	base := "http://" + srv.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	if body, err := get(client, base+"/fast"); err != nil || body != "fast" {
		t.Fatalf("GET /fast = %q, %v", body, err)
	}

	slow := make(chan string, 1)
	go func() {
		body, err := get(client, base+"/slow")
		if err != nil {
			body = "error: " + err.Error()
		}
		slow <- body
	}()
	<-entered

	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(context.Background()) }()
	// New connections are refused once Shutdown has closed the listener.
	refused := false
	for range 1000 {
		if _, err := get(client, base+"/fast"); err != nil {
			refused = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !refused {
		t.Error("server still accepted requests after Shutdown started")
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v before the in-flight request finished", err)
	default:
	}

	close(release)
	if body := <-slow; body != "slow" {
		t.Errorf("in-flight request = %q, want it drained", body)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
}

func TestHTTPServerDrainClosesConnectionsAfterResponses(t *testing.T) {
	srv := NewHTTPServer("web", listenLoopback(t), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	// call returns whether the request went on a reused connection and
	// whether the response closed it.
	call := func() (reused, closed bool) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+srv.Addr().String()+"/", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return reused, resp.Close
	}

	for i, want := range []struct{ reused, closed bool }{
		{false, false}, // a new connection, kept alive
		{true, false},  // the same one
	} {
		if reused, closed := call(); reused != want.reused || closed != want.closed {
			t.Fatalf("request %d before Drain: reused %t, closed %t; want %t, %t", i, reused, closed, want.reused, want.closed)
		}
	}
	srv.Drain()
	// The kept-alive connection answers once more and closes; so does
	// every connection after it, while the server keeps answering.
	for i, want := range []struct{ reused, closed bool }{
		{true, true},
		{false, true},
		{false, true},
	} {
		if reused, closed := call(); reused != want.reused || closed != want.closed {
			t.Fatalf("request %d after Drain: reused %t, closed %t; want %t, %t", i, reused, closed, want.reused, want.closed)
		}
	}
}

func TestHTTPServerShutdownDeadlineClosesConnections(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := NewHTTPServer("web", listenLoopback(t), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
	}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	got := make(chan error, 1)
	go func() {
		_, err := get(http.DefaultClient, "http://"+srv.Addr().String()+"/")
		got <- err
	}()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown(cancelled) = %v, want context.Canceled", err)
	}
	if err := <-got; err == nil {
		t.Error("stuck request succeeded, want its connection closed")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
}

func TestRunHTTPServer(t *testing.T) {
	srv := NewHTTPServer("web", listenLoopback(t), http.NotFoundHandler())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, quiet(), 5*time.Second, srv) }()
	if _, err := get(http.DefaultClient, "http://"+srv.Addr().String()+"/"); err != nil {
		t.Fatalf("GET while running: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func get(c *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// slowFlush is a Component whose Shutdown lasts until its deadline, as a
// log flush to an absent Graylog does; its Serve returns when Shutdown
// begins.
type slowFlush struct{ *fake }

func (f slowFlush) Shutdown(ctx context.Context) error {
	f.stopOnce.Do(func() { close(f.stop) })
	<-ctx.Done()
	return nil
}

// TestRunCleanWhenLastShutdownUsesDeadline: every part returned from Serve,
// but the last Shutdown ended only at the deadline. That is a clean stop,
// not "still running"; repeated, as the outcome once depended on a race.
func TestRunCleanWhenLastShutdownUsesDeadline(t *testing.T) {
	for i := range 20 {
		j := &journal{}
		flush, a, b := slowFlush{newFake("logs", j)}, newFake("a", j), newFake("b", j)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, quiet(), 20*time.Millisecond, flush, a, b) }()
		for _, f := range []*fake{flush.fake, a, b} {
			<-f.started
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: Run = %v, want nil: every part had returned", i, err)
		}
	}
}
