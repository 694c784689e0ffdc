// Package atomicfile writes files whole: through a temporary file in the
// same folder, synced and then renamed (or linked) into place, so that a
// reader sees the old content or the new, never a mix, and a crash leaves
// no half-written file.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes data to path with mode, replacing what was there. The mode
// is set before any content is written.
func Write(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, false)
}

// Create writes data to path with mode only when path does not exist;
// otherwise its error wraps fs.ErrExist. It is atomic even when two
// processes race on the same folder.
func Create(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, true)
}

// WriteIfChanged is Write, skipped when path already holds data, so that a
// rerun of a one-shot rewrites nothing (and watchers of the file see no
// change). changed reports whether it wrote.
func WriteIfChanged(path string, data []byte, mode fs.FileMode) (changed bool, err error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, Write(path, data, mode)
}

func write(path string, data []byte, mode fs.FileMode, noReplace bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if noReplace {
		// link fails if path exists, which makes create-if-absent atomic even
		// when two init containers race on the same directory.
		if err = os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists: %w", path, fs.ErrExist)
			}
			return fmt.Errorf("write %s: %w", path, err)
		}
		_ = os.Remove(tmp)
	} else if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable; failures are ignored because not every
// file system supports syncing directories.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
