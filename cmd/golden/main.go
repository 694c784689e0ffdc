// Command golden runs the golden reference services and their tools.
//
//	golden serve auth|user|gateway   run one service
//	golden all                       run all three on loopback, for a first look
//	golden certs ...                 the two-level certificate system
package main

import (
	"context"
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
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "golden",
		Short:         "Observable gRPC reference services and their tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newAllCmd(), newCertsCmd())
	return root
}
