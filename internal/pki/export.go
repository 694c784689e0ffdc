package pki

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/golden-stack/golden/internal/atomicfile"
)

// ExportOptions says what Export copies besides the identity's own files.
type ExportOptions struct {
	// SigningKey adds the token signing private key (token-signing.key),
	// for the service that issues tokens.
	SigningKey bool
}

// exportFile is one file Export copies, with the mode it gets.
type exportFile struct {
	name string
	mode fs.FileMode
}

// Export copies what the identity name needs at run time from the
// certificate directory dir into out: ca.crt, <name>.crt, <name>.key and
// token-signing.pub, and token-signing.key with opts.SigningKey. Never the
// CA key, nor another identity's key: out is meant for a folder only that
// identity's processes mount. A file whose content is already the same is
// left untouched, so that a service watching out sees a change only when a
// certificate was renewed. It returns the names of the files it wrote.
func Export(dir, name, out string, opts ExportOptions) ([]string, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if filepath.Clean(dir) == filepath.Clean(out) {
		return nil, fmt.Errorf("pki: export of %s into the certificate directory itself", name)
	}
	files := []exportFile{
		{caCertFile, publicMode},
		{name + certExt, publicMode},
		{name + keyExt, privateMode},
		{signingPubFile, publicMode},
	}
	if opts.SigningKey {
		files = append(files, exportFile{signingKeyFile, privateMode})
	}
	if err := ensureDir(out); err != nil {
		return nil, err
	}
	var wrote []string
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return wrote, fmt.Errorf("pki: export %s: %w", name, err)
		}
		changed, err := atomicfile.WriteIfChanged(filepath.Join(out, f.name), data, f.mode)
		if err != nil {
			return wrote, fmt.Errorf("pki: export %s: %w", name, err)
		}
		if changed {
			wrote = append(wrote, f.name)
		}
	}
	return wrote, nil
}
