package metrics

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/golden-stack/golden/observability/requestid"
)

// testMux is a small API with the same kinds of patterns as the gateway.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
	mux.HandleFunc("DELETE /v1/users/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/users", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /v1/healthz", func(http.ResponseWriter, *http.Request) {
		// Writes nothing: the status is the implicit 200.
	})
	return mux
}

func newHTTP(t *testing.T) (*prometheus.Registry, *HTTP) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := NewHTTP(reg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, h
}

func serve(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

// TestHTTPLabels checks route, method and code for matched and unmatched
// requests.
func TestHTTPLabels(t *testing.T) {
	reg, m := newHTTP(t)
	h := m.Middleware(testMux())
	for _, tc := range []struct {
		method, target     string
		route, label, code string
	}{
		{"GET", "/v1/users/42", "/v1/users/{id}", "GET", "200"},
		{"DELETE", "/v1/users/42", "/v1/users/{id}", "DELETE", "204"},
		{"POST", "/v1/users", "/v1/users", "POST", "201"},
		{"GET", "/v1/healthz", "/v1/healthz", "GET", "200"},
		{"HEAD", "/v1/healthz", "/v1/healthz", "HEAD", "200"}, // GET patterns match HEAD
		{"GET", "/v1/nope", UnmatchedRoute, "GET", "404"},
		{"PUT", "/v1/users/42", UnmatchedRoute, "PUT", "405"},
		{"BREW", "/v1/users/42", UnmatchedRoute, OtherMethod, "405"},
		{"OPTIONS", "/v1/users", UnmatchedRoute, "OPTIONS", "405"},
	} {
		rec := serve(h, tc.method, tc.target)
		if got := fmt.Sprint(rec.Code); got != tc.code {
			t.Fatalf("%s %s: status %s, want %s", tc.method, tc.target, got, tc.code)
		}
		labels := map[string]string{"route": tc.route, "method": tc.label, "code": tc.code}
		if got := counterValue(t, reg, "golden_http_requests_total", labels); got != 1 {
			t.Errorf("%s %s: golden_http_requests_total%v = %v, want 1", tc.method, tc.target, labels, got)
		}
	}
	hist := mustFind(t, reg, "golden_http_request_duration_seconds", map[string]string{"route": "/v1/users/{id}", "method": "GET"}).GetHistogram()
	checkLatencyHistogram(t, "golden_http_request_duration_seconds", hist)
	if got := gaugeValue(t, reg, "golden_in_flight_requests", map[string]string{"server": "http"}); got != 0 {
		t.Errorf("in flight after all requests = %v, want 0", got)
	}
}

// TestHTTPCardinality sends 1,000 requests with distinct IDs, random paths,
// random request IDs and odd methods, through the request ID middleware as
// the gateway does, and checks that the series are the few the routes,
// methods and codes allow.
func TestHTTPCardinality(t *testing.T) {
	reg, m := newHTTP(t)
	h := requestid.Middleware(m.Middleware(testMux()))
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return fmt.Sprintf("%x", rng.Uint64()) }
	oddMethods := []string{"BREW", "PROPFIND", "PURGE", "TRACE", "CONNECT"}
	for i := range 1000 {
		var method, target string
		switch i % 4 {
		case 0: // distinct user IDs on a real route
			method, target = "GET", "/v1/users/"+word()+"?q="+word()
		case 1: // random paths
			method, target = "GET", "/"+word()+"/"+word()
		case 2: // odd methods, including random ones
			method = oddMethods[rng.IntN(len(oddMethods))]
			if rng.IntN(2) == 0 {
				method = "X" + strings.ToUpper(word())
			}
			target = "/v1/users/" + word()
		case 3: // a method the path does not allow
			method, target = "POST", "/v1/users/"+word()
		}
		req := httptest.NewRequest(method, target, nil)
		req.Header.Set(requestid.HeaderName, "req-"+word())
		h.ServeHTTP(httptest.NewRecorder(), req)
	}

	want := []string{
		"code=200,method=GET,route=/v1/users/{id}",
		"code=404,method=GET,route=unmatched",
		"code=405,method=OTHER,route=unmatched",
		"code=405,method=POST,route=unmatched",
	}
	if got := labelSets(t, reg, "golden_http_requests_total"); !slices.Equal(got, want) {
		t.Errorf("golden_http_requests_total series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// 4 counters and 4 histograms (one per route and method).
	if n := seriesCount(t, reg, "golden_http_"); n > 8 {
		t.Errorf("%d golden_http_* series after 1000 distinct requests, want at most 8", n)
	}
	// Plus golden_in_flight_requests{server="http"}.
	if n := seriesCount(t, reg, ""); n > 9 {
		t.Errorf("%d series in the registry after 1000 distinct requests, want at most 9", n)
	}
	if got := counterValue(t, reg, "golden_http_requests_total", map[string]string{"route": "/v1/users/{id}"}); got != 250 {
		t.Errorf("requests on /v1/users/{id} = %v, want 250", got)
	}
}

// TestHTTPCardinalityFullRegistry checks the same bound on a registry from
// NewRegistry, with the runtime collectors and the scrape handler's own
// metrics: the series count after a warm-up does not grow with traffic.
func TestHTTPCardinalityFullRegistry(t *testing.T) {
	reg := NewRegistry(BuildInfo{Service: "gateway"})
	m, err := NewHTTP(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(testMux())
	metricsHandler := Handler(reg)
	run := func(n int) {
		for i := range n {
			serve(h, "GET", fmt.Sprintf("/v1/users/%d", i))
			serve(h, "GET", fmt.Sprintf("/random/%d", i))
			serve(h, fmt.Sprintf("M%d", i), "/v1/users/1")
		}
		scrape(t, metricsHandler, openMetricsAccept)
	}
	run(2)
	before := seriesCount(t, reg, "")
	run(500)
	if after := seriesCount(t, reg, ""); after != before {
		t.Errorf("series grew with traffic: %d after warm-up, %d after 1500 more requests", before, after)
	}
}

// TestHTTPInFlight blocks a request in its handler and checks the gauge
// while it is in flight and after it returned.
func TestHTTPInFlight(t *testing.T) {
	reg, m := newHTTP(t)
	entered, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	})
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()

	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/slow")
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	inFlight := func() float64 {
		return gaugeValue(t, reg, "golden_in_flight_requests", map[string]string{"server": "http"})
	}
	if got := inFlight(); got != 1 {
		t.Errorf("in flight during the request = %v, want 1", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The client can see the response before the handler's deferred
	// bookkeeping ran; wait for it rather than race it.
	eventually(t, "in-flight gauge back to 0", func() bool { return inFlight() == 0 })
	eventually(t, "request counted", func() bool {
		return counterValue(t, reg, "golden_http_requests_total", map[string]string{"route": "/slow", "code": "200"}) == 1
	})
}

// TestHTTPStatusTracking covers the status the middleware records: the
// first final status, not 1xx; 200 when nothing is written; 500 for a panic
// before anything was written, which goes on unchanged.
func TestHTTPStatusTracking(t *testing.T) {
	reg, m := newHTTP(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hints", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusAccepted)
		w.WriteHeader(http.StatusTeapot) // superfluous: ignored by net/http
	})
	mux.HandleFunc("GET /empty", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("GET /panic-after-write", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		panic("boom")
	})
	h := m.Middleware(mux)

	serve(h, "GET", "/hints")
	serve(h, "GET", "/empty")
	for _, path := range []string{"/panic", "/panic-after-write"} {
		func() {
			defer func() {
				if p := recover(); p != "boom" {
					t.Errorf("%s: recovered %v, want the handler's panic", path, p)
				}
			}()
			serve(h, "GET", path)
		}()
	}
	for route, code := range map[string]string{"/hints": "202", "/empty": "200", "/panic": "500", "/panic-after-write": "409"} {
		got := labelSets(t, reg, "golden_http_requests_total")
		if counterValue(t, reg, "golden_http_requests_total", map[string]string{"route": route, "code": code}) != 1 {
			t.Errorf("route %s: want one request with code %s; have %v", route, code, got)
		}
	}
	if got := gaugeValue(t, reg, "golden_in_flight_requests", map[string]string{"server": "http"}); got != 0 {
		t.Errorf("in flight after panics = %v, want 0", got)
	}
}

// TestHTTPKeepsFlusher checks that handlers behind the middleware can still
// stream.
func TestHTTPKeepsFlusher(t *testing.T) {
	_, m := newHTTP(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, _ *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			t.Error("ResponseWriter behind the middleware is not an http.Flusher")
			return
		}
		_, _ = io.WriteString(w, "a")
		f.Flush()
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
	})
	rec := serve(m.Middleware(mux), "GET", "/stream")
	if !rec.Flushed {
		t.Error("the flush did not reach the underlying writer")
	}
}

