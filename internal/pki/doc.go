// Package pki manages the certificate directory that golden services use for
// mutual TLS and token signing.
//
// The system has two levels: one root CA, and one certificate per service or
// client identity, signed directly by the CA. Every leaf certificate carries
// its identity as a SPIFFE-style URI SAN (spiffe://golden/<name>) so peers can
// authorize on a stable identity instead of on DNS names.
//
// A certificate directory holds:
//
//	ca.crt, ca.key                          the root CA (key mode 0600, never copied elsewhere)
//	<name>.crt, <name>.key                  one pair per identity (key mode 0600)
//	token-signing.key, token-signing.pub    the auth service's Ed25519 JWT key pair
//
// Certificates are PEM "CERTIFICATE" blocks; private keys are PKCS#8 PEM
// "PRIVATE KEY" blocks and the public signing key is a PKIX PEM "PUBLIC KEY"
// block, so other packages can load them with tls.LoadX509KeyPair,
// x509.ParsePKCS8PrivateKey and x509.ParsePKIXPublicKey. All files are written
// atomically (temporary file in the same directory, then rename), so a reader
// never sees a half-written file.
//
// Ensure is the entry point for init containers: it is idempotent and only
// creates or reissues what is missing, invalid or about to expire.
package pki
