package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/graylog"
	"github.com/golden-stack/golden/observability/config"
)

// waitReportEvery spaces the lines `golden graylog setup` prints while it
// waits.
const waitReportEvery = 10 * time.Second

// newGraylogCmd returns "golden graylog", the Graylog tools.
func newGraylogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "graylog",
		Short:         "Prepare Graylog to receive golden's logs",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(newGraylogSetupCmd())
	return cmd
}

func newGraylogSetupCmd() *cobra.Command {
	gl := graylog.DefaultConfig()
	var (
		wait             = 5 * time.Minute
		udpPort, tcpPort = 12201, 12201
	)
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Wait for Graylog, then create the GELF UDP and TCP inputs if missing",
		Long: `Wait up to --wait for Graylog's API to answer, then make sure the inputs
golden's services log to exist: "` + graylog.TitleGELFUDP + `" (GELF over UDP) and
"` + graylog.TitleGELFTCP + `" (GELF over TCP, NUL-delimited), global, on all
interfaces. Inputs are recognised by title, so running setup again creates
nothing; an input with one of these titles but another type or port is an
error, left for a person to resolve. Prints "created" or "already present"
per input. Every flag can also be set as GOLDEN_<FLAG>; prefer
GOLDEN_GRAYLOG_PASSWORD or --graylog-password-file to --graylog-password,
which shows in the process list.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			var v config.Validator
			gl.Validate(&v)
			v.Positive("wait", wait)
			v.Check(udpPort >= 1 && udpPort <= 65535, "udp-port", "must be between 1 and 65535, got %d", udpPort)
			v.Check(tcpPort >= 1 && tcpPort <= 65535, "tcp-port", "must be between 1 and 65535, got %d", tcpPort)
			if err := v.Err(); err != nil {
				return usageError(err)
			}
			out := cmd.OutOrStdout()
			// Graylog takes minutes to start: say what is awaited, on the
			// first failure and then every waitReportEvery.
			var lastReport time.Time
			client, err := gl.NewClient(graylog.WithWaitReport(func(_ int, err error) {
				if now := time.Now(); now.Sub(lastReport) >= waitReportEvery {
					lastReport = now
					fmt.Fprintf(out, "waiting for Graylog at %s (up to %s): %v\n", gl.URL, wait, err)
				}
			}))
			if err != nil {
				return usageError(err)
			}

			ctx := cmd.Context()
			info, err := client.WaitReady(ctx, wait)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Graylog %s is up at %s\n", info.Version, client.URL())

			results, err := client.EnsureInputs(ctx, graylog.GELFUDPInput(udpPort), graylog.GELFTCPInput(tcpPort))
			// Report what was done even when a later input failed.
			for _, r := range results {
				state := "already present"
				if r.Created {
					state = "created"
				}
				port, _ := r.Spec.Port()
				fmt.Fprintf(out, "%s: input %q (%s, port %d, id %s)\n", state, r.Spec.Title, r.Spec.Type, port, r.ID)
			}
			if err != nil {
				return fmt.Errorf("graylog setup: %w", err)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	gl.RegisterFlags(f)
	f.DurationVar(&wait, "wait", wait, "how long to wait for Graylog's API to answer")
	f.IntVar(&udpPort, "udp-port", udpPort, "port of the GELF UDP input")
	f.IntVar(&tcpPort, "tcp-port", tcpPort, "port of the GELF TCP input")
	return cmd
}
