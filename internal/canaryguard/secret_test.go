package canaryguard_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golden-stack/golden/internal/canaryguard"
)

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, c := range []struct {
		name, content, want string
	}{
		{"plain", secret, secret},
		{"with newline", secret + "\n", secret},
		{"with white space around", " \t" + secret + "\r\n\n", secret},
		{"longest", strings.Repeat("k", 4096) + "\n", strings.Repeat("k", 4096)},
	} {
		got, err := canaryguard.ReadSecret(write(c.name, c.content))
		if err != nil || got != c.want {
			t.Errorf("%s: ReadSecret = %.20q..., %v; want %.20q...", c.name, got, err, c.want)
		}
	}

	const hidden = "do-not-show-this"
	for _, c := range []struct {
		name, content string
	}{
		{"empty", ""},
		{"only white space", " \n\t\n"},
		{"too long", hidden + strings.Repeat("k", 4096)},
		{"far too long", hidden + strings.Repeat("k", 100000)},
		{"two words", hidden + " " + hidden},
		{"two lines", hidden + "\n" + hidden + "\n"},
		{"control character", hidden + "\x1b"},
		{"not ASCII", hidden + "é"},
	} {
		file := write(c.name, c.content)
		got, err := canaryguard.ReadSecret(file)
		if err == nil {
			t.Errorf("%s: ReadSecret = %.20q..., want an error", c.name, got)
			continue
		}
		if !strings.Contains(err.Error(), file) {
			t.Errorf("%s: error does not name the file: %v", c.name, err)
		}
		if strings.Contains(err.Error(), hidden) {
			t.Errorf("%s: error shows the content: %v", c.name, err)
		}
	}

	missing := filepath.Join(dir, "missing")
	if _, err := canaryguard.ReadSecret(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
	if _, err := canaryguard.ReadSecret(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory: %v, want an error naming it", err)
	}
}
