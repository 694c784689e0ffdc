package integration

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/internal/testbackend"
)

// buildGolden compiles the golden binary into a temporary folder.
func buildGolden(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "golden")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/golden-stack/golden/cmd/golden").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestServeSIGTERMDrainsAndExitsZero runs `golden serve user` as a process,
// sends SIGTERM while slow requests are in flight, and expects every request
// to succeed and the process to exit 0.
func TestServeSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildGolden(t)
	certs := newCerts(t)
	grpcAddr, adminAddr := testbackend.FreeAddr(t), testbackend.FreeAddr(t)
	cmd := exec.Command(bin, "serve", "user",
		"--grpc-addr", grpcAddr, "--admin-addr", adminAddr, "--log-level", "error", "--bcrypt-cost", "11", "--shutdown-timeout", "1m")
	cmd.Env = append(cmd.Environ(),
		"GOLDEN_TLS_CA="+filepath.Join(certs, "ca.crt"),
		"GOLDEN_TLS_CERT="+filepath.Join(certs, "user.crt"),
		"GOLDEN_TLS_KEY="+filepath.Join(certs, "user.key"),
		"GOLDEN_TOKEN_PUBLIC_KEY="+filepath.Join(certs, "token-signing.pub"),
	)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	waitReady(t, "http://"+adminAddr+"/readyz", exited)
	users := userv1.NewUserServiceClient(dial(t, grpcAddr, "user", certs, certs, "gateway"))
	if _, err := users.HealthCheck(context.Background(), &userv1.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := users.CreateUser(context.Background(), &userv1.CreateUserRequest{
				Username: fmt.Sprintf("sigterm%d", i), Email: fmt.Sprintf("sigterm%d@example.com", i), Password: "correct-horse-battery",
			})
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // the requests are being hashed at cost 11
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("in-flight request failed: %v", err)
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("process still running 2 minutes after SIGTERM")
	}
}

// waitReady polls url until it answers 200, failing if the process exits.
func waitReady(t *testing.T, url string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("process exited during start: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 15s", url)
}
