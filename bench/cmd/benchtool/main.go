// Command benchtool runs the measurements of scripts/bench.sh that are not
// `go test -bench`, and turns every result into Markdown:
//
//	benchtool rpc-table FILE       per-RPC table from BenchmarkUnaryRPC output
//	benchtool logcall-table FILE   log-call table from BenchmarkLogCall output
//	benchtool ghz --env FILE       ghz against each server of cmd/benchserver
//	benchtool rss --env FILE --golden BIN
//	                               RSS of user, auth and gateway as separate
//	                               `golden serve` processes, idle and under load
//	benchtool sampling --golden BIN
//	                               CPU of those processes and of Jaeger per
//	                               request at one rate, for each way of
//	                               sampling traces
//	benchtool gc --golden BIN      their CPU and peak RSS per GOGC
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/bench"
)

func main() {
	bench.ServeGELFSinkIfChild()
	root := &cobra.Command{
		Use:           "benchtool",
		Short:         "Measurements and Markdown tables for scripts/bench.sh",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRPCTableCmd(), newLogCallTableCmd(), newGHZCmd(), newRSSCmd(), newSamplingCmd(), newGCCmd())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}
