// Package loadgentest provides a fake golden gateway for testing the load
// generator without the services behind it.
package loadgentest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/golden-stack/golden/observability/requestid"
)

// Request is one request the fake gateway answered.
type Request struct {
	// RequestID is the X-Request-ID the client sent ("" when it sent none).
	RequestID string
	// Route is the route template that matched, e.g. "GET /v1/users/{id}".
	Route  string
	Status int
	Code   string
}

// Option configures New.
type Option func(*Gateway)

// WithHandlerHook calls fn before each request is handled, e.g. to block.
// A nil fn sets no hook.
func WithHandlerHook(fn func(*http.Request)) Option {
	return func(g *Gateway) {
		if fn != nil {
			g.hook = fn
		}
	}
}

// Gateway is a fake golden gateway: it keeps accounts and tokens in memory
// and answers the HTTP API's routes the way the real one does, including
// refresh token rotation with reuse detection, and records every request.
type Gateway struct {
	// URL is the base URL of the fake, e.g. http://127.0.0.1:12345.
	URL string

	accessTTL time.Duration
	hook      func(*http.Request)

	mu       sync.Mutex
	users    map[string]*account // by ID
	byName   map[string]*account
	order    []string          // IDs in creation order
	access   map[string]string // access token -> user ID
	refresh  map[string]*refreshToken
	requests []Request
	reuses   int
	secrets  []string
}

type account struct {
	id, username, password string
}

type refreshToken struct {
	userID string
	used   bool
}

// New starts a fake gateway that stops when the test ends.
func New(t testing.TB, opts ...Option) *Gateway {
	t.Helper()
	g := &Gateway{
		accessTTL: 15 * time.Minute,
		users:     make(map[string]*account),
		byName:    make(map[string]*account),
		access:    make(map[string]string),
		refresh:   make(map[string]*refreshToken),
	}
	for _, o := range opts {
		if o != nil {
			o(g)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users", g.createUser)
	mux.HandleFunc("POST /v1/login", g.login)
	mux.HandleFunc("POST /v1/refresh", g.refreshTokens)
	mux.HandleFunc("POST /v1/logout", g.logout)
	mux.HandleFunc("GET /v1/users", g.listUsers)
	mux.HandleFunc("GET /v1/users/{id}", g.getUser)
	mux.HandleFunc("DELETE /v1/users/{id}", g.deleteUser)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.hook != nil {
			g.hook(r)
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		g.mu.Lock()
		g.requests = append(g.requests, Request{RequestID: r.Header.Get(requestid.HeaderName), Route: r.Pattern, Status: rec.status, Code: rec.code})
		g.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// Requests returns every request answered so far.
func (g *Gateway) Requests() []Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.requests)
}

// RefreshReuses counts refreshes that presented an already rotated token.
func (g *Gateway) RefreshReuses() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reuses
}

// Accounts counts the accounts that exist.
func (g *Gateway) Accounts() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.users)
}

// Secrets returns every password received and token issued, to check that
// none of them is ever printed.
func (g *Gateway) Secrets() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.secrets)
}

type recorder struct {
	http.ResponseWriter
	status int
	code   string
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code string) {
	if rec, ok := w.(*recorder); ok {
		rec.code = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{
		"code": code, "message": strings.ToLower(strings.ReplaceAll(code, "_", " ")), "request_id": r.Header.Get(requestid.HeaderName),
	}})
}

// decode reads a JSON body, answering 400 or 415 when it cannot.
func decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if r.Header.Get("Content-Type") != "application/json" {
		writeError(w, r, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeError(w, r, http.StatusBadRequest, "INVALID_ARGUMENT")
		return false
	}
	return true
}

func token(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// issue answers a new token pair for u; g.mu is held.
func (g *Gateway) issue(w http.ResponseWriter, u *account) {
	at, rt := token("at-"), token("rt-")
	g.access[at] = u.id
	g.refresh[rt] = &refreshToken{userID: u.id}
	g.secrets = append(g.secrets, at, rt)
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token":      at,
		"access_expires_at": time.Now().Add(g.accessTTL).UTC().Format(time.RFC3339Nano),
		"refresh_token":     rt,
		"token_type":        "Bearer",
	})
}

// caller returns the user ID of the request's bearer token; g.mu is held.
func (g *Gateway) caller(w http.ResponseWriter, r *http.Request) (string, bool) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	id, ok := g.access[tok]
	if scheme != "Bearer" || !ok {
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED")
		return "", false
	}
	return id, true
}

func (g *Gateway) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Email, Password string }
	if !decode(w, r, &req) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.secrets = append(g.secrets, req.Password)
	if req.Username == "" || len(req.Username) > 32 || len(req.Password) < 8 || !strings.Contains(req.Email, "@") {
		writeError(w, r, http.StatusBadRequest, "INVALID_ARGUMENT")
		return
	}
	if _, taken := g.byName[req.Username]; taken {
		writeError(w, r, http.StatusConflict, "ALREADY_EXISTS")
		return
	}
	u := &account{id: uuid.Must(uuid.NewV7()).String(), username: req.Username, password: req.Password}
	g.users[u.id], g.byName[u.username] = u, u
	g.order = append(g.order, u.id)
	w.Header().Set("Location", "/v1/users/"+u.id)
	writeJSON(w, http.StatusCreated, map[string]string{"id": u.id, "username": u.username, "email": req.Email})
}

func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Password string }
	if !decode(w, r, &req) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.secrets = append(g.secrets, req.Password)
	u, ok := g.byName[req.Username]
	if !ok || u.password != req.Password {
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED")
		return
	}
	g.issue(w, u)
}

func (g *Gateway) refreshTokens(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decode(w, r, &req) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	rt, ok := g.refresh[req.RefreshToken]
	switch {
	case !ok:
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED")
		return
	case rt.used:
		g.reuses++
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED")
		return
	}
	u, ok := g.users[rt.userID]
	if !ok {
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED")
		return
	}
	rt.used = true
	g.issue(w, u)
}

func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decode(w, r, &req) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if rt, ok := g.refresh[req.RefreshToken]; ok {
		rt.used = true
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) listUsers(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.caller(w, r); !ok {
		return
	}
	size, err := strconv.Atoi(r.URL.Query().Get("page_size"))
	if err != nil || size <= 0 {
		size = 50
	}
	start := 0
	if after := r.URL.Query().Get("page_token"); after != "" {
		i := slices.Index(g.order, after)
		if i < 0 {
			writeError(w, r, http.StatusBadRequest, "INVALID_ARGUMENT")
			return
		}
		start = i + 1
	}
	users := []map[string]string{}
	next := ""
	for i := start; i < len(g.order); i++ {
		u, ok := g.users[g.order[i]]
		if !ok {
			continue
		}
		if len(users) == size {
			next = users[len(users)-1]["id"]
			break
		}
		users = append(users, map[string]string{"id": u.id, "username": u.username})
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users, "next_page_token": next})
}

func (g *Gateway) getUser(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.caller(w, r); !ok {
		return
	}
	u, ok := g.users[r.PathValue("id")]
	if !ok {
		writeError(w, r, http.StatusNotFound, "NOT_FOUND")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": u.id, "username": u.username})
}

func (g *Gateway) deleteUser(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	callerID, ok := g.caller(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if callerID != id {
		writeError(w, r, http.StatusForbidden, "PERMISSION_DENIED")
		return
	}
	u, ok := g.users[id]
	if !ok {
		writeError(w, r, http.StatusNotFound, "NOT_FOUND")
		return
	}
	delete(g.users, id)
	delete(g.byName, u.username)
	w.WriteHeader(http.StatusNoContent)
}
