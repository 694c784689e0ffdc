// Command golden runs the golden reference services and their tools.
//
//	golden serve auth|user|gateway   run one service
//	golden all                       run all three on loopback, for a first look
//	golden certs ...                 the two-level certificate system
//	golden graylog setup             create the GELF inputs in Graylog
//	golden lookup REQUEST-ID         one request's logs and spans, in time order
//	golden loadgen                   steady, realistic load on the gateway API
//	golden fault set|clear|list      inject errors and latency at run time (Consul KV)
//	golden probe URL                 exit 0 when URL answers 2xx (container healthchecks)
//	golden version                   version, VCS revision and Go version of this binary
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/metrics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "golden:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 0 without an error; 2 for invalid usage (flags, arguments,
// settings: nothing was started); what a command's error says where its
// status means more (lookup: found, not found, backend error); and 1
// otherwise.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	var invalid *config.Invalid
	if errors.As(err, &invalid) {
		return exitUsage
	}
	return 1
}

func newRootCmd() *cobra.Command {
	build := metrics.BuildInfo{}.Resolve()
	root := &cobra.Command{
		Use:           "golden",
		Short:         "Observable gRPC reference services and their tools",
		Version:       build.Version, // --version
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("golden {{.Version}}\n")
	// Every subcommand's flag errors are usage errors (exit 2).
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newServeCmd(), newAllCmd(), newDevCmd(), newCertsCmd(), newConsulCmd(), newWebConfigCmd(), newAuthProxyCmd(), newGraylogCmd(), newLookupCmd(), newProbeCmd(), newFaultCmd(), newCanaryCmd(), newLoadgenCmd(),
		newVersionCmd(build))
	registerCompletions(root)
	return root
}

// newVersionCmd returns "golden version": what golden_build_info reports.
func newVersionCmd(build metrics.BuildInfo) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "golden %s (revision %s, %s)\n", build.Version, build.Revision, runtime.Version())
			return err
		},
	}
}
