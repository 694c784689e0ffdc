package metrics

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the HTTP metrics that do not come from the request.
const (
	// UnmatchedRoute is the route label of requests no route matched
	// (404, 405 and redirects of the ServeMux).
	UnmatchedRoute = "unmatched"
	// OtherMethod is the method label of requests whose method is not one
	// of GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS.
	OtherMethod = "OTHER"
)

// HTTP is the HTTP half of the golden signals for the gateway: requests by
// route template, method and status code, their latency, and
// golden_in_flight_requests{server="http"}.
type HTTP struct {
	exemplars exemplars
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
}

// NewHTTP registers the HTTP metrics on reg. It fails when reg already holds
// them: create one HTTP per registry.
func NewHTTP(reg prometheus.Registerer) (*HTTP, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "golden_http_requests_total",
		Help: "Total number of HTTP requests served, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	ho := latencyOpts()
	ho.Name = "golden_http_request_duration_seconds"
	ho.Help = "Latency of HTTP requests, from the start of the handler to its return, by route template and method."
	duration := prometheus.NewHistogramVec(ho, []string{"route", "method"})
	if err := registerAll(reg, "HTTP metrics", requests, duration); err != nil {
		return nil, err
	}
	g, err := inFlight(reg, "http")
	if err != nil {
		reg.Unregister(requests)
		reg.Unregister(duration)
		return nil, err
	}
	return &HTTP{requests: requests, duration: duration, inFlight: g}, nil
}

// Middleware counts and times every request next serves, with a trace_id
// exemplar when the request's context carries a sampled span.
//
// The route label is the path part of the net/http.ServeMux pattern that
// matched ("GET /v1/users/{id}" gives route="/v1/users/{id}"), read from
// r.Pattern after next returns, or UnmatchedRoute when no pattern matched.
// The mux sets r.Pattern on the very *http.Request it receives, so next must
// reach the mux with Middleware's own r: any middleware in between must pass
// r on unchanged, never a copy such as r.WithContext(...), or every request
// counts as unmatched. Middleware that replaces the request belongs outside
// this one.
//
// A handler that panics is counted with the status it wrote, or 500 if it
// wrote none; the panic goes on unchanged. Put panic recovery inside this
// middleware, so that the 500 it answers is the one counted.
func (h *HTTP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.inFlight.Inc()
		var st responseStatus
		completed := false
		defer func() {
			h.inFlight.Dec()
			code := st.code
			if !completed && !st.written {
				code = http.StatusInternalServerError
			}
			h.observe(r, code, time.Since(start))
		}()
		next.ServeHTTP(httpsnoop.Wrap(w, st.hooks()), r)
		completed = true
	})
}

// observe records one served request.
func (h *HTTP) observe(r *http.Request, code int, d time.Duration) {
	route, method := routeLabel(r.Pattern), methodLabel(r.Method)
	// A server error always keeps its exemplar: it is the one to look up.
	ex := h.exemplars.fromContext(r.Context(), code >= 500)
	// Vectors made by NewCounterVec and NewHistogramVec always implement
	// the exemplar interfaces; a nil exemplar records none.
	h.requests.WithLabelValues(route, method, strconv.Itoa(code)).(prometheus.ExemplarAdder).AddWithExemplar(1, ex)
	h.duration.WithLabelValues(route, method).(prometheus.ExemplarObserver).ObserveWithExemplar(d.Seconds(), ex)
}

// routeLabel returns the path part of a ServeMux pattern ("[METHOD ][HOST]/PATH"),
// split the way the mux splits it, or UnmatchedRoute for "".
func routeLabel(pattern string) string {
	if pattern == "" {
		return UnmatchedRoute
	}
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	return pattern
}

// methodLabel maps a request method, which the client chooses freely, onto a
// fixed set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return OtherMethod
}

// responseStatus follows the response status a handler sends.
type responseStatus struct {
	code    int  // final status sent; 200 until the handler says otherwise
	written bool // whether the final status has been sent
}

// hooks returns httpsnoop hooks that track the status; httpsnoop keeps the
// optional interfaces of the wrapped writer (http.Flusher, http.Hijacker,
// io.ReaderFrom, ...) and Unwrap for http.ResponseController.
func (s *responseStatus) hooks() httpsnoop.Hooks {
	s.code = http.StatusOK
	sent := func() { s.written = true }
	return httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				next(code)
				// 1xx other than 101 are informational: the final
				// status is still to come, as net/http sees it.
				if !s.written && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
					s.code = code
					s.written = true
				}
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(b []byte) (int, error) { sent(); return next(b) }
		},
		WriteString: func(next httpsnoop.WriteStringFunc) httpsnoop.WriteStringFunc {
			return func(str string) (int, error) { sent(); return next(str) }
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) { sent(); return next(src) }
		},
		Flush: func(next httpsnoop.FlushFunc) httpsnoop.FlushFunc {
			return func() { sent(); next() }
		},
	}
}
