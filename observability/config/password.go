package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxPasswordFile bounds a password file, which holds one line.
const MaxPasswordFile = 4096

// ReadPasswordFile returns the first line of path without its line ending,
// as written by `echo pw > file` or a Docker or Kubernetes secret. Errors
// name the file, never its content.
func ReadPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, err)
	}
	if len(b) > MaxPasswordFile {
		return "", fmt.Errorf("%q is larger than %d bytes: not a password file", path, MaxPasswordFile)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("%q is empty: write the password on its first line", path)
	}
	return pw, nil
}
