package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/discovery"
	"github.com/golden-stack/golden/observability/fault"
	"github.com/golden-stack/golden/observability/logging"
	"github.com/golden-stack/golden/observability/postgres"
	"github.com/golden-stack/golden/observability/tracing"
)

// flagGroup is a titled part of a service's flags, as the kit component
// that registers them.
type flagGroup struct {
	title    string
	register func(*pflag.FlagSet)
}

// flagGroups are the kit's parts a service's flags come from; the flags of
// none of them are the service's own, listed first.
func flagGroups() []flagGroup {
	lc, tc, dc, fc, pc := logging.DefaultConfig(), tracing.DefaultConfig(), discovery.DefaultConfig(), fault.DefaultConfig(), postgres.DefaultConfig()
	return []flagGroup{
		{"Logging (stdout, GELF to Graylog)", lc.RegisterFlags},
		{"Tracing (OTLP to Jaeger)", tc.RegisterFlags},
		{"Discovery (Consul)", dc.RegisterFlags},
		{"Fault injection", fc.RegisterFlags},
		{"Database (PostgreSQL)", pc.RegisterFlags},
	}
}

// groupedUsage prints a command's flags in groups, each flag with the
// environment variable that sets it too: the usage of `golden serve
// SERVICE` and `golden all`, whose flags are many.
func groupedUsage(cmd *cobra.Command) error {
	groups := flagGroups()
	groupOf := map[string]int{}
	for i, g := range groups {
		fs := pflag.NewFlagSet(g.title, pflag.ContinueOnError)
		g.register(fs)
		fs.VisitAll(func(f *pflag.Flag) { groupOf[f.Name] = i + 1 })
	}
	sets := make([]*pflag.FlagSet, len(groups)+1)
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		i := groupOf[f.Name] // 0: the service's own
		if sets[i] == nil {
			sets[i] = pflag.NewFlagSet("", pflag.ContinueOnError)
		}
		withEnv := *f
		if f.Name != "help" {
			withEnv.Usage = f.Usage + " [" + config.EnvName(f.Name) + "]"
		}
		sets[i].AddFlag(&withEnv)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %s [flags]\n", cmd.CommandPath())
	for i, fs := range sets {
		if fs == nil {
			continue
		}
		title := "Service"
		if i > 0 {
			title = groups[i-1].title
		}
		fmt.Fprintf(&b, "\n%s flags:\n%s", title, fs.FlagUsagesWrapped(120))
	}
	fmt.Fprintf(&b, "\nEvery flag can also be set by the variable in brackets; a flag on the command line wins.\n")
	_, err := fmt.Fprint(cmd.OutOrStderr(), b.String())
	return err
}
