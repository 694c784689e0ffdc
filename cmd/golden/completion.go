package main

import (
	"slices"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/golden-stack/golden/internal/loadgen"
	"github.com/golden-stack/golden/observability/canary"
)

// flagValues are the values of the flags that take one of a few, offered
// by shell completion (cobra's `golden completion bash|zsh|fish`) instead
// of file names. Each list is what the flag's validation accepts.
func flagValues() map[string][]string {
	var grpcCodes []string
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		grpcCodes = append(grpcCodes, c.String())
	}
	var mix []string
	for _, op := range loadgen.MixOperations() {
		mix = append(mix, op+"=")
	}
	return map[string][]string{
		"log-level":     {"trace", "debug", "info", "warn", "error"},
		"log-format":    {"json", "text"},
		"gelf-protocol": {"udp", "tcp"},
		"store":         {"memory", "postgres"},
		"track":         {canary.Stable, canary.Canary},
		"service":       {"auth", "user", "gateway"},
		"code":          grpcCodes,
		"mix":           mix,
	}
}

// registerCompletions gives every command's enum flags their values.
func registerCompletions(cmd *cobra.Command) {
	values := flagValues()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for name, vals := range values {
			if c.LocalNonPersistentFlags().Lookup(name) == nil {
				continue
			}
			directive := cobra.ShellCompDirectiveNoFileComp
			if name == "mix" {
				directive |= cobra.ShellCompDirectiveNoSpace // "get=" wants a number next
			}
			_ = c.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return slices.Clone(vals), directive
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd)
}
