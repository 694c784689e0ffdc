package requestid

import "net/http"

// Middleware gives every HTTP request an ID: the client's X-Request-ID when it
// is Valid, a new one otherwise. The ID is put in the request context and
// returned in the response header before the handler runs, so even a response
// written by a panicking or failing handler carries it.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := OrNew(r.Header.Get(HeaderName))
		w.Header().Set(HeaderName, id)
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}
