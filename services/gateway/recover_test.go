package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golden-stack/golden/observability/requestid"
)

func TestRecoverPanicsAnswersJSON500(t *testing.T) {
	var logs bytes.Buffer
	h := requestid.Middleware(recoverPanics(jsonLogger(&logs), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/healthz", nil)
	req.Header.Set(requestid.HeaderName, "panic-test-0001")
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	var body struct {
		Error struct{ Code, Message, RequestID string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if body.Error.Message != internalMessage || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("body leaks or lacks the generic message: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "panic-test-0001") {
		t.Fatalf("panic not logged with its request ID: %s", logs.String())
	}
}
