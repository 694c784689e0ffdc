package discovery

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"

	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/consul"
)

// Scheme is the gRPC target scheme ResolverBuilder resolves:
// consul://<agent host:port>/<service>[?healthy=true][&tag=TAG], the format
// of github.com/mbobakov/grpc-consul-resolver (healthy defaults to false:
// every registered instance).
const Scheme = "consul"

// RefreshLatency is about how long a client takes to see a change in
// Consul: the resolver holds a blocking query open, which Consul answers as
// soon as the instance list or a check status changes, so in practice it is
// tens of milliseconds. Config.DrainWait must be well above it.
const RefreshLatency = 100 * time.Millisecond

// Target returns the gRPC target and dial options that reach service: with
// discovery on, a consul:// target resolved by ResolverBuilder to the
// instances whose checks pass; otherwise staticAddr and no options. Pass
// both to grpcclient.New, whose golden_track policy spreads calls over the
// instances of each call's track. opts go to ResolverBuilder.
func (c *Config) Target(service, staticAddr string, opts ...Option) (string, []grpc.DialOption) {
	if !c.Enabled() {
		return staticAddr, nil
	}
	u := url.URL{Scheme: Scheme, Host: c.ConsulAddr, Path: "/" + service, RawQuery: "healthy=true"}
	opts = append(opts, WithTokenFile(c.TokenFile))
	return u.String(), []grpc.DialOption{grpc.WithResolvers(ResolverBuilder(opts...))}
}

// ResolverBuilder returns a gRPC resolver builder for consul:// targets,
// for use with grpc.WithResolvers (no global registration). Each resolver
// watches Consul's /v1/health/service/<service> with blocking queries and
// hands gRPC the instances' address:port. While Consul is unreachable it
// keeps the last instances it knew and retries with backoff; an empty
// answer (no passing instance, or a Consul that has just come back without
// the registrations) keeps them too. Each address carries the instance's
// track (canary.WithTrack) from its Meta. Of the options, it reads WithLogger
// and WithTokenFile.
func ResolverBuilder(opts ...Option) resolver.Builder {
	o := newOptions(opts)
	return &builder{log: o.log, tokenFile: o.tokenFile}
}

type builder struct {
	log       logrus.FieldLogger
	tokenFile string
}

// Scheme implements resolver.Builder.
func (b *builder) Scheme() string { return Scheme }

