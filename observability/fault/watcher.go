package fault

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/consul"
)

// Watcher follows one service's faults in Consul and injects them through
// its interceptors. It is a lifecycle.Component: Serve watches until
// Shutdown. Its interceptors are safe for concurrent use and cost one
// atomic load per call while no fault is set.
type Watcher struct {
	service   string
	track     string
	keyPrefix string  // <prefix><service>/
	kv        *api.KV // nil when off
	log       logrus.FieldLogger
	now       func() time.Time
	rand      func() float64

	rules    atomic.Pointer[map[string]*rule] // by the key's method
	injected *prometheus.CounterVec

	loop *consul.Loop

	// warned holds the ModifyIndex of each invalid key already warned
	// about; only the watch goroutine uses it.
	warned map[string]uint64
}

type options struct {
	log       logrus.FieldLogger
	reg       prometheus.Registerer
	now       func() time.Time
	rand      func() float64
	tokenFile string
	track     string
}

// Option configures a Watcher.
type Option func(*options)

// WithLogger sets the logger that the watcher's state changes and each
// injected failure are logged on; request fields come from the call's
// context (see package logging). A nil l keeps logrus's standard logger.
func WithLogger(l logrus.FieldLogger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithRegisterer registers golden_fault_active and
// golden_faults_injected_total on reg, so they show on the service's
// /metrics. A nil reg, like the default, registers nothing.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) {
		if reg != nil {
			o.reg = reg
		}
	}
}

// WithClock sets the clock that expires_at is compared with, for tests. A
// nil now keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithRand sets the source of the draws that decide which calls get a
// fault and how long a uniform delay is; it must return values in [0, 1)
// and be safe for concurrent use. The default is math/rand/v2's Float64;
// a nil f keeps it.
func WithRand(f func() float64) Option {
	return func(o *options) {
		if f != nil {
			o.rand = f
		}
	}
}

// WithConsulTokenFile makes the watcher present the Consul ACL token held in
// file (one that may read the service's fault prefix); empty leaves the
// standard CONSUL_HTTP_TOKEN(_FILE).
func WithConsulTokenFile(file string) Option {
	return func(o *options) { o.tokenFile = file }
}

// WithTrack sets the instance's track: faults for the other track are
// not injected here. The default is canary.Stable.
func WithTrack(track string) Option {
	return func(o *options) {
		if track != "" {
			o.track = track
		}
	}
}

// New returns the fault watcher of service. It watches Consul at
// consulAddr when c.Enabled and consulAddr is not empty; otherwise it is
// off (Enabled reports false) and injects nothing. Validate c first; an
// invalid prefix or service name is an error. New does not contact Consul.
func New(c Config, consulAddr, service string, opts ...Option) (*Watcher, error) {
	if err := CheckService(service); err != nil {
		return nil, fmt.Errorf("fault: %w", err)
	}
	o := options{log: logrus.StandardLogger(), now: time.Now, rand: rand.Float64, track: canary.Stable}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	w := &Watcher{
		service: service,
		track:   o.track,
		log:     o.log,
		now:     o.now,
		rand:    o.rand,
		loop:    consul.NewLoop(),
		warned:  map[string]uint64{},
		injected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "golden_faults_injected_total",
			Help: "Total number of faults injected into RPCs, by service, RPC method, kind (error, latency) and code (the injected code; for latency OK, or how the call ended during the delay).",
		}, []string{"service", "method", "kind", "code"}),
	}
	if c.Enabled && consulAddr != "" {
		prefix, err := NormalizePrefix(c.Prefix)
		if err != nil {
			return nil, config.SettingError("fault-prefix", err)
		}
		w.keyPrefix = prefix + service + "/"
		client, err := consul.NewClient(consulAddr, o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("fault: Consul client for %q: %w", consulAddr, err)
		}
		w.kv = client.KV()
	}
	if o.reg != nil {
		active := &activeCollector{w: w, desc: prometheus.NewDesc("golden_fault_active",
			"1 for each kind (error, latency) of each fault in force, by service and the fault's method (* for every method).",
			[]string{"service", "method", "kind"}, nil)}
		if err := o.reg.Register(w.injected); err != nil {
			return nil, fmt.Errorf("fault: registering metrics: %w", err)
		}
		if err := o.reg.Register(active); err != nil {
			o.reg.Unregister(w.injected)
			return nil, fmt.Errorf("fault: registering metrics: %w", err)
		}
	}
	return w, nil
}

// Enabled reports whether the watcher follows Consul and may inject
// faults.
func (w *Watcher) Enabled() bool { return w.kv != nil }

// Name implements lifecycle.Component.
func (w *Watcher) Name() string { return "faults" }

// Serve implements lifecycle.Component: it follows the service's keys until
// Shutdown. A watcher that is off just waits for Shutdown.
func (w *Watcher) Serve() error {
	if !w.Enabled() {
		return w.loop.Serve(nil)
	}
	return w.loop.Serve(func(ctx context.Context) {
		w.log.WithField("prefix", w.keyPrefix).Info("fault injection on: watching Consul for faults")
		w.watch(ctx)
	})
}

