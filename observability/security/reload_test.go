package security

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/pki"
)

// TestRenewedCertificatesUsedWithoutRestart renews both sides' certificates
// in place, as `golden certs ensure` does, while handshakes go on: new
// handshakes present the renewed certificates, and none fails.
func TestRenewedCertificatesUsedWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	names := []string{"user", "gateway"}
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: names}); err != nil {
		t.Fatal(err)
	}
	srvConf, err := ServerConfig(DefaultFiles(dir, "user"))
	if err != nil {
		t.Fatal(err)
	}
	cliConf, err := ClientConfig(DefaultFiles(dir, "gateway"), "user")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", srvConf)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var mu sync.Mutex
	clientSerials := map[string]bool{} // the client certificates the server saw
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				if peers := tc.ConnectionState().PeerCertificates; len(peers) > 0 {
					mu.Lock()
					clientSerials[peers[0].SerialNumber.String()] = true
					mu.Unlock()
				}
				_, _ = io.WriteString(tc, "ok")
			}()
		}
	}()

	serverSerials := map[string]bool{}
	failures := 0
	call := func() {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", lis.Addr().String(), cliConf)
		if err != nil {
			failures++
			t.Logf("handshake: %v", err)
			return
		}
		defer c.Close()
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
			failures++
			t.Logf("exchange: %q %v", buf, err)
			return
		}
		serverSerials[c.ConnectionState().PeerCertificates[0].SerialNumber.String()] = true
	}
	until := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			call()
		}
	}
	until(time.Second)
	// An extra DNS name makes Ensure reissue both certificates in place.
	report, err := pki.Ensure(dir, pki.EnsureOptions{Names: names, DNSNames: map[string][]string{
		"user": {"user.renewed.example"}, "gateway": {"gateway.renewed.example"},
	}})
	if err != nil || len(report.Renewed) != 2 {
		t.Fatalf("renewal: %+v, %v", report, err)
	}
	until(2*reloadCheck + time.Second)

	mu.Lock()
	defer mu.Unlock()
	if failures != 0 {
		t.Errorf("%d handshakes failed around the renewal", failures)
	}
	if len(serverSerials) != 2 || len(clientSerials) != 2 {
		t.Errorf("saw %d server and %d client certificates, want 2 each (before and after the renewal)", len(serverSerials), len(clientSerials))
	}
}
