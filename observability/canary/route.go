package canary

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// Header is the HTTP request header with which a tester forces a track at
// the edge: "always" (every service's canary) or "never" (stable
// everywhere).
const Header = "X-Canary"

// The values of Header.
const (
	HeaderAlways = "always"
	HeaderNever  = "never"
)

// MetadataKey is the gRPC metadata that carries a request's Route from hop
// to hop.
const MetadataKey = "golden-canary"

// maxServices bounds a Route read from metadata, so that a peer cannot make
// every hop parse and keep a long list.
const maxServices = 16

// Route is one request's routing decision: the services whose canary it
// goes to. The zero Route goes to stable everywhere.
type Route struct {
	all      bool
	services []string // sorted, without duplicates
}

// All is the Route to every service's canary.
func All() Route { return Route{all: true} }

// To returns the Route to the canaries of services.
func To(services ...string) Route {
	s := slices.Clone(services)
	slices.Sort(s)
	return Route{services: slices.Compact(s)}
}

// Canary reports whether r goes to service's canary.
func (r Route) Canary(service string) bool {
	if r.all {
		return true
	}
	_, found := slices.BinarySearch(r.services, service)
	return found
}

// IsStable reports whether r goes to stable everywhere.
func (r Route) IsStable() bool { return !r.all && len(r.services) == 0 }

// String returns the metadata form of r: "*" for All, the services joined
// by commas, or "" for stable everywhere.
func (r Route) String() string {
	if r.all {
		return "*"
	}
	return strings.Join(r.services, ",")
}

// ParseRoute parses the metadata form of a Route (see String).
func ParseRoute(s string) (Route, error) {
	if s == "*" {
		return All(), nil
	}
	if s == "" {
		return Route{}, nil
	}
	names := strings.Split(s, ",")
	if len(names) > maxServices {
		return Route{}, fmt.Errorf("%d services, more than the %d a route may name", len(names), maxServices)
	}
	for _, n := range names {
		if err := CheckService(n); err != nil {
			return Route{}, err
		}
	}
	return To(names...), nil
}

type routeKey struct{}

// NewContext returns ctx carrying r: calls made with it go to the tracks r
// names, and pass r on.
func NewContext(ctx context.Context, r Route) context.Context {
	return context.WithValue(ctx, routeKey{}, r)
}

// FromContext returns the Route in ctx; the zero Route (stable everywhere)
// when there is none.
func FromContext(ctx context.Context) Route {
	r, _ := ctx.Value(routeKey{}).(Route)
	return r
}

// ErrHeader is the error Decide returns for a Header value other than
// "always" and "never".
var ErrHeader = errors.New(Header + ` must be "` + HeaderAlways + `" or "` + HeaderNever + `"`)

// Decide returns the Route of one request at the edge. header is the
// request's Header value ("" when absent): "always" and "never" decide
// alone. Otherwise the request goes to the canary of every service whose
// weight (percent, 0-100) is above the caller's Bucket, so the same caller
// lands on the same track while the weights do not change, and raising a
// weight keeps on the canary the callers already there.
func Decide(header, caller string, weights map[string]int) (Route, error) {
	switch header {
	case HeaderAlways:
		return All(), nil
	case HeaderNever:
		return Route{}, nil
	case "":
	default:
		return Route{}, ErrHeader
	}
	var services []string
	b := -1
	for s, w := range weights {
		if w <= 0 {
			continue
		}
		if b < 0 {
			b = Bucket(caller)
		}
		if b < w {
			services = append(services, s)
		}
	}
	if services == nil {
		return Route{}, nil
	}
	return To(services...), nil
}

// Bucket returns caller's bucket, 0-99: a hash, so that callers spread
// evenly and each keeps its bucket.
func Bucket(caller string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(caller)) // a hash.Hash never fails
	return int(h.Sum32() % 100)
}
