package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
)

// probeTimeout bounds one probe: connecting, the request and reading the
// answer. Container healthchecks run it every few seconds; a service that
// takes longer than this to say it is ready is not.
const probeTimeout = 2 * time.Second

// probeBodyLimit is how much of a failing answer's body goes into the
// message: enough for /readyz to say what is not ready.
const probeBodyLimit = 200

// newProbeCmd returns "golden probe URL", a health probe for containers
// whose image has no shell and no curl: it exits 0 when a GET of URL answers
// 2xx within probeTimeout, and non-zero with a message otherwise.
func newProbeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "probe URL",
		Short: "Exit 0 when a GET of URL answers 2xx (a container healthcheck)",
		Long: `GET URL once, with a ` + probeTimeout.String() + ` timeout and no proxy, and exit 0 when it
answers 2xx. Any other status, or no answer, prints why and exits 1; a bad
URL exits 2. For container healthchecks of images without a shell or curl:

  healthcheck:
    test: ["CMD", "/golden", "probe", "http://127.0.0.1:9100/readyz"]`,
		Args:          usageArgs(cobra.ExactArgs(1)),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := parseProbeURL(args[0])
			if err != nil {
				return usageError(err)
			}
			status, err := probe(cmd.Context(), u)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", u.Redacted(), status)
			return nil
		},
	}
}

// parseProbeURL accepts absolute http and https URLs only.
func parseProbeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, credentials included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("probe: invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("probe: URL %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("probe: URL %s: has no host", u.Redacted())
	}
	return u, nil
}

// probe GETs u and returns its status line when it is 2xx.
func probe(ctx context.Context, u *url.URL) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("probe %s: %w", u.Redacted(), err)
	}
	req.Header.Set("User-Agent", "golden-probe")
	// No proxy: a probe checks this container's own port, and the proxy
	// variables meant for outgoing traffic must not reroute it.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error quotes the full URL; say it once, redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("probe %s: no answer within %s", u.Redacted(), probeTimeout)
		}
		return "", fmt.Errorf("probe %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, probeBodyLimit))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("probe %s: %s", u.Redacted(), resp.Status)
		if s := printable(body); s != "" {
			msg += ": " + s
		}
		return "", errors.New(msg)
	}
	return resp.Status, nil
}

// printable returns b on one line, without control characters, so that an
// answer cannot garble the healthcheck log.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, string(b))
	return strings.TrimSpace(s)
}
