package gateway

import (
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/requestid"
)

// recoverPanics turns a panic in h into a logged 500 with the JSON error
// body, instead of net/http's dropped connection, and keeps serving.
func recoverPanics(log logrus.FieldLogger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // a recovered value, not an error chain; net/http compares it the same way
				panic(p) // the documented way to abort a response
			}
			log.WithFields(logrus.Fields{
				"request_id": requestid.FromContext(r.Context()),
				"panic":      fmt.Sprint(p),
				"stack":      string(debug.Stack()),
			}).Error("recovered from panic in HTTP handler")
			writeError(w, r, httpError(http.StatusInternalServerError, internalMessage))
		}()
		h.ServeHTTP(w, r)
	})
}
