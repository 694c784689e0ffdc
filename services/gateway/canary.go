package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/golden-stack/golden/observability/canary"
)

// Router decides, at the edge, which track each request takes: the
// tester's X-Canary header, else the services' canary weights, sticky per
// caller (canary.Decide).
type Router struct {
	weights func() map[string]int
	header  bool
	routed  *prometheus.CounterVec
}

// NewRouter returns a Router reading the current weights from weights
// (canary.Weights.Current), honouring the X-Canary header when header is
// true (ignoring it otherwise), and counting its decisions on reg as
// golden_canary_routed_total{service,track}.
func NewRouter(weights func() map[string]int, header bool, reg prometheus.Registerer) (*Router, error) {
	rt := &Router{
		weights: weights,
		header:  header,
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "golden_canary_routed_total",
			Help: "Requests the gateway routed, by the service called and the track chosen (canary: the request goes to the service's canary where one is ready).",
		}, []string{"service", "track"}),
	}
	if reg != nil {
		if err := reg.Register(rt.routed); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// decide returns the route of r, a request calling service on behalf of
// caller ("" when unknown: then the client's address stands for it).
func (rt *Router) decide(r *http.Request, service, caller string) (canary.Route, *apiError) {
	header := ""
	vals := r.Header.Values(canary.Header)
	if rt != nil && !rt.header {
		vals = nil
	}
	switch len(vals) {
	case 0:
	case 1:
		header = strings.ToLower(strings.TrimSpace(vals[0]))
	default:
		e := httpError(http.StatusBadRequest, canary.Header+" must be given once")
		return canary.Route{}, &e
	}
	var weights map[string]int
	if rt != nil {
		weights = rt.weights()
	}
	if caller == "" {
		caller, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	route, err := canary.Decide(header, caller, weights)
	if err != nil {
		e := httpError(http.StatusBadRequest, err.Error())
		return canary.Route{}, &e
	}
	if rt != nil {
		track := canary.Stable
		if route.Canary(service) {
			track = canary.Canary
		}
		rt.routed.WithLabelValues(service, track).Inc()
	}
	if !route.IsStable() {
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("golden.canary.route", route.String()))
	}
	return route, nil
}

// tokenUsername returns the username claim of a JWT without verifying it:
// the edge only picks a track with it, and the services verify the token.
func tokenUsername(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 4096 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Username string `json:"username"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	return claims.Username
}
