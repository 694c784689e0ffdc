package admin

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// start serves an admin server on a free loopback port until the test ends.
func start(t *testing.T, ready func() bool) (*Server, string) {
	t.Helper()
	s, err := Listen("127.0.0.1:0", ready)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, "http://" + s.Addr().String()
}

func do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestProbes(t *testing.T) {
	var ready atomic.Bool
	s, base := start(t, ready.Load)
	if s.Name() != "admin" {
		t.Errorf("Name() = %q, want admin", s.Name())
	}

	if code, body := do(t, http.MethodGet, base+"/livez"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /livez = %d %q, want 200 ok", code, body)
	}
	if code, _ := do(t, http.MethodGet, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while not ready = %d, want 503", code)
	}
	// /livez does not depend on readiness.
	if code, _ := do(t, http.MethodGet, base+"/livez"); code != http.StatusOK {
		t.Errorf("GET /livez while not ready = %d, want 200", code)
	}

	ready.Store(true)
	if code, body := do(t, http.MethodGet, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /readyz while ready = %d %q, want 200 ok", code, body)
	}
	ready.Store(false)
	if code, _ := do(t, http.MethodGet, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz after readiness dropped = %d, want 503", code)
	}

	if code, _ := do(t, http.MethodPost, base+"/livez"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /livez = %d, want 405", code)
	}
	if code, _ := do(t, http.MethodGet, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}

func TestHandleMountsHandler(t *testing.T) {
	s, base := start(t, func() bool { return true })
	s.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "up 1\n")
	}))
	if code, body := do(t, http.MethodGet, base+"/metrics"); code != http.StatusOK || body != "up 1\n" {
		t.Errorf("GET /metrics = %d %q, want the mounted handler's answer", code, body)
	}
	if code, _ := do(t, http.MethodGet, base+"/livez"); code != http.StatusOK {
		t.Errorf("GET /livez after Handle = %d, want 200", code)
	}
}

func TestListenTakenPort(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if _, err := Listen(lis.Addr().String(), func() bool { return true }); err == nil {
		t.Errorf("Listen on a taken port succeeded")
	}
}

// TestDebugPages mounts the debug pages: loopback clients get the request
// traces and Go's profiles; anyone else is refused.
func TestDebugPages(t *testing.T) {
	s, base := start(t, func() bool { return true })
	if code, _ := do(t, http.MethodGet, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without debug pages = %d, want 404", code)
	}
	s.EnableDebugPages()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/pprof/cmdline":           "",
		"/debug/requests":                "/debug/requests",
	} {
		if code, body := do(t, http.MethodGet, base+path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s from loopback = %d, body lacks %q", path, code, want)
		}
	}
	// The same handlers asked by a client on another machine.
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "192.0.2.10:40000"
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s from 192.0.2.10 = %d, want 401", path, rec.Code)
		}
	}
}
