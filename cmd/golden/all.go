package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/security"
	"github.com/golden-stack/golden/observability/service"
	"github.com/golden-stack/golden/services/auth"
	"github.com/golden-stack/golden/services/gateway"
	"github.com/golden-stack/golden/services/user"
)

// allOptions are the settings of `golden all`.
type allOptions struct {
	dir                          string
	httpAddr, authAddr, userAddr string
	gatewayAdmin, authAdmin      string
	userAdmin                    string
	// shared are the kit's settings the three services share: logging
	// (stdout and GELF), tracing, Consul discovery, fault injection and
	// debug pages, with the flags and GOLDEN_* variables of `golden serve`.
	shared service.Settings
}

func newAllCmd() *cobra.Command {
	o := defaultAllOptions()
	cmd := &cobra.Command{
		Use:   "all",
		Short: "Run auth, user and gateway in one process on loopback, creating certificates on first run",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			services, err := o.prepare(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			return services.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	o.registerFlags(fs)
	o.shared.Tracing.RegisterFlags(fs)
	o.shared.Discovery.RegisterFlags(fs)
	cmd.SetUsageFunc(groupedUsage)
	return cmd
}

func defaultAllOptions() allOptions {
	o := allOptions{
		dir:          allDefaultDir,
		httpAddr:     "127.0.0.1:8080",
		authAddr:     "127.0.0.1:9001",
		userAddr:     "127.0.0.1:9002",
		gatewayAdmin: "127.0.0.1:9100",
		authAdmin:    "127.0.0.1:9101",
		userAdmin:    "127.0.0.1:9102",
		shared:       service.Defaults("all", ""),
	}
	o.shared.Logging.Format = "text"
	// The services listen on loopback: that is where Consul and the
	// callers reach them.
	o.shared.Discovery.AdvertiseAddr = "127.0.0.1"
	return o
}

// registerFlags adds the flags `golden all` and `golden dev` share: the
// folder, every address, logging, faults and debug pages. Tracing and
// Consul are added by `golden all` only: `golden dev` wires them itself.
func (o *allOptions) registerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", o.dir, "folder for certificates and keys (created on first run)")
	fs.StringVar(&o.httpAddr, "http-addr", o.httpAddr, "gateway HTTP/JSON API address")
	fs.StringVar(&o.authAddr, "auth-addr", o.authAddr, "auth service gRPC address")
	fs.StringVar(&o.userAddr, "user-addr", o.userAddr, "user service gRPC address")
	fs.StringVar(&o.gatewayAdmin, "gateway-admin-addr", o.gatewayAdmin, "gateway admin HTTP address")
	fs.StringVar(&o.authAdmin, "auth-admin-addr", o.authAdmin, "auth admin HTTP address")
	fs.StringVar(&o.userAdmin, "user-admin-addr", o.userAdmin, "user admin HTTP address")
	o.shared.Logging.RegisterFlags(fs)
	o.shared.Faults.RegisterFlags(fs)
	fs.BoolVar(&o.shared.DebugPages, "debug-pages", o.shared.DebugPages, "serve /debug/requests, /debug/events and /debug/pprof on the admin ports (to loopback clients only) and the channelz gRPC service")
}

// allDefaultDir is where `golden all` keeps its certificates (in certs/).
const allDefaultDir = ".golden"

// allServices are the three services' checked settings, ready to run.
type allServices struct {
	user    user.Config
	auth    auth.Config
	gateway gateway.Config
}

// listenAddr is an address a service listens on, with the flag that set it.
type listenAddr struct{ flag, addr string }

// listenAddrs are the addresses the services listen on, each with its flag.
func (o allOptions) listenAddrs() []listenAddr {
	return []listenAddr{
		{"http-addr", o.httpAddr}, {"auth-addr", o.authAddr}, {"user-addr", o.userAddr},
		{"gateway-admin-addr", o.gatewayAdmin}, {"auth-admin-addr", o.authAdmin}, {"user-admin-addr", o.userAdmin},
	}
}

// prepare checks every setting, reporting every bad value at once, and
// creates or renews the certificates (reported on w).
func (o allOptions) prepare(w io.Writer) (*allServices, error) {
	var v config.Validator
	v.Check(o.dir != "", "dir", "must be set")
	type listen struct{ flag, host, port string }
	var listens []listen
	for _, a := range o.listenAddrs() {
		v.Addr(a.flag, a.addr)
		host, port, err := net.SplitHostPort(a.addr)
		if err != nil || port == "0" {
			continue // reported above, or a port the kernel picks
		}
		// Two services on one port: the second would fail only after the
		// first (and, under golden dev, every backend) had started.
		for _, l := range listens {
			if l.port == port && (l.host == host || allInterfaces(l.host) || allInterfaces(host)) {
				v.Check(false, a.flag, "port %s is also --%s's", port, l.flag)
			}
		}
		listens = append(listens, listen{a.flag, host, port})
	}
	if o.dir == "" {
		return nil, v.Err()
	}

	certs := filepath.Join(o.dir, "certs")
	report, err := pki.Ensure(certs, pki.EnsureOptions{Names: []string{"auth", "user", "gateway"}})
	if err != nil {
		return nil, fmt.Errorf("certificates in %s: %w", certs, err)
	}
	if len(report.Created)+len(report.Renewed) > 0 {
		fmt.Fprintf(w, "certificates in %s: created %v, renewed %v\n", certs, report.Created, report.Renewed)
	}
	settings := func(name, adminAddr string) service.Settings {
		s := o.shared
		s.Name, s.AdminAddr = name, adminAddr
		s.TLS = security.DefaultFiles(certs, name)
		return s
	}
	userCfg := user.DefaultConfig()
	userCfg.Settings = settings("user", o.userAdmin)
	userCfg.GRPC.Addr = o.userAddr
	userCfg.Token.PublicKey = filepath.Join(certs, "token-signing.pub")
	authCfg := auth.DefaultConfig()
	authCfg.Settings = settings("auth", o.authAdmin)
	authCfg.GRPC.Addr = o.authAddr
	authCfg.UserAddr = o.userAddr
	authCfg.Token.PrivateKey = filepath.Join(certs, "token-signing.key")
	gwCfg := gateway.DefaultConfig()
	gwCfg.Settings = settings("gateway", o.gatewayAdmin)
	gwCfg.HTTPAddr = o.httpAddr
	gwCfg.AuthAddr, gwCfg.UserAddr = o.authAddr, o.userAddr

	// Every bad value at once, each named by this command's own flag: the
	// settings the services share are checked three times but said once.
	invalid := []error{v.Err()}
	invalid = append(invalid, config.Rename(userCfg.Validate(), allFlags("user", "user-addr")))
	invalid = append(invalid, config.Rename(authCfg.Validate(), allFlags("auth", "auth-addr")))
	invalid = append(invalid, config.Rename(gwCfg.Validate(), allFlags("gateway", "http-addr")))
	if err := uniqueInvalid(invalid); err != nil {
		return nil, err
	}
	return &allServices{user: userCfg, auth: authCfg, gateway: gwCfg}, nil
}

// run builds and runs the services until ctx ends, then drains them.
func (a *allServices) run(ctx context.Context, w io.Writer) error {
	userCfg, authCfg, gwCfg := a.user, a.auth, a.gateway

	// Each service is built after the one it calls, so that the caller is
	// given the address the callee really bound (port 0 works). A failure
	// closes the ones already built and names this command's own flags.
	var started []builtService
	fail := func(name string, err error, flags map[string]string) error {
		for _, svc := range started {
			svc.Close()
		}
		return fmt.Errorf("%s: %w", name, config.Rename(err, flags))
	}
	userSvc, err := user.New(userCfg)
	if err != nil {
		return fail("user", err, allFlags("user", "user-addr"))
	}
	started = append(started, userSvc)

	authCfg.UserAddr = userSvc.GRPCAddr()
	authSvc, err := auth.New(authCfg)
	if err != nil {
		return fail("auth", err, allFlags("auth", "auth-addr"))
	}
	started = append(started, authSvc)

	gwCfg.AuthAddr = authSvc.GRPCAddr()
	gwCfg.UserAddr = userSvc.GRPCAddr()
	gwSvc, err := gateway.New(gwCfg)
	if err != nil {
		return fail("gateway", err, allFlags("gateway", "http-addr"))
	}

	printWelcome(w, "http://"+gwSvc.HTTPAddr())

	g, ctx := errgroup.WithContext(ctx)
	for _, svc := range []builtService{userSvc, authSvc, gwSvc} {
		g.Go(func() error { return svc.Run(ctx) })
	}
	return g.Wait()
}

// printWelcome prints curl lines that work as printed against url.
func printWelcome(w io.Writer, url string) {
	fmt.Fprintf(w, `
golden is running: gateway %[1]s (Ctrl-C stops it)

  # sign up
  curl -s -X POST %[1]s/v1/users -H 'Content-Type: application/json' \
    -d '{"username":"alice","email":"alice@example.com","password":"correct-horse"}'

  # log in and keep the access token
  TOKEN=$(curl -s -X POST %[1]s/v1/login -H 'Content-Type: application/json' \
    -d '{"username":"alice","password":"correct-horse"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

  # list users with the token; -i shows the X-Request-ID header
  curl -si %[1]s/v1/users -H "Authorization: Bearer $TOKEN"

`, url)
}

// allInterfaces reports whether a listen address's host means every
// interface.
func allInterfaces(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// uniqueInvalid joins the settings errors of errs (nil ones skipped) into
// one *config.Invalid, each message once, or returns nil.
func uniqueInvalid(errs []error) error {
	var out []error
	seen := map[string]bool{}
	var add func(error)
	add = func(err error) {
		if err == nil {
			return
		}
		if invalid, ok := err.(*config.Invalid); ok { //nolint:errorlint // the top only: its members are what is listed
			for _, e := range invalid.Errs {
				add(e)
			}
			return
		}
		if !seen[err.Error()] {
			seen[err.Error()] = true
			out = append(out, err)
		}
	}
	for _, err := range errs {
		add(err)
	}
	if len(out) == 0 {
		return nil
	}
	return &config.Invalid{Errs: out}
}

// allFlags maps the settings of the service name, as its own errors name
// them, to the flags of `golden all` that set them: its admin and listen
// addresses (listen is the flag of grpc-addr or, for the gateway,
// http-addr), and --dir for the certificates and keys made there.
func allFlags(name, listen string) map[string]string {
	return map[string]string{
		"admin-addr":        name + "-admin-addr",
		"grpc-addr":         listen,
		"http-addr":         listen,
		"tls-ca":            "dir",
		"tls-cert":          "dir",
		"tls-key":           "dir",
		"token-public-key":  "dir",
		"token-private-key": "dir",
	}
}
