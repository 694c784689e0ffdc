package authproxy_test

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/golden-stack/golden/internal/authproxy"
)

const password = "0123456789abcdef0123456789abcdef"

func users(t *testing.T) map[string]string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"admin": string(h)}
}

// serve runs h on a loopback listener speaking HTTP/1.1 and HTTP/2 without
// TLS, as `golden authproxy` does, until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestHTTPUpstream(t *testing.T) {
	var sawAuth []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, "page "+r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	p, err := authproxy.New(u, users(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, p)

	get := func(userinfo string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get("http://" + userinfo + addr + "/search")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	for _, bad := range []string{"", "admin:wrong@", "root:" + password + "@"} {
		code, _, h := get(bad)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("sign-in %q: %d %v, want 401 with a Basic challenge", strings.Replace(bad, password, "PASSWORD", 1), code, h)
		}
	}
	for range 3 { // the second and third are answered from the cache
		if code, body, _ := get("admin:" + password + "@"); code != http.StatusOK || body != "page /search" {
			t.Errorf("signed in: %d %q", code, body)
		}
	}
	if len(sawAuth) != 3 || sawAuth[0] != "" {
		t.Errorf("upstream saw %d requests with Authorization %q; want 3, none with the header", len(sawAuth), sawAuth)
	}
}

func TestGRPCUpstream(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	p, err := authproxy.New(&url.URL{Scheme: "h2c", Host: l.Addr().String()}, users(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(serve(t, p), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without sign-in: %v, want Unauthenticated", err)
	}
	signed := metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+password)))
	resp, err := client.Check(signed, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("signed in: %v, %v", resp, err)
	}
	// A server stream passes as it comes: the first message of Watch
	// arrives while the stream stays open.
	stream, err := client.Watch(signed, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch through the proxy: %v, %v", m, err)
	}
}

func TestLoadUsers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	hash := users(t)["admin"]
	if u, err := authproxy.LoadUsers(write("ok.yml", "basic_auth_users:\n  admin: "+hash+"\n")); err != nil || u["admin"] != hash {
		t.Errorf("LoadUsers = %v, %v", u, err)
	}
	for name, body := range map[string]string{
		"empty.yml":    "basic_auth_users: {}\n",
		"plain.yml":    "basic_auth_users:\n  admin: " + password + "\n",
		"notyaml.yml":  "basic_auth_users: [\n",
		"missing.yml?": "",
	} {
		file := filepath.Join(dir, name)
		if !strings.HasSuffix(name, "?") {
			file = write(name, body)
		}
		_, err := authproxy.LoadUsers(file)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), password) {
			t.Errorf("%s: the error shows the file's content: %v", name, err)
		}
	}
	if _, err := authproxy.New(&url.URL{Scheme: "https", Host: "x:1"}, map[string]string{"a": hash}); err == nil {
		t.Error("https upstream accepted")
	}
}
