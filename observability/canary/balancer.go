package canary

import (
	"math/rand/v2"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/resolver"
)

// BalancerName is the name of the load-balancing policy that picks an
// instance of the request's track, round robin within the track. Name it
// in the client's service config; grpcclient does.
const BalancerName = "golden_track"

func init() {
	balancer.Register(base.NewBalancerBuilder(BalancerName, pickerBuilder{}, base.Config{}))
}

type addrKey struct{}

// instance is what a resolver tells the balancer about an address.
type instance struct {
	service string
	track   string
}

// Equal lets attributes compare instances (a changed track is a new
// address, so its connection is picked by the new track).
func (i instance) Equal(o any) bool {
	j, ok := o.(instance)
	return ok && i == j
}

// WithTrack returns addr marked as an instance of service on track, for
// the golden_track policy. Addresses without a mark are stable.
func WithTrack(addr resolver.Address, service, track string) resolver.Address {
	addr.Attributes = addr.Attributes.WithValue(addrKey{}, instance{service: service, track: track})
	return addr
}

// AddressTrack returns the track WithTrack marked addr with: Stable when
// unmarked.
func AddressTrack(addr resolver.Address) string {
	if instanceOf(addr).track == Canary {
		return Canary
	}
	return Stable
}

func instanceOf(addr resolver.Address) instance {
	i, _ := addr.Attributes.Value(addrKey{}).(instance)
	return i
}

type pickerBuilder struct{}

// Build is called with the ready connections only.
func (pickerBuilder) Build(info base.PickerBuildInfo) balancer.Picker {
	if len(info.ReadySCs) == 0 {
		return base.NewErrPicker(balancer.ErrNoSubConnAvailable)
	}
	p := &picker{}
	for sc, sci := range info.ReadySCs {
		in := instanceOf(sci.Address)
		if in.service != "" {
			p.service = in.service
		}
		if in.track == Canary {
			p.canary = append(p.canary, sc)
		} else {
			p.stable = append(p.stable, sc)
		}
	}
	// Start at a random place, as round_robin does, so that clients
	// created together do not all call the same instance first.
	p.nextStable.Store(rand.Uint32())
	p.nextCanary.Store(rand.Uint32())
	return p
}

type picker struct {
	service        string
	stable, canary []balancer.SubConn
	// One counter per track: with one shared, calls alternating between
	// the tracks would always find the same instance of each.
	nextStable, nextCanary atomic.Uint32
}

// Pick sends a call to the canary when its Route names the service and a
// canary is ready, and to stable otherwise. With no ready instance on the
// chosen track it takes the other one: a call is never failed for its
// track.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	list, next := p.stable, &p.nextStable
	if len(p.canary) > 0 && (len(list) == 0 || FromContext(info.Ctx).Canary(p.service)) {
		list, next = p.canary, &p.nextCanary
	}
	n := next.Add(1)
	return balancer.PickResult{SubConn: list[n%uint32(len(list))]}, nil
}
