package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCerts executes "golden certs ARGS..." and returns its output.
func runCerts(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newCertsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestCertsEnsureTwiceAndInspect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	args := []string{"ensure", "--dir", dir, "--services", "auth,user,gateway", "--clients", "prometheus"}
	names := []string{"ca", "token-signing", "auth", "user", "gateway", "prometheus"}

	out, err := runCerts(t, args...)
	if err != nil {
		t.Fatalf("first ensure: %v\n%s", err, out)
	}
	for _, n := range names {
		if !strings.Contains(out, "created "+n+"\n") {
			t.Errorf("first ensure output lacks %q:\n%s", "created "+n, out)
		}
	}

	out, err = runCerts(t, args...)
	if err != nil {
		t.Fatalf("second ensure: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(names) {
		t.Errorf("second ensure printed %d lines, want %d:\n%s", len(lines), len(names), out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "kept ") {
			t.Errorf("second ensure: %q is not kept", l)
		}
	}

	out, err = runCerts(t, "inspect", "--dir", dir)
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	for _, n := range []string{"auth", "user", "gateway", "prometheus"} {
		if !strings.Contains(out, n+".crt") || !strings.Contains(out, "spiffe://golden/"+n) {
			t.Errorf("inspect output lacks %s:\n%s", n, out)
		}
	}
	if !strings.Contains(out, "ca.crt") || !strings.Contains(out, "DAYS LEFT") {
		t.Errorf("inspect output lacks the CA row or header:\n%s", out)
	}
}

func TestCertsIssue(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCerts(t, "init", "--dir", dir); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err := runCerts(t, "issue", "--dir", dir, "--name", "prometheus", "--dns", "prom.local,metrics", "--ip", "10.1.2.3", "--validity", "24h")
	if err != nil {
		t.Fatalf("issue: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "prometheus.key")); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "Bad Name"}, `--name "Bad Name": must be`},
		{[]string{}, "--name"},
		{[]string{"--name", "ca"}, `--name "ca"`},
		{[]string{"--name", "web", "--ip", "1.2.3"}, `--ip "1.2.3"`},
		{[]string{"--name", "web", "--dns", "a b"}, `--dns "a b"`},
		{[]string{"--name", "web", "--validity", "-1h"}, "--validity"},
		{[]string{"--name", "web", "--validity", "soon"}, "--validity"},
	} {
		_, err := runCerts(t, append([]string{"issue", "--dir", dir}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("issue %v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "web.crt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed issue left web.crt behind: %v", err)
	}
}

func TestCertsIssueWithoutCA(t *testing.T) {
	_, err := runCerts(t, "issue", "--dir", t.TempDir(), "--name", "auth")
	if err == nil || !strings.Contains(err.Error(), "certs init") {
		t.Errorf("issue without CA: err = %v", err)
	}
}

func TestCertsInitTwice(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCerts(t, "init", "--dir", dir); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	before, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = runCerts(t, "init", "--dir", dir)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second init: err = %v, want fs.ErrExist", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("second init changed ca.key (%v)", err)
	}
}

// TestCertsEnsureExport: each service's folder gets its own files only, the
// signing key only where --signing-key-to says, and a second run rewrites
// nothing.
func TestCertsEnsureExport(t *testing.T) {
	dir, export := filepath.Join(t.TempDir(), "pki"), t.TempDir()
	args := []string{"ensure", "--dir", dir, "--services", "auth,user,gateway", "--clients", "admin", "--export", export}
	out, err := runCerts(t, args...)
	if err != nil {
		t.Fatalf("ensure --export: %v\n%s", err, out)
	}
	for svc, want := range map[string]string{
		"auth":    "auth.crt auth.key ca.crt token-signing.key token-signing.pub",
		"user":    "ca.crt token-signing.pub user.crt user.key",
		"gateway": "ca.crt gateway.crt gateway.key token-signing.pub",
	} {
		entries, err := os.ReadDir(filepath.Join(export, svc))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s's export holds %v, want %s", svc, got, want)
		}
		if !strings.Contains(out, "exported "+svc+": ") {
			t.Errorf("output does not say what was exported for %s:\n%s", svc, out)
		}
	}
	if _, err := os.Stat(filepath.Join(export, "admin")); !os.IsNotExist(err) {
		t.Errorf("a client identity was exported (%v)", err)
	}
	out, err = runCerts(t, args...)
	if err != nil || strings.Contains(out, "exported") {
		t.Errorf("second ensure --export: %v, output:\n%s\nwant nothing exported", err, out)
	}
}

func TestCertsEnsureFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--services", "auth,Bad"}, `--services "Bad"`},
		{[]string{"--services", "auth", "--clients", "prom_1"}, `--clients "prom_1"`},
		{[]string{"--services", "auth,,user"}, `--services ""`},
		{[]string{}, "--services or --clients"},
		{[]string{"--services", "auth", "--renew-before", "2400h"}, "--renew-before"},
		{[]string{"--services", "auth", "--validity", "0s"}, "--validity"},
		{[]string{"--services", "user", "--export", "out", "--signing-key-to", "auth"}, "--signing-key-to auth"},
	} {
		_, err := runCerts(t, append([]string{"ensure", "--dir", dir}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ensure %v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("invalid flags still wrote %d files", len(entries))
	}
}

func TestCertsDirFromEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "from-env")
	t.Setenv(certsDirEnv, dir)
	if out, err := runCerts(t, "init"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err != nil {
		t.Errorf("init ignored $%s: %v", certsDirEnv, err)
	}
	// An explicit --dir wins over the environment.
	other := t.TempDir()
	if out, err := runCerts(t, "init", "--dir", other); err != nil {
		t.Fatalf("init --dir: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(other, "ca.crt")); err != nil {
		t.Error(err)
	}
	t.Setenv(certsDirEnv, "")
	if _, err := runCerts(t, "inspect"); err == nil || !strings.Contains(err.Error(), certsDirEnv) {
		t.Errorf("empty $%s: err = %v", certsDirEnv, err)
	}
}

// TestCertsInspectMissingDirSaysWhatToRun: after `golden all`, whose
// certificates are in .golden/certs, `golden certs inspect` in ./certs
// says how to create that folder and where the other one is.
func TestCertsInspectMissingDirSaysWhatToRun(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "certs")
	_, err := runCerts(t, "inspect", "--dir", missing)
	if err == nil {
		t.Fatal("inspect of a missing folder succeeded")
	}
	for _, want := range []string{missing, "golden certs ensure --dir " + missing, filepath.Join(".golden", "certs")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}
