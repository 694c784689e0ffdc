package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/services/auth"
	"github.com/golden-stack/golden/services/gateway"
	"github.com/golden-stack/golden/services/user"
)

// builtService is a service process once its ports are bound: Run it, or
// Close it if it will not run.
type builtService interface {
	Run(ctx context.Context) error
	Close()
}

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve SERVICE",
		Short: "Run one service until SIGTERM; every flag can also be set as GOLDEN_<FLAG>",
		// Without this cobra answers an unknown service with help and exit 0.
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(errors.New("name the service to run: auth, user or gateway"))
			}
			return usageError(fmt.Errorf("unknown service %q: choose auth, user or gateway", args[0]))
		},
	}
	authCfg, userCfg, gwCfg := auth.DefaultConfig(), user.DefaultConfig(), gateway.DefaultConfig()
	cmd.AddCommand(
		serviceCmd("auth", "Issue and rotate tokens", authCfg.RegisterFlags, func() (builtService, error) { return auth.New(authCfg) }),
		serviceCmd("user", "Manage user accounts (privileged)", userCfg.RegisterFlags, func() (builtService, error) { return user.New(userCfg) }),
		serviceCmd("gateway", "Serve the HTTP/JSON API", gwCfg.RegisterFlags, func() (builtService, error) { return gateway.New(gwCfg) }),
	)
	return cmd
}

func serviceCmd(name, short string, register func(*pflag.FlagSet), build func() (builtService, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			svc, err := build()
			if err != nil {
				return err
			}
			return svc.Run(cmd.Context())
		},
	}
	register(cmd.Flags())
	cmd.SetUsageFunc(groupedUsage)
	return cmd
}
