package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/golden-stack/golden/internal/authproxy"
	"github.com/golden-stack/golden/observability/config"
)

// envNamePattern is what an environment variable name may be here.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// fileFromVariable is one FILE=VARIABLE pair of `golden web-config`.
type fileFromVariable struct {
	file, variable, value string
}

// parseFileVariables reads FILE=VARIABLE pairs, looks each variable up, and
// reports every bad pair against flag, naming variables, never values.
func parseFileVariables(flag string, pairs []string) ([]fileFromVariable, []error) {
	var out []fileFromVariable
	var errs []error
	for _, p := range pairs {
		file, variable, ok := strings.Cut(p, "=")
		switch {
		case !ok || file == "" || !envNamePattern.MatchString(variable):
			errs = append(errs, config.SettingError(flag, fmt.Errorf("%q is not FILE=VARIABLE", p)))
			continue
		case os.Getenv(variable) == "":
			errs = append(errs, config.SettingError(flag, fmt.Errorf("%s is not set or empty (the password for %s)", variable, file)))
			continue
		}
		out = append(out, fileFromVariable{file: file, variable: variable, value: os.Getenv(variable)})
	}
	return out, errs
}

// newWebConfigCmd returns "golden web-config".
func newWebConfigCmd() *cobra.Command {
	var (
		user          = "admin"
		webConfigs    []string
		passwordFiles []string
	)
	cmd := &cobra.Command{
		Use:   "web-config",
		Short: "Write Prometheus's and Alertmanager's sign-in (web config with a bcrypt hash) from passwords in the environment",
		Long: `Write the files that put a sign-in in front of Prometheus's and Alertmanager's
web pages and APIs, from passwords held in environment variables (never in
flags, which any process listing shows):

  --web-config FILE=VARIABLE     a web configuration (their --web.config.file)
                                 letting --user in with the password in VARIABLE,
                                 stored as a bcrypt hash
  --password-file FILE=VARIABLE  the password itself, for a client that reads
                                 it from a file (Prometheus's basic_auth
                                 password_file when it scrapes or alerts)

docker-compose.yml's web-auth one-shot runs it with PROMETHEUS_PASSWORD and
ALERTMANAGER_PASSWORD from .env. A web configuration is rewritten only when
its hash no longer matches the password (a bcrypt hash differs on every run),
so a rerun changes nothing and a new password in .env takes effect at the
next start. Files are mode 0644: the servers run as another user than
golden. Nothing secret is printed.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			webs, errs := parseFileVariables("web-config", webConfigs)
			plains, plainErrs := parseFileVariables("password-file", passwordFiles)
			errs = append(errs, plainErrs...)
			if user == "" || strings.ContainsAny(user, ": \t\r\n") {
				errs = append(errs, config.SettingError("user", fmt.Errorf("%q is not a user name", user)))
			}
			if len(webConfigs)+len(passwordFiles) == 0 {
				errs = append(errs, config.SettingError("web-config", errors.New("nothing to write: give --web-config or --password-file")))
			}
			if err := errors.Join(errs...); err != nil {
				return usageError(err)
			}
			out := cmd.OutOrStdout()
			for _, w := range webs {
				state, err := writeWebConfig(w.file, user, w.value)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s: sign-in for %q with the password in %s (%s)\n", w.file, user, w.variable, state)
			}
			for _, p := range plains {
				if err := writeFileIfChanged(p.file, []byte(p.value+"\n"), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s: the password in %s\n", p.file, p.variable)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&user, "user", user, "the user name of the sign-in")
	f.StringArrayVar(&webConfigs, "web-config", nil, "FILE=VARIABLE: write a web configuration letting --user in with the password in VARIABLE (repeatable)")
	f.StringArrayVar(&passwordFiles, "password-file", nil, "FILE=VARIABLE: write the password in VARIABLE to FILE (repeatable)")
	return cmd
}

// writeWebConfig writes file's sign-in for user with password, unless the
// file already lets exactly that user in with that password. It says which.
func writeWebConfig(file, user, password string) (string, error) {
	if have, err := authproxy.LoadUsers(file); err == nil && len(have) == 1 &&
		bcrypt.CompareHashAndPassword([]byte(have[user]), []byte(password)) == nil {
		return "unchanged", nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("web-config: %w", err)
	}
	body, err := yaml.Marshal(authproxy.WebConfig{BasicAuthUsers: map[string]string{user: string(hash)}})
	if err != nil {
		return "", fmt.Errorf("web-config: %w", err)
	}
	header := "# Written by `golden web-config`: who may sign in (bcrypt hashes).\n"
	if err := writeFileIfChanged(file, append([]byte(header), body...), 0o644); err != nil {
		return "", err
	}
	return "written", nil
}