// TestHTTPExemplars checks the trace_id exemplar of a sampled request and its
// absence for an unsampled one.
func TestHTTPExemplars(t *testing.T) {
	for _, sampled := range []bool{true, false} {
		t.Run(fmt.Sprintf("sampled=%v", sampled), func(t *testing.T) {
			reg, m := newHTTP(t)
			sc := spanContext(sampled)
			req := httptest.NewRequest("GET", "/v1/users/7", nil)
			req = req.WithContext(trace.ContextWithSpanContext(req.Context(), sc))
			m.Middleware(testMux()).ServeHTTP(httptest.NewRecorder(), req)

			body, _ := scrape(t, Handler(reg), openMetricsAccept)
			counter := exemplarLines(body, "golden_http_requests_total{")
			buckets := exemplarLines(body, "golden_http_request_duration_seconds_bucket{")
			if !sampled {
				if len(counter)+len(buckets) != 0 {
					t.Fatalf("exemplars for an unsampled span:\n%s", strings.Join(append(counter, buckets...), "\n"))
				}
				return
			}
			want := `# {trace_id="` + sc.TraceID().String() + `"}`
			if len(counter) != 1 || !strings.Contains(counter[0], want) {
				t.Errorf("golden_http_requests_total exemplars = %q, want one with %s", counter, want)
			}
			if len(buckets) != 1 || !strings.Contains(buckets[0], want) {
				t.Errorf("golden_http_request_duration_seconds_bucket exemplars = %q, want one with %s", buckets, want)
			}
		})
	}
}

