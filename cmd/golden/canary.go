package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/internal/canaryguard"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/consul"
	"github.com/golden-stack/golden/observability/safetext"
)

// canaryGuardName names the guard: its folder of `golden consul setup
// --export`, its Consul token's owner, the "by" of its rollbacks.
const canaryGuardName = "canary-guard"

// canaryConn holds the settings every `golden canary` command shares.
type canaryConn struct {
	addr      string
	tokenFile string
	timeout   time.Duration
}

func (c *canaryConn) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.addr, "consul-addr", "127.0.0.1:8500", "Consul agent HTTP address (host:port); CONSUL_HTTP_TOKEN and the other CONSUL_* variables apply")
	fs.StringVar(&c.tokenFile, "consul-token-file", "", "file holding the Consul ACL token (default: CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for Consul and Prometheus")
}

// prepare applies the environment and validates the shared settings plus
// what check adds; every problem is a usage error.
func (c *canaryConn) prepare(cmd *cobra.Command, check func(v *config.Validator)) error {
	if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
		return usageError(err)
	}
	var v config.Validator
	v.Addr("consul-addr", c.addr)
	if c.tokenFile != "" {
		v.FileExists("consul-token-file", c.tokenFile)
	}
	v.Positive("timeout", c.timeout)
	check(&v)
	if err := v.Err(); err != nil {
		return usageError(err)
	}
	return nil
}

func (c *canaryConn) client() (*api.Client, error) {
	client, err := consul.NewClient(c.addr, c.tokenFile)
	if err != nil {
		return nil, usageError(fmt.Errorf("consul client: %w", err))
	}
	return client, nil
}

// consulError explains a failed call to Consul; it exits with exitBackend.
func (c *canaryConn) consulError(what string, err error) error {
	return explainConsulError(c.addr, c.timeout, what,
		"use a token that may write keys under "+canary.KVPrefix+" (the operator's: CONSUL_OPERATOR_TOKEN in .env)", err)
}

func checkCanaryService(v *config.Validator, service string) {
	if service == "" {
		v.Check(false, "service", "must be set: the service whose canary to act on, such as user")
		return
	}
	if err := canary.CheckService(service); err != nil {
		v.Check(false, "service", "%v", err)
	}
}

// newCanaryCmd returns "golden canary", the canary release tools.
func newCanaryCmd() *cobra.Command {
	var conn canaryConn
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Route a share of callers to a service's canary track, watch it, roll it back",
		Long: `Instances run on the stable track or, started with --track canary, on the
canary track. The gateway sends a request to a service's canary when it
carries "X-Canary: always" (testers; "never" forces stable), or else for the
share of callers set as the service's weight (0-100), sticky per caller: the
same user stays on the same track while the weight does not change. Every
later hop of that request stays on its track where the service called has a
ready canary. Weights are JSON values under the Consul KV keys
` + canary.KVPrefix + `<service>; the gateway follows them at once.

Prometheus labels every series by track; the alert GoldenCanaryWorseThanStable
compares the tracks, and golden canary guard, which Alertmanager calls with
it, sets the weight to 0.

Every flag can also be set as GOLDEN_<FLAG>. Exit status: 0 done, 1 other
failure, 2 invalid usage or values (nothing was written), 4 Consul or
Prometheus failed.`,
		Args:          usageArgs(cobra.NoArgs),
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(newCanarySetCmd(&conn), newCanaryAbortCmd(&conn), newCanaryStatusCmd(&conn), newCanaryGuardCmd(&conn))
	return cmd
}

