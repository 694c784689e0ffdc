package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// PEM block types of the key files, as the pki package writes them.
const (
	pemPrivateKey = "PRIVATE KEY"
	pemPublicKey  = "PUBLIC KEY"
)

// maxKeyFileSize bounds how much of a key file is read. An Ed25519 key PEM is
// about 120 bytes; the bound only keeps a misconfigured path (a log file, a
// device) from being read into memory whole.
const maxKeyFileSize = 64 << 10

// LoadPrivateKey reads an Ed25519 private key from a PEM file holding a single
// PKCS#8 "PRIVATE KEY" block. Any other block type or key algorithm is an
// error that names what was found; the error never contains key material.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, pemPrivateKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// The parser's message describes the ASN.1 structure, not its
		// content, but it adds nothing useful to an operator either.
		return nil, fmt.Errorf("jwtauth: %s: not a valid PKCS#8 private key", path)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("jwtauth: %s: holds a %s private key, want Ed25519", path, keyKind(key))
	}
	return priv, nil
}

// LoadPublicKey reads an Ed25519 public key from a PEM file holding a single
// PKIX "PUBLIC KEY" block. Any other block type or key algorithm is an error
// that names what was found.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, pemPublicKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %s: not a valid PKIX public key", path)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("jwtauth: %s: holds a %s public key, want Ed25519", path, keyKind(key))
	}
	return pub, nil
}

// readPEM returns the DER bytes of the only PEM block in the file at path,
// which must be of type typ. Trailing data is rejected so that a file holding
// several keys is not silently reduced to its first one.
func readPEM(path, typ string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("jwtauth: read %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("jwtauth: %s: larger than %d bytes, not a key file", path, maxKeyFileSize)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("jwtauth: %s: no PEM data found, want a %q block", path, typ)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("jwtauth: %s: PEM block is %q, want %q", path, block.Type, typ)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("jwtauth: %s: unexpected data after the %q block", path, typ)
	}
	return block.Bytes, nil
}

// keyKind names the algorithm of a parsed key for error messages.
func keyKind(key any) string {
	switch key.(type) {
	case *rsa.PrivateKey, *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return "ECDSA"
	default:
		return fmt.Sprintf("%T", key)
	}
}

// errNoKey reports a Signer or Verifier built without a usable key; it is a
// configuration error, not a problem with the token.
var errNoKey = errors.New("jwtauth: no valid Ed25519 key configured")
