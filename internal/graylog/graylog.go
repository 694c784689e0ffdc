// Package graylog is a small client for the Graylog REST API (Graylog 5.x
// and 6.x): waiting for the API to come up, creating the GELF inputs golden
// logs to, and searching messages.
//
// Every request sends Accept: application/json and basic authentication
// (user and password, or an access token as "<token>:token"), every request
// other than GET carries the X-Requested-By header Graylog demands against
// CSRF, and every request has its own deadline. Failures are *Error values
// whose message says which call failed and why; credentials never appear in
// them, nor in anything else the client prints.
package graylog

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/observability/safetext"
)

const (
	// RequestedBy is the value of the X-Requested-By header sent with every
	// request other than GET; Graylog answers 400 without the header.
	RequestedBy = "golden"
	// DefaultTimeout bounds each request unless WithTimeout says otherwise.
	DefaultTimeout = 10 * time.Second

	// maxBody bounds what is read of one answer; a search for 10,000
	// messages stays far below it.
	maxBody = 64 << 20
	// snippetLen bounds how much of an unexpected body goes into an error.
	snippetLen = 200
)

// ErrAuthentication is wrapped by the *Error of every request Graylog
// answered with 401 Unauthorized.
var ErrAuthentication = errors.New("authentication failed (check --graylog-user/--graylog-password or --graylog-token)")

// ErrNotJSON is wrapped by the *Error of a successful answer whose body is
// not the JSON expected, typically a proxy's or another server's HTML page.
var ErrNotJSON = errors.New("answer is not JSON")

// Error is a failed Graylog API call.
type Error struct {
	// Method and Path name the call, e.g. "GET" and "/api/system/inputs".
	Method, Path string
	// StatusCode is the HTTP status of the answer, or 0 when none came.
	StatusCode int
	// Message says what went wrong, from Graylog's answer where it gave one.
	Message string

	base string
	err  error
}

// Error returns "graylog at BASE: METHOD PATH: [STATUS: ]MESSAGE".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graylog at %s: %s %s: ", e.base, e.Method, e.Path)
	if e.StatusCode != 0 {
		kind := ""
		if e.StatusCode >= 500 {
			kind = "server error "
		}
		fmt.Fprintf(&b, "%s%d %s: ", kind, e.StatusCode, http.StatusText(e.StatusCode))
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the cause: ErrAuthentication, ErrNotJSON,
// context.DeadlineExceeded for a request past its timeout, or the transport
// error.
func (e *Error) Unwrap() error { return e.err }

// Client calls the Graylog REST API. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	hc      *http.Client
	timeout time.Duration
	// user and pass are the basic auth credentials; a token is user with
	// pass "token". secrets lists what must never reach an error message.
	user, pass string
	secrets    []string
	pollFirst  time.Duration
	pollMax    time.Duration
	waiting    func(attempt int, err error)
}

// Option configures a Client.
type Option func(*Client)

// WithBasicAuth authenticates as user with password.
func WithBasicAuth(user, password string) Option {
	return func(c *Client) {
		c.user, c.pass = user, password
		c.secrets = append(c.secrets, password)
	}
}

// WithToken authenticates with a Graylog access token, sent as the basic
// auth user "<token>" with password "token".
func WithToken(token string) Option {
	return func(c *Client) {
		c.user, c.pass = token, "token"
		c.secrets = append(c.secrets, token)
	}
}

// WithTimeout bounds each request, from sending it to reading the whole
// answer (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// WithPollInterval sets WaitReady's pause after the first failed attempt
// and the longest pause it grows to (defaults 500ms and 10s).
func WithPollInterval(first, max time.Duration) Option {
	return func(c *Client) { c.pollFirst, c.pollMax = first, max }
}

// WithWaitReport has WaitReady call fn after each failed attempt, with the
// attempt's number and error, so that a command can say what it waits for.
func WithWaitReport(fn func(attempt int, err error)) Option {
	return func(c *Client) { c.waiting = fn }
}

