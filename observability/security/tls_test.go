package security

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/config"
)

// certDir creates a CA and a certificate for "user" in a temporary directory.
func certDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"user"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServerAndClientConfig(t *testing.T) {
	dir := certDir(t)
	files := DefaultFiles(dir, "user")
	if files.CA != filepath.Join(dir, "ca.crt") || files.Cert != filepath.Join(dir, "user.crt") || files.Key != filepath.Join(dir, "user.key") {
		t.Fatalf("DefaultFiles = %+v", files)
	}

	srv, err := ServerConfig(files)
	if err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	if srv.MinVersion != tls.VersionTLS13 || srv.ClientAuth != tls.VerifyClientCertIfGiven || srv.ClientCAs == nil || srv.GetCertificate == nil {
		t.Errorf("ServerConfig = MinVersion %x, ClientAuth %v, ClientCAs %v, GetCertificate %v",
			srv.MinVersion, srv.ClientAuth, srv.ClientCAs != nil, srv.GetCertificate != nil)
	}

	cli, err := ClientConfig(files, "auth")
	if err != nil {
		t.Fatalf("ClientConfig: %v", err)
	}
	if cli.MinVersion != tls.VersionTLS13 || cli.ServerName != "auth" || cli.RootCAs == nil || cli.GetClientCertificate == nil || cli.InsecureSkipVerify {
		t.Errorf("ClientConfig = MinVersion %x, ServerName %q, RootCAs %v, GetClientCertificate %v, InsecureSkipVerify %v",
			cli.MinVersion, cli.ServerName, cli.RootCAs != nil, cli.GetClientCertificate != nil, cli.InsecureSkipVerify)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := certDir(t)
	good := DefaultFiles(dir, "user")
	garbage := writeFile(t, filepath.Join(t.TempDir(), "garbage.pem"), "this is not PEM\n")
	missing := filepath.Join(t.TempDir(), "missing.pem")

	tests := []struct {
		name  string
		files Files
		want  string // flag the error must name
	}{
		{"missing cert", Files{CA: good.CA, Cert: missing, Key: good.Key}, "--tls-cert"},
		{"missing key", Files{CA: good.CA, Cert: good.Cert, Key: missing}, "--tls-key"},
		{"garbage cert", Files{CA: good.CA, Cert: garbage, Key: good.Key}, "--tls-cert"},
		{"key of another certificate", Files{CA: good.CA, Cert: good.Cert, Key: filepath.Join(dir, "ca.key")}, "--tls-cert"},
		{"missing CA", Files{CA: missing, Cert: good.Cert, Key: good.Key}, "--tls-ca"},
		{"garbage CA", Files{CA: garbage, Cert: good.Cert, Key: good.Key}, "--tls-ca"},
		{"empty names", Files{}, "--tls-cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ServerConfig(tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ServerConfig err = %v, want one naming %s", err, tt.want)
			}
			_, err = ClientConfig(tt.files, "user")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ClientConfig err = %v, want one naming %s", err, tt.want)
			}
		})
	}
	t.Run("garbage CA names the file", func(t *testing.T) {
		_, err := ServerConfig(Files{CA: garbage, Cert: good.Cert, Key: good.Key})
		if err == nil || !strings.Contains(err.Error(), garbage) {
			t.Errorf("err = %v, want it to name %s", err, garbage)
		}
	})
}

func TestClientConfigNeedsServerName(t *testing.T) {
	_, err := ClientConfig(DefaultFiles(certDir(t), "user"), "")
	if err == nil || !strings.Contains(err.Error(), "server name") {
		t.Errorf("ClientConfig(\"\") err = %v, want one about the server name", err)
	}
}

func TestFilesFlagsAndValidate(t *testing.T) {
	dir := certDir(t)
	var f Files
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.RegisterFlags(fs)
	good := DefaultFiles(dir, "user")
	if err := fs.Parse([]string{"--tls-ca", good.CA, "--tls-cert", good.Cert, "--tls-key", good.Key}); err != nil {
		t.Fatal(err)
	}
	if f != good {
		t.Fatalf("after flags: %+v, want %+v", f, good)
	}
	var v config.Validator
	f.Validate(&v)
	if err := v.Err(); err != nil {
		t.Errorf("Validate(good): %v", err)
	}

	var bad config.Validator
	Files{CA: filepath.Join(dir, "nope.crt"), Cert: dir}.Validate(&bad)
	err := bad.Err()
	if err == nil {
		t.Fatal("Validate(bad) = nil")
	}
	for _, flag := range []string{"--tls-ca", "--tls-cert", "--tls-key"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("Validate error %q does not name %s", err, flag)
		}
	}
}
