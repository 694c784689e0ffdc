package canaryguard

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadSecret reads the shared secret from the file at path, without the
// white space around it (editors and `echo` add a newline). An empty
// secret, one longer than 4096 bytes, or one a header cannot carry is an
// error. Errors name the file but never hold its content, so that they can
// be logged.
func ReadSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("canaryguard: cannot read secret file %q: %v", path, cause(err))
	}
	defer f.Close()
	// Some room for white space; the secret itself is checked below.
	raw, err := io.ReadAll(io.LimitReader(f, 2*maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("canaryguard: cannot read secret file %q: %v", path, cause(err))
	}
	if len(raw) > 2*maxSecretBytes {
		return "", fmt.Errorf("canaryguard: secret file %q is longer than %d bytes", path, 2*maxSecretBytes)
	}
	secret := strings.TrimSpace(string(raw))
	if err := checkSecret(secret); err != nil {
		return "", fmt.Errorf("canaryguard: secret in %q %w", path, err)
	}
	return secret, nil
}

// cause returns what went wrong without the *os.PathError around it, whose
// message repeats the path.
func cause(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}
