package graylog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/internal/graylog"
	"github.com/golden-stack/golden/internal/graylog/graylogtest"
	"github.com/golden-stack/golden/observability/config"
)

const (
	user     = "admin"
	password = "pw-Zq8!never-print-me"
	token    = "1n2o3p4q5r6s7t8u9v0w1x2y3z4a5b6c7d8e9f0g1h2i3j4k5l"
)

// newClient returns a client of srv authenticated as user with password.
func newClient(t *testing.T, srv *graylogtest.Server, opts ...graylog.Option) *graylog.Client {
	t.Helper()
	c, err := graylog.New(srv.URL, append([]graylog.Option{graylog.WithBasicAuth(user, password)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertNoSecret fails when s contains the password, token or an
// Authorization header built from them.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{password, token, graylogtest.BasicAuthHeader(user, password)[len("Basic "):], graylogtest.BasicAuthHeader(token, "token")[len("Basic "):]} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks a credential: %s", what, s)
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:9000", "ftp://h", "http://", "http://admin:" + password + "@h:9000", "http://h/?x=1", "http://h/#f", "http://h\x7f/"} {
		_, err := graylog.New(u)
		if err == nil {
			t.Errorf("New(%q) accepted", u)
			continue
		}
		assertNoSecret(t, "New error", err.Error())
	}
	c, err := graylog.New("https://logs.example.com/graylog/")
	if err != nil {
		t.Fatal(err)
	}
	if c.URL() != "https://logs.example.com/graylog" {
		t.Errorf("URL() = %q", c.URL())
	}
	if got := c.SearchURL(`request_id:"abc-1234"`, 24*time.Hour); got != "https://logs.example.com/graylog/search?q=request_id%3A%22abc-1234%22&rangetype=relative&from=86400" {
		t.Errorf("SearchURL = %q", got)
	}
}

func TestEnsureInputsIsIdempotent(t *testing.T) {
	srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
	c := newClient(t, srv)
	ctx := context.Background()
	specs := []graylog.InputSpec{graylog.GELFUDPInput(12201), graylog.GELFTCPInput(12201)}

	res, err := c.EnsureInputs(ctx, specs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].Created || !res[1].Created || res[0].ID == "" || res[1].ID == res[0].ID {
		t.Fatalf("first run: %+v", res)
	}
	inputs := srv.Inputs()
	if len(inputs) != 2 {
		t.Fatalf("server has %d inputs, want 2", len(inputs))
	}
	want := map[string]map[string]any{
		graylog.TitleGELFUDP: {"bind_address": "0.0.0.0", "port": 12201.0, "recv_buffer_size": 262144.0, "decompress_size_limit": 8388608.0},
		graylog.TitleGELFTCP: {"bind_address": "0.0.0.0", "port": 12201.0, "recv_buffer_size": 262144.0, "use_null_delimiter": true, "max_message_size": 2097152.0},
	}
	types := map[string]string{graylog.TitleGELFUDP: graylog.TypeGELFUDP, graylog.TitleGELFTCP: graylog.TypeGELFTCP}
	for _, in := range inputs {
		title := in["title"].(string)
		if in["type"] != types[title] || in["global"] != true {
			t.Errorf("input %q: type %v global %v", title, in["type"], in["global"])
		}
		attrs, _ := json.Marshal(in["attributes"])
		wantAttrs, _ := json.Marshal(want[title])
		if string(attrs) != string(wantAttrs) {
			t.Errorf("input %q configuration\n got %s\nwant %s", title, attrs, wantAttrs)
		}
	}

	res2, err := c.EnsureInputs(ctx, specs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res2) != 2 || res2[0].Created || res2[1].Created || res2[0].ID != res[0].ID || res2[1].ID != res[1].ID {
		t.Fatalf("second run: %+v, first %+v", res2, res)
	}
	if n := len(srv.Inputs()); n != 2 {
		t.Errorf("second run left %d inputs, want 2", n)
	}
	if n := srv.Count(http.MethodPost, "/api/system/inputs"); n != 2 {
		t.Errorf("%d POSTs over two runs, want 2", n)
	}
	for _, r := range srv.Requests() {
		if r.Header.Get("Accept") != "application/json" {
			t.Errorf("%s %s: Accept %q", r.Method, r.Path, r.Header.Get("Accept"))
		}
		if r.Method == http.MethodPost && r.Header.Get("X-Requested-By") != "golden" {
			t.Errorf("POST without X-Requested-By: golden")
		}
	}
}

func TestEnsureInputsRefusesAChangedInput(t *testing.T) {
	srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
	id := srv.AddInput(graylog.TitleGELFUDP, graylog.TypeGELFUDP, map[string]any{"bind_address": "0.0.0.0", "port": 5555})
	c := newClient(t, srv)
	res, err := c.EnsureInputs(context.Background(), graylog.GELFUDPInput(12201), graylog.GELFTCPInput(12201))
	if err == nil {
		t.Fatalf("accepted a same-title input on another port: %+v", res)
	}
	for _, w := range []string{`"golden GELF UDP"`, id, "port 5555", "port 12201"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if n := srv.Count(http.MethodPost, "/api/system/inputs"); n != 0 {
		t.Errorf("%d inputs created after the conflict", n)
	}

	srv2 := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
	srv2.AddInput(graylog.TitleGELFTCP, graylog.TypeGELFUDP, map[string]any{"port": 12201})
	res, err = newClient(t, srv2).EnsureInputs(context.Background(), graylog.GELFUDPInput(12201), graylog.GELFTCPInput(12201))
	if err == nil || !strings.Contains(err.Error(), graylog.TypeGELFUDP) || !strings.Contains(err.Error(), "needs type "+graylog.TypeGELFTCP) {
		t.Fatalf("wrong type not reported: %v", err)
	}
	if len(res) != 1 || !res[0].Created {
		t.Errorf("the UDP input done before the conflict is not reported: %+v", res)
	}
}

func TestTokenAuth(t *testing.T) {
	srv := graylogtest.New(t, graylogtest.WithToken(token))
	c, err := graylog.New(srv.URL, graylog.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inputs(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("401", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, "another"))
		_, err := newClient(t, srv).Inputs(ctx)
		if !errors.Is(err, graylog.ErrAuthentication) {
			t.Fatalf("err = %v, want ErrAuthentication", err)
		}
		want := "GET /api/system/inputs: 401 Unauthorized: authentication failed (check --graylog-user/--graylog-password or --graylog-token)"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
		var ge *graylog.Error
		if !errors.As(err, &ge) || ge.StatusCode != 401 {
			t.Errorf("not an *Error with status 401: %#v", err)
		}
		assertNoSecret(t, "401 error", err.Error())
	})

	t.Run("fake enforces X-Requested-By", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/system/inputs", strings.NewReader(`{}`))
		req.SetBasicAuth(user, password)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("POST without X-Requested-By: %d, want 400", resp.StatusCode)
		}
	})

	t.Run("400 with the Graylog message", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
		_, err := newClient(t, srv).CreateInput(ctx, graylog.GELFUDPInput(0))
		want := "POST /api/system/inputs: 400 Bad Request: port: Value is not a valid port"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		_, err = newClient(t, srv).CreateInput(ctx, graylog.InputSpec{Title: "x", Type: "org.example.Nope", Global: true, Configuration: map[string]any{"port": 1}})
		if err == nil || !strings.Contains(err.Error(), "400 Bad Request: There is no such input type registered.") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("5xx", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
		srv.FailSearch(http.StatusServiceUnavailable)
		_, err := newClient(t, srv).SearchRelative(ctx, graylog.SearchRequest{Query: `request_id:"abcdefgh"`, Range: time.Hour, Limit: 10})
		want := "server error 503 Service Unavailable: Unable to execute search"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
		srv.SetDelay(10 * time.Second) // the handler gives up when the client does
		_, err := newClient(t, srv, graylog.WithTimeout(50*time.Millisecond)).Inputs(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline error", err)
		}
		if !strings.Contains(err.Error(), "GET /api/system/inputs: no answer within 50ms (timeout)") {
			t.Errorf("error %q does not say timeout", err)
		}
	})

	t.Run("not JSON", func(t *testing.T) {
		html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<html><body>\x1b[31mWelcome to nginx!</body></html>")
		}))
		defer html.Close()
		c, _ := graylog.New(html.URL, graylog.WithBasicAuth(user, password))
		_, err := c.Inputs(ctx)
		if !errors.Is(err, graylog.ErrNotJSON) {
			t.Fatalf("err = %v, want ErrNotJSON", err)
		}
		for _, w := range []string{"200 OK but the answer is not JSON (Content-Type text/html)", "Welcome to nginx!"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if strings.Contains(err.Error(), "\x1b") {
			t.Errorf("error keeps a terminal escape: %q", err)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.URL
		srv.Close()
		c, _ := graylog.New(addr, graylog.WithBasicAuth(user, password))
		_, err := c.Inputs(ctx)
		if err == nil || !strings.Contains(err.Error(), "graylog at "+addr+": GET /api/system/inputs: ") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("echoed credentials are redacted", func(t *testing.T) {
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, p, _ := r.BasicAuth()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			if err := json.NewEncoder(w).Encode(map[string]string{"message": "bad header " + r.Header.Get("Authorization") + " password " + p}); err != nil {
				t.Errorf("echo: %v", err) // the handler's goroutine: no t.Fatal
			}
		}))
		defer echo.Close()
		c, _ := graylog.New(echo.URL, graylog.WithBasicAuth(user, password))
		_, err := c.Inputs(ctx)
		if err == nil || !strings.Contains(err.Error(), "[redacted]") {
			t.Fatalf("err = %v", err)
		}
		assertNoSecret(t, "error", err.Error())
	})
}