func newCanarySetCmd(conn *canaryConn) *cobra.Command {
	var (
		service, reason string
		weight          int
	)
	cmd := &cobra.Command{
		Use:   "set --service NAME --weight PERCENT",
		Short: "Set the share of callers (0-100) routed to a service's canary",
		Example: `  golden canary set --service user --weight 20
  golden canary set --service user --weight 100   # promote: every caller on the canary`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := conn.prepare(cmd, func(v *config.Validator) {
				checkCanaryService(v, service)
				v.Check(cmd.Flags().Changed("weight"), "weight", "must be set: percent of callers, 0-100")
				if err := canary.CheckWeight(weight); err != nil {
					v.Check(false, "weight", "%v", err)
				}
			}); err != nil {
				return err
			}
			return setWeight(cmd, conn, service, canary.Setting{Weight: weight, By: "golden canary set", Reason: reason})
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	cmd.Flags().StringVar(&service, "service", "", "service whose canary gets the share, such as user (required)")
	cmd.Flags().IntVar(&weight, "weight", 0, "percent of callers routed to the canary, 0-100 (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept with the weight and shown by status")
	return cmd
}

func newCanaryAbortCmd(conn *canaryConn) *cobra.Command {
	var service, reason string
	cmd := &cobra.Command{
		Use:     "abort --service NAME",
		Short:   "Route no caller to a service's canary (weight 0)",
		Example: `  golden canary abort --service user --reason "p99 doubled"`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := conn.prepare(cmd, func(v *config.Validator) { checkCanaryService(v, service) }); err != nil {
				return err
			}
			return setWeight(cmd, conn, service, canary.Setting{By: "golden canary abort", Reason: reason})
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	cmd.Flags().StringVar(&service, "service", "", "service whose canary to stop, such as user (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept with the weight and shown by status")
	return cmd
}

func setWeight(cmd *cobra.Command, conn *canaryConn, service string, st canary.Setting) error {
	client, err := conn.client()
	if err != nil {
		return err
	}
	store := canary.NewStoreOf(client)
	ctx, cancel := context.WithTimeout(cmd.Context(), conn.timeout)
	defer cancel()
	prev, err := store.Get(ctx, service)
	if err != nil {
		return conn.consulError("read "+canary.KVPrefix+service, err)
	}
	st.At = time.Now().UTC()
	if err := store.Set(ctx, service, st); err != nil {
		return conn.consulError("write "+canary.KVPrefix+service, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: canary weight %d%% (was %d%%)\n", service, st.Weight, prev.Weight)
	return nil
}

// Recording rules of prometheus/rules/canary.yml that status reads.
const (
	ruleRequests    = "service_track:golden_requests:rate2m"
	ruleErrorRatio  = "service_track:golden_server_errors:ratio_rate2m"
	ruleLatencyP99  = "service_track:golden_latency_seconds:p99_2m"
	statusPromLimit = 1 << 20
)

func newCanaryStatusCmd(conn *canaryConn) *cobra.Command {
	var prom promFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the weights, the instances per track and canary-vs-stable golden signals",
		Long: `Show each service's canary weight (who set it, when, why: a rollback says
which alert caused it), its passing instances per track in Consul, and, from
Prometheus, each track's request rate, server-error ratio and p99 latency
over the last 2 minutes (the recording rules of prometheus/rules/canary.yml).
Without Prometheus (--prometheus-url empty) the signals are left out.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := conn.prepare(cmd, prom.validate); err != nil {
				return err
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), conn.timeout)
			defer cancel()
			settings, err := canary.NewStoreOf(client).List(ctx)
			if settings == nil {
				return conn.consulError("read "+canary.KVPrefix, err)
			}
			out := cmd.OutOrStdout()
			if err != nil {
				fmt.Fprintf(out, "warning: %v\n", err)
			}
			instances, err := tracksInConsul(ctx, client)
			if err != nil {
				return conn.consulError("list the services", err)
			}
			services := slices.Sorted(maps.Keys(instances))
			for s := range settings {
				if _, ok := instances[s]; !ok {
					services = append(services, s)
				}
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SERVICE\tWEIGHT\tSTABLE\tCANARY\tSET BY\tAT\tREASON")
			for _, s := range services {
				st, n := settings[s], instances[s]
				at := "-"
				if !st.At.IsZero() {
					at = st.At.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%d%%\t%d\t%d\t%s\t%s\t%s\n", s, st.Weight, n[canary.Stable], n[canary.Canary],
					orDash(st.By), at, orDash(safetext.Line(st.Reason, 200)))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if prom.url == "" {
				return nil
			}
			signals, err := prom.signals(ctx)
			if err != nil {
				return &exitError{code: exitBackend, err: err}
			}
			fmt.Fprintln(out)
			printSignals(out, signals)
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	prom.register(cmd.Flags())
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tracksInConsul counts the passing instances of every service that has
// tracks (a tag "stable" or "canary"), by track.
func tracksInConsul(ctx context.Context, client *api.Client) (map[string]map[string]int, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	catalog, _, err := client.Catalog().Services(q)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for name, tags := range catalog {
		if !slices.Contains(tags, canary.Stable) && !slices.Contains(tags, canary.Canary) {
			continue
		}
		entries, _, err := client.Health().Service(name, "", true, q)
		if err != nil {
			return nil, err
		}
		n := map[string]int{}
		for _, e := range entries {
			if e.Service != nil {
				n[canary.TrackOf(e.Service.Meta)]++
			}
		}
		out[name] = n
	}
	return out, nil
}

// trackSignals are one track's golden signals.
type trackSignals struct {
	rate, errorRatio, p99 float64
	has                   [3]bool
}

func printSignals(out io.Writer, signals map[[2]string]*trackSignals) {
	keys := slices.SortedFunc(maps.Keys(signals), func(a, b [2]string) int {
		return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1])
	})
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tTRACK\tREQ/S\tSERVER ERRORS\tP99 (last 2m)")
	for _, k := range keys {
		s := signals[k]
		cell := func(i int, format string, v float64) string {
			if !s.has[i] {
				return "-"
			}
			return fmt.Sprintf(format, v)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k[0], k[1], cell(0, "%.2f", s.rate), cell(1, "%.2f%%", 100*s.errorRatio), cell(2, "%.0f ms", 1000*s.p99))
	}
	_ = w.Flush()
}

func newCanaryGuardCmd(conn *canaryConn) *cobra.Command {
	var listen, secretFile string
	drain := 5 * time.Second
	cmd := &cobra.Command{
		Use:   "guard",
		Short: "Roll canaries back when Alertmanager says they do worse than stable",
		Long: `Serve Alertmanager's webhook at POST /alerts: for each firing
GoldenCanaryWorseThanStable alert, set that service's canary weight to 0,
recording the alert as the reason (golden canary status shows it). Requests
must carry "Authorization: Bearer <the secret in --secret-file>"
(Alertmanager's http_config.authorization.credentials_file). A rollback
already done is not done twice; a Consul failure answers 503, so
Alertmanager retries. GET /metrics has golden_canary_guard_rollbacks_total
and golden_canary_guard_notifications_total; GET /livez answers ok.

With the guard down nothing else changes: canaries are just not rolled back
automatically.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := conn.prepare(cmd, func(v *config.Validator) {
				v.Addr("listen", listen)
				v.FileExists("secret-file", secretFile)
				v.Positive("drain", drain)
			}); err != nil {
				return err
			}
			secret, err := canaryguard.ReadSecret(secretFile)
			if err != nil {
				return usageError(config.SettingError("secret-file", err))
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			store := canary.NewStoreOf(client)
			log := logrus.New()
			log.SetOutput(cmd.OutOrStdout())
			log.SetFormatter(&logrus.JSONFormatter{})
			entry := log.WithField("service", canaryGuardName)
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			hook, err := canaryguard.NewHandler(secret, func(ctx context.Context, service, reason string) (bool, error) {
				return store.Rollback(ctx, service, canary.Setting{By: "golden canary guard", Reason: reason, At: time.Now().UTC()})
			}, canaryguard.WithLogger(entry), canaryguard.WithRegisterer(reg))
			if err != nil {
				return usageError(config.SettingError("secret-file", err))
			}
			mux := http.NewServeMux()
			mux.Handle("/alerts", hook)
			mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return config.SettingError("listen", err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			entry.WithField("addr", l.Addr().String()).Info("canary guard listening: POST /alerts, GET /metrics, GET /livez")
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l) }()
			select {
			case <-cmd.Context().Done():
			case err := <-errc:
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":9096", "address of the webhook, /metrics and /livez")
	f.StringVar(&secretFile, "secret-file", "", "file holding the secret Alertmanager presents as a bearer token (required)")
	f.DurationVar(&drain, "drain", drain, "how long requests in flight may take to finish after SIGTERM")
	return cmd
}

// promFlags are the Prometheus settings of `golden canary status`.
type promFlags struct {
	url, user, password, passwordFile string
}

func (p *promFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.url, "prometheus-url", "http://localhost:9090", "Prometheus base URL (empty: leave the golden signals out)")
	fs.StringVar(&p.user, "prometheus-user", "admin", "user of Prometheus's sign-in, with --prometheus-password")
	fs.StringVar(&p.password, "prometheus-password", "", "password of Prometheus's sign-in (PROMETHEUS_PASSWORD in .env; prefer --prometheus-password-file or $"+config.EnvName("prometheus-password")+": flags show in the process list)")
	fs.StringVar(&p.passwordFile, "prometheus-password-file", "", "file holding the password of Prometheus's sign-in (one line)")
}

func (p *promFlags) validate(v *config.Validator) {
	if p.url != "" {
		if _, err := baseurl.Parse(p.url); err != nil {
			v.Check(false, "prometheus-url", "%v", err)
		}
	}
	v.Check(p.password == "" || p.passwordFile == "", "prometheus-password", "set either it or %s, not both", config.Setting("prometheus-password-file"))
	if p.passwordFile != "" {
		v.FileExists("prometheus-password-file", p.passwordFile)
	}
}

// signals reads each track's golden signals from the recording rules.
func (p *promFlags) signals(ctx context.Context) (map[[2]string]*trackSignals, error) {
	password := p.password
	if p.passwordFile != "" {
		var err error
		if password, err = config.ReadPasswordFile(p.passwordFile); err != nil {
			return nil, config.SettingError("prometheus-password-file", err)
		}
	}
	out := map[[2]string]*trackSignals{}
	for i, rule := range []string{ruleRequests, ruleErrorRatio, ruleLatencyP99} {
		samples, err := promQuery(ctx, p.url, p.user, password, rule)
		if err != nil {
			return nil, err
		}
		for _, smp := range samples {
			k := [2]string{smp.Metric["service"], smp.Metric["track"]}
			s := out[k]
			if s == nil {
				s = &trackSignals{}
				out[k] = s
			}
			s.has[i] = true
			switch i {
			case 0:
				s.rate = smp.Value
			case 1:
				s.errorRatio = smp.Value
			default:
				s.p99 = smp.Value
			}
		}
	}
	return out, nil
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string
	Value  float64
}

// basicAuth signs every request in with a user and password.
type basicAuth struct {
	user, password string
	next           http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

// promQuery runs an instant query through Prometheus's client library.
// Errors name Prometheus and never carry the password.
func promQuery(ctx context.Context, base, user, password, expr string) ([]sample, error) {
	var rt http.RoundTripper = http.DefaultTransport
	if password != "" {
		rt = basicAuth{user: user, password: password, next: rt}
	}
	client, err := promapi.NewClient(promapi.Config{Address: base, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus at %s: %w", base, err)
	}
	v, _, _, err := promv1.NewAPI(client).Query(ctx, expr, time.Now())
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "401") {
			hint = " (sign in with --prometheus-password or --prometheus-password-file)"
		}
		return nil, fmt.Errorf("prometheus at %s: query %s: %w%s", base, expr, err, hint)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("prometheus at %s: query %s answered a %s, not a vector", base, expr, v.Type())
	}
	out := make([]sample, 0, len(vec))
	for _, s := range vec {
		m := make(map[string]string, len(s.Metric))
		for k, v := range s.Metric {
			m[string(k)] = string(v)
		}
		out = append(out, sample{Metric: m, Value: float64(s.Value)})
	}
	return out, nil
}
