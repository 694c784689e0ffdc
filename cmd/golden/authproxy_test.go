package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/testbackend"
)

// TestAuthProxyServes runs `golden authproxy` with a web config written by
// `golden web-config`: 401 without the sign-in, the upstream's page with
// it, /livez without it, and a clean stop when its context ends.
func TestAuthProxyServes(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("jaeger")) }))
	t.Cleanup(upstream.Close)
	web := filepath.Join(t.TempDir(), "web.yml")
	t.Setenv("TEST_JAEGER_PASSWORD", testWebPassword)
	if _, _, err := execute(t, newWebConfigCmd(), "--web-config", web+"=TEST_JAEGER_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	listen, admin := "127.0.0.1:"+strconv.Itoa(testbackend.FreePort(t)), "127.0.0.1:"+strconv.Itoa(testbackend.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newAuthProxyCmd()
		cmd.SetArgs([]string{"--web-config", web, "--proxy", listen + "=" + upstream.URL, "--admin-addr", admin})
		cmd.SetOut(new(strings.Builder))
		done <- cmd.ExecuteContext(ctx)
	}()
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for get("http://"+admin+"/livez") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("authproxy did not answer /livez within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := get("http://" + listen + "/"); code != http.StatusUnauthorized {
		t.Errorf("without sign-in: %d, want 401", code)
	}
	if code := get("http://admin:" + testWebPassword + "@" + listen + "/"); code != http.StatusOK {
		t.Errorf("signed in: %d, want 200", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("authproxy did not stop")
	}
}

func TestAuthProxyRejectsBadSettings(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(plain, []byte("basic_auth_users:\n  admin: not-a-hash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"nothing":           {nil, []string{"--web-config", "--proxy"}},
		"bad proxy":         {[]string{"--web-config", plain, "--proxy", "jaeger:16686", "--proxy", ":1=https://x:2", "--admin-addr", "nohost"}, []string{`"jaeger:16686" is not LISTEN=UPSTREAM`, `":1=https://x:2"`, "--admin-addr"}},
		"not a bcrypt file": {[]string{"--web-config", plain, "--proxy", ":0=http://127.0.0.1:1"}, []string{"--web-config", "not a bcrypt hash"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := execute(t, newAuthProxyCmd(), tc.args...)
			if exitCode(err) != exitUsage {
				t.Fatalf("exit %d, err %v; want 2", exitCode(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(errText(err), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}
