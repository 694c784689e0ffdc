package main

import (
	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/loadgen"
	"github.com/golden-stack/golden/observability/config"
)

// newLoadgenCmd returns "golden loadgen".
func newLoadgenCmd() *cobra.Command {
	cfg := loadgen.DefaultConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "loadgen",
		Short: "Send a steady, realistic mix of requests to the gateway and summarize the answers",
		Long: `Send requests to the gateway's HTTP API at --rate per second (an open-loop
schedule: a request due while --concurrency are in flight is dropped and
counted, not queued) until --duration has passed, --max-requests have been
sent, or SIGINT/SIGTERM; then wait for those in flight and print a summary.

The mix (--mix, relative weights; default signup=10,login=15,refresh=10,
get=40,list=15,delete=3,fault=7): sign-ups with usernames unique to the run
(lg-<run ID>-<n>), logins, refresh token rotations, reads of one's own
account, pages of the account list, deletes of one's own account, and
deliberate faults that must fail (malformed or expired-looking token: 401;
unknown ID: 404; wrong password: 401). Up to --users virtual users are kept
with their tokens. Passwords and tokens are never printed.

Every request carries a fresh X-Request-ID; the summary lists up to five
failed requests, unexpected ones first, to look up with
"golden lookup ID". Progress lines go to stderr every --report-interval; the
summary goes to stdout, as one JSON document with --json.

Exit status:
  0  the run completed, whatever the answers (failures are counted, not fatal)
  1  no request got an answer (target unreachable the whole run)
  2  invalid flags or settings

Every flag can also be set as GOLDEN_<FLAG>, e.g. GOLDEN_TARGET.`,
		Example: `  golden loadgen --rate 50 --duration 5m
  golden loadgen --target http://gateway:8080 --duration 0 --mix get=60,fault=0
  golden loadgen --max-requests 1000 --rate 200 --json`,
		Args:          usageArgs(cobra.NoArgs),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			var v config.Validator
			cfg.Validate(&v)
			if err := v.Err(); err != nil {
				return usageError(err)
			}
			g, err := loadgen.New(cfg, loadgen.WithProgress(cmd.ErrOrStderr()))
			if err != nil {
				return usageError(err)
			}
			// The summary is printed whatever happened, ErrNoResponse too.
			summary, runErr := g.Run(cmd.Context())
			if asJSON {
				err = summary.WriteJSON(cmd.OutOrStdout())
			} else {
				err = summary.WriteText(cmd.OutOrStdout())
			}
			if runErr != nil {
				return runErr
			}
			return err
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	cfg.RegisterFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as one JSON document")
	return cmd
}