func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	fast := graylog.WithPollInterval(time.Millisecond, 5*time.Millisecond)

	t.Run("comes up after a few polls", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password), graylogtest.WithNotReadyPolls(3))
		info, err := newClient(t, srv, fast).WaitReady(ctx, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if info.Version == "" || info.ClusterID == "" {
			t.Errorf("info = %+v", info)
		}
		if n := srv.Count(http.MethodGet, "/api/"); n != 4 {
			t.Errorf("%d polls, want 4", n)
		}
	})

	t.Run("reports each failed attempt", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password), graylogtest.WithNotReadyPolls(2))
		var attempts []int
		report := graylog.WithWaitReport(func(attempt int, err error) {
			if err == nil {
				t.Error("reported an attempt without its error")
			}
			attempts = append(attempts, attempt)
		})
		if _, err := newClient(t, srv, fast, report).WaitReady(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(attempts, []int{1, 2}) {
			t.Errorf("reported attempts %v, want [1 2]", attempts)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password), graylogtest.WithNotReadyPolls(1_000_000))
		_, err := newClient(t, srv, fast).WaitReady(ctx, 100*time.Millisecond)
		if err == nil {
			t.Fatal("WaitReady succeeded against a server that never came up")
		}
		for _, w := range []string{"API not ready after 100ms", "attempts); last error:", "503 Service Unavailable"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	})

	t.Run("gives up at once on 401", func(t *testing.T) {
		srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, "other"))
		_, err := newClient(t, srv, fast).WaitReady(ctx, 10*time.Second)
		if !errors.Is(err, graylog.ErrAuthentication) {
			t.Fatalf("err = %v", err)
		}
		if n := srv.Count(http.MethodGet, "/api/"); n != 1 {
			t.Errorf("%d polls, want 1", n)
		}
	})
}

