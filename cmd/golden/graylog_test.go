package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/golden-stack/golden/internal/graylog"
	"github.com/golden-stack/golden/internal/graylog/graylogtest"
)

// testPassword is the Graylog password of every test; it must never show.
const testPassword = "s3cr3t-Pa55word-do-not-print"

// execute runs cmd with args and returns what it wrote and its error.
func execute(t *testing.T, cmd *cobra.Command, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// assertNoPassword fails when the password or the Authorization header
// made from it shows in any of texts.
func assertNoPassword(t *testing.T, texts ...string) {
	t.Helper()
	header := graylogtest.BasicAuthHeader("admin", testPassword)[len("Basic "):]
	for _, s := range texts {
		if strings.Contains(s, testPassword) || strings.Contains(s, header) {
			t.Errorf("the password leaks: %s", s)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestGraylogSetupIsIdempotent(t *testing.T) {
	srv := graylogtest.New(t, graylogtest.WithBasicAuth("admin", testPassword))
	t.Setenv("GOLDEN_GRAYLOG_PASSWORD", testPassword)
	args := []string{"setup", "--graylog-url", srv.URL, "--wait", "10s"}

	out, stderr, err := execute(t, newGraylogCmd(), args...)
	if err != nil {
		t.Fatalf("first setup: %v\n%s%s", err, out, stderr)
	}
	for _, want := range []string{
		"Graylog 6.1.4+a2fb2a0 is up at " + srv.URL + "\n",
		`created: input "golden GELF UDP" (` + graylog.TypeGELFUDP + ", port 12201, id ",
		`created: input "golden GELF TCP" (` + graylog.TypeGELFTCP + ", port 12201, id ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first setup output lacks %q:\n%s", want, out)
		}
	}

	out2, stderr2, err := execute(t, newGraylogCmd(), args...)
	if err != nil {
		t.Fatalf("second setup: %v\n%s", err, out2)
	}
	if strings.Contains(out2, "created") || strings.Count(out2, "already present: input ") != 2 {
		t.Errorf("second setup output:\n%s", out2)
	}
	if n := srv.Count(http.MethodPost, "/api/system/inputs"); n != 2 {
		t.Errorf("%d inputs created over two runs, want 2", n)
	}
	assertNoPassword(t, out, stderr, out2, stderr2)
}

func TestGraylogSetupPortsAndPasswordFile(t *testing.T) {
	srv := graylogtest.New(t, graylogtest.WithBasicAuth("admin", testPassword))
	pw := filepath.Join(t.TempDir(), "graylog-password")
	if err := os.WriteFile(pw, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := execute(t, newGraylogCmd(), "setup", "--graylog-url", srv.URL, "--graylog-password-file", pw, "--udp-port", "12301", "--tcp-port", "12302")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "port 12301") || !strings.Contains(out, "port 12302") {
		t.Errorf("output:\n%s", out)
	}
}

func TestGraylogSetupWaitsForTheAPI(t *testing.T) {
	srv := graylogtest.New(t, graylogtest.WithBasicAuth("admin", testPassword), graylogtest.WithNotReadyPolls(1))
	out, _, err := execute(t, newGraylogCmd(), "setup", "--graylog-url", srv.URL, "--graylog-password", testPassword, "--wait", "30s")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := srv.Count(http.MethodGet, "/api/"); n != 2 {
		t.Errorf("%d polls, want 2", n)
	}
	if len(srv.Inputs()) != 2 {
		t.Errorf("inputs not created after the wait")
	}
	// It said what it waited for, without the password.
	if want := "waiting for Graylog at " + srv.URL + " (up to 30s): "; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	assertNoPassword(t, out)
}

func TestGraylogSetupFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*graylogtest.Server)
		args  []string
		code  int
		want  []string
	}{
		{"never ready", func(s *graylogtest.Server) { s.SetNotReadyPolls(1_000_000) }, []string{"--wait", "300ms"}, 1,
			[]string{"API not ready after 300ms", "last error:", "503 Service Unavailable"}},
		{"wrong password", nil, []string{"--graylog-password", "not-the-password"}, 1,
			[]string{"authentication failed (check --graylog-user/--graylog-password or --graylog-token)"}},
		{"conflicting input", func(s *graylogtest.Server) {
			s.AddInput(graylog.TitleGELFTCP, graylog.TypeGELFTCP, map[string]any{"port": 5140})
		}, nil, 1, []string{`input "golden GELF TCP"`, "already exists", "port 5140", "port 12201"}},
		{"no credentials", nil, []string{"--graylog-password", ""}, 2,
			[]string{"--graylog-password (GOLDEN_GRAYLOG_PASSWORD): Graylog needs credentials"}},
		{"password and token", nil, []string{"--graylog-token", "tok-1234567890"}, 2, []string{"not both"}},
		{"bad port", nil, []string{"--udp-port", "70000"}, 2, []string{"--udp-port (GOLDEN_UDP_PORT): must be between 1 and 65535"}},
		{"bad wait", nil, []string{"--wait", "0s"}, 2, []string{"--wait (GOLDEN_WAIT)"}},
		{"bad url", nil, []string{"--graylog-url", "http://admin:" + testPassword + "@localhost:9000"}, 2, []string{"--graylog-url (GOLDEN_GRAYLOG_URL)", "must not contain credentials"}},
		{"unknown flag", nil, []string{"--graylog-pasword", "x"}, 2, []string{"unknown flag"}},
		{"extra argument", nil, []string{"now"}, 2, []string{"unknown command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := graylogtest.New(t, graylogtest.WithBasicAuth("admin", testPassword))
			if tt.setup != nil {
				tt.setup(srv)
			}
			args := append([]string{"setup", "--graylog-url", srv.URL, "--graylog-password", testPassword, "--wait", "5s"}, tt.args...)
			out, stderr, err := execute(t, newGraylogCmd(), args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code %d, want %d (%v)", got, tt.code, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			assertNoPassword(t, out, stderr, errText(err))
		})
	}
}

func TestGraylogSetupEnvErrors(t *testing.T) {
	t.Setenv("GOLDEN_GRAYLOG_PASSWORD", testPassword)
	t.Setenv("GOLDEN_WAIT", "soon")
	_, _, err := execute(t, newGraylogCmd(), "setup")
	if exitCode(err) != 2 || !strings.Contains(errText(err), `GOLDEN_WAIT (--wait): invalid value "soon"`) {
		t.Fatalf("err = %v", err)
	}
	assertNoPassword(t, errText(err))
}
