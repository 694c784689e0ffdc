package bench

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/jwtauth"
	"github.com/golden-stack/golden/observability/security"
	"github.com/golden-stack/golden/services/user"
)

// Identities the benchmark certificates are issued to: the servers present
// ServerName's certificate, the clients CallerName's, which the user
// service's policy allows to call GetUser.
const (
	ServerName = "user"
	CallerName = "gateway"
)

// Certs is a certificate folder made by pki.Ensure: the root CA, the
// service certificates and the token signing key pair.
type Certs struct {
	// Dir is the folder holding the PEM files.
	Dir string
}

// EnsureCerts creates (or keeps) the project's certificates for auth, user
// and gateway and the token signing key in dir.
func EnsureCerts(dir string) (Certs, error) {
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"auth", ServerName, CallerName}}); err != nil {
		return Certs{}, fmt.Errorf("certificates in %s: %w", dir, err)
	}
	return Certs{Dir: dir}, nil
}

// Files returns the TLS files of identity name.
func (c Certs) Files(name string) security.Files { return security.DefaultFiles(c.Dir, name) }

// ServerTLS returns the servers' TLS configuration, the one every golden
// service uses: TLS 1.3, client certificates verified against the CA.
func (c Certs) ServerTLS() (*tls.Config, error) { return security.ServerConfig(c.Files(ServerName)) }

// ClientTLS returns the clients' TLS configuration: TLS 1.3, verifying the
// server as ServerName and presenting CallerName's certificate.
func (c Certs) ClientTLS() (*tls.Config, error) {
	return security.ClientConfig(c.Files(CallerName), ServerName)
}

// PublicKeyFile is the token verification key.
func (c Certs) PublicKeyFile() string { return filepath.Join(c.Dir, "token-signing.pub") }

// Token returns a real access token, signed like the auth service signs
// them and valid for ttl, that the golden server's verifier accepts.
func (c Certs) Token(ttl time.Duration) (string, error) {
	key, err := jwtauth.LoadPrivateKey(filepath.Join(c.Dir, "token-signing.key"))
	if err != nil {
		return "", err
	}
	tc := user.DefaultConfig().Token
	tok, _, err := jwtauth.NewSigner(key, tc.Issuer, tc.Audience, ttl).Sign(UserID, "alice.liddell")
	return tok, err
}
