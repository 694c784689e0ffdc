package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/golden-stack/golden/internal/atomicfile"
)

// File names inside a certificate directory.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	signingKeyFile = "token-signing.key"
	signingPubFile = "token-signing.pub"

	certExt = ".crt"
	keyExt  = ".key"

	privateMode = 0o600
	publicMode  = 0o644
	dirMode     = 0o700
)

// PEM block types.
const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
	pemPublicKey   = "PUBLIC KEY"
)

// ensureDir creates dir with mode 0700 if it does not exist yet.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("pki: certificate directory must not be empty")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("pki: create certificate directory: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path whole (atomicfile.Write), or with
// noReplace only when path does not exist (atomicfile.Create: the error
// wraps fs.ErrExist otherwise).
func writeFileAtomic(path string, data []byte, mode fs.FileMode, noReplace bool) error {
	write := atomicfile.Write
	if noReplace {
		write = atomicfile.Create
	}
	if err := write(path, data, mode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// exists reports whether path exists; errors other than "not exist" are returned.
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("pki: %w", err)
	}
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

func encodePrivateKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

func encodePublicKey(key crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// decodePEM returns the DER bytes of the single PEM block of type typ in data.
func decodePEM(path string, data []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("pki: %s: no PEM data", path)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("pki: %s: PEM block is %q, want %q", path, block.Type, typ)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("pki: %s: unexpected data after the %s block", path, typ)
	}
	return block.Bytes, nil
}

// LoadCertificateFile reads one PEM certificate file, as written by Issue and
// InitCA. The file must contain exactly one CERTIFICATE block.
func LoadCertificateFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	der, err := decodePEM(path, data, pemCertificate)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	return cert, nil
}

// loadPrivateKeyFile reads a PKCS#8 PEM private key that can sign.
func loadPrivateKeyFile(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	der, err := decodePEM(path, data, pemPrivateKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: %s: key of type %T cannot sign", path, key)
	}
	return signer, nil
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