func TestSearchRelative(t *testing.T) {
	srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
	srv.AddMessage(map[string]any{"timestamp": "2024-05-01T10:00:00.200Z", "source": "h1", "message": "second", "request_id": "req-12345678", "level": 6})
	srv.AddMessage(map[string]any{"timestamp": "2024-05-01T10:00:00.100Z", "source": "h1", "message": "first", "request_id": "req-12345678", "level": 3})
	srv.AddMessage(map[string]any{"timestamp": "2024-05-01T10:00:00.150Z", "source": "h1", "message": "other request", "request_id": "req-87654321", "level": 6})
	c := newClient(t, srv)

	res, err := c.SearchRelative(context.Background(), graylog.SearchRequest{
		Query: "request_id:" + graylog.Phrase("req-12345678"), Range: 90 * time.Minute, Limit: 500,
		Sort: "timestamp:asc", Fields: []string{"timestamp", "message"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalResults != 2 || len(res.Messages) != 2 || res.Messages[0].Message["message"] != "first" || res.Messages[1].Message["message"] != "second" {
		t.Fatalf("result = %+v", res)
	}
	if lvl, ok := res.Messages[0].Message["level"].(json.Number); !ok || lvl.String() != "3" {
		t.Errorf("level decoded as %#v, want json.Number 3", res.Messages[0].Message["level"])
	}
	r := srv.Requests()[0]
	want := map[string]string{"query": `request_id:"req-12345678"`, "range": "5400", "limit": "500", "sort": "timestamp:asc", "fields": "timestamp,message"}
	for k, v := range want {
		if got := r.Query[k]; len(got) != 1 || got[0] != v {
			t.Errorf("query parameter %s = %q, want %q", k, got, v)
		}
	}

	res, err = c.SearchRelative(context.Background(), graylog.SearchRequest{Query: `request_id:"nothing-here"`, Range: time.Second, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalResults != 0 || res.Messages == nil || len(res.Messages) != 0 {
		t.Errorf("empty result = %+v", res)
	}
}

func TestPhraseAndRange(t *testing.T) {
	if got := graylog.Phrase(`a"b\c`); got != `"a\"b\\c"` {
		t.Errorf("Phrase = %s", got)
	}
	for d, want := range map[time.Duration]int64{time.Nanosecond: 1, 0: 1, time.Second: 1, 1500 * time.Millisecond: 2, 24 * time.Hour: 86400} {
		if got := graylog.RangeSeconds(d); got != want {
			t.Errorf("RangeSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	validate := func(args ...string) (graylog.Config, error) {
		c := graylog.DefaultConfig()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		var v config.Validator
		c.Validate(&v)
		return c, v.Err()
	}

	for _, tc := range []struct {
		args []string
		want string // "" for valid
	}{
		{[]string{"--graylog-password", password}, ""},
		{[]string{"--graylog-token", token}, ""},
		{[]string{"--graylog-password-file", pwFile}, ""},
		{nil, "--graylog-password (GOLDEN_GRAYLOG_PASSWORD): Graylog needs credentials"},
		{[]string{"--graylog-password", password, "--graylog-token", token}, "--graylog-token (GOLDEN_GRAYLOG_TOKEN): set either a token or a password"},
		{[]string{"--graylog-password", password, "--graylog-password-file", pwFile}, "not both"},
		{[]string{"--graylog-password-file", filepath.Join(dir, "missing")}, "--graylog-password-file (GOLDEN_GRAYLOG_PASSWORD_FILE): cannot read"},
		{[]string{"--graylog-password", password, "--graylog-user", ""}, "--graylog-user (GOLDEN_GRAYLOG_USER): must be set"},
		{[]string{"--graylog-token", " "}, "--graylog-token (GOLDEN_GRAYLOG_TOKEN): is blank"},
		{[]string{"--graylog-token", token, "--graylog-url", "localhost:9000"}, "--graylog-url (GOLDEN_GRAYLOG_URL)"},
	} {
		_, err := validate(tc.args...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: err = %v, want %q", tc.args, err, tc.want)
		}
		if err != nil {
			assertNoSecret(t, "validation error", err.Error())
		}
	}

	// The password file's first line, without its line ending, is the password.
	srv := graylogtest.New(t, graylogtest.WithBasicAuth(user, password))
	c, err := validate("--graylog-password-file", pwFile, "--graylog-url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Inputs(context.Background()); err != nil {
		t.Fatalf("password from file refused: %v", err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", &c), fmt.Sprint(cl), fmt.Sprintf("%v", cl)} {
		assertNoSecret(t, "printed config or client", s)
	}
	c.PasswordFile = emptyFile
	if _, err := c.NewClient(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty password file: %v", err)
	}
	c2, _ := validate("--graylog-password", password)
	if s := fmt.Sprintf("%v %+v", c2, c2); strings.Contains(s, password) {
		t.Errorf("printed Config leaks the password: %s", s)
	}
}
