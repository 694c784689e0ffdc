// Package gateway is the HTTP/JSON front of golden: it decodes JSON requests
// strictly, calls the auth and user gRPC services with a per-call deadline,
// and answers with JSON, mapping gRPC status codes to HTTP ones as
// grpc-gateway does.
package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/safetext"
)

const (
	// DefaultCallTimeout is the deadline of each downstream call unless
	// WithCallTimeout says otherwise.
	DefaultCallTimeout = 5 * time.Second
	// DefaultMaxBodyBytes is the largest request body accepted unless
	// WithMaxBodyBytes says otherwise.
	DefaultMaxBodyBytes int64 = 1 << 20

	// authorizationKey is the gRPC metadata key the bearer token travels in.
	authorizationKey = "authorization"
)

// Option configures NewHandler.
type Option func(*options)

type options struct {
	callTimeout  time.Duration
	maxBodyBytes int64
	logger       logrus.FieldLogger
	router       *Router
}

// WithCallTimeout sets the deadline of every downstream call:
// context.WithTimeout(r.Context(), d). A non-positive d keeps the default, 5s.
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.callTimeout = d
		}
	}
}

// WithMaxBodyBytes sets the largest request body accepted; a longer one is
// answered 413. A non-positive n keeps the default, 1 MiB.
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBodyBytes = n
		}
	}
}

