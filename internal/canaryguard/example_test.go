package canaryguard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/internal/canaryguard"
)

// A canary that is worse than stable is rolled back once; Alertmanager's
// repeats of the notification find it at weight 0 already.
func ExampleNewHandler() {
	weights := map[string]int{"user": 10}
	rollback := func(_ context.Context, service, reason string) (bool, error) {
		if weights[service] == 0 {
			return false, nil
		}
		weights[service] = 0
		fmt.Printf("%s rolled back: %s\n", service, reason)
		return true, nil
	}
	quiet := logrus.New()
	quiet.SetLevel(logrus.ErrorLevel)
	h, err := canaryguard.NewHandler("example-secret", rollback, canaryguard.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("POST /alerts", h)

	const notification = `{"version":"4","status":"firing","alerts":[{"status":"firing",
		"labels":{"alertname":"GoldenCanaryWorseThanStable","service":"user","signal":"errors"},
		"annotations":{"summary":"user canary: 5% errors, stable 0.1%"},
		"startsAt":"2030-01-02T15:04:05Z"}]}`
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/alerts", strings.NewReader(notification))
		req.Header.Set("Authorization", "Bearer example-secret")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		fmt.Println(w.Code, "weight", weights["user"])
	}
	// Output:
	// user rolled back: GoldenCanaryWorseThanStable (signal=errors) fired at 2030-01-02T15:04:05Z: user canary: 5% errors, stable 0.1%
	// 200 weight 0
	// 200 weight 0
}
