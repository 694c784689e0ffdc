package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/consulacl"
	"github.com/golden-stack/golden/observability/backoff"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/consul"
	"github.com/golden-stack/golden/observability/fault"
)

// Where `golden consul setup` finds the secrets it is given: environment
// variables, never flags, which any process listing shows.
const (
	// envManagementToken is Consul's own variable; the _FILE form wins, as
	// in every Consul client.
	envManagementToken     = api.HTTPTokenEnvName
	envManagementTokenFile = api.HTTPTokenFileEnvName
	envOperatorToken       = "GOLDEN_CONSUL_OPERATOR_TOKEN"
)

// consulTokenFile is the name of the token file --export writes for each
// service, beside its certificates.
const consulTokenFile = "consul.token"

// newConsulCmd returns "golden consul", the Consul tools.
func newConsulCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "consul",
		Short:         "Prepare Consul's ACL system for golden",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(newConsulSetupCmd())
	return cmd
}

func newConsulSetupCmd() *cobra.Command {
	var (
		addr           = "127.0.0.1:8500"
		services       = []string{"auth", "user", "gateway"}
		prefix         = fault.DefaultPrefix
		export         string
		prometheusFile string
		secretsDir     string
		wait           = 2 * time.Minute
	)
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create golden's Consul ACL policies and tokens",
		Long: `Wait up to --wait for Consul to accept the management token in
` + envManagementToken + ` (or the file named by ` + envManagementTokenFile + `), a UUID you choose and
give the agent as acl.tokens.initial_management, then create or update
golden's policies and tokens:

  golden-service-<name>  each of --services: register and deregister that
                         service only, read the catalog and health, read
                         its own faults (<prefix><name>/) and the canary
                         weights (` + canary.KVPrefix + `)
  golden-prometheus      read the catalog, health and the agent's metrics
  golden-operator        write the faults (golden fault) and the canary
                         weights (golden canary); its secret is the UUID in
                         ` + envOperatorToken + `; unset, none is made
  golden-canary-guard    write the canary weights (golden canary guard)
  golden-agent           the agent's own token (node registration)

Consul must run with
  acl { enabled = true, default_policy = "deny", enable_token_persistence = true,
        tokens { initial_management = "<the UUID>" } }
With --token-secrets-dir DIR, the tokens whose file DIR/<service>,
DIR/prometheus or DIR/canary-guard exists get the UUID in it as their
secret, for where the services' tokens must be known before Consul runs
(kubernetes/, which mounts them from a Secret).
With --export, each service's token is written to
<export>/<name>/` + consulTokenFile + ` (mode 0600), for its --consul-token-file, and the
guard's to <export>/` + canaryGuardName + `/` + consulTokenFile + `; with
--prometheus-token-file, Prometheus's token to that file (mode 0644).
Secrets are read from the environment only and never printed. Running it
again keeps every token's secret and changes only what differs.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			var v config.Validator
			v.Addr("consul-addr", addr)
			v.Check(len(services) > 0, "services", "must name at least one service")
			for _, s := range services {
				v.Check(fault.CheckService(s) == nil, "services", "%q is not a service name", s)
			}
			p, err := fault.NormalizePrefix(prefix)
			v.Check(err == nil, "fault-prefix", "%v", err)
			v.Positive("wait", wait)
			chosen := readTokenSecrets(&v, secretsDir, services)
			// The secrets are variables, not flags: their errors name them.
			mgmt, mgmtErr := managementToken()
			operator := strings.TrimSpace(os.Getenv(envOperatorToken))
			var operatorErr error
			if operator != "" && !consulacl.ValidSecret(operator) {
				operatorErr = fmt.Errorf("%s: must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", envOperatorToken)
			}
			if err := errors.Join(mgmtErr, operatorErr, v.Err()); err != nil {
				return usageError(err)
			}
			client, err := consul.NewClient(addr, "")
			if err != nil {
				return usageError(fmt.Errorf("consul client: %w", err))
			}
			out := cmd.OutOrStdout()
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			if err := managementWhenReady(ctx, out, client, addr, mgmt, wait); err != nil {
				return &exitError{code: exitBackend, err: err}
			}
			fmt.Fprintf(out, "Consul at %s: the management token is accepted\n", addr)
			tokens, err := consulacl.Apply(ctx, client, consulacl.Plan{
				Services: services, FaultPrefix: p, CanaryPrefix: canary.KVPrefix, OperatorSecret: operator, Secrets: chosen,
			})
			if err != nil {
				return &exitError{code: exitBackend, err: err}
			}
			for _, s := range services {
				where := "not written (no --export)"
				if export != "" {
					file := filepath.Join(export, s, consulTokenFile)
					if err := writeFileIfChanged(file, []byte(tokens.Services[s]+"\n"), 0o600); err != nil {
						return err
					}
					where = "in " + file
				}
				fmt.Fprintf(out, "token %s (accessor %s): %s\n", consulacl.ServicePolicy(s), consulacl.AccessorID(consulacl.ServicePolicy(s)), where)
			}
			where := "not written (no --prometheus-token-file)"
			if prometheusFile != "" {
				if err := writeFileIfChanged(prometheusFile, []byte(tokens.Prometheus+"\n"), 0o644); err != nil {
					return err
				}
				where = "in " + prometheusFile
			}
			fmt.Fprintf(out, "token %s (accessor %s): %s\n", consulacl.PrometheusPolicy, consulacl.AccessorID(consulacl.PrometheusPolicy), where)
			where = "not written (no --export)"
			if export != "" {
				file := filepath.Join(export, canaryGuardName, consulTokenFile)
				if err := writeFileIfChanged(file, []byte(tokens.CanaryGuard+"\n"), 0o600); err != nil {
					return err
				}
				where = "in " + file
			}
			fmt.Fprintf(out, "token %s (accessor %s): %s\n", consulacl.CanaryGuardPolicy, consulacl.AccessorID(consulacl.CanaryGuardPolicy), where)
			if operator != "" {
				fmt.Fprintf(out, "token %s (accessor %s): the secret in %s\n", consulacl.OperatorPolicy, consulacl.AccessorID(consulacl.OperatorPolicy), envOperatorToken)
			}
			fmt.Fprintf(out, "token %s (accessor %s): the agent's\n", consulacl.AgentPolicy, consulacl.AccessorID(consulacl.AgentPolicy))
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&addr, "consul-addr", addr, "Consul agent HTTP address (host:port)")
	f.StringSliceVar(&services, "services", services, "the golden services that get a token each (comma-separated)")
	f.StringVar(&prefix, "fault-prefix", prefix, "Consul KV prefix of the faults (the services' --fault-prefix)")
	f.StringVar(&export, "export", export, "write each service's token to <dir>/<service>/"+consulTokenFile)
	f.StringVar(&prometheusFile, "prometheus-token-file", prometheusFile, "write Prometheus's read-only token to this file")
	f.StringVar(&secretsDir, "token-secrets-dir", secretsDir, "folder of chosen token secrets (UUIDs), one file per token: <service>, prometheus, canary-guard; a missing file lets Consul choose")
	f.DurationVar(&wait, "wait", wait, "how long to wait for Consul to elect a leader and the whole setup")
	return cmd
}

// managementToken returns the management token from Consul's variables.
func managementToken() (string, error) {
	if file := os.Getenv(envManagementTokenFile); file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: cannot read %q: %v", envManagementTokenFile, file, errors.Unwrap(err))
		}
		if t := strings.TrimSpace(string(raw)); consulacl.ValidSecret(t) {
			return t, nil
		}
		return "", fmt.Errorf("%s: %q does not hold a UUID", envManagementTokenFile, file)
	}
	t := strings.TrimSpace(os.Getenv(envManagementToken))
	switch {
	case t == "":
		return "", fmt.Errorf("%s: must be set (or %s), to the management token's secret, a UUID", envManagementToken, envManagementTokenFile)
	case !consulacl.ValidSecret(t):
		return "", fmt.Errorf("%s: must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", envManagementToken)
	}
	return t, nil
}

// managementWhenReady runs consulacl.CheckManagement until the token is
// accepted, or refused for good (ACLs off, not a management token), or
// wait ends: until a leader is elected Consul is unreachable or answers 5xx,
// and until the leader has created the initial management token it answers
// 403. It prints what it waits for on the first failure and every
// waitReportEvery.
func managementWhenReady(ctx context.Context, out io.Writer, client *api.Client, addr, mgmt string, wait time.Duration) error {
	var lastReport time.Time
	var previous error // the error of the attempt before
	for attempt := 0; ; attempt++ {
		err := consulacl.CheckManagement(ctx, client, mgmt)
		if ctx.Err() != nil && previous != nil {
			// wait ended during this attempt: the attempt before, which
			// Consul answered (a 403 for an unknown token), says more
			// than the deadline.
			err = previous
		}
		previous = err
		var se api.StatusError
		if err == nil || errors.Is(err, consulacl.ErrNotManagement) || (errors.As(err, &se) && se.Code == http.StatusUnauthorized) {
			return err
		}
		if now := time.Now(); now.Sub(lastReport) >= waitReportEvery {
			lastReport = now
			fmt.Fprintf(out, "waiting for Consul at %s to accept the management token (up to %s): %v\n", addr, wait, err)
		}
		if !backoff.Sleep(ctx, backoff.Delay(attempt, 200*time.Millisecond, 2*time.Second)) {
			if errors.As(err, &se) && se.Code == http.StatusForbidden {
				return fmt.Errorf("consul setup: Consul at %s does not know the token in %s after %s (%s): it must equal the agent's acl.tokens.initial_management (docker-compose.yml sets both from CONSUL_MANAGEMENT_TOKEN in .env; Consul keeps the first one it was started with): %w",
					addr, envManagementToken, wait, config.Setting("wait"), err)
			}
			return fmt.Errorf("consul setup: Consul at %s not ready within %s (%s): %w", addr, wait, config.Setting("wait"), err)
		}
	}
}

// readTokenSecrets reads the chosen secrets of --token-secrets-dir by token
// name; a missing file is no choice. Problems are reported on v, naming the
// file, never its content.
func readTokenSecrets(v *config.Validator, dir string, services []string) map[string]string {
	if dir == "" {
		return nil
	}
	files := map[string]string{"prometheus": consulacl.PrometheusPolicy, canaryGuardName: consulacl.CanaryGuardPolicy}
	for _, s := range services {
		files[s] = consulacl.ServicePolicy(s)
	}
	chosen := map[string]string{}
	for file, token := range files {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			v.Check(false, "token-secrets-dir", "%v", err)
			continue
		}
		secret := strings.TrimSpace(string(raw))
		if !consulacl.ValidSecret(secret) {
			v.Check(false, "token-secrets-dir", "%s: must hold a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", filepath.Join(dir, file))
			continue
		}
		chosen[token] = secret
	}
	return chosen
}