// WithLogger sets the logger for failures whose detail the client does not
// see (downstream 5xx). Log records carry the route, the request ID, the gRPC
// code and the downstream message, never tokens, passwords or request bodies.
// The default is logrus.StandardLogger(); a nil l keeps it.
func WithLogger(l logrus.FieldLogger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithRouter routes each request to the stable or canary track of the
// service it calls, as rt decides. Without it, only the X-Canary header
// sends requests to canaries.
func WithRouter(rt *Router) Option {
	return func(o *options) { o.router = rt }
}

// route is one entry of the routing table: a net/http.ServeMux pattern and
// its handler.
type route struct {
	pattern string
	handle  http.HandlerFunc
}

// routes is the gateway's routing table, the single source of both the mux
// and Routes.
func (h *handler) routes() []route {
	return []route{
		{"POST /v1/login", h.login},
		{"POST /v1/refresh", h.refresh},
		{"POST /v1/logout", h.logout},
		{"POST /v1/users", h.createUser},
		{"GET /v1/users", h.listUsers},
		{"GET /v1/users/{id}", h.getUser},
		{"DELETE /v1/users/{id}", h.deleteUser},
		{"GET /v1/healthz", h.healthz},
	}
}

// Routes lists the route templates the handler serves, as net/http.ServeMux
// patterns ("POST /v1/login", "GET /v1/users/{id}"). They are the values the
// mux puts in http.Request.Pattern, so metrics can label by them.
func Routes() []string {
	var h handler
	rts := h.routes()
	out := make([]string, len(rts))
	for i, rt := range rts {
		out[i] = rt.pattern
	}
	return out
}

type handler struct {
	auth  authv1.AuthServiceClient
	users userv1.UserServiceClient
	opts  options
	mux   *http.ServeMux
}

// NewHandler returns the gateway's HTTP API. It calls auth and users with a
// per-call deadline (WithCallTimeout).
//
// Requests are routed by a net/http.ServeMux, which sets r.Pattern on the
// *http.Request the returned handler receives: middleware wrapping the
// handler reads the matched route template there after ServeHTTP returns
// (it stays "" for requests no route matches). Middleware that replaces the
// request between them (r.WithContext) hides it.
//
// Requests no route matches get a JSON 404, or a JSON 405 with an Allow
// header when the path exists for other methods. NewHandler panics if a
// client is nil.
func NewHandler(auth authv1.AuthServiceClient, users userv1.UserServiceClient, opts ...Option) http.Handler {
	if auth == nil {
		panic("gateway: NewHandler: nil AuthServiceClient")
	}
	if users == nil {
		panic("gateway: NewHandler: nil UserServiceClient")
	}
	h := &handler{
		auth:  auth,
		users: users,
		opts: options{
			callTimeout:  DefaultCallTimeout,
			maxBodyBytes: DefaultMaxBodyBytes,
		},
		mux: http.NewServeMux(),
	}
	for _, o := range opts {
		if o != nil {
			o(&h.opts)
		}
	}
	for _, rt := range h.routes() {
		h.mux.HandleFunc(rt.pattern, rt.handle)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every string of the request that the API reads must be UTF-8: gRPC
	// refuses other strings (a 500), and replacing bytes silently would let
	// two different inputs mean the same thing. Checked here, once, for
	// every route; JSON bodies are checked by decodeJSON.
	if what := invalidUTF8(r); what != "" {
		writeError(w, r, *badRequest(what + " is not valid UTF-8"))
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// No route: the mux answers 404, 405 or a redirect; turn its
		// plain-text errors into JSON ones.
		h.mux.ServeHTTP(&fallbackWriter{w: w, r: r}, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// invalidUTF8 names the part of r that is not valid UTF-8 once decoded: the
// path, a query parameter (name or value) or the Authorization header; ""
// when all are.
func invalidUTF8(r *http.Request) string {
	if !utf8.ValidString(r.URL.Path) {
		return "the request path"
	}
	for k, vs := range r.URL.Query() {
		if !utf8.ValidString(k) {
			return "a query parameter name"
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return fmt.Sprintf("query parameter %q", safetext.Line(k, 64))
			}
		}
	}
	if !utf8.ValidString(r.Header.Get("Authorization")) {
		return "the Authorization header"
	}
	return ""
}

func (h *handler) logger() logrus.FieldLogger {
	if h.opts.logger != nil {
		return h.opts.logger
	}
	return logrus.StandardLogger()
}

// callContext returns the context of one downstream call to service, made
// for caller (a username; "" when unknown): its deadline and its canary
// route. A bad X-Canary header is answered 400, and ok is false.
func (h *handler) callContext(w http.ResponseWriter, r *http.Request, service, caller string) (_ context.Context, _ context.CancelFunc, ok bool) {
	route, e := h.opts.router.decide(r, service, caller)
	if e != nil {
		writeError(w, r, *e)
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.callTimeout)
	return canary.NewContext(ctx, route), cancel, true
}

// authedCallContext is callContext carrying the caller's bearer token as
// "authorization" metadata, the caller being the token's user. Without a
// well-formed token it answers 401 and returns ok false.
func (h *handler) authedCallContext(w http.ResponseWriter, r *http.Request, service string) (_ context.Context, _ context.CancelFunc, ok bool) {
	token, ok := bearerToken(r.Header)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="golden"`)
		writeError(w, r, httpError(http.StatusUnauthorized, "missing or malformed bearer token"))
		return nil, nil, false
	}
	ctx, cancel, ok := h.callContext(w, r, service, tokenUsername(token))
	if !ok {
		return nil, nil, false
	}
	return metadata.AppendToOutgoingContext(ctx, authorizationKey, "Bearer "+token), cancel, true
}

// bearerToken returns the token of the request's single
// "Authorization: Bearer <token>" header (scheme case-insensitive, RFC 6750
// token syntax).
func bearerToken(h http.Header) (string, bool) {
	vals := h.Values("Authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, token, found := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if !validBearerToken(token) {
		return "", false
	}
	return token, true
}

// validBearerToken reports whether t is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// The check also keeps anything unprintable out of gRPC metadata.
func validBearerToken(t string) bool {
	body := strings.TrimRight(t, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// downstreamError answers a failed downstream call.
func (h *handler) downstreamError(w http.ResponseWriter, r *http.Request, err error) {
	e, st := grpcError(err)
	if e.status >= http.StatusInternalServerError {
		h.logger().WithFields(logrus.Fields{
			"route":        r.Pattern,
			"request_id":   requestid.FromContext(r.Context()),
			"grpc_code":    st.Code().String(),
			"grpc_message": st.Message(),
			"http_status":  e.status,
		}).Error("downstream call failed")
	}
	writeError(w, r, e)
}

// emptyResponse answers a downstream reply that lacks what it must carry.
func (h *handler) emptyResponse(w http.ResponseWriter, r *http.Request, what string) {
	h.logger().WithFields(logrus.Fields{
		"route":      r.Pattern,
		"request_id": requestid.FromContext(r.Context()),
	}).Error("downstream reply is missing " + what)
	writeError(w, r, httpError(http.StatusInternalServerError, internalMessage))
}

func (h *handler) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if e := decodeJSON(w, r, h.opts.maxBodyBytes, dst); e != nil {
		writeError(w, r, *e)
		return false
	}
	return true
}

// Request bodies.

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type refreshTokenRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type createUserRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Response bodies.

type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	AccessExpiresAt  string `json:"access_expires_at,omitempty"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresAt string `json:"refresh_expires_at,omitempty"`
	TokenType        string `json:"token_type"`
}

type userResponse struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

type listUsersResponse struct {
	Users         []userResponse `json:"users"`
	NextPageToken string         `json:"next_page_token"`
}

type healthResponse struct {
	Status string `json:"status"`
}

// formatTime renders ts in RFC 3339 (UTC, fractional seconds only where
// non-zero); a missing timestamp renders as "" and its field is omitted.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}

func toTokenResponse(p *authv1.TokenPair) tokenResponse {
	tokenType := p.GetTokenType()
	if tokenType == "" {
		tokenType = "Bearer"
	}
	return tokenResponse{
		AccessToken:      p.GetAccessToken(),
		AccessExpiresAt:  formatTime(p.GetAccessExpiresAt()),
		RefreshToken:     p.GetRefreshToken(),
		RefreshExpiresAt: formatTime(p.GetRefreshExpiresAt()),
		TokenType:        tokenType,
	}
}

func toUserResponse(u *userv1.User) userResponse {
	return userResponse{
		ID:        u.GetId(),
		Username:  u.GetUsername(),
		Email:     u.GetEmail(),
		CreatedAt: formatTime(u.GetCreatedAt()),
		UpdatedAt: formatTime(u.GetUpdatedAt()),
	}
}

// Handlers.

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !h.decode(w, r, &req) {
		return
	}
	ctx, cancel, ok := h.callContext(w, r, "auth", req.Username)
	if !ok {
		return
	}
	defer cancel()
	resp, err := h.auth.Login(ctx, &authv1.LoginRequest{Username: req.Username, Password: req.Password})
	if err != nil {
		h.downstreamError(w, r, err)
		return
	}
	h.writeTokens(w, r, resp.GetTokens())
}

func (h *handler) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshTokenRequest
	if !h.decode(w, r, &req) {
		return
	}
	ctx, cancel, ok := h.callContext(w, r, "auth", "")
	if !ok {
		return
	}
	defer cancel()
	resp, err := h.auth.Refresh(ctx, &authv1.RefreshRequest{RefreshToken: req.RefreshToken})
	if err != nil {
		h.downstreamError(w, r, err)
		return
	}
	h.writeTokens(w, r, resp.GetTokens())
}

func (h *handler) writeTokens(w http.ResponseWriter, r *http.Request, p *authv1.TokenPair) {
	if p.GetAccessToken() == "" || p.GetRefreshToken() == "" {
		h.emptyResponse(w, r, "tokens")
		return
	}
	writeJSON(w, http.StatusOK, toTokenResponse(p))
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	var req refreshTokenRequest
	if !h.decode(w, r, &req) {
		return
	}
	ctx, cancel, ok := h.callContext(w, r, "auth", "")
	if !ok {
		return
	}
	defer cancel()
	if _, err := h.auth.Logout(ctx, &authv1.LogoutRequest{RefreshToken: req.RefreshToken}); err != nil {
		h.downstreamError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) createUser(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if !h.decode(w, r, &req) {
		return
	}
	// Public sign-up: no token needed, and none is forwarded.
	ctx, cancel, ok := h.callContext(w, r, "user", req.Username)
	if !ok {
		return
	}
	defer cancel()
	resp, err := h.users.CreateUser(ctx, &userv1.CreateUserRequest{
		Username: req.Username,
		Email:    req.Email,
		Password: req.Password,
	})
	if err != nil {
		h.downstreamError(w, r, err)
		return
	}
	u := resp.GetUser()
	if u.GetId() == "" {
		h.emptyResponse(w, r, "user")
		return
	}
	w.Header().Set("Location", "/v1/users/"+url.PathEscape(u.GetId()))
	writeJSON(w, http.StatusCreated, toUserResponse(u))
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, ok := h.authedCallContext(w, r, "user")
	if !ok {
		return
	}
	defer cancel()
	q := r.URL.Query()
	var pageSize int32
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 {
			writeError(w, r, httpError(http.StatusBadRequest, "page_size must be a non-negative 32-bit integer"))
			return
		}
		pageSize = int32(n)
	}
	resp, err := h.users.ListUsers(ctx, &userv1.ListUsersRequest{
		PageSize:  pageSize,
		PageToken: q.Get("page_token"),
	})
	if err != nil {
		h.downstreamError(w, r, err)
		return
	}
	out := listUsersResponse{
		Users:         make([]userResponse, 0, len(resp.GetUsers())),
		NextPageToken: resp.GetNextPageToken(),
	}
	for _, u := range resp.GetUsers() {
		out.Users = append(out.Users, toUserResponse(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getUser(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, ok := h.authedCallContext(w, r, "user")
	if !ok {
		return
	}
	defer cancel()
	resp, err := h.users.GetUser(ctx, &userv1.GetUserRequest{Id: r.PathValue("id")})
	if err != nil {
		h.downstreamError(w, r, err)
		return
	}
	u := resp.GetUser()
	if u.GetId() == "" {
		h.emptyResponse(w, r, "user")
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(u))
}

func (h *handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, ok := h.authedCallContext(w, r, "user")
	if !ok {
		return
	}
	defer cancel()
	if _, err := h.users.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: r.PathValue("id")}); err != nil {
		h.downstreamError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}
