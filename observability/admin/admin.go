// Package admin is the HTTP server on every service's admin port: liveness
// and readiness probes now, and the place where metrics and debug pages are
// mounted.
package admin

import (
	"net"
	"net/http"
	"net/http/pprof"

	"golang.org/x/net/trace"

	"github.com/golden-stack/golden/observability/lifecycle"
)

// Server is the admin HTTP server of one service.
type Server struct {
	*lifecycle.HTTPServer
	mux *http.ServeMux
}

// Listen binds addr and returns New on it.
func Listen(addr string, ready func() bool) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return New(lis, ready), nil
}

// New returns the admin server on lis, serving /livez (the process is up)
// and /readyz (ready reports whether the service should receive traffic).
func New(lis net.Listener, ready func() bool) *Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return &Server{HTTPServer: lifecycle.NewHTTPServer("admin", lis, mux), mux: mux}
}

// Handle mounts h on the admin port, e.g. the metrics handler on /metrics.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// EnableDebugPages mounts golang.org/x/net/trace's /debug/requests (recent
// requests per method, with latency buckets) and /debug/events, and Go's
// profiles under /debug/pprof/ (net/http/pprof: heap, goroutine, profile,
// trace, ...). The pages show request details and profiles show memory, so
// they are answered only to loopback clients (x/net/trace's AuthRequest),
// whatever address the admin port binds.
func (s *Server) EnableDebugPages() {
	s.mux.HandleFunc("GET /debug/requests", trace.Traces)
	s.mux.HandleFunc("GET /debug/events", trace.Events)
	s.mux.Handle("GET /debug/pprof/", loopbackOnly(http.HandlerFunc(pprof.Index)))
	s.mux.Handle("GET /debug/pprof/cmdline", loopbackOnly(http.HandlerFunc(pprof.Cmdline)))
	s.mux.Handle("GET /debug/pprof/profile", loopbackOnly(http.HandlerFunc(pprof.Profile)))
	s.mux.Handle("GET /debug/pprof/symbol", loopbackOnly(http.HandlerFunc(pprof.Symbol)))
	s.mux.Handle("GET /debug/pprof/trace", loopbackOnly(http.HandlerFunc(pprof.Trace)))
}

// loopbackOnly answers 401 to clients that are not on this machine.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, _ := trace.AuthRequest(r); !ok {
			http.Error(w, "debug pages answer loopback clients only", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
