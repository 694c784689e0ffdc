package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ content, want string }{
		{"s3cret\n", "s3cret"},
		{"s3cret\r\nsecond line\n", "s3cret"},
		{"s3cret", "s3cret"},
	} {
		got, err := ReadPasswordFile(write("ok", tc.content))
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.content, got, err, tc.want)
		}
	}
	for name, content := range map[string]string{"empty": "\n", "large": strings.Repeat("x", MaxPasswordFile+1)} {
		_, err := ReadPasswordFile(write(name, content))
		if err == nil || strings.Contains(err.Error(), "xxxx") {
			t.Errorf("%s file: %v; want an error without the content", name, err)
		}
	}
	if _, err := ReadPasswordFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}
