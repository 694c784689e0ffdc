// Package graylogtest is a fake Graylog REST API for tests, replaying the
// documented answers of Graylog 5/6 for the calls package graylog makes:
// GET /api/, GET and POST /api/system/inputs and
// GET /api/search/universal/relative.
//
// Like Graylog it demands basic authentication on every call (401
// otherwise) and the X-Requested-By header on every call other than GET (400
// otherwise), so a client that forgets either fails its test.
package graylogtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is a request the server received.
type Request struct {
	Method, Path string
	Query        map[string][]string
	Header       http.Header
}

// Server is a fake Graylog. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server

	user, pass string

	mu         sync.Mutex
	requests   []Request
	inputs     []map[string]any
	messages   []map[string]any
	notReady   int           // GET /api/ polls still to answer 503
	delay      time.Duration // sleep before answering
	nextID     int
	failSearch int // status to answer searches with, 0 for none
}

// Option configures a Server.
type Option func(*Server)

// WithBasicAuth makes the server accept user and password (default
// "admin" and "admin-password").
func WithBasicAuth(user, password string) Option {
	return func(s *Server) { s.user, s.pass = user, password }
}

// WithToken makes the server accept the access token, sent as "<token>:token".
func WithToken(token string) Option {
	return func(s *Server) { s.user, s.pass = token, "token" }
}

// WithNotReadyPolls makes GET /api/ answer 503 the first n times, as
// Graylog does behind a proxy while it starts.
func WithNotReadyPolls(n int) Option {
	return func(s *Server) { s.notReady = n }
}

// New starts a fake Graylog, closed at the end of the test.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{user: "admin", pass: "admin-password"}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// SetDelay makes every later answer wait d first (or until the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetNotReadyPolls makes GET /api/ answer 503 the next n times.
func (s *Server) SetNotReadyPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notReady = n
}

// FailSearch makes searches answer status (with a Graylog error body); 0 stops it.
func (s *Server) FailSearch(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failSearch = status
}

// AddInput adds an input as if created by hand, with attributes as its
// configuration, and returns its ID.
func (s *Server) AddInput(title, typ string, attributes map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addInputLocked(title, typ, true, attributes)
}

func (s *Server) addInputLocked(title, typ string, global bool, attributes map[string]any) string {
	s.nextID++
	id := fmt.Sprintf("65f1c0de%016x", s.nextID)
	name := typ[strings.LastIndex(typ, ".")+1:]
	s.inputs = append(s.inputs, map[string]any{
		"title":           title,
		"global":          global,
		"name":            name,
		"content_pack":    nil,
		"created_at":      "2024-05-01T10:00:00.000Z",
		"type":            typ,
		"creator_user_id": "admin",
		"attributes":      attributes,
		"static_fields":   map[string]any{},
		"node":            nil,
		"id":              id,
	})
	return id
}

// Inputs returns the inputs as GET /api/system/inputs lists them.
func (s *Server) Inputs() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.inputs...)
}

// AddMessage stores a message to be found by searches; fields are as
// Graylog stores them (GELF additional fields without the leading "_"), with
// "timestamp" as "2006-01-02T15:04:05.000Z".
func (s *Server) AddMessage(fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]any{"_id": fmt.Sprintf("%08x-0000-11ef-0000-000000000000", len(s.messages)+1)}
	for k, v := range fields {
		m[k] = v
	}
	s.messages = append(s.messages, m)
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many requests had method and path.
func (s *Server) Count(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
	delay := s.delay
	s.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if u, p, ok := r.BasicAuth(); !ok || u != s.user || p != s.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="Graylog Server"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Header.Get("X-Requested-By") == "" {
		apiError(w, http.StatusBadRequest, `CSRF protection header is missing. Please add a "X-Requested-By" header to your request.`)
		return
	}
	switch {
	case r.URL.Path == "/api/" && r.Method == http.MethodGet:
		s.hello(w)
	case r.URL.Path == "/api/system/inputs" && r.Method == http.MethodGet:
		s.listInputs(w)
	case r.URL.Path == "/api/system/inputs" && r.Method == http.MethodPost:
		s.createInput(w, r)
	case r.URL.Path == "/api/search/universal/relative" && r.Method == http.MethodGet:
		s.search(w, r)
	default:
		apiError(w, http.StatusNotFound, "HTTP 404 Not Found")
	}
}

func (s *Server) hello(w http.ResponseWriter) {
	s.mu.Lock()
	starting := s.notReady > 0
	if starting {
		s.notReady--
	}
	s.mu.Unlock()
	if starting {
		// What a proxy in front of a starting Graylog answers.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster_id": "3adaf799-1551-4239-84e5-6ed939b56f62",
		"node_id":    "5d0b0a0c-6a3b-4d6e-9a31-2c1c7c9f0c11",
		"version":    "6.1.4+a2fb2a0",
		"tagline":    "Manage your logs in the dark and have lasers going and make it look like you're from space!",
	})
}

