// Package security holds the transport half of golden's security model:
// mutual TLS configuration from the project's two-level PKI, the caller
// identity taken from a verified client certificate, and per-method
// authorization of those identities.
package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
)

// Files names the PEM files of one service's TLS identity.
type Files struct {
	CA   string // root CA certificate that peers must chain to
	Cert string // this service's certificate
	Key  string // this service's private key
}

// DefaultFiles returns the file names `golden certs` writes for name in dir.
func DefaultFiles(dir, name string) Files {
	return Files{CA: dir + "/ca.crt", Cert: dir + "/" + name + ".crt", Key: dir + "/" + name + ".key"}
}

// RegisterFlags adds --tls-ca, --tls-cert and --tls-key to fs.
func (f *Files) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.CA, "tls-ca", f.CA, "root CA certificate (PEM) that every peer must chain to")
	fs.StringVar(&f.Cert, "tls-cert", f.Cert, "this service's certificate (PEM)")
	fs.StringVar(&f.Key, "tls-key", f.Key, "this service's private key (PEM)")
}

// Validate checks that the three files exist.
func (f Files) Validate(v *config.Validator) {
	v.FileExists("tls-ca", f.CA)
	v.FileExists("tls-cert", f.Cert)
	v.FileExists("tls-key", f.Key)
}

func (f Files) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, config.SettingError("tls-cert", fmt.Errorf("loading the key pair with %s: %w", config.Setting("tls-key"), err))
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, config.SettingError("tls-ca", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, config.SettingError("tls-ca", fmt.Errorf("%q holds no PEM certificate", f.CA))
	}
	return cert, pool, nil
}

// ServerConfig returns the TLS configuration of a gRPC server. Client
// certificates are verified against the CA whenever one is presented; a
// connection without one is let through the handshake on purpose, so that
// plain health probes (grpc.health.v1) can reach the server, and every other
// method is refused by the authorization interceptor with Unauthenticated, a
// clearer answer than a failed handshake.
func ServerConfig(f Files) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}, nil
}

// ClientConfig returns the TLS configuration for calling the service named
// server: its certificate must chain to the CA and carry server as a DNS
// name, whatever address discovery dialled. This client presents its own
// certificate as its identity.
func ClientConfig(f Files, server string) (*tls.Config, error) {
	if server == "" {
		return nil, errors.New("security: server name is required to verify the peer")
	}
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   server,
	}, nil
}
