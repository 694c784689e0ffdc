package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteCreateWriteIfChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := Create(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over a file: %v, want fs.ErrExist", err)
	}
	if err := Write(path, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if raw, _ := os.ReadFile(path); string(raw) != "two" || st.Mode().Perm() != 0o640 {
		t.Errorf("after Write: %q, mode %v", raw, st.Mode().Perm())
	}
	if changed, err := WriteIfChanged(path, []byte("two"), 0o640); err != nil || changed {
		t.Errorf("WriteIfChanged, same content: changed %v, %v", changed, err)
	}
	if changed, err := WriteIfChanged(path, []byte("three"), 0o640); err != nil || !changed {
		t.Errorf("WriteIfChanged, new content: changed %v, %v", changed, err)
	}
	if changed, err := WriteIfChanged(filepath.Join(dir, "new"), []byte("x"), 0o600); err != nil || !changed {
		t.Errorf("WriteIfChanged, no file: changed %v, %v", changed, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