// Build implements resolver.Builder.
func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	q, err := parseTarget(target.URL)
	if err != nil {
		return nil, err
	}
	client, err := consul.NewClient(q.agent, b.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("consul resolver: client for %q: %w", q.agent, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &consulResolver{
		q:      q,
		health: client.Health(),
		cc:     cc,
		log:    b.log.WithField("consul_addr", q.agent).WithField("target_service", q.service),
		ctx:    ctx,
		cancel: cancel,
	}
	r.wg.Add(1)
	go r.watch()
	return r, nil
}

// query is a parsed consul:// target.
type query struct {
	agent   string
	service string
	tag     string
	healthy bool
}

func parseTarget(u url.URL) (query, error) {
	q := query{agent: u.Host, service: u.Path}
	// Errors show the target without its query: a token put there by
	// mistake must not reach the logs.
	name := u.Scheme + "://" + u.Host + u.Path
	if len(q.service) > 0 && q.service[0] == '/' {
		q.service = q.service[1:]
	}
	if _, _, err := net.SplitHostPort(q.agent); err != nil {
		return q, fmt.Errorf("consul resolver: %q: the Consul agent must be host:port", name)
	}
	if q.service == "" || strings.Contains(q.service, "/") {
		return q, fmt.Errorf("consul resolver: %q: want consul://host:port/<service>", name)
	}
	params := u.Query()
	for k := range params {
		if k != "healthy" && k != "tag" {
			return q, fmt.Errorf("consul resolver: %q: unknown parameter %q (known: healthy, tag)", name, k)
		}
	}
	q.tag = params.Get("tag")
	if h := params.Get("healthy"); h != "" {
		b, err := strconv.ParseBool(h)
		if err != nil {
			return q, fmt.Errorf("consul resolver: %q: healthy=%q is not true or false", name, h)
		}
		q.healthy = b
	}
	return q, nil
}

type consulResolver struct {
	q      query
	health *api.Health
	cc     resolver.ClientConn
	log    logrus.FieldLogger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	known  bool // instances were handed to gRPC; watch's goroutine only
}

// ResolveNow implements resolver.Resolver. It does nothing: the blocking
// query already reports every change as it happens.
func (r *consulResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close implements resolver.Resolver.
func (r *consulResolver) Close() {
	r.cancel()
	r.wg.Wait()
}

func (r *consulResolver) watch() {
	defer r.wg.Done()
	var last []instance // the last answer
	consul.Watch(r.ctx, r.fetch, consul.Handler[[]instance]{
		Changed: func(addrs []instance) {
			if !r.known || !slices.Equal(addrs, last) {
				r.update(addrs)
				last = addrs
			}
		},
		Failed: func(err error, _ time.Time, first bool) {
			if first {
				r.log.WithError(err).Warn("cannot query Consul; keeping the last known instances")
			}
			if !r.known {
				r.cc.ReportError(fmt.Errorf("consul resolver: %s: %w", r.q.service, err))
			}
		},
		Recovered: func(since time.Time) {
			r.log.WithField("failing_since", since.Format(time.RFC3339)).Info("Consul reachable again")
		},
	})
}

// instance is one instance as the resolver hands it to gRPC.
type instance struct {
	addr  string // host:port
	track string
}

// fetch runs one health query and returns the instances sorted by address.
func (r *consulResolver) fetch(opts *api.QueryOptions) ([]instance, *api.QueryMeta, error) {
	entries, meta, err := r.health.Service(r.q.service, r.q.tag, r.q.healthy, opts)
	if err != nil {
		return nil, nil, err
	}
	addrs := make([]instance, 0, len(entries))
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address // Consul's fallback for services without one
		}
		if host == "" || e.Service.Port == 0 {
			continue
		}
		addrs = append(addrs, instance{
			addr:  net.JoinHostPort(host, strconv.Itoa(e.Service.Port)),
			track: canary.TrackOf(e.Service.Meta),
		})
	}
	slices.SortFunc(addrs, func(a, b instance) int { return strings.Compare(a.addr, b.addr) })
	return slices.CompactFunc(addrs, func(a, b instance) bool { return a.addr == b.addr }), meta, nil
}

// update hands addrs to gRPC. An empty answer never replaces known
// instances: a Consul that has just come back answers empty until the
// instances have registered again, and calls to instances whose
// connections still work must not fail meanwhile. gRPC's own connection
// states take instances that are really gone out of the rotation.
func (r *consulResolver) update(addrs []instance) {
	if len(addrs) == 0 {
		which := "registered"
		if r.q.healthy {
			which = "passing"
		}
		err := fmt.Errorf("consul resolver: no %s instance of %q in Consul", which, r.q.service)
		if r.known {
			r.log.WithError(err).Warn("Consul lists no instance; keeping the last known ones")
			return
		}
		// Nothing known yet: tell callers why their calls wait or fail.
		r.cc.ReportError(err)
		return
	}
	// Addresses, not Endpoints: golden_track is a base balancer, which
	// reads Addresses (gRPC derives the Endpoints from them).
	list := make([]resolver.Address, len(addrs))
	names := make([]string, len(addrs))
	for i, a := range addrs {
		list[i] = canary.WithTrack(resolver.Address{Addr: a.addr}, r.q.service, a.track)
		names[i] = a.addr + " (" + a.track + ")"
	}
	r.log.WithField("instances", names).Debug("instances changed")
	if err := r.cc.UpdateState(resolver.State{Addresses: list}); err != nil {
		r.log.WithError(err).Debug("gRPC rejected the instance list")
	}
	r.known = true
}
