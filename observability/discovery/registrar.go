// Package discovery registers golden service instances in Consul and finds
// them again on the client side.
//
// A Registrar is a lifecycle.Component: Serve registers the instance with a
// health check and keeps it registered (retrying with backoff while Consul
// is unreachable, re-registering when a restarted agent forgot it), and
// Shutdown deregisters it and waits Config.DrainWait so that clients stop
// routing here before the gRPC server drains. lifecycle.Run shuts components
// down in reverse order, so the Registrar must come AFTER the gRPC server in
// its list:
//
//	lifecycle.Run(ctx, log, timeout, admin, grpcServer, registrar)
//
// and --shutdown-timeout must cover DrainWait plus the RPC drain.
//
// On the client side, Config.Target gives the gRPC target and dial options
// for a peer service: consul://<agent>/<service>?healthy=true, resolved by
// ResolverBuilder to the passing instances only (balanced round robin by
// grpcclient), or the static address when discovery is off.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/backoff"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/consul"
)

// Names in every registration, which Prometheus' consul_sd_configs
// relabelling relies on.
const (
	// TagMetrics marks instances that Prometheus should scrape.
	TagMetrics = "metrics"
	// MetaMetricsPort is the Meta key of the port serving metrics.
	MetaMetricsPort = "metrics_port"
	// MetaMetricsPath is the Meta key of the metrics path.
	MetaMetricsPath = "metrics_path"
	// MetaVersion is the Meta key of the build version.
	MetaVersion = "version"
	// MetaInstance is the Meta key of the name the instance's logs, spans
	// and (by relabelling) metrics carry.
	MetaInstance = "instance"
)

// requestTimeout bounds every non-blocking call to the Consul agent.
const requestTimeout = 5 * time.Second

// maxRegisterBackoff bounds both the retry backoff while Consul is away
// and the period of the check that the agent still has the registration:
// an instance is registered again within about this long of Consul being
// back (with a leader), and the calls go to the local agent, so they cost
// it little.
const maxRegisterBackoff = 2 * time.Second

// Instance describes the service instance to register.
type Instance struct {
	// Name is the service name, e.g. "user"; clients look instances up by
	// it and, for the gRPC check, it is the name the certificate carries.
	Name string
	// Port is the port clients call (the gRPC port).
	Port int
	// MetricsPort is the admin port serving metrics; 0 means none, and the
	// instance is registered without TagMetrics and the metrics Meta.
	MetricsPort int
	// MetricsPath defaults to "/metrics".
	MetricsPath string
	// Version is the build version, registered as Meta "version".
	Version string
	// Meta holds extra service metadata (keys of letters, digits, '_' and
	// '-'; values up to 512 bytes).
	Meta map[string]string
	// HTTPCheck, when set, makes Consul probe an HTTP endpoint instead of
	// the instance's grpc.health.v1 service over TLS: for the gateway, which
	// has no gRPC server.
	HTTPCheck *HTTPCheck
}

// HTTPCheck is a plain-HTTP GET health check on the advertised address.
type HTTPCheck struct {
	// Port is the port of the endpoint, typically the admin port.
	Port int
	// Path is the endpoint's path; default "/readyz".
	Path string
}

// Registrar keeps one instance registered in Consul; see the package doc.
type Registrar struct {
	cfg              Config
	client           *api.Client
	reg              *api.AgentServiceRegistration
	log              logrus.FieldLogger
	beforeDeregister func()
	minBackoff       time.Duration
	maxBackoff       time.Duration
	resync           time.Duration

	ctx    context.Context // ends when Shutdown starts
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returns

	mu       sync.Mutex
	serving  bool // Serve has started
	stopped  bool // Shutdown has started
	everUp   bool // the instance was registered at least once
	shutOnce sync.Once
	shutErr  error
}

type options struct {
	log              logrus.FieldLogger
	beforeDeregister func()
	id               string
	tokenFile        string
}

