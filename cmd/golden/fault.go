package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/golden-stack/golden/observability/consul"
	"github.com/golden-stack/golden/observability/safetext"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/fault"
)

// faultConn holds the settings every `golden fault` command shares: where
// Consul is and under which prefix the faults live.
type faultConn struct {
	addr    string
	prefix  string
	timeout time.Duration
}

func (c *faultConn) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.addr, "consul-addr", "127.0.0.1:8500", "Consul agent HTTP address (host:port); CONSUL_HTTP_TOKEN and the other CONSUL_* variables apply")
	fs.StringVar(&c.prefix, "prefix", fault.DefaultPrefix, "Consul KV prefix of the faults (the services' --fault-prefix)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for Consul")
}

func (c *faultConn) validate(v *config.Validator) {
	v.Addr("consul-addr", c.addr)
	if p, err := fault.NormalizePrefix(c.prefix); err != nil {
		v.Check(false, "prefix", "%v", err)
	} else {
		c.prefix = p
	}
	v.Positive("timeout", c.timeout)
}

// kv returns the KV client and a context bounded by --timeout.
func (c *faultConn) kv(ctx context.Context) (*api.KV, context.Context, context.CancelFunc, error) {
	client, err := consul.NewClient(c.addr, "")
	if err != nil {
		// Only the CONSUL_* variables (a token file, TLS files) can fail here.
		return nil, nil, nil, usageError(fmt.Errorf("consul client: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return client.KV(), ctx, cancel, nil
}

// consulError explains a failed call to Consul; it exits with exitBackend.
func (c *faultConn) consulError(what string, err error) error {
	return explainConsulError(c.addr, c.timeout, what, "set CONSUL_HTTP_TOKEN to a token that may write keys under "+c.prefix, err)
}

// explainConsulError says what a failed call to the Consul agent at addr
// means: refused (with refusedHint: which token would do), failed, too
// slow (timeout, the --timeout setting) or not reachable. It exits with
// exitBackend.
func explainConsulError(addr string, timeout time.Duration, what, refusedHint string, err error) error {
	var se api.StatusError
	var msg string
	switch {
	case errors.As(err, &se) && (se.Code == 401 || se.Code == 403):
		msg = fmt.Sprintf("Consul at %s refused to %s (HTTP %d): %s", addr, what, se.Code, refusedHint)
	case errors.As(err, &se):
		msg = fmt.Sprintf("Consul at %s could not %s: HTTP %d: %s", addr, what, se.Code, safetext.Line(se.Body, 200))
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("Consul at %s did not answer within %s (%s) to %s", addr, timeout, config.Setting("timeout"), what)
	case errors.Is(err, context.Canceled):
		msg = fmt.Sprintf("interrupted while asking Consul to %s", what)
	default:
		msg = fmt.Sprintf("cannot reach Consul at %s to %s: %v; is Consul running there? Set it with %s", addr, what, err, config.Setting("consul-addr"))
	}
	return &exitError{code: exitBackend, err: errors.New(msg)}
}

// newFaultCmd returns "golden fault", the fault injection tools.
func newFaultCmd() *cobra.Command {
	var conn faultConn
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Inject errors and latency into running services, through Consul KV",
		Long: `Break a running service on purpose, and mend it, without restarting anything:
faults are JSON values under Consul KV keys <prefix><service>/<method>, which
every service started with --consul-addr (and --faults, on by default) watches
and applies within a moment. method is the short RPC name, such as GetUser, or
* for every method without a fault of its own.

An active fault shows in golden_fault_active{service,method,kind} and
golden_faults_injected_total, on the spans of the calls it hit
(fault.injected=true) and in their log lines ("injected fault: ..."). The
gRPC health service is never touched.

Every flag can also be set as GOLDEN_<FLAG>. Exit status: 0 done, 1 other
failure, 2 invalid usage or values (nothing was written), 4 Consul failed.`,
		// A RunE, so that an unknown subcommand is an error (exit 2)
		// rather than help and exit 0.
		Args:          usageArgs(cobra.NoArgs),
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(newFaultSetCmd(&conn), newFaultClearCmd(&conn), newFaultListCmd(&conn))
	return cmd
}

// prepare applies the environment and validates the shared settings plus
// what check adds; every problem is a usage error.
func prepare(cmd *cobra.Command, conn *faultConn, check func(v *config.Validator)) error {
	if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
		return usageError(err)
	}
	var v config.Validator
	conn.validate(&v)
	check(&v)
	if err := v.Err(); err != nil {
		return usageError(err)
	}
	return nil
}

func checkService(v *config.Validator, service string, required bool) {
	switch {
	case service == "":
		v.Check(!required, "service", "must be set: the service to act on, such as user")
	default:
		if err := fault.CheckService(service); err != nil {
			v.Check(false, "service", "%v", err)
		}
	}
}

// specFlags maps a Spec's fields to the flags of `golden fault set`.
var specFlags = map[string]string{
	"error_rate":    "error-rate",
	"code":          "code",
	"latency":       "latency",
	"latency.fixed": "latency",
	"latency.min":   "latency-min",
	"latency.max":   "latency-max",
	"latency_rate":  "latency-rate",
	"expires_at":    "ttl",
	"track":         "track",
	"":              "error-rate",
}

func newFaultSetCmd(conn *faultConn) *cobra.Command {
	var (
		service, method, code, track string
		errorRate, latencyRate       float64
		latency, latMin, latMax, ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set --service NAME --method RPC [--error-rate R --code CODE] [--latency D | --latency-min D --latency-max D] [--latency-rate R] [--ttl D]",
		Short: "Inject errors and/or latency into one method (or *) of a service",
		Long: `Write the fault of --service's --method (the short RPC name, or * for every
method without a fault of its own), replacing any fault it had:

  --error-rate R   share of calls (0 to 1) failed with --code instead of served
  --code CODE      gRPC code of those failures (default Unavailable)
  --latency D      fixed delay added to a share --latency-rate of calls
  --latency-min D, --latency-max D
                   delay drawn uniformly between the two instead
  --latency-rate R share of calls (0 to 1) delayed (default 1)
  --ttl D          the fault stops applying after D (default: until cleared)
  --track T        only the instances on track T (stable or canary) apply it

A delayed call may then be failed. A delay is at most ` + fault.MaxLatency.String() + ` and ends early
when the caller's deadline passes. Every value is checked before anything is
written.

  golden fault set --service user --method GetUser --error-rate 0.2 --code Unavailable
  golden fault set --service user --method '*' --latency-min 50ms --latency-max 500ms --ttl 10m
  golden fault set --service user --method '*' --track canary --error-rate 0.3`,
		Args:          usageArgs(cobra.NoArgs),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var spec fault.Spec
			err := prepare(cmd, conn, func(v *config.Validator) {
				checkService(v, service, true)
				if err := fault.CheckMethod(method); method == "" {
					v.Check(false, "method", "must be set: the short RPC name, such as GetUser, or %q for every method", fault.AllMethods)
				} else if err != nil {
					v.Check(false, "method", "%v", err)
				}
				spec = buildSpec(v, cmd.Flags(), errorRate, code, latency, latMin, latMax, latencyRate, ttl)
				if track != "" {
					if err := canary.CheckTrack(track); err != nil {
						v.Check(false, "track", "%v", err)
					}
					spec.Track = track
				}
			})
			if err != nil {
				return err
			}
			value, err := json.Marshal(spec)
			if err != nil {
				return err
			}
			kv, ctx, cancel, err := conn.kv(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			key := fault.Key(conn.prefix, service, method)
			if _, err := kv.Put(&api.KVPair{Key: key, Value: value}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
				return conn.consulError("write "+key, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "set %s = %s\n", key, value)
			fmt.Fprintf(out, "%s/%s: %s\n", service, method, describe(spec, time.Now()))
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service to break, such as user (required)")
	f.StringVar(&method, "method", "", "short RPC name, such as GetUser, or * for every method (required)")
	f.Float64Var(&errorRate, "error-rate", 0, "share of calls (0 to 1) answered with --code")
	f.StringVar(&code, "code", fault.DefaultCode.String(), "gRPC code of injected errors, such as Unavailable, Internal, DeadlineExceeded, ResourceExhausted")
	f.DurationVar(&latency, "latency", 0, "fixed delay added to a share --latency-rate of calls")
	f.DurationVar(&latMin, "latency-min", 0, "least delay, drawn uniformly up to --latency-max")
	f.DurationVar(&latMax, "latency-max", 0, "greatest delay, drawn uniformly from --latency-min")
	f.Float64Var(&latencyRate, "latency-rate", 1, "share of calls (0 to 1) that get the delay")
	f.DurationVar(&ttl, "ttl", 0, "how long the fault applies (default: until golden fault clear)")
	f.StringVar(&track, "track", "", "only instances on this track apply the fault: stable or canary (default: every instance)")
	return cmd
}

// buildSpec turns set's flags into a Spec, reporting every problem on v by
// the flag that causes it.
func buildSpec(v *config.Validator, f *pflag.FlagSet, errorRate float64, code string,
	latency, latMin, latMax time.Duration, latencyRate float64, ttl time.Duration) fault.Spec {
	// Problems of how the flags combine come first; the Spec's own checks
	// only when there are none, so that no flag is reported twice.
	combined := true
	check := func(ok bool, flag, format string, args ...any) {
		combined = combined && ok
		v.Check(ok, flag, format, args...)
	}
	spec := fault.Spec{ErrorRate: errorRate}
	switch c, err := fault.ParseCode(code); {
	case err != nil:
		check(false, "code", "%v", err)
	case errorRate > 0:
		spec.Code = c.String()
	case f.Changed("code"):
		check(false, "code", "only applies with --error-rate above 0")
	}
	fixed, uniform := f.Changed("latency"), f.Changed("latency-min") || f.Changed("latency-max")
	switch {
	case fixed && uniform:
		check(false, "latency", "give --latency, or --latency-min and --latency-max, not both")
	case fixed:
		spec.Latency = &fault.Latency{Fixed: fault.Duration(latency)}
	case uniform:
		check(f.Changed("latency-max"), "latency-max", "must be given with --latency-min")
		spec.Latency = &fault.Latency{Min: fault.Duration(latMin), Max: fault.Duration(latMax)}
	}
	switch {
	case spec.Latency != nil:
		spec.LatencyRate = &latencyRate
	case f.Changed("latency-rate"):
		check(false, "latency-rate", "only applies with --latency, or --latency-min and --latency-max")
	}
	if f.Changed("ttl") {
		check(ttl > 0, "ttl", "must be greater than 0, got %s", ttl)
		// Whole seconds, rounded up, keep the stored value readable.
		exp := time.Now().Add(ttl).UTC()
		if t := exp.Truncate(time.Second); !t.Equal(exp) {
			exp = t.Add(time.Second)
		}
		spec.ExpiresAt = &exp
	}
	if !combined {
		return spec
	}
	for _, p := range spec.Problems() {
		msg := p.Problem
		if p.Field == "" {
			msg = "nothing to inject: give --error-rate above 0, or --latency (or --latency-min and --latency-max) with --latency-rate above 0"
		}
		for field, flag := range specFlags {
			if strings.Contains(field, ".") {
				msg = strings.ReplaceAll(msg, field, "--"+flag)
			}
		}
		v.Check(false, specFlags[p.Field], "%s", msg)
	}
	return spec
}

// describe says in words what spec does at now.
func describe(s fault.Spec, now time.Time) string {
	var parts []string
	if s.ErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("%s of calls fail with %s", percent(s.ErrorRate), s.Code))
	}
	if s.Latency != nil {
		parts = append(parts, fmt.Sprintf("%s of calls delayed by %s", percent(s.EffectiveLatencyRate()), s.Latency))
	}
	if s.Track != "" {
		parts = append(parts, "on the "+s.Track+" track only")
	}
	parts = append(parts, expires(s, now))
	return strings.Join(parts, "; ")
}

func percent(r float64) string { return strconv.FormatFloat(r*100, 'g', 4, 64) + "%" }

func expires(s fault.Spec, now time.Time) string {
	switch {
	case s.ExpiresAt == nil:
		return "until cleared"
	case s.Expired(now):
		return "expired at " + s.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("until %s (in %s)", s.ExpiresAt.UTC().Format(time.RFC3339), s.ExpiresAt.Sub(now).Round(time.Second))
}

func newFaultClearCmd(conn *faultConn) *cobra.Command {
	var (
		service, method string
		all             bool
	)
	cmd := &cobra.Command{
		Use:   "clear --service NAME (--method RPC | --all) | clear --all",
		Short: "Remove faults: one method's, all of a service's, or every one",
		Long: `Remove the fault of --service's --method, every fault of --service with
--all, or every fault under --prefix with --all alone. Services stop
injecting it within a moment. Clearing a fault that is not there is not an
error.`,
		Args:          usageArgs(cobra.NoArgs),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := prepare(cmd, conn, func(v *config.Validator) {
				checkService(v, service, method != "")
				switch {
				case method != "" && all:
					v.Check(false, "all", "give --method or --all, not both")
				case method == "" && !all:
					v.Check(false, "method", "must be set, or give --all to clear every fault of --service (or of every service)")
				case method != "":
					if err := fault.CheckMethod(method); err != nil {
						v.Check(false, "method", "%v", err)
					}
				}
			})
			if err != nil {
				return err
			}
			kv, ctx, cancel, err := conn.kv(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			out := cmd.OutOrStdout()
			if !all {
				key := fault.Key(conn.prefix, service, method)
				p, _, err := kv.Get(key, (&api.QueryOptions{}).WithContext(ctx))
				if err != nil {
					return conn.consulError("read "+key, err)
				}
				if p == nil {
					fmt.Fprintf(out, "no fault on %s/%s (%s)\n", service, method, key)
					return nil
				}
				if _, err := kv.Delete(key, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
					return conn.consulError("delete "+key, err)
				}
				fmt.Fprintf(out, "cleared %s/%s (%s)\n", service, method, key)
				return nil
			}
			tree, what := conn.prefix, "every service"
			if service != "" {
				tree, what = conn.prefix+service+"/", service
			}
			keys, _, err := kv.Keys(tree, "", (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				return conn.consulError("list "+tree, err)
			}
			if len(keys) == 0 {
				fmt.Fprintf(out, "no faults for %s under %s\n", what, tree)
				return nil
			}
			if _, err := kv.DeleteTree(tree, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
				return conn.consulError("delete "+tree, err)
			}
			fmt.Fprintf(out, "cleared %d fault(s) of %s under %s\n", len(keys), what, tree)
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service whose faults to clear, such as user")
	f.StringVar(&method, "method", "", "short RPC name, or * for the service-wide fault")
	f.BoolVar(&all, "all", false, "clear every fault of --service, or every fault at all without --service")
	return cmd
}

func newFaultListCmd(conn *faultConn) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "list [--service NAME]",
		Short: "Show the faults in Consul as a table",
		Long: `Show every fault under --prefix (or --service's only): service, method, error
rate, code, latency, latency rate and expiry. Values the services would ignore
as invalid are listed with the reason.`,
		Args:          usageArgs(cobra.NoArgs),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := prepare(cmd, conn, func(v *config.Validator) { checkService(v, service, false) })
			if err != nil {
				return err
			}
			kv, ctx, cancel, err := conn.kv(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			tree := conn.prefix
			if service != "" {
				tree += service + "/"
			}
			pairs, _, err := kv.List(tree, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				return conn.consulError("list "+tree, err)
			}
			return writeFaultTable(cmd.OutOrStdout(), conn.prefix, pairs, time.Now())
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	cmd.Flags().StringVar(&service, "service", "", "show only this service's faults")
	return cmd
}

// writeFaultTable prints pairs, keys under prefix, as a table.
func writeFaultTable(w io.Writer, prefix string, pairs api.KVPairs, now time.Time) error {
	if len(pairs) == 0 {
		_, err := fmt.Fprintf(w, "no faults under %s\n", prefix)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tMETHOD\tERROR RATE\tCODE\tLATENCY\tLATENCY RATE\tEXPIRES")
	for _, p := range pairs {
		if p == nil || strings.HasSuffix(p.Key, "/") {
			continue // folders
		}
		svc, method, ok := fault.SplitKey(prefix, p.Key)
		if !ok {
			// No tab after the message: the last cell of a line does not
			// widen its column.
			fmt.Fprintf(tw, "%s\t\tinvalid key, ignored: want %s<service>/<method>\n", safetext.Line(strings.TrimPrefix(p.Key, prefix), 80), prefix)
			continue
		}
		s, err := fault.ParseSpec(p.Value)
		if err != nil {
			msg := strings.ReplaceAll(err.Error(), "\n", "; ")
			fmt.Fprintf(tw, "%s\t%s\tinvalid, ignored: %s\n", svc, method, safetext.Line(msg, 200))
			continue
		}
		rate, code, lat, latRate := "-", "-", "-", "-"
		if s.ErrorRate > 0 {
			rate, code = strconv.FormatFloat(s.ErrorRate, 'g', -1, 64), s.Code
		}
		if s.Latency != nil {
			lat, latRate = s.Latency.String(), strconv.FormatFloat(s.EffectiveLatencyRate(), 'g', -1, 64)
		}
		exp := "never"
		if s.ExpiresAt != nil {
			exp = s.ExpiresAt.UTC().Format(time.RFC3339)
			if s.Expired(now) {
				exp += " (expired)"
			} else {
				exp += " (in " + s.ExpiresAt.Sub(now).Round(time.Second).String() + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", svc, method, rate, code, lat, latRate, exp)
	}
	return tw.Flush()
}