// Shutdown implements lifecycle.Component. The faults in force stay in
// force: the servers drain after this and behave as they did.
func (w *Watcher) Shutdown(ctx context.Context) error { return w.loop.Shutdown(ctx) }

// Active returns the faults in force now, by the key's method.
func (w *Watcher) Active() map[string]Spec {
	out := map[string]Spec{}
	if set := w.rules.Load(); set != nil {
		now := w.now()
		for m, r := range *set {
			if r.active(now) {
				out[m] = r.spec
			}
		}
	}
	return out
}

func (w *Watcher) watch(ctx context.Context) {
	consul.Watch(ctx, w.fetch, consul.Handler[api.KVPairs]{
		Changed: w.apply,
		Failed: func(err error, _ time.Time, first bool) {
			if first {
				w.log.WithError(err).Warn("cannot read faults from Consul; keeping the current ones until it is back")
			}
		},
		Recovered: func(since time.Time) {
			w.log.WithField("failing_since", since.Format(time.RFC3339)).Info("Consul reachable again; faults follow it again")
		},
	})
}

// fetch lists the service's keys.
func (w *Watcher) fetch(opts *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
	return w.kv.List(w.keyPrefix, opts)
}

// apply replaces the faults in force with the valid ones among pairs.
// Invalid ones are skipped with a warning, once per version of the key.
func (w *Watcher) apply(pairs api.KVPairs) {
	rules := make(map[string]*rule, len(pairs))
	warned := make(map[string]uint64, len(w.warned))
	for _, p := range pairs {
		if p == nil {
			continue
		}
		method := strings.TrimPrefix(p.Key, w.keyPrefix)
		if method == "" || strings.HasSuffix(method, "/") {
			continue // a folder, as the Consul UI creates them
		}
		err := CheckMethod(method)
		var spec Spec
		if err == nil {
			spec, err = ParseSpec(p.Value)
		}
		if err != nil {
			if last, ok := w.warned[p.Key]; !ok || last != p.ModifyIndex {
				w.log.WithField("key", p.Key).WithField(logrus.ErrorKey, err.Error()).
					Warn("ignoring an invalid fault in Consul")
			}
			warned[p.Key] = p.ModifyIndex
			continue
		}
		if spec.Track != "" && spec.Track != w.track {
			continue // for the instances of the other track
		}
		rules[method] = newRule(method, spec)
	}
	w.warned = warned
	w.publish(rules)
}

// publish puts rules in force and logs what changed.
func (w *Watcher) publish(rules map[string]*rule) {
	old := map[string]*rule{}
	if p := w.rules.Swap(&rules); p != nil {
		old = *p
	}
	now := w.now()
	for _, m := range slices.Sorted(maps.Keys(rules)) {
		r := rules[m]
		if o, ok := old[m]; ok && o.canonical == r.canonical {
			continue
		}
		e := w.log.WithFields(ruleFields(w.service, r))
		if !r.active(now) {
			e.Info("fault in Consul has expired; not injecting it")
			continue
		}
		e.Warn("fault injection active")
	}
	for _, m := range slices.Sorted(maps.Keys(old)) {
		if _, ok := rules[m]; !ok {
			w.log.WithField("fault.service", w.service).WithField("fault.method", m).Warn("fault injection cleared")
		}
	}
}

func ruleFields(service string, r *rule) logrus.Fields {
	f := logrus.Fields{"fault.service": service, "fault.method": r.method}
	if r.errorRate > 0 {
		f["fault.error_rate"] = r.errorRate
		f["fault.code"] = r.code.String()
	}
	if r.latencyRate > 0 {
		f["fault.latency"] = r.spec.Latency.String()
		f["fault.latency_rate"] = r.latencyRate
	}
	if !r.expires.IsZero() {
		f["fault.expires_at"] = r.expires.UTC().Format(time.RFC3339)
	}
	return f
}

// activeCollector reports golden_fault_active at scrape time, so that a
// fault that expires disappears from it without a timer.
type activeCollector struct {
	w    *Watcher
	desc *prometheus.Desc
}

func (c *activeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *activeCollector) Collect(ch chan<- prometheus.Metric) {
	set := c.w.rules.Load()
	if set == nil {
		return
	}
	now := c.w.now()
	for _, r := range *set {
		if !r.active(now) {
			continue
		}
		if r.errorRate > 0 {
			c.emit(ch, r.method, "error")
		}
		if r.latencyRate > 0 {
			c.emit(ch, r.method, "latency")
		}
	}
}

func (c *activeCollector) emit(ch chan<- prometheus.Metric, method, kind string) {
	// Label values are validated names; NewConstMetric rather than the
	// Must form all the same, so that nothing here can panic.
	if m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, 1, c.w.service, method, kind); err == nil {
		ch <- m
	}
}
