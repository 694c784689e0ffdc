// Package integration runs the golden services together over real TLS on
// loopback sockets and checks what only the whole can show.
package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/security"
	"github.com/golden-stack/golden/services/auth"
	"github.com/golden-stack/golden/services/gateway"
	"github.com/golden-stack/golden/services/user"
)

// stack is the three services running in this process on free loopback ports.
type stack struct {
	certs   string
	user    *user.Service
	auth    *auth.Service
	gateway *gateway.Service
	baseURL string
}

// stackConfig lets a test change the services' settings before they start.
type stackConfig struct {
	user    user.Config
	auth    auth.Config
	gateway gateway.Config
	// gatewayUserAddr, when set, points the gateway at another user service.
	gatewayUserAddr string
}

// newCerts makes a certificate folder with the services' certificates and one
// for "reporter", a valid identity that no method allows.
func newCerts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"auth", "user", "gateway", "reporter"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// userConfig is the user service on free loopback ports with cheap hashes.
func userConfig(certs string) user.Config {
	c := user.DefaultConfig()
	c.TLS = security.DefaultFiles(certs, "user")
	c.GRPC.Addr, c.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.Token.PublicKey = filepath.Join(certs, "token-signing.pub")
	c.BcryptCost = bcrypt.MinCost
	c.Logging.Level = "error"
	return c
}

func startStack(t *testing.T, mutate func(*stackConfig)) *stack {
	t.Helper()
	return startStackWithCerts(t, newCerts(t), mutate)
}

func startStackWithCerts(t *testing.T, certs string, mutate func(*stackConfig)) *stack {
	t.Helper()
	sc := stackConfig{user: userConfig(certs)}
	sc.auth = auth.DefaultConfig()
	sc.auth.TLS = security.DefaultFiles(certs, "auth")
	sc.auth.GRPC.Addr, sc.auth.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	sc.auth.Token.PrivateKey = filepath.Join(certs, "token-signing.key")
	sc.auth.Logging.Level = "error"

	sc.gateway = gateway.DefaultConfig()
	sc.gateway.TLS = security.DefaultFiles(certs, "gateway")
	sc.gateway.HTTPAddr, sc.gateway.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	sc.gateway.Logging.Level = "error"
	if mutate != nil {
		mutate(&sc)
	}

	s := &stack{certs: certs}
	var err error
	if s.user, err = user.New(sc.user); err != nil {
		t.Fatal(err)
	}
	runService(t, s.user)
	sc.auth.UserAddr = s.user.GRPCAddr()
	if s.auth, err = auth.New(sc.auth); err != nil {
		t.Fatal(err)
	}
	runService(t, s.auth)
	sc.gateway.AuthAddr, sc.gateway.UserAddr = s.auth.GRPCAddr(), s.user.GRPCAddr()
	if sc.gatewayUserAddr != "" {
		sc.gateway.UserAddr = sc.gatewayUserAddr
	}
	if s.gateway, err = gateway.New(sc.gateway); err != nil {
		t.Fatal(err)
	}
	runService(t, s.gateway)
	s.baseURL = "http://" + s.gateway.HTTPAddr()
	return s
}

// startFakeUserService serves srv as the user service, with the user
// certificate over mTLS, on a free loopback port until the test ends.
func startFakeUserService(t *testing.T, certs string, srv userv1.UserServiceServer) string {
	t.Helper()
	conf, err := security.ServerConfig(security.DefaultFiles(certs, "user"))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(conf)))
	userv1.RegisterUserServiceServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// runService runs svc until the test ends and fails the test unless it then
// stops cleanly.
func runService(t *testing.T, svc interface{ Run(context.Context) error }) {
	t.Helper()
	t.Cleanup(runServiceUntil(t, svc))
}

// runServiceUntil runs svc until the returned stop is called, which fails
// the test unless svc then stops cleanly. Calling stop again does nothing.
func runServiceUntil(t *testing.T, svc interface{ Run(context.Context) error }) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("service did not stop cleanly: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("service did not stop within a minute")
			}
		})
	}
}

// caCertPool returns the pool of the stack's root CA.
func caCertPool(t *testing.T, certs string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// dial connects to addr, verifying the server as server, presenting the
// certificate in dir/name.crt, or no certificate when name is "".
func dial(t *testing.T, addr, server, caDir, certDir, name string) *grpc.ClientConn {
	t.Helper()
	conf := &tls.Config{RootCAs: caCertPool(t, caDir), ServerName: server, MinVersion: tls.VersionTLS13}
	if name != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialForcing is dial with a client that presents its certificate whatever
// CAs the server asks for.
func dialForcing(t *testing.T, addr, caDir, certDir, name string) *grpc.ClientConn {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{
		RootCAs: caCertPool(t, caDir), ServerName: "user", MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// apiResponse is one gateway answer.
type apiResponse struct {
	status    int
	requestID string
	body      map[string]any
}

// call sends a JSON request to the gateway; body may be nil.
func (s *stack) call(t *testing.T, method, path, token string, body any, header ...string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.baseURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := apiResponse{status: resp.StatusCode, requestID: resp.Header.Get("X-Request-ID")}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return out
}

// errorCode returns error.code of an error body.
func (r apiResponse) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// str returns a top-level string field of the body.
func (r apiResponse) str(key string) string {
	v, _ := r.body[key].(string)
	return v
}
