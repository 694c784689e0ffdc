package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/devstack"
	"github.com/golden-stack/golden/observability/config"
)

// devOptions are the settings of `golden dev`: those of `golden all` and
// where the backends come from and listen.
type devOptions struct {
	all   allOptions
	stack devstack.Options
}

func newDevCmd() *cobra.Command {
	o := devOptions{all: defaultAllOptions(), stack: devstack.Options{Root: ".", Ports: devstack.DefaultPorts()}}
	o.all.shared.DebugPages = true
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Consul, Jaeger, Mailpit, Alertmanager and Prometheus from the backend cache, then auth, user and gateway wired to them",
		Long: `dev runs the whole observability story on this machine without Docker:
Consul, Jaeger, Mailpit, Alertmanager and Prometheus from the binaries that
scripts/install-backends.sh builds, each with the project's configuration
rendered for loopback, then auth, user and gateway as ` + "`golden all`" + ` does,
registered in Consul, sending spans to Jaeger, with debug pages on.
Alerts are emailed to Mailpit. Grafana and Graylog run only with Docker.

Run it from the repository's top folder (or name it with --root). Every
backend listens on 127.0.0.1 only; their data and logs stay under
DIR/dev. Ctrl-C stops the services, then the backends.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			return runDev(cmd, o)
		},
	}
	fs := cmd.Flags()
	o.all.registerFlags(fs)
	fs.StringVar(&o.stack.Root, "root", o.stack.Root, "the repository's top folder, whose prometheus/, alertmanager/ and jaeger/ configure the backends")
	fs.StringVar(&o.stack.BackendsDir, "backends-dir", "", "backend cache filled by scripts/install-backends.sh (default ~/.cache/golden/backends)")
	fs.IntVar(&o.stack.Ports.Consul, "consul-port", o.stack.Ports.Consul, "Consul's HTTP API and UI port")
	fs.IntVar(&o.stack.Ports.Prometheus, "prometheus-port", o.stack.Ports.Prometheus, "Prometheus's port")
	fs.IntVar(&o.stack.Ports.Alertmanager, "alertmanager-port", o.stack.Ports.Alertmanager, "Alertmanager's port")
	fs.IntVar(&o.stack.Ports.Jaeger, "jaeger-port", o.stack.Ports.Jaeger, "Jaeger's UI and query API port")
	fs.IntVar(&o.stack.Ports.JaegerGRPC, "jaeger-grpc-port", o.stack.Ports.JaegerGRPC, "Jaeger's query API over gRPC (api_v3), which golden lookup reads")
	fs.IntVar(&o.stack.Ports.OTLP, "otlp-port", o.stack.Ports.OTLP, "Jaeger's OTLP/gRPC port, where the services send spans")
	fs.IntVar(&o.stack.Ports.Mailpit, "mailpit-port", o.stack.Ports.Mailpit, "Mailpit's web page and API port (alert emails)")
	cmd.SetUsageFunc(groupedUsage)
	return cmd
}

func runDev(cmd *cobra.Command, o devOptions) error {
	w := cmd.OutOrStdout()
	o.stack.StateDir = filepath.Join(o.all.dir, "dev")
	if o.all.dir == "" {
		o.stack.StateDir = ""
	}
	// The services' Consul and trace settings point at the backends; the
	// intervals are short so that a change shows within seconds.
	d := &o.all.shared.Discovery
	d.ConsulAddr = fmt.Sprintf("127.0.0.1:%d", o.stack.Ports.Consul)
	d.CheckInterval, d.CheckTimeout, d.DrainWait = 2*time.Second, time.Second, time.Second
	t := &o.all.shared.Tracing
	t.Endpoint, t.Insecure = fmt.Sprintf("127.0.0.1:%d", o.stack.Ports.OTLP), true

	// Every bad value, of both, before anything starts.
	stackErr := o.stack.Validate()
	services, err := o.all.prepare(w)
	var invalid *config.Invalid
	if err != nil && !errors.As(err, &invalid) {
		return err
	}
	if err := uniqueInvalid([]error{stackErr, err}); err != nil {
		return err
	}
	// The services bind their ports after the backends start: no backend
	// may be handed one of them.
	for _, a := range o.all.listenAddrs() {
		if _, port, err := net.SplitHostPort(a.addr); err == nil {
			if p, err := strconv.Atoi(port); err == nil && p != 0 {
				o.stack.Taken = append(o.stack.Taken, p)
			}
		}
	}
	fmt.Fprintf(w, "starting consul, jaeger, mailpit, alertmanager and prometheus (logs in %s)\n", filepath.Join(o.stack.StateDir, "logs"))
	stack, err := devstack.Start(cmd.Context(), o.stack)
	if err != nil {
		return err
	}
	defer func() {
		stack.Stop()
		fmt.Fprintln(w, "stopped consul, jaeger, mailpit, alertmanager and prometheus")
	}()
	printDevURLs(w, stack, o.all)
	return services.run(cmd.Context(), w)
}

// printDevURLs lists every address a person opens during `golden dev`.
func printDevURLs(w io.Writer, s *devstack.Stack, o allOptions) {
	fmt.Fprintf(w, `
  Prometheus    %s  (targets: /targets, alerts: /alerts)
  Alertmanager  %s
  Jaeger        %s  (query API v3 over gRPC: %s)
  Consul        %s  (faults: golden fault --consul-addr %s ...)
  Mailpit       %s  (alert emails)
  admin ports   http://%s (gateway), http://%s (auth), http://%s (user)
                each with /metrics, /livez, /readyz, /debug/requests, /debug/pprof/
`, s.PrometheusURL, s.AlertmanagerURL, s.JaegerURL, s.JaegerGRPCAddr, s.ConsulURL, s.ConsulAddr, s.MailpitURL,
		o.gatewayAdmin, o.authAdmin, o.userAdmin)
}
