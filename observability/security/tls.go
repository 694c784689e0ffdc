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
	"strings"
	"sync"
	"time"

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

func (f Files) load() (*keyPair, *x509.CertPool, error) {
	kp, err := loadKeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, err
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, config.SettingError("tls-ca", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, config.SettingError("tls-ca", fmt.Errorf("%q holds no PEM certificate", f.CA))
	}
	return kp, pool, nil
}

// offered returns cert if the server's request accepts it, else an empty
// certificate (none sent).
func offered(cri *tls.CertificateRequestInfo, cert *tls.Certificate) *tls.Certificate {
	if cri.SupportsCertificate(cert) == nil {
		return cert
	}
	return &tls.Certificate{}
}

// keyPair is a certificate and its key, read from their files and read
// again when either file changes, so that a certificate renewed in place
// (`golden certs ensure`) is used by the next handshakes without a restart.
// The files are looked at on a handshake, at most once per reloadCheck. A
// pair that does not load (the key written but not yet the certificate, say)
// leaves the current one in use until the next look. The CA is read once:
// changing the root needs a restart.
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // size and modification time of both files
	checked time.Time
}

// reloadCheck bounds how often the files are looked at.
const reloadCheck = time.Second

// loadKeyPair reads the pair, with an error naming the settings.
func loadKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile, stamp: fileStamp(certFile, keyFile), checked: time.Now()}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, config.SettingError("tls-cert", fmt.Errorf("loading the key pair with %s: %w", config.Setting("tls-key"), err))
	}
	kp.current = &cert
	return kp, nil
}

// get returns the pair to present now, reloading it when the files changed.
func (k *keyPair) get() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if now.Sub(k.checked) < reloadCheck {
		return k.current
	}
	k.checked = now
	stamp := fileStamp(k.certFile, k.keyFile)
	if stamp == k.stamp {
		return k.current
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return k.current // half-written: look again later
	}
	k.current, k.stamp = &cert, stamp
	return k.current
}

// fileStamp identifies the present version of the files.
func fileStamp(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d/%d;", st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

// ServerConfig returns the TLS configuration of a gRPC server, presenting
// the certificate in its files as they are at each handshake. Client
// certificates are verified against the CA whenever one is presented; a
// connection without one is let through the handshake on purpose, so that
// plain health probes (grpc.health.v1) can reach the server, and every other
// method is refused by the authorization interceptor with Unauthenticated, a
// clearer answer than a failed handshake.
func ServerConfig(f Files) (*tls.Config, error) {
	kp, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.get(), nil
		},
		ClientCAs:  pool,
		ClientAuth: tls.VerifyClientCertIfGiven,
	}, nil
}

// ClientConfig returns the TLS configuration for calling the service named
// server: its certificate must chain to the CA and carry server as a DNS
// name, whatever address discovery dialled. This client presents its own
// certificate, as its files are at each handshake, as its identity.
func ClientConfig(f Files, server string) (*tls.Config, error) {
	if server == "" {
		return nil, errors.New("security: server name is required to verify the peer")
	}
	kp, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			// As with Certificates: offer it only to a server that accepts
			// its CA; otherwise send none (Unauthenticated, not a failed
			// handshake).
			return offered(cri, kp.get()), nil
		},
		RootCAs:    pool,
		ServerName: server,
	}, nil
}
