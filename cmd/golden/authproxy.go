package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/authproxy"
	"github.com/golden-stack/golden/observability/config"
)

// newAuthProxyCmd returns "golden authproxy".
func newAuthProxyCmd() *cobra.Command {
	var (
		webConfig string
		routes    []string
		adminAddr string
		drain     = 5 * time.Second
	)
	cmd := &cobra.Command{
		Use:   "authproxy",
		Short: "Put a sign-in (basic auth, bcrypt) in front of servers that have none",
		Long: `Forward requests that carry a good sign-in (HTTP basic auth, checked against
the bcrypt hashes of a web configuration written by golden web-config) to an
upstream, and answer 401 to the rest. Each --proxy LISTEN=UPSTREAM listens on
LISTEN for HTTP/1.1 and HTTP/2 without TLS; an http:// upstream gets
HTTP/1.1, an h2c:// upstream HTTP/2 without TLS, as a gRPC server needs
(clients send the sign-in as the "authorization: Basic ..." metadata). The
Authorization header is not forwarded.

docker-compose.yml runs it in front of Jaeger, which has no sign-in of its
own: the web interface (16686) and the query API v3 (16685).
--admin-addr serves /livez, without sign-in, for health checks.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), nil); err != nil {
				return usageError(err)
			}
			var v config.Validator
			v.FileExists("web-config", webConfig)
			v.Check(len(routes) > 0, "proxy", "give at least one LISTEN=UPSTREAM")
			type route struct {
				listen   string
				upstream *url.URL
			}
			var rs []route
			for _, r := range routes {
				listen, up, ok := strings.Cut(r, "=")
				u, err := url.Parse(up)
				switch {
				case !ok || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "h2c"):
					v.Check(false, "proxy", "%q is not LISTEN=UPSTREAM with an http:// or h2c:// upstream", r)
				default:
					v.Addr("proxy", listen)
					rs = append(rs, route{listen, u})
				}
			}
			if adminAddr != "" {
				v.Addr("admin-addr", adminAddr)
			}
			v.Positive("drain", drain)
			if err := v.Err(); err != nil {
				return usageError(err)
			}
			users, err := authproxy.LoadUsers(webConfig)
			if err != nil {
				return usageError(config.SettingError("web-config", err))
			}

			var servers []*http.Server
			var listeners []net.Listener
			listen := func(addr, what string, h http.Handler) error {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
				srv.Protocols.SetHTTP1(true)
				srv.Protocols.SetUnencryptedHTTP2(true)
				servers, listeners = append(servers, srv), append(listeners, l)
				return nil
			}
			defer func() {
				for _, l := range listeners {
					l.Close()
				}
			}()
			out := cmd.OutOrStdout()
			for _, r := range rs {
				p, err := authproxy.New(r.upstream, users)
				if err != nil {
					return usageError(config.SettingError("proxy", err))
				}
				if err := listen(r.listen, config.Setting("proxy"), p); err != nil {
					return err
				}
				fmt.Fprintf(out, "authproxy: %s -> %s, sign-in required\n", listeners[len(listeners)-1].Addr(), r.upstream.Redacted())
			}
			if adminAddr != "" {
				mux := http.NewServeMux()
				mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
				if err := listen(adminAddr, config.Setting("admin-addr"), mux); err != nil {
					return err
				}
				fmt.Fprintf(out, "authproxy: %s serves /livez\n", listeners[len(listeners)-1].Addr())
			}

			errc := make(chan error, len(servers))
			for i, srv := range servers {
				go func() { errc <- srv.Serve(listeners[i]) }()
			}
			ctx := cmd.Context()
			select {
			case <-ctx.Done():
			case err := <-errc:
				return err
			}
			stop, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			var errs []error
			for _, srv := range servers {
				if err := srv.Shutdown(stop); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&webConfig, "web-config", webConfig, "web configuration with basic_auth_users (golden web-config writes one)")
	f.StringArrayVar(&routes, "proxy", nil, "LISTEN=UPSTREAM: listen on LISTEN, forward to UPSTREAM (http://host:port, or h2c://host:port for gRPC); repeatable")
	f.StringVar(&adminAddr, "admin-addr", adminAddr, "address of /livez, without sign-in (empty: none)")
	f.DurationVar(&drain, "drain", drain, "how long requests in flight may take to finish after SIGTERM")
	return cmd
}
