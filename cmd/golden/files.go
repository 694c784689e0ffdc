package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/golden-stack/golden/internal/atomicfile"
)

// writeFileIfChanged writes data to file with mode, in its folder made if
// missing, whole and only when the content changed (atomicfile), so that a
// rerun of a one-shot rewrites nothing.
func writeFileIfChanged(file string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	_, err := atomicfile.WriteIfChanged(file, data, mode)
	return err
}
