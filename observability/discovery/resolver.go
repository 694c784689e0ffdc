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
// both to grpcclient.New, whose round_robin policy spreads calls over the
// instances. opts go to ResolverBuilder.
func (c *Config) Target(service, staticAddr string, opts ...Option) (string, []grpc.DialOption) {
	if !c.Enabled() {
		return staticAddr, nil
	}
	u := url.URL{Scheme: Scheme, Host: c.ConsulAddr, Path: "/" + service, RawQuery: "healthy=true"}
	return u.String(), []grpc.DialOption{grpc.WithResolvers(ResolverBuilder(opts...))}
}

// ResolverBuilder returns a gRPC resolver builder for consul:// targets,
// for use with grpc.WithResolvers (no global registration). Each resolver
// watches Consul's /v1/health/service/<service> with blocking queries and
// hands gRPC the instances' address:port. While Consul is unreachable it
// keeps the last instances it knew and retries with backoff; an empty
// answer (no passing instance) is passed on, so that no call goes to an
// instance that left. Of the options, it reads WithLogger.
func ResolverBuilder(opts ...Option) resolver.Builder {
	return &builder{log: newOptions(opts).log}
}

type builder struct {
	log logrus.FieldLogger
}

// Scheme implements resolver.Builder.
func (b *builder) Scheme() string { return Scheme }

// Build implements resolver.Builder.
func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	q, err := parseTarget(target.URL)
	if err != nil {
		return nil, err
	}
	client, err := consul.NewClient(q.agent)
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
	var (
		last     []string // addresses last handed to gRPC
		resolved bool     // an answer was handed to gRPC
	)
	consul.Watch(r.ctx, r.fetch, consul.Handler[[]string]{
		Changed: func(addrs []string) {
			if !resolved || !slices.Equal(addrs, last) {
				r.update(addrs)
				last, resolved = addrs, true
			}
		},
		Failed: func(err error, _ time.Time, first bool) {
			if first {
				r.log.WithError(err).Warn("cannot query Consul; keeping the last known instances")
			}
			if !resolved {
				r.cc.ReportError(fmt.Errorf("consul resolver: %s: %w", r.q.service, err))
			}
		},
		Recovered: func(since time.Time) {
			r.log.WithField("failing_since", since.Format(time.RFC3339)).Info("Consul reachable again")
		},
	})
}

// fetch runs one health query and returns the sorted instance addresses.
func (r *consulResolver) fetch(opts *api.QueryOptions) ([]string, *api.QueryMeta, error) {
	entries, meta, err := r.health.Service(r.q.service, r.q.tag, r.q.healthy, opts)
	if err != nil {
		return nil, nil, err
	}
	addrs := make([]string, 0, len(entries))
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
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(e.Service.Port)))
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), meta, nil
}

// update hands addrs to gRPC. An empty list is handed on too: clients must
// stop calling instances that left even when none is left.
func (r *consulResolver) update(addrs []string) {
	eps := make([]resolver.Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}}
	}
	if len(addrs) == 0 {
		r.log.Warn("no instances in Consul")
	} else {
		r.log.WithField("instances", addrs).Debug("instances changed")
	}
	err := r.cc.UpdateState(resolver.State{Endpoints: eps})
	switch {
	case len(addrs) == 0:
		// gRPC refuses an empty list but drops the old instances; tell
		// callers why their calls fail.
		which := "registered"
		if r.q.healthy {
			which = "passing"
		}
		r.cc.ReportError(fmt.Errorf("consul resolver: no %s instance of %q in Consul", which, r.q.service))
	case err != nil:
		r.log.WithError(err).Debug("gRPC rejected the instance list")
	}
}
