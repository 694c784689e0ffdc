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
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "golden:", err)
		code := 1
		// Commands whose exit status means something (lookup: found, not
		// found, backend error) say so through their error.
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		os.Exit(code)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "golden",
		Short:         "Observable gRPC reference services and their tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newAllCmd(), newCertsCmd(), newGraylogCmd(), newLookupCmd(), newProbeCmd(), newFaultCmd(), newLoadgenCmd())
	return root
}