// New returns a client of the Graylog server at baseURL, for example
// "http://localhost:9000" or "https://logs.example.com/graylog" behind a
// proxy. The URL must not carry credentials: pass them as options so they
// stay out of messages.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := baseurl.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:      u,
		hc:        &http.Client{},
		timeout:   DefaultTimeout,
		pollFirst: 500 * time.Millisecond,
		pollMax:   10 * time.Second,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("graylog: timeout must be greater than 0, got %s", c.timeout)
	}
	if c.pollFirst <= 0 || c.pollMax < c.pollFirst {
		return nil, fmt.Errorf("graylog: poll interval %s..%s: first must be greater than 0 and not above max", c.pollFirst, c.pollMax)
	}
	if c.user != "" || c.pass != "" {
		c.secrets = append(c.secrets, base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.pass)))
	}
	return c, nil
}

// URL returns the server's base URL, the one the web interface lives at.
func (c *Client) URL() string { return c.base.String() }

// String describes the client without its credentials, so a client that
// ends up in a log line leaks nothing.
func (c *Client) String() string { return "graylog.Client(" + c.base.String() + ")" }

// endpoint returns the URL of path (which starts with "/") below the base.
func (c *Client) endpoint(path string, query url.Values) *url.URL {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	return &u
}

// do sends one request and decodes a 2xx JSON answer into out (when not
// nil). Every failure comes back as *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	fail := func(status int, cause error, msg string) error {
		return &Error{Method: method, Path: path, StatusCode: status, Message: c.redact(msg), base: c.base.String(), err: cause}
	}

	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fail(0, err, "encoding the request: "+err.Error())
		}
		body = bytes.NewReader(b)
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, c.endpoint(path, query).String(), body)
	if err != nil {
		return fail(0, err, err.Error())
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "golden")
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("X-Requested-By", RequestedBy)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" || c.pass != "" {
		req.SetBasicAuth(c.user, c.pass)
	}

	resp, err := c.hc.Do(req)
	var raw []byte
	if err == nil {
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		resp.Body.Close()
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			// The caller gave up (Ctrl-C, WaitReady's bound): say so, not "timeout".
			return fail(0, ctx.Err(), "cancelled: "+ctx.Err().Error())
		case errors.Is(err, context.DeadlineExceeded) || rctx.Err() != nil:
			return fail(0, context.DeadlineExceeded, fmt.Sprintf("no answer within %s (timeout)", c.timeout))
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats method and URL
		}
		return fail(0, err, err.Error())
	}
	if len(raw) > maxBody {
		return fail(resp.StatusCode, nil, fmt.Sprintf("answer larger than %d MiB", maxBody>>20))
	}

	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized:
		return fail(code, ErrAuthentication, ErrAuthentication.Error())
	case code < 200 || code > 299:
		return fail(code, nil, apiMessage(raw))
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		ct := resp.Header.Get("Content-Type")
		if mt, _, perr := mime.ParseMediaType(ct); perr == nil && mt != "application/json" {
			return fail(0, ErrNotJSON, fmt.Sprintf("%d %s but the answer is not JSON (Content-Type %s): %s",
				resp.StatusCode, http.StatusText(resp.StatusCode), mt, snippet(raw)))
		}
		return fail(0, ErrNotJSON, fmt.Sprintf("%d %s but the answer is not the JSON expected (%v): %s",
			resp.StatusCode, http.StatusText(resp.StatusCode), err, snippet(raw)))
	}
	return nil
}

// apiMessage extracts Graylog's explanation from an error answer:
// {"type":"ApiError","message":"..."}, or a validation error's field list;
// else the start of the body.
func apiMessage(raw []byte) string {
	var e struct {
		Message string              `json:"message"`
		Errors  map[string][]string `json:"errors"`
	}
	if json.Unmarshal(raw, &e) == nil {
		if e.Message != "" {
			return safetext.Line(e.Message, 1000)
		}
		if len(e.Errors) > 0 {
			var parts []string
			for field, msgs := range e.Errors {
				parts = append(parts, field+": "+strings.Join(msgs, ", "))
			}
			return safetext.Line(strings.Join(parts, "; "), 1000)
		}
	}
	if s := snippet(raw); s != "" {
		return s
	}
	return "empty answer"
}

// snippet returns the start of an unexpected body, fit for one error line.
func snippet(raw []byte) string {
	s := safetext.Line(string(raw), snippetLen)
	if s == "" {
		return "(empty body)"
	}
	return s
}

// redact removes the credentials from msg, in case a server echoes them.
func (c *Client) redact(msg string) string {
	for _, s := range c.secrets {
		// Very short secrets would mangle every message and are guessable anyway.
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
