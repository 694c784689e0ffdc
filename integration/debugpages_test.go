package integration

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golden-stack/golden/observability/service"
)

// debugLink is a link of x/net/trace's pages to one family's traces.
var debugLink = regexp.MustCompile(`href="(\?fam=[^"]+)"`)

// TestDebugPagesShowNoSecret runs the stack with --debug-pages, signs up,
// logs in, refreshes and logs out, then reads every debug page of every
// service (each family, each latency bucket, expanded): no password, access
// token or refresh token may appear, though the RPCs that carried them are
// traced there.
func TestDebugPagesShowNoSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the stack")
	}
	s := startStack(t, func(sc *stackConfig) {
		for _, st := range []*service.Settings{&sc.user.Settings, &sc.auth.Settings, &sc.gateway.Settings} {
			st.DebugPages = true
		}
	})
	const name = "debugger"
	signup(t, s, name)
	access, refresh := login(t, s, name)
	r := s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": refresh})
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
	access2, refresh2 := r.str("access_token"), r.str("refresh_token")
	if r := s.call(t, "POST", "/v1/logout", "", map[string]string{"refresh_token": refresh2}); r.status != http.StatusNoContent && r.status != http.StatusOK {
		t.Fatalf("logout: %d %v", r.status, r.body)
	}
	secrets := map[string]string{
		"password": "correct-horse-" + name, "access token": access, "refresh token": refresh,
		"second access token": access2, "second refresh token": refresh2,
	}

	client := &http.Client{Timeout: 10 * time.Second}
	get := func(url string) string {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		return string(body)
	}
	pages := 0
	sawLogin := false
	for svc, admin := range map[string]string{"user": s.user.AdminAddr(), "auth": s.auth.AdminAddr(), "gateway": s.gateway.AdminAddr()} {
		base := "http://" + admin
		todo := []string{base + "/debug/requests", base + "/debug/events"}
		seen := map[string]bool{}
		for len(todo) > 0 {
			url := todo[0]
			todo = todo[1:]
			if seen[url] {
				continue
			}
			seen[url] = true
			page := get(url)
			pages++
			sawLogin = sawLogin || strings.Contains(page, "grpc.Server.golden.auth.v1.AuthService") && strings.Contains(page, "Login") && strings.Contains(page, "request_id=")
			for what, secret := range secrets {
				if strings.Contains(page, secret) {
					t.Errorf("%s %s shows the %s", svc, url, what)
				}
			}
			for _, m := range debugLink.FindAllStringSubmatch(page, -1) {
				link := strings.ReplaceAll(m[1], "&amp;", "&")
				path := "/debug/requests"
				if strings.HasPrefix(url, base+"/debug/events") {
					path = "/debug/events"
				}
				todo = append(todo, base+path+link+"&exp=1")
			}
		}
	}
	t.Logf("%d debug pages read", pages)
	if !sawLogin {
		t.Error("no debug page shows a traced Login call: the pages were not exercised")
	}
}
