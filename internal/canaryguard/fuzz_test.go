package canaryguard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/golden-stack/golden/internal/canaryguard"
	"github.com/golden-stack/golden/observability/canary"
)

// FuzzHandler posts arbitrary bodies with the right secret: the handler
// must answer a status Alertmanager can act on, never 500 nor panic, and
// pass Rollback only valid services and clean, bounded reasons.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		notify(firing("user")),
		notify(firing("user"), firing("fail"), with(firing("auth"), func(a *testAlert) { a.Status = "resolved" })),
		notify(with(firing("user"), func(a *testAlert) { a.Annotations["summary"] = "\x1b[2J\u202e" + strings.Repeat("é", 300) })),
		`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"GoldenCanaryWorseThanStable","service":"user"},"startsAt":"nope"}]}`,
		`{"version":"4","alerts":null}`,
		`{"version":"4","alerts":[null,{}]}`,
		`{"version":"4"} {"version":"4"}`,
		`null`,
		`[]`,
		``,
		`{"version":"4","alerts":[{"labels":{"alertname":1}}]}`,
	} {
		f.Add([]byte(seed))
	}
	logger, _ := logtest.NewNullLogger()
	f.Fuzz(func(t *testing.T, body []byte) {
		rb := func(ctx context.Context, service, reason string) (bool, error) {
			if canary.CheckService(service) != nil {
				t.Errorf("rollback of %q, not a service name", service)
			}
			if len(reason) > canaryguard.MaxReasonBytes+len("...") || strings.ContainsFunc(reason, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Errorf("reason %q: too long or with control characters", reason)
			}
			if service == "fail" {
				return false, errors.New("store down")
			}
			return len(reason)%2 == 0, nil
		}
		h, err := canaryguard.NewHandler(secret, rb, canaryguard.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/alerts", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Errorf("status %d for %q", w.Code, body)
		}
	})
}
