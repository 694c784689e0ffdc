package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/pki"
)

// certsDirEnv overrides the default certificate directory when --dir is not given.
const certsDirEnv = "GOLDEN_CERTS_DIR"

// newCertsCmd returns "golden certs", which manages the certificate directory
// (root CA, per-identity certificates, token signing key) used for mutual TLS.
func newCertsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Manage the mutual TLS certificate directory",
		Long: `Manage the certificate directory shared by golden services: a root CA
(ca.crt, ca.key), one certificate per service or client (<name>.crt, <name>.key)
carrying the identity spiffe://golden/<name>, and the auth service's token
signing key pair (token-signing.key, token-signing.pub).

The directory defaults to "certs", or to $` + certsDirEnv + ` when set.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "certs", "certificate directory; $"+certsDirEnv+" overrides the default")

	cmd.AddCommand(
		newCertsInitCmd(&dir),
		newCertsIssueCmd(&dir),
		newCertsEnsureCmd(&dir),
		newCertsInspectCmd(&dir),
	)
	return cmd
}

// certsResolveDir returns the directory from --dir, falling back to
// $GOLDEN_CERTS_DIR when the flag was not set on the command line.
func certsResolveDir(cmd *cobra.Command, flagValue string) (string, error) {
	if !cmd.Flags().Changed("dir") {
		if v, ok := os.LookupEnv(certsDirEnv); ok {
			if strings.TrimSpace(v) == "" {
				return "", fmt.Errorf("$%s is set but empty: unset it or name a directory", certsDirEnv)
			}
			return v, nil
		}
	}
	if strings.TrimSpace(flagValue) == "" {
		return "", errors.New(`--dir "": must name a directory`)
	}
	return flagValue, nil
}

// certsParseNames validates a comma-separated name list flag and drops duplicates.
func certsParseNames(flag string, values []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, v := range values {
		if err := certsCheckName(flag, v); err != nil {
			return nil, err
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// certsCheckName validates one identity name and names flag in the error.
func certsCheckName(flag, name string) error {
	err := pki.ValidateName(name)
	if err == nil {
		return nil
	}
	var ne *pki.NameError
	if errors.As(err, &ne) {
		return fmt.Errorf("--%s %q: %s", flag, name, ne.Reason)
	}
	return fmt.Errorf("--%s %q: %w", flag, name, err)
}

func certsCheckValidity(flag string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--%s %v: must be positive", flag, d)
	}
	return nil
}

// certsLoadCA loads the CA, pointing at "golden certs init" when it is missing.
func certsLoadCA(dir string) (*pki.Authority, error) {
	ca, err := pki.LoadCA(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no CA in %s (run \"golden certs init\" or \"golden certs ensure\" first): %w", dir, err)
	}
	return ca, err
}

func newCertsInitCmd(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a new root CA (never replaces an existing one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := certsResolveDir(cmd, *dir)
			if err != nil {
				return err
			}
			ca, err := pki.InitCA(d, pki.CAOptions{})
			if err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("a CA already exists in %s; remove it deliberately to start over: %w", d, err)
				}
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "created CA %q in %s (valid until %s)\n",
				ca.Cert.Subject.CommonName, d, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
			return err
		},
	}
}

func newCertsIssueCmd(dir *string) *cobra.Command {
	var (
		name     string
		dnsNames []string
		ips      []string
		validity time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue --name NAME",
		Short: "Issue (or replace) the certificate of one service or client",
		Long: `Issue a certificate for NAME signed by the CA in the certificate directory,
writing NAME.crt and NAME.key. It serves as both server and client certificate,
so it works for services (auth, user, gateway) and for plain clients such as
prometheus. NAME and "localhost", 127.0.0.1 and ::1 are always in the SANs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := certsResolveDir(cmd, *dir)
			if err != nil {
				return err
			}
			if name == "" {
				return errors.New("--name: required")
			}
			if err := certsCheckName("name", name); err != nil {
				return err
			}
			for _, n := range dnsNames {
				if err := pki.ValidateDNSName(n); err != nil {
					return fmt.Errorf("--dns %q: must be a DNS name (letters, digits, '-' and '.', optionally starting with \"*.\")", n)
				}
			}
			var parsed []net.IP
			for _, s := range ips {
				ip := net.ParseIP(strings.TrimSpace(s))
				if ip == nil {
					return fmt.Errorf("--ip %q: must be an IPv4 or IPv6 address", s)
				}
				parsed = append(parsed, ip)
			}
			if err := certsCheckValidity("validity", validity); err != nil {
				return err
			}

			ca, err := certsLoadCA(d)
			if err != nil {
				return err
			}
			cert, err := ca.Issue(d, pki.Request{Name: name, DNSNames: dnsNames, IPs: parsed, Validity: validity})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "issued %s.crt for %s (valid until %s)\n",
				name, pki.IdentityURI(name), cert.NotAfter.UTC().Format(time.RFC3339))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "identity name: lowercase letters, digits and '-', starting with a letter")
	f.StringSliceVar(&dnsNames, "dns", nil, "extra DNS names (comma-separated)")
	f.StringSliceVar(&ips, "ip", nil, "extra IP addresses (comma-separated)")
	f.DurationVar(&validity, "validity", pki.DefaultValidity, "certificate lifetime")
	return cmd
}

