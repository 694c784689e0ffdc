package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/golden-stack/golden/internal/authproxy"
)

const testWebPassword = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// TestWebConfigWritesHashAndPassword: the web configuration lets admin in
// with the password and holds only its bcrypt hash; the password file holds
// the password; a rerun rewrites nothing; a new password rewrites the web
// configuration; nothing secret is printed.
func TestWebConfigWritesHashAndPassword(t *testing.T) {
	dir := t.TempDir()
	web, plain := filepath.Join(dir, "prometheus", "web.yml"), filepath.Join(dir, "prometheus", "prometheus.password")
	t.Setenv("TEST_WEB_PASSWORD", testWebPassword)
	args := []string{"--web-config", web + "=TEST_WEB_PASSWORD", "--password-file", plain + "=TEST_WEB_PASSWORD"}

	out, errOut, err := execute(t, newWebConfigCmd(), args...)
	if err != nil {
		t.Fatalf("web-config: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, web+`: sign-in for "admin" with the password in TEST_WEB_PASSWORD (written)`) {
		t.Errorf("output:\n%s", out)
	}
	raw := readFile(t, web)
	var cfg authproxy.WebConfig
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(cfg.BasicAuthUsers["admin"]), []byte(testWebPassword)); err != nil || len(cfg.BasicAuthUsers) != 1 {
		t.Errorf("web config %q does not let admin in with the password: %v", raw, err)
	}
	if got := readFile(t, plain); got != testWebPassword+"\n" {
		t.Errorf("password file holds %q", got)
	}
	for _, f := range []string{web, plain} {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644 (the servers run as another user)", f, st.Mode().Perm())
		}
	}

	out2, _, err := execute(t, newWebConfigCmd(), args...)
	if err != nil || !strings.Contains(out2, "(unchanged)") || readFile(t, web) != raw {
		t.Errorf("rerun: %v, rewrote the web config or said so:\n%s", err, out2)
	}
	t.Setenv("TEST_WEB_PASSWORD", "another-password-0123456789abcdef")
	out3, _, err := execute(t, newWebConfigCmd(), args...)
	if err != nil || !strings.Contains(out3, "(written)") || readFile(t, web) == raw {
		t.Errorf("new password: %v, web config not rewritten:\n%s", err, out3)
	}
	for _, text := range []string{out, errOut, out2, out3} {
		if strings.Contains(text, testWebPassword) || strings.Contains(text, "another-password") || strings.Contains(text, "$2a$") {
			t.Errorf("a secret is printed: %s", text)
		}
	}
}

func TestWebConfigRejectsBadSettings(t *testing.T) {
	t.Setenv("TEST_WEB_PASSWORD", testWebPassword)
	t.Setenv("TEST_EMPTY_PASSWORD", "")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"nothing to write", nil, []string{"--web-config (GOLDEN_WEB_CONFIG): nothing to write"}},
		{"not a pair", []string{"--web-config", "web.yml"}, []string{`"web.yml" is not FILE=VARIABLE`}},
		{"unset variable", []string{"--password-file", "p=TEST_UNSET_PASSWORD"}, []string{"--password-file", "TEST_UNSET_PASSWORD is not set or empty"}},
		{"all at once", []string{"--web-config", "w=TEST_EMPTY_PASSWORD", "--password-file", "=TEST_WEB_PASSWORD", "--user", "ad min"},
			[]string{"TEST_EMPTY_PASSWORD is not set", `"=TEST_WEB_PASSWORD" is not FILE=VARIABLE`, "--user"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := execute(t, newWebConfigCmd(), tc.args...)
			if exitCode(err) != exitUsage {
				t.Fatalf("exit %d, err %v; want 2", exitCode(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(errText(err), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if strings.Contains(errText(err), testWebPassword) {
				t.Errorf("the password is printed: %v", err)
			}
		})
	}
}
