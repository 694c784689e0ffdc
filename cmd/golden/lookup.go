package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/graylog"
	"github.com/golden-stack/golden/internal/lookup"
	"github.com/golden-stack/golden/observability/config"
)

// Exit codes beyond 0 (success) and 1 (any other failure). main reads them
// from the error with errors.As(err, &interface{ ExitCode() int }).
const (
	// exitUsage: bad flags, arguments or settings, or an invalid request ID.
	exitUsage = 2
	// exitNotFound: golden lookup asked every backend and none had anything.
	exitNotFound = 3
	// exitBackend: golden lookup could not ask a backend; the error names it.
	exitBackend = 4
)

// exitError is an error that asks main to exit with code instead of 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode returns the process exit status main should use.
func (e *exitError) ExitCode() int { return e.code }

// usageError marks err as a usage error (exit code 2).
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// usageArgs wraps a cobra argument check so its failure exits with code 2.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError(err)
		}
		return nil
	}
}

// newLookupCmd returns "golden lookup REQUEST-ID".
func newLookupCmd() *cobra.Command {
	gl := graylog.DefaultConfig()
	lc := lookup.DefaultConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lookup REQUEST-ID",
		Short: "Show one request's logs (Graylog) and spans (Jaeger) as one timeline",
		Long: `Find everything recorded about one request, by the ID the gateway returns in
X-Request-ID: its log lines in Graylog (field request_id) and the spans of the
traces those lines name in Jaeger, printed as one table ordered by time, with
links to the Graylog search and each trace in Jaeger. When the logs name no
trace, Jaeger is searched for spans tagged --jaeger-tag=REQUEST-ID instead.
--json prints one JSON document instead of the table.

Exit status:
  0  found log lines or spans
  1  any other failure
  2  invalid usage, settings or request ID (nothing was asked of any backend)
  3  not found: every backend answered, none had anything for the ID
  4  a backend failed (the message says which and why); what the other
     backend found is still printed

Every flag can also be set as GOLDEN_<FLAG>; prefer GOLDEN_GRAYLOG_PASSWORD or
--graylog-password-file to --graylog-password, which shows in the process list.`,
		Args: usageArgs(func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("name one request ID: golden lookup REQUEST-ID (the X-Request-ID of a response), got %d arguments", len(args))
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The ID first: its error is the one that matters when both are wrong.
			if err := lookup.CheckRequestID(args[0]); err != nil {
				return usageError(err)
			}
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			var v config.Validator
			gl.Validate(&v)
			lc.Validate(&v)
			if err := v.Err(); err != nil {
				return usageError(err)
			}
			logs, err := gl.NewClient(graylog.WithTimeout(lc.Timeout))
			if err != nil {
				return usageError(err)
			}
			finder, err := lc.NewFinder(logs)
			if err != nil {
				return usageError(err)
			}

			res, err := finder.Find(cmd.Context(), args[0])
			if errors.Is(err, lookup.ErrInvalidRequestID) {
				return usageError(err)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				err = lookup.WriteJSON(out, res)
			case res.Found:
				err = lookup.WriteText(out, res)
			}
			if err != nil {
				return err
			}
			if berr := res.Err(); berr != nil {
				return &exitError{code: exitBackend, err: fmt.Errorf("lookup incomplete: %w", berr)}
			}
			if !res.Found {
				return &exitError{code: exitNotFound, err: fmt.Errorf("no log lines or spans for request %s in the last %s (Graylog: %s)",
					res.RequestID, lc.Range, res.GraylogURL)}
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	gl.RegisterFlags(f)
	lc.RegisterFlags(f)
	f.BoolVar(&asJSON, "json", false, "print one JSON document instead of a table")
	return cmd
}