// newOptions returns the defaults with opts applied; nil options are
// skipped.
func newOptions(opts []Option) options {
	o := options{log: logrus.StandardLogger()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Option configures a Registrar (NewRegistrar) or the resolvers of
// ResolverBuilder and Config.Target. Each option says which of them read
// it; the others ignore it.
type Option func(*options)

// WithLogger sets the logger for state changes: registration for a
// Registrar, Consul unreachable or back and no passing instances for a
// resolver. A nil l keeps logrus's standard logger.
func WithLogger(l logrus.FieldLogger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithBeforeDeregister sets a hook that a Registrar's Shutdown runs before
// deregistering, e.g. to report NOT_SERVING so that health checks agree
// with the deregistration. A nil f sets no hook. Resolvers ignore it.
func WithBeforeDeregister(f func()) Option {
	return func(o *options) {
		if f != nil {
			o.beforeDeregister = f
		}
	}
}

// WithTokenFile makes resolvers present the Consul ACL token held in file;
// empty leaves the standard CONSUL_HTTP_TOKEN(_FILE). Config.Target passes
// Config.TokenFile; a Registrar ignores it and reads Config.TokenFile.
func WithTokenFile(file string) Option {
	return func(o *options) { o.tokenFile = file }
}

// WithInstanceID overrides a Registrar's instance ID, by default
// "<name>-<advertise-addr>-<port>"; an empty id keeps the default. Keeping
// it stable across restarts lets a restarted instance replace its own stale
// registration. Resolvers ignore it.
func WithInstanceID(id string) Option {
	return func(o *options) {
		if id != "" {
			o.id = id
		}
	}
}

// NewRegistrar returns a Registrar of inst with cfg, which must be Enabled
// and valid (it is validated again here). It does not contact Consul: that
// happens in Serve.
func NewRegistrar(cfg Config, inst Instance, opts ...Option) (*Registrar, error) {
	o := newOptions(opts)
	if !cfg.Enabled() {
		return nil, fmt.Errorf("discovery: %s is empty, so there is no Consul to register in", config.Setting("consul-addr"))
	}
	var v config.Validator
	cfg.Validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	reg, err := registration(cfg, inst, o.id)
	if err != nil {
		return nil, err
	}
	client, err := consul.NewClient(cfg.ConsulAddr, cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("discovery: Consul client for %q: %w", cfg.ConsulAddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Registrar{
		cfg:              cfg,
		client:           client,
		reg:              reg,
		log:              o.log.WithField("consul_service_id", reg.ID),
		beforeDeregister: o.beforeDeregister,
		minBackoff:       500 * time.Millisecond,
		maxBackoff:       maxRegisterBackoff,
		resync:           min(cfg.CheckInterval, maxRegisterBackoff),
		ctx:              ctx,
		cancel:           cancel,
		done:             make(chan struct{}),
	}, nil
}

// registration builds what is sent to Consul.
func registration(cfg Config, inst Instance, id string) (*api.AgentServiceRegistration, error) {
	if inst.Name == "" {
		return nil, errors.New("discovery: the instance needs a service name")
	}
	if !validPort(inst.Port) {
		return nil, fmt.Errorf("discovery: %s: port %d is not between 1 and 65535", inst.Name, inst.Port)
	}
	if inst.MetricsPort != 0 && !validPort(inst.MetricsPort) {
		return nil, fmt.Errorf("discovery: %s: metrics port %d is not between 1 and 65535", inst.Name, inst.MetricsPort)
	}
	if id == "" {
		id = instanceID(inst.Name, cfg.AdvertiseAddr, inst.Port)
	}
	meta := map[string]string{}
	for k, v := range inst.Meta {
		if err := validMeta(k, v); err != nil {
			return nil, fmt.Errorf("discovery: %s: %w", inst.Name, err)
		}
		meta[k] = v
	}
	if inst.Version != "" {
		meta[MetaVersion] = inst.Version
	}
	tags := slices.Clone(cfg.Tags)
	if inst.MetricsPort != 0 {
		path := inst.MetricsPath
		if path == "" {
			path = "/metrics"
		}
		meta[MetaMetricsPort] = strconv.Itoa(inst.MetricsPort)
		meta[MetaMetricsPath] = path
		tags = append(tags, TagMetrics)
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)

	check := &api.AgentServiceCheck{
		Interval:                       cfg.CheckInterval.String(),
		Timeout:                        cfg.CheckTimeout.String(),
		DeregisterCriticalServiceAfter: cfg.DeregisterAfter.String(),
	}
	if hc := inst.HTTPCheck; hc != nil {
		if !validPort(hc.Port) {
			return nil, fmt.Errorf("discovery: %s: HTTP check port %d is not between 1 and 65535", inst.Name, hc.Port)
		}
		path := hc.Path
		if path == "" {
			path = "/readyz"
		}
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("discovery: %s: HTTP check path %q must start with /", inst.Name, path)
		}
		check.Name = inst.Name + " HTTP " + path
		check.HTTP = "http://" + net.JoinHostPort(cfg.AdvertiseAddr, strconv.Itoa(hc.Port)) + path
		check.Method = http.MethodGet
	} else {
		check.Name = inst.Name + " gRPC health"
		check.GRPC = net.JoinHostPort(cfg.AdvertiseAddr, strconv.Itoa(inst.Port))
		check.GRPCUseTLS = true
		// Certificates carry the service name as a DNS SAN; Consul presents
		// no client certificate, which golden's servers accept for
		// grpc.health.v1 alone.
		check.TLSServerName = inst.Name
		check.TLSSkipVerify = cfg.CheckTLSSkipVerify
	}
	return &api.AgentServiceRegistration{
		ID:      id,
		Name:    inst.Name,
		Address: cfg.AdvertiseAddr,
		Port:    inst.Port,
		Tags:    tags,
		Meta:    meta,
		Check:   check,
	}, nil
}

func validPort(p int) bool { return p > 0 && p <= 65535 }

// validMeta applies Consul's rules for service metadata, so that a bad key
// fails at start rather than on every registration attempt.
func validMeta(k, v string) error {
	if k == "" || len(k) > 128 || strings.HasPrefix(k, "consul-") {
		return fmt.Errorf("meta key %q must be 1-128 characters and not start with \"consul-\"", k)
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("meta key %q may hold only letters, digits, '_' and '-'", k)
		}
	}
	if len(v) > 512 {
		return fmt.Errorf("meta value of %q is longer than 512 bytes", k)
	}
	return nil
}

// instanceID is name-host-port with anything but [A-Za-z0-9._-] replaced,
// so that IPv6 addresses make a usable ID too.
func instanceID(name, host string, port int) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, name+"-"+host+"-"+strconv.Itoa(port))
}

// ID returns the instance ID registered in Consul.
func (r *Registrar) ID() string { return r.reg.ID }

// Name implements lifecycle.Component.
func (r *Registrar) Name() string { return "consul-registrar" }

// Serve implements lifecycle.Component: it registers the instance and keeps
// it registered until Shutdown, never failing on Consul errors, which are
// logged when the state changes (not on every attempt). While Consul is
// unreachable it retries with capped, jittered exponential backoff (0.5s to
// 2s); once registered it checks every 2s (or check interval, if shorter)
// that the agent still has the registration, so an agent that restarted and
// forgot it gets it back within about 2s.
func (r *Registrar) Serve() error {
	r.mu.Lock()
	if r.stopped || r.serving {
		r.mu.Unlock()
		return nil
	}
	r.serving = true
	r.mu.Unlock()
	defer close(r.done)

	var (
		registered   bool
		failingSince time.Time
		attempt      int
	)
	for {
		if !registered {
			err := r.register()
			if r.ctx.Err() != nil {
				return nil
			}
			if err != nil {
				if failingSince.IsZero() {
					failingSince = time.Now()
					r.log.WithError(err).Warn("cannot register in Consul; retrying with backoff")
				}
				r.log.WithError(err).Debug("Consul registration attempt failed")
				if !backoff.Sleep(r.ctx, backoff.Delay(attempt, r.minBackoff, r.maxBackoff)) {
					return nil
				}
				attempt++
				continue
			}
			registered, attempt = true, 0
			r.mu.Lock()
			again := r.everUp
			r.everUp = true
			r.mu.Unlock()
			entry := r.log.WithField("consul_addr", r.cfg.ConsulAddr)
			if !failingSince.IsZero() {
				entry = entry.WithField("failing_since", failingSince.Format(time.RFC3339))
				failingSince = time.Time{}
			}
			if again {
				entry.Info("re-registered in Consul")
			} else {
				entry.Info("registered in Consul")
			}
		}

		// Anti-entropy: a restarted agent (or an operator) may have dropped
		// the registration; look every resync period and register again.
		if !backoff.Sleep(r.ctx, r.resync) {
			return nil
		}
		present, err := r.present()
		switch {
		case r.ctx.Err() != nil:
			return nil
		case err != nil:
			registered, failingSince = false, time.Now()
			r.log.WithError(err).Warn("lost contact with Consul; will register again when it is back")
		case !present:
			registered = false
			r.log.Warn("Consul lost the registration (agent restarted?); registering again")
		}
	}
}

func (r *Registrar) register() error {
	ctx, cancel := context.WithTimeout(r.ctx, requestTimeout)
	defer cancel()
	return r.client.Agent().ServiceRegisterOpts(r.reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
}

// present reports whether the agent still has the registration.
func (r *Registrar) present() (bool, error) {
	ctx, cancel := context.WithTimeout(r.ctx, requestTimeout)
	defer cancel()
	_, _, err := r.client.Agent().Service(r.reg.ID, (&api.QueryOptions{}).WithContext(ctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// Shutdown implements lifecycle.Component: it stops the registration loop,
// runs the BeforeDeregister hook, deregisters, and then waits DrainWait (or
// until ctx ends) so that clients stop routing here before the next
// component, the gRPC server, drains. An instance that never got registered
// skips the wait. Failing to deregister is logged, not returned: Consul's
// health check takes the instance out once the server stops.
func (r *Registrar) Shutdown(ctx context.Context) error {
	r.shutOnce.Do(func() { r.shutErr = r.shutdown(ctx) })
	return r.shutErr
}

func (r *Registrar) shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	serving := r.serving
	r.mu.Unlock()
	r.cancel()
	if serving {
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("registration loop still running: %w", ctx.Err())
		}
	}
	if r.beforeDeregister != nil {
		r.beforeDeregister()
	}
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	err := r.client.Agent().ServiceDeregisterOpts(r.reg.ID, (&api.QueryOptions{}).WithContext(dctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		err = nil // the agent does not have it: nothing to take out
	}
	if err != nil {
		r.log.WithError(err).Warn("cannot deregister from Consul; its health check will take the instance out")
		return nil
	}
	r.mu.Lock()
	everUp := r.everUp
	r.mu.Unlock()
	if !everUp {
		return nil
	}
	r.log.WithField("drain_wait", r.cfg.DrainWait.String()).Info("deregistered from Consul; waiting for clients to stop routing here")
	t := time.NewTimer(r.cfg.DrainWait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain wait cut short: %w", ctx.Err())
	}
}
