package pki

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestExport(t *testing.T) {
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "auth")
	if _, err := Ensure(dir, EnsureOptions{Names: []string{"auth", "user"}}); err != nil {
		t.Fatal(err)
	}

	wrote, err := Export(dir, "auth", out, ExportOptions{SigningKey: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ca.crt", "auth.crt", "auth.key", "token-signing.pub", "token-signing.key"}
	if !slices.Equal(wrote, want) {
		t.Errorf("wrote %v, want %v", wrote, want)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	if w := slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
		t.Errorf("%s holds %v, want exactly %v (never ca.key or another identity's key)", out, got, w)
	}
	for name, mode := range map[string]os.FileMode{"auth.key": 0o600, "token-signing.key": 0o600, "auth.crt": 0o644} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v (%v), want %v", name, fi.Mode().Perm(), err, mode)
		}
	}

	// The exported pair works as the identity's TLS key pair.
	if _, err := tls.LoadX509KeyPair(filepath.Join(out, "auth.crt"), filepath.Join(out, "auth.key")); err != nil {
		t.Error(err)
	}

	// Unchanged files are not written again.
	if wrote, err := Export(dir, "auth", out, ExportOptions{SigningKey: true}); err != nil || len(wrote) != 0 {
		t.Errorf("second export wrote %v (%v), want nothing", wrote, err)
	}

	// A renewal is exported: the certificate and key only.
	if _, err := Ensure(dir, EnsureOptions{Names: []string{"auth"}, RenewBefore: 100 * 24 * time.Hour, Validity: 200 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	wrote, err = Export(dir, "auth", out, ExportOptions{SigningKey: true})
	if err != nil || !slices.Equal(wrote, []string{"auth.crt", "auth.key"}) {
		t.Errorf("export after a renewal wrote %v (%v), want [auth.crt auth.key]", wrote, err)
	}

	// Without SigningKey, only the public half.
	userOut := filepath.Join(t.TempDir(), "user")
	if _, err := Export(dir, "user", userOut, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(userOut, "token-signing.key")); !os.IsNotExist(err) {
		t.Errorf("user's export has token-signing.key (%v)", err)
	}

	for _, c := range []struct{ name, dir, out string }{
		{"unknown", dir, t.TempDir()},
		{"Bad Name", dir, t.TempDir()},
		{"auth", dir, dir},
	} {
		if _, err := Export(c.dir, c.name, c.out, ExportOptions{}); err == nil {
			t.Errorf("Export(%q into %s) succeeded", c.name, c.out)
		}
	}
}
