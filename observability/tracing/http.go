package tracing

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Middleware gives every HTTP request a server span, continuing the
// caller's trace from its traceparent header, and tags it with the request
// ID ("request_id") and the route.
//
// The span is named by the net/http.ServeMux pattern that matched, as
// "GET /v1/users/{id}", and gets the http.route attribute; requests no route
// matches are named by their method alone, so span names stay few. The mux
// sets the pattern on the request it receives only while routing, so the
// name is set after next returns, and only if next hands its request to the
// mux unchanged: place Middleware directly around the handler holding the
// mux (or around middleware that passes the request on as is, such as panic
// recovery), and inside requestid.Middleware, whose ID it reads:
//
//	requestid.Middleware(tp.Middleware(recoverPanics(api)))
//
// A 5xx response sets the span status to Error; 4xx responses are the
// client's fault and leave it unset.
func (p *Provider) Middleware(next http.Handler) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tagRequestID(r.Context())
		next.ServeHTTP(w, r)
		// otelhttp renames the span from r.Pattern itself (r is the request
		// it passed on); the route attribute it only sets when the pattern
		// is known up front, which with a mux inside it never is.
		if route := route(r.Pattern); route != "" {
			trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute(route))
		}
	})
	return otelhttp.NewMiddleware("http.server",
		otelhttp.WithTracerProvider(p.sdk),
		otelhttp.WithPropagators(p.propagator),
	)(inner)
}

// route returns the path template of a ServeMux pattern
// ("[METHOD ][HOST]/PATH"): "GET /v1/users/{id}" gives "/v1/users/{id}".
func route(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}