// TestHTTPRequestCopyHidesRoute documents the one requirement of Middleware:
// a middleware between it and the mux that replaces the request hides the
// route, which the mux sets on the copy.
func TestHTTPRequestCopyHidesRoute(t *testing.T) {
	reg, m := newHTTP(t)
	copying := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(r.Context()))
		})
	}
	serve(m.Middleware(copying(testMux())), "GET", "/v1/users/1")
	serve(copying(m.Middleware(testMux())), "GET", "/v1/users/2")
	for route, want := range map[string]float64{UnmatchedRoute: 1, "/v1/users/{id}": 1} {
		if got := counterValue(t, reg, "golden_http_requests_total", map[string]string{"route": route, "code": "200"}); got != want {
			t.Errorf("route %q: %v requests, want %v", route, got, want)
		}
	}
}

func TestRouteLabel(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                    UnmatchedRoute,
		"GET /v1/users/{id}":  "/v1/users/{id}",
		"POST  /v1/login":     "/v1/login",
		"GET\t/v1/healthz":    "/v1/healthz",
		"/static/":            "/static/",
		"example.com/":        "example.com/",
		"GET example.com/{$}": "example.com/{$}",
	} {
		if got := routeLabel(pattern); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestMethodLabel(t *testing.T) {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		if got := methodLabel(m); got != m {
			t.Errorf("methodLabel(%q) = %q", m, got)
		}
	}
	for _, m := range []string{"get", "TRACE", "CONNECT", "BREW", "", "GET ", strings.Repeat("X", 1000)} {
		if got := methodLabel(m); got != OtherMethod {
			t.Errorf("methodLabel(%q) = %q, want %q", m, got, OtherMethod)
		}
	}
}