func (s *Server) listInputs(w http.ResponseWriter) {
	inputs := s.Inputs()
	if inputs == nil {
		inputs = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"inputs": inputs, "total": len(inputs)})
}

var knownTypes = map[string]bool{
	"org.graylog2.inputs.gelf.udp.GELFUDPInput": true,
	"org.graylog2.inputs.gelf.tcp.GELFTCPInput": true,
}

func (s *Server) createInput(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		apiError(w, http.StatusUnsupportedMediaType, "HTTP 415 Unsupported Media Type")
		return
	}
	var in struct {
		Title         string         `json:"title"`
		Type          string         `json:"type"`
		Global        bool           `json:"global"`
		Node          string         `json:"node"`
		Configuration map[string]any `json:"configuration"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Unable to map input: "+err.Error())
		return
	}
	switch {
	case in.Title == "":
		apiError(w, http.StatusBadRequest, "Missing title")
		return
	case !knownTypes[in.Type]:
		apiError(w, http.StatusBadRequest, "There is no such input type registered.")
		return
	case !in.Global && in.Node == "":
		apiError(w, http.StatusBadRequest, "Input must be global or name a node")
		return
	}
	port, ok := in.Configuration["port"].(float64)
	if !ok || port < 1 || port > 65535 || port != float64(int(port)) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"failed":true,"errors":{"port":["Value is not a valid port"]},"error_context":{},"type":"ValidationApiError"}`)
		return
	}
	s.mu.Lock()
	id := s.addInputLocked(in.Title, in.Type, in.Global, in.Configuration)
	s.mu.Unlock()
	w.Header().Set("Location", s.URL+"/api/system/inputs/"+id)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id})
}

// termQuery is the only query shape the fake understands: field:"value".
var termQuery = regexp.MustCompile(`^([A-Za-z0-9_.]+):"((?:[^"\\]|\\.)*)"$`)

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.Header.Get("Accept"), "application/json") {
		// The same path answers CSV to other Accept headers.
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprint(w, "\"timestamp\",\"source\"\n")
		return
	}
	s.mu.Lock()
	fail := s.failSearch
	s.mu.Unlock()
	if fail != 0 {
		apiError(w, fail, "Unable to execute search: index graylog_0 is unavailable")
		return
	}
	q := r.URL.Query()
	rng, err := strconv.Atoi(q.Get("range"))
	if err != nil || rng < 0 {
		apiError(w, http.StatusBadRequest, "Invalid range parameter")
		return
	}
	limit := 150
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 {
			apiError(w, http.StatusBadRequest, "Invalid limit parameter")
			return
		}
	}
	sortBy := q.Get("sort")
	if sortBy != "" && sortBy != "timestamp:asc" && sortBy != "timestamp:desc" {
		apiError(w, http.StatusBadRequest, "Invalid sort parameter")
		return
	}
	m := termQuery.FindStringSubmatch(q.Get("query"))
	if m == nil {
		apiError(w, http.StatusBadRequest, "Unable to execute search: Cannot parse '"+q.Get("query")+"'")
		return
	}
	field, value := m[1], strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[2])

	s.mu.Lock()
	var found []map[string]any
	for _, msg := range s.messages {
		if fmt.Sprint(msg[field]) == value {
			found = append(found, msg)
		}
	}
	s.mu.Unlock()
	sort.SliceStable(found, func(i, j int) bool {
		ti, tj := fmt.Sprint(found[i]["timestamp"]), fmt.Sprint(found[j]["timestamp"])
		if sortBy == "timestamp:desc" {
			return ti > tj
		}
		return ti < tj
	})
	total := len(found)
	if limit > 0 && len(found) > limit {
		found = found[:limit]
	}
	msgs := make([]map[string]any, 0, len(found))
	for _, f := range found {
		msgs = append(msgs, map[string]any{"highlight_ranges": map[string]any{}, "message": f, "index": "graylog_0", "decoration_stats": nil})
	}
	now := time.Now().UTC()
	writeJSON(w, http.StatusOK, map[string]any{
		"query":            q.Get("query"),
		"built_query":      `{"from":0,"size":` + strconv.Itoa(limit) + `}`,
		"used_indices":     []any{},
		"messages":         msgs,
		"fields":           []string{"source", "message", "request_id"},
		"time":             3,
		"total_results":    total,
		"from":             now.Add(-time.Duration(rng) * time.Second).Format("2006-01-02T15:04:05.000Z"),
		"to":               now.Format("2006-01-02T15:04:05.000Z"),
		"decoration_stats": nil,
	})
}

// apiError answers like Graylog's ApiError.
func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"type": "ApiError", "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// BasicAuthHeader returns the Authorization header value for user and
// password, to check that it never appears in output.
func BasicAuthHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