func newCertsEnsureCmd(dir *string) *cobra.Command {
	var (
		services    []string
		clients     []string
		renewBefore time.Duration
		validity    time.Duration
		export      string
		signingTo   []string
	)
	cmd := &cobra.Command{
		Use:   "ensure --services NAME,... [--clients NAME,...] [--export DIR]",
		Short: "Idempotently create or renew the CA, signing key and certificates",
		Long: `Bring the certificate directory up to date; safe to run on every start, for
example in an init container. Creates the CA and the token signing key pair if
missing, and issues a certificate for each service and client that is missing,
unreadable, not signed by the CA or expiring within --renew-before. Everything
else is kept unchanged. Prints one line per item: created, renewed or kept.

With --export DIR, each service then gets DIR/<service>/ holding only what it
runs with: ca.crt, its own certificate and key, token-signing.pub, and
token-signing.key for the services named by --signing-key-to. The CA key and
the other identities' keys stay in --dir, which then only this command needs
to mount. Files are rewritten only when they changed (a renewal), which the
services pick up without a restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := certsResolveDir(cmd, *dir)
			if err != nil {
				return err
			}
			svc, err := certsParseNames("services", services)
			if err != nil {
				return err
			}
			cli, err := certsParseNames("clients", clients)
			if err != nil {
				return err
			}
			if len(svc)+len(cli) == 0 {
				return errors.New("--services or --clients: name at least one identity")
			}
			if err := certsCheckValidity("validity", validity); err != nil {
				return err
			}
			if renewBefore <= 0 {
				return fmt.Errorf("--renew-before %v: must be positive", renewBefore)
			}
			if renewBefore >= validity {
				return fmt.Errorf("--renew-before %v: must be shorter than --validity %v, or every run would renew every certificate", renewBefore, validity)
			}
			signers, err := certsParseNames("signing-key-to", signingTo)
			if err != nil {
				return err
			}
			for _, n := range signers {
				if cmd.Flags().Changed("signing-key-to") && !slices.Contains(svc, n) {
					return fmt.Errorf("--signing-key-to %s: not one of --services %s", n, strings.Join(svc, ","))
				}
			}

			rep, err := pki.Ensure(d, pki.EnsureOptions{
				Names:       append(svc, cli...),
				RenewBefore: renewBefore,
				Validity:    validity,
			})
			// Report what was done even when a later step failed.
			out := cmd.OutOrStdout()
			for _, e := range rep.Created {
				fmt.Fprintf(out, "created %s\n", e)
			}
			for _, e := range rep.Renewed {
				fmt.Fprintf(out, "renewed %s (%s)\n", e, rep.Reasons[e])
			}
			for _, e := range rep.Kept {
				fmt.Fprintf(out, "kept %s\n", e)
			}
			if err != nil || export == "" {
				return err
			}
			for _, name := range svc {
				wrote, err := pki.Export(d, name, filepath.Join(export, name), pki.ExportOptions{SigningKey: slices.Contains(signers, name)})
				if len(wrote) > 0 {
					fmt.Fprintf(out, "exported %s: %s\n", name, strings.Join(wrote, " "))
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&services, "services", nil, "service names (comma-separated), e.g. auth,user,gateway")
	f.StringSliceVar(&clients, "clients", nil, "non-service client names (comma-separated), e.g. prometheus")
	f.DurationVar(&renewBefore, "renew-before", pki.DefaultRenewBefore, "renew certificates expiring within this duration")
	f.DurationVar(&validity, "validity", pki.DefaultValidity, "lifetime of newly issued certificates")
	f.StringVar(&export, "export", "", "also copy each service's own files into DIR/<service>/ (never the CA key)")
	f.StringSliceVar(&signingTo, "signing-key-to", []string{"auth"}, "services whose export includes the token signing private key")
	return cmd
}

func newCertsInspectCmd(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect",
		Short: "List the certificates in the certificate directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := certsResolveDir(cmd, *dir)
			if err != nil {
				return err
			}
			if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no certificate directory %s: `golden certs ensure --dir %s --services auth,user,gateway` creates one; `golden all` keeps its own in %s (--dir %[3]s)",
					d, d, filepath.Join(allDefaultDir, "certs"))
			}
			infos, err := pki.Inspect(d)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(infos) == 0 {
				_, err := fmt.Fprintf(out, "no certificates in %s\n", d)
				return err
			}
			now := time.Now()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILE\tSUBJECT\tIDENTITY\tNOT AFTER\tDAYS LEFT\tCA")
			for _, in := range infos {
				identity := "-"
				if len(in.URIs) > 0 {
					identity = strings.Join(in.URIs, ",")
				}
				days := "expired"
				if left := in.NotAfter.Sub(now); left > 0 {
					days = fmt.Sprint(int(left / (24 * time.Hour)))
				}
				ca := "no"
				if in.IsCA {
					ca = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.File, in.Subject, identity,
					in.NotAfter.UTC().Format(time.RFC3339), days, ca)
			}
			return tw.Flush()
		},
	}
}
