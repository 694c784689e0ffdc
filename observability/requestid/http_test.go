package requestid

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name   string
		header []string // values of X-Request-ID sent; nil sends none
		keep   bool     // whether the first value must be kept
	}{
		{"valid kept", []string{"client-req-0001"}, true},
		{"missing created", nil, false},
		{"empty replaced", []string{""}, false},
		{"too short replaced", []string{"abc"}, false},
		{"query syntax replaced", []string{`x" OR level:*`}, false},
		{"leading dash replaced", []string{"-abcdefgh"}, false},
		{"first of several used", []string{"first-id-123", "second-id-456"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inHandler, headerAtHandler string
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inHandler = FromContext(r.Context())
				// The header must already be set when the handler starts,
				// so that any response it writes carries the ID.
				headerAtHandler = w.Header().Get(HeaderName)
				w.WriteHeader(http.StatusTeapot)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tt.header {
				req.Header.Add(HeaderName, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			got := rec.Header().Get(HeaderName)
			if !Valid(got) {
				t.Fatalf("response %s = %q, not Valid", HeaderName, got)
			}
			if tt.keep && got != tt.header[0] {
				t.Errorf("response %s = %q, want the client's %q", HeaderName, got, tt.header[0])
			}
			if !tt.keep && len(tt.header) > 0 && got == tt.header[0] {
				t.Errorf("response %s kept the invalid %q", HeaderName, got)
			}
			if inHandler != got {
				t.Errorf("FromContext in handler = %q, want %q", inHandler, got)
			}
			if headerAtHandler != got {
				t.Errorf("response header seen by handler = %q, want %q set before it ran", headerAtHandler, got)
			}
			if rec.Code != http.StatusTeapot {
				t.Errorf("status = %d, want the handler's %d", rec.Code, http.StatusTeapot)
			}
		})
	}
}

func TestMiddlewareNewIDPerRequest(t *testing.T) {
	h := Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ids := map[string]bool{}
	for range 10 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		ids[rec.Header().Get(HeaderName)] = true
	}
	if len(ids) != 10 {
		t.Errorf("10 requests without an ID got %d distinct IDs, want 10", len(ids))
	}
}
