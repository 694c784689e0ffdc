package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/requestid"
)

// Test doubles. Methods not overridden by a func field answer Unimplemented;
// methods the gateway never calls panic through the nil embedded interface.

type fakeAuth struct {
	authv1.AuthServiceClient
	calls   atomic.Int32
	login   func(context.Context, *authv1.LoginRequest) (*authv1.LoginResponse, error)
	refresh func(context.Context, *authv1.RefreshRequest) (*authv1.RefreshResponse, error)
	logout  func(context.Context, *authv1.LogoutRequest) (*authv1.LogoutResponse, error)
}

func (f *fakeAuth) Login(ctx context.Context, in *authv1.LoginRequest, _ ...grpc.CallOption) (*authv1.LoginResponse, error) {
	f.calls.Add(1)
	if f.login == nil {
		return nil, status.Error(codes.Unimplemented, "Login not faked")
	}
	return f.login(ctx, in)
}

func (f *fakeAuth) Refresh(ctx context.Context, in *authv1.RefreshRequest, _ ...grpc.CallOption) (*authv1.RefreshResponse, error) {
	f.calls.Add(1)
	if f.refresh == nil {
		return nil, status.Error(codes.Unimplemented, "Refresh not faked")
	}
	return f.refresh(ctx, in)
}

func (f *fakeAuth) Logout(ctx context.Context, in *authv1.LogoutRequest, _ ...grpc.CallOption) (*authv1.LogoutResponse, error) {
	f.calls.Add(1)
	if f.logout == nil {
		return nil, status.Error(codes.Unimplemented, "Logout not faked")
	}
	return f.logout(ctx, in)
}

type fakeUsers struct {
	userv1.UserServiceClient
	calls      atomic.Int32
	createUser func(context.Context, *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error)
	getUser    func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error)
	listUsers  func(context.Context, *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error)
	deleteUser func(context.Context, *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error)
}

func (f *fakeUsers) CreateUser(ctx context.Context, in *userv1.CreateUserRequest, _ ...grpc.CallOption) (*userv1.CreateUserResponse, error) {
	f.calls.Add(1)
	if f.createUser == nil {
		return nil, status.Error(codes.Unimplemented, "CreateUser not faked")
	}
	return f.createUser(ctx, in)
}

func (f *fakeUsers) GetUser(ctx context.Context, in *userv1.GetUserRequest, _ ...grpc.CallOption) (*userv1.GetUserResponse, error) {
	f.calls.Add(1)
	if f.getUser == nil {
		return nil, status.Error(codes.Unimplemented, "GetUser not faked")
	}
	return f.getUser(ctx, in)
}

func (f *fakeUsers) ListUsers(ctx context.Context, in *userv1.ListUsersRequest, _ ...grpc.CallOption) (*userv1.ListUsersResponse, error) {
	f.calls.Add(1)
	if f.listUsers == nil {
		return nil, status.Error(codes.Unimplemented, "ListUsers not faked")
	}
	return f.listUsers(ctx, in)
}

func (f *fakeUsers) DeleteUser(ctx context.Context, in *userv1.DeleteUserRequest, _ ...grpc.CallOption) (*userv1.DeleteUserResponse, error) {
	f.calls.Add(1)
	if f.deleteUser == nil {
		return nil, status.Error(codes.Unimplemented, "DeleteUser not faked")
	}
	return f.deleteUser(ctx, in)
}

func (f *fakeAuth) total() int32  { return f.calls.Load() }
func (f *fakeUsers) total() int32 { return f.calls.Load() }

// Fixtures.

const (
	testToken    = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"
	testPassword = "correct horse battery staple"
	testRefresh  = "rt_opaque-refresh.token"
)

var (
	t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	t1 = time.Date(2025, 3, 4, 6, 6, 7, 500_000_000, time.UTC)
)

func testUser(id string) *userv1.User {
	return &userv1.User{
		Id:        id,
		Username:  "user-" + id,
		Email:     id + "@example.com",
		CreatedAt: timestamppb.New(t0),
		UpdatedAt: timestamppb.New(t1),
	}
}

func testTokens() *authv1.TokenPair {
	return &authv1.TokenPair{
		AccessToken:      testToken,
		AccessExpiresAt:  timestamppb.New(t0),
		RefreshToken:     testRefresh,
		RefreshExpiresAt: timestamppb.New(t1),
		TokenType:        "Bearer",
	}
}

// newTestHandler returns the gateway behind requestid.Middleware, as it is
// served, logging into a buffer the test may inspect.
func newTestHandler(t *testing.T, auth *fakeAuth, users *fakeUsers, opts ...Option) (http.Handler, *syncBuffer) {
	t.Helper()
	if auth == nil {
		auth = &fakeAuth{}
	}
	if users == nil {
		users = &fakeUsers{}
	}
	logs := &syncBuffer{}
	opts = append([]Option{WithLogger(jsonLogger(logs))}, opts...)
	return requestid.Middleware(NewHandler(auth, users, opts...)), logs
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type request struct {
	method, path, body string
	header             http.Header
}

func serve(t *testing.T, h http.Handler, req request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, req.path, body)
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range req.header {
		r.Header.Del(k)
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func bearer() http.Header {
	return http.Header{"Authorization": {"Bearer " + testToken}}
}

// decodeBody decodes the response body strictly into a value of T.
func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode body %q: %v", rec.Body.String(), err)
	}
	return v
}

// checkError checks that rec is a JSON error with the given HTTP status and
// code, carrying the request ID the middleware assigned, and returns it.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int, wantCode string) errorDetail {
	t.Helper()
	if rec.Code != wantStatus {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, wantStatus, rec.Body.String())
	}
	body := decodeBody[errorBody](t, rec)
	e := body.Error
	if e.Code != wantCode {
		t.Errorf("code = %q, want %q", e.Code, wantCode)
	}
	if e.Message == "" {
		t.Error("empty message")
	}
	if e.RequestID == "" || e.RequestID != rec.Header().Get(requestid.HeaderName) {
		t.Errorf("request_id = %q, want the %s header %q", e.RequestID, requestid.HeaderName, rec.Header().Get(requestid.HeaderName))
	}
	return e
}

// checkJSON compares the response body with want as generic JSON.
func checkJSON(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got, exp any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body = %s\nwant   %s", rec.Body.String(), want)
	}
}

func outgoingAuthorization(ctx context.Context) []string {
	md, _ := metadata.FromOutgoingContext(ctx)
	return md.Get("authorization")
}

// Happy paths.

func TestLogin(t *testing.T) {
	auth := &fakeAuth{login: func(ctx context.Context, in *authv1.LoginRequest) (*authv1.LoginResponse, error) {
		if in.GetUsername() != "alice" || in.GetPassword() != testPassword {
			return nil, status.Error(codes.Unauthenticated, "bad credentials")
		}
		if got := outgoingAuthorization(ctx); len(got) != 0 {
			t.Errorf("login forwarded authorization %q", got)
		}
		return &authv1.LoginResponse{Tokens: testTokens()}, nil
	}}
	h, _ := newTestHandler(t, auth, nil)
	rec := serve(t, h, request{method: "POST", path: "/v1/login", body: `{"username":"alice","password":"` + testPassword + `"}`})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	checkJSON(t, rec, `{
		"access_token": "`+testToken+`",
		"access_expires_at": "2025-03-04T05:06:07Z",
		"refresh_token": "`+testRefresh+`",
		"refresh_expires_at": "2025-03-04T06:06:07.5Z",
		"token_type": "Bearer"
	}`)
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	body := decodeBody[tokenResponse](t, rec)
	for f, v := range map[string]string{"access_expires_at": body.AccessExpiresAt, "refresh_expires_at": body.RefreshExpiresAt} {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			t.Errorf("%s %q is not RFC 3339: %v", f, v, err)
		}
	}
}

func TestRefresh(t *testing.T) {
	auth := &fakeAuth{refresh: func(_ context.Context, in *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
		if in.GetRefreshToken() != testRefresh {
			return nil, status.Error(codes.Unauthenticated, "bad refresh token")
		}
		return &authv1.RefreshResponse{Tokens: testTokens()}, nil
	}}
	h, _ := newTestHandler(t, auth, nil)
	rec := serve(t, h, request{method: "POST", path: "/v1/refresh", body: `{"refresh_token":"` + testRefresh + `"}`})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	checkJSON(t, rec, `{
		"access_token": "`+testToken+`",
		"access_expires_at": "2025-03-04T05:06:07Z",
		"refresh_token": "`+testRefresh+`",
		"refresh_expires_at": "2025-03-04T06:06:07.5Z",
		"token_type": "Bearer"
	}`)
}

func TestLogout(t *testing.T) {
	var got string
	auth := &fakeAuth{logout: func(_ context.Context, in *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
		got = in.GetRefreshToken()
		return &authv1.LogoutResponse{}, nil
	}}
	h, _ := newTestHandler(t, auth, nil)
	rec := serve(t, h, request{method: "POST", path: "/v1/logout", body: `{"refresh_token":"` + testRefresh + `"}`})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	if rec.Body.Len() != 0 {
		t.Errorf("204 with body %q", rec.Body.String())
	}
	if got != testRefresh {
		t.Errorf("refresh_token = %q, want %q", got, testRefresh)
	}
}

func TestCreateUser(t *testing.T) {
	var got *userv1.CreateUserRequest
	users := &fakeUsers{createUser: func(ctx context.Context, in *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
		got = in
		if a := outgoingAuthorization(ctx); len(a) != 0 {
			t.Errorf("sign-up forwarded authorization %q", a)
		}
		return &userv1.CreateUserResponse{User: testUser("u 1/x")}, nil
	}}
	h, _ := newTestHandler(t, nil, users)
	// No Authorization header: sign-up is public.
	rec := serve(t, h, request{method: "POST", path: "/v1/users",
		body: `{"username":"user-u 1/x","email":"u 1/x@example.com","password":"` + testPassword + `"}`})
	if rec.Code != http.StatusCreated {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	if got.GetUsername() != "user-u 1/x" || got.GetEmail() != "u 1/x@example.com" || got.GetPassword() != testPassword {
		t.Errorf("request = %v", got)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/users/u%201%2Fx" {
		t.Errorf("Location = %q", loc)
	}
	checkJSON(t, rec, `{
		"id": "u 1/x",
		"username": "user-u 1/x",
		"email": "u 1/x@example.com",
		"created_at": "2025-03-04T05:06:07Z",
		"updated_at": "2025-03-04T06:06:07.5Z"
	}`)
	if strings.Contains(rec.Body.String(), testPassword) {
		t.Error("response echoes the password")
	}
}

func TestGetUser(t *testing.T) {
	users := &fakeUsers{getUser: func(ctx context.Context, in *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
		if in.GetId() != "u1" {
			return nil, status.Error(codes.NotFound, "no such user")
		}
		return &userv1.GetUserResponse{User: testUser("u1")}, nil
	}}
	h, _ := newTestHandler(t, nil, users)
	rec := serve(t, h, request{method: "GET", path: "/v1/users/u1", header: bearer()})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	checkJSON(t, rec, `{
		"id": "u1",
		"username": "user-u1",
		"email": "u1@example.com",
		"created_at": "2025-03-04T05:06:07Z",
		"updated_at": "2025-03-04T06:06:07.5Z"
	}`)

	rec = serve(t, h, request{method: "GET", path: "/v1/users/u2", header: bearer()})
	checkError(t, rec, http.StatusNotFound, "NOT_FOUND")
}

func TestDeleteUser(t *testing.T) {
	var got string
	users := &fakeUsers{deleteUser: func(_ context.Context, in *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
		got = in.GetId()
		return &userv1.DeleteUserResponse{}, nil
	}}
	h, _ := newTestHandler(t, nil, users)
	rec := serve(t, h, request{method: "DELETE", path: "/v1/users/u1", header: bearer()})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	if rec.Body.Len() != 0 {
		t.Errorf("204 with body %q", rec.Body.String())
	}
	if got != "u1" {
		t.Errorf("id = %q, want u1", got)
	}
}

func TestListUsers(t *testing.T) {
	var got *userv1.ListUsersRequest
	users := &fakeUsers{listUsers: func(_ context.Context, in *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
		got = in
		if in.GetPageToken() == "last" {
			return &userv1.ListUsersResponse{}, nil
		}
		return &userv1.ListUsersResponse{
			Users:         []*userv1.User{testUser("u1"), testUser("u2")},
			NextPageToken: "next",
		}, nil
	}}
	h, _ := newTestHandler(t, nil, users)

	rec := serve(t, h, request{method: "GET", path: "/v1/users?page_size=2&page_token=abc", header: bearer()})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	if got.GetPageSize() != 2 || got.GetPageToken() != "abc" {
		t.Errorf("request = %v", got)
	}
	checkJSON(t, rec, `{
		"users": [
			{"id":"u1","username":"user-u1","email":"u1@example.com","created_at":"2025-03-04T05:06:07Z","updated_at":"2025-03-04T06:06:07.5Z"},
			{"id":"u2","username":"user-u2","email":"u2@example.com","created_at":"2025-03-04T05:06:07Z","updated_at":"2025-03-04T06:06:07.5Z"}
		],
		"next_page_token": "next"
	}`)

	// No parameters: defaults; an empty page is [] not null.
	rec = serve(t, h, request{method: "GET", path: "/v1/users?page_token=last", header: bearer()})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	if got.GetPageSize() != 0 {
		t.Errorf("page_size = %d, want 0", got.GetPageSize())
	}
	checkJSON(t, rec, `{"users":[],"next_page_token":""}`)
}

func TestListUsersBadPageSize(t *testing.T) {
	for _, v := range []string{"abc", "1.5", "-1", "99999999999", "0x10", "%20"} {
		t.Run(v, func(t *testing.T) {
			users := &fakeUsers{}
			h, _ := newTestHandler(t, nil, users)
			rec := serve(t, h, request{method: "GET", path: "/v1/users?page_size=" + v, header: bearer()})
			e := checkError(t, rec, http.StatusBadRequest, "INVALID_ARGUMENT")
			if !strings.Contains(e.Message, "page_size") {
				t.Errorf("message %q does not name page_size", e.Message)
			}
			if n := users.total(); n != 0 {
				t.Errorf("%d downstream calls", n)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	auth, users := &fakeAuth{}, &fakeUsers{}
	h, _ := newTestHandler(t, auth, users)
	rec := serve(t, h, request{method: "GET", path: "/v1/healthz"})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
	}
	checkJSON(t, rec, `{"status":"ok"}`)
	if auth.total()+users.total() != 0 {
		t.Error("healthz called downstream")
	}
}

// Authorization.

// authedRoutes are the routes that need a bearer token, with fakes that
// record the outgoing authorization metadata.
func authedRoutes(seen *[]string) (*fakeUsers, []request) {
	record := func(ctx context.Context) { *seen = outgoingAuthorization(ctx) }
	users := &fakeUsers{
		getUser: func(ctx context.Context, _ *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
			record(ctx)
			return &userv1.GetUserResponse{User: testUser("u1")}, nil
		},
		listUsers: func(ctx context.Context, _ *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
			record(ctx)
			return &userv1.ListUsersResponse{}, nil
		},
		deleteUser: func(ctx context.Context, _ *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
			record(ctx)
			return &userv1.DeleteUserResponse{}, nil
		},
	}
	return users, []request{
		{method: "GET", path: "/v1/users"},
		{method: "GET", path: "/v1/users/u1"},
		{method: "DELETE", path: "/v1/users/u1"},
	}
}

func TestAuthorizationForwarded(t *testing.T) {
	var seen []string
	users, reqs := authedRoutes(&seen)
	h, _ := newTestHandler(t, nil, users)
	for _, req := range reqs {
		for _, hdr := range []string{"Bearer " + testToken, "bearer  " + testToken, "BEARER " + testToken + " "} {
			t.Run(req.method+" "+req.path+" "+hdr[:6], func(t *testing.T) {
				seen = nil
				req.header = http.Header{"Authorization": {hdr}}
				rec := serve(t, h, req)
				if rec.Code/100 != 2 {
					t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
				}
				if want := []string{"Bearer " + testToken}; !reflect.DeepEqual(seen, want) {
					t.Errorf("outgoing authorization = %q, want %q", seen, want)
				}
			})
		}
	}
}

func TestMissingBearer(t *testing.T) {
	var seen []string
	users, reqs := authedRoutes(&seen)
	h, logs := newTestHandler(t, nil, users)
	for _, req := range reqs {
		for name, hdr := range map[string][]string{
			"missing":      nil,
			"empty":        {""},
			"basic":        {"Basic " + testToken},
			"no token":     {"Bearer"},
			"blank token":  {"Bearer   "},
			"no space":     {"Bearer" + testToken},
			"bad chars":    {"Bearer " + testToken + "\x01"},
			"two tokens":   {"Bearer " + testToken + " " + testToken},
			"two headers":  {"Bearer " + testToken, "Bearer " + testToken},
			"only padding": {"Bearer ==="},
		} {
			t.Run(req.method+" "+req.path+" "+name, func(t *testing.T) {
				req.header = http.Header{}
				if hdr != nil {
					req.header["Authorization"] = hdr
				}
				rec := serve(t, h, req)
				e := checkError(t, rec, http.StatusUnauthorized, "UNAUTHENTICATED")
				if strings.Contains(e.Message, testToken) {
					t.Errorf("error echoes the token: %q", e.Message)
				}
				if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			})
		}
	}
	if n := users.total(); n != 0 {
		t.Errorf("%d downstream calls without a valid bearer token", n)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Error("token logged")
	}
}

// Deadlines.

func TestCallDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		timeout time.Duration
	}{
		{"default", nil, DefaultCallTimeout},
		{"custom", []Option{WithCallTimeout(2 * time.Second)}, 2 * time.Second},
		{"non-positive keeps default", []Option{WithCallTimeout(0)}, DefaultCallTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu        sync.Mutex
				remaining []time.Duration
			)
			record := func(ctx context.Context) {
				d, ok := ctx.Deadline()
				mu.Lock()
				defer mu.Unlock()
				if !ok {
					remaining = append(remaining, -1)
					return
				}
				remaining = append(remaining, time.Until(d))
			}
			auth := &fakeAuth{
				login: func(ctx context.Context, _ *authv1.LoginRequest) (*authv1.LoginResponse, error) {
					record(ctx)
					return &authv1.LoginResponse{Tokens: testTokens()}, nil
				},
				refresh: func(ctx context.Context, _ *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
					record(ctx)
					return &authv1.RefreshResponse{Tokens: testTokens()}, nil
				},
				logout: func(ctx context.Context, _ *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
					record(ctx)
					return &authv1.LogoutResponse{}, nil
				},
			}
			users := &fakeUsers{
				createUser: func(ctx context.Context, _ *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
					record(ctx)
					return &userv1.CreateUserResponse{User: testUser("u1")}, nil
				},
				getUser: func(ctx context.Context, _ *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
					record(ctx)
					return &userv1.GetUserResponse{User: testUser("u1")}, nil
				},
				listUsers: func(ctx context.Context, _ *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
					record(ctx)
					return &userv1.ListUsersResponse{}, nil
				},
				deleteUser: func(ctx context.Context, _ *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
					record(ctx)
					return &userv1.DeleteUserResponse{}, nil
				},
			}
			h, _ := newTestHandler(t, auth, users, tc.opts...)
			reqs := []request{
				{method: "POST", path: "/v1/login", body: `{"username":"a","password":"b"}`},
				{method: "POST", path: "/v1/refresh", body: `{"refresh_token":"r"}`},
				{method: "POST", path: "/v1/logout", body: `{"refresh_token":"r"}`},
				{method: "POST", path: "/v1/users", body: `{"username":"a","email":"a@b.c","password":"b"}`},
				{method: "GET", path: "/v1/users", header: bearer()},
				{method: "GET", path: "/v1/users/u1", header: bearer()},
				{method: "DELETE", path: "/v1/users/u1", header: bearer()},
			}
			for _, req := range reqs {
				if rec := serve(t, h, req); rec.Code/100 != 2 {
					t.Fatalf("%s %s: status = %d; body %s", req.method, req.path, rec.Code, rec.Body.String())
				}
			}
			if len(remaining) != len(reqs) {
				t.Fatalf("%d downstream calls, want %d", len(remaining), len(reqs))
			}
			for i, d := range remaining {
				if d <= 0 || d > tc.timeout || d < tc.timeout-time.Second {
					t.Errorf("%s %s: time left on the downstream deadline = %v, want within (%v-1s, %v]",
						reqs[i].method, reqs[i].path, d, tc.timeout, tc.timeout)
				}
			}
		})
	}
}

func TestSlowDownstreamTimesOut(t *testing.T) {
	for name, errOf := range map[string]func(context.Context) error{
		// What a real gRPC client returns, and what a bare context error
		// looks like; both are 504.
		"grpc status":   func(ctx context.Context) error { return status.FromContextError(ctx.Err()).Err() },
		"context error": func(ctx context.Context) error { return ctx.Err() },
	} {
		t.Run(name, func(t *testing.T) {
			users := &fakeUsers{getUser: func(ctx context.Context, _ *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
				select {
				case <-ctx.Done():
					return nil, errOf(ctx)
				case <-time.After(5 * time.Second):
					// Fail instead of hanging when no deadline is set.
					return nil, status.Error(codes.Internal, "no deadline")
				}
			}}
			h, _ := newTestHandler(t, nil, users, WithCallTimeout(50*time.Millisecond))
			start := time.Now()
			rec := serve(t, h, request{method: "GET", path: "/v1/users/u1", header: bearer()})
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
			checkError(t, rec, http.StatusGatewayTimeout, "DEADLINE_EXCEEDED")
		})
	}
}

// Routing.

func TestRoutes(t *testing.T) {
	want := []string{
		"POST /v1/login",
		"POST /v1/refresh",
		"POST /v1/logout",
		"POST /v1/users",
		"GET /v1/users",
		"GET /v1/users/{id}",
		"DELETE /v1/users/{id}",
		"GET /v1/healthz",
	}
	got := Routes()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Routes() = %q, want %q", got, want)
	}
	got[0] = "mutated"
	if Routes()[0] != want[0] {
		t.Error("Routes returns shared state")
	}
}

// TestPatternVisibleToMiddleware checks that middleware wrapping the handler
// sees the matched route template in r.Pattern once the handler returns.
func TestPatternVisibleToMiddleware(t *testing.T) {
	auth := &fakeAuth{login: func(context.Context, *authv1.LoginRequest) (*authv1.LoginResponse, error) {
		return &authv1.LoginResponse{Tokens: testTokens()}, nil
	}}
	users := &fakeUsers{
		getUser: func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
			return nil, status.Error(codes.NotFound, "no such user")
		},
	}
	inner := NewHandler(auth, users, WithLogger(jsonLogger(io.Discard)))
	var pattern string
	h := requestid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r)
		pattern = r.Pattern
	}))
	for _, tc := range []struct {
		req  request
		want string
	}{
		{request{method: "POST", path: "/v1/login", body: `{"username":"a","password":"b"}`}, "POST /v1/login"},
		{request{method: "GET", path: "/v1/users/u9", header: bearer()}, "GET /v1/users/{id}"},
		{request{method: "GET", path: "/v1/users/u9"}, "GET /v1/users/{id}"}, // 401
		{request{method: "GET", path: "/v1/healthz"}, "GET /v1/healthz"},
		{request{method: "GET", path: "/nope"}, ""},
		{request{method: "PUT", path: "/v1/login"}, ""},
	} {
		pattern = "unset"
		serve(t, h, tc.req)
		if pattern != tc.want {
			t.Errorf("%s %s: r.Pattern = %q, want %q", tc.req.method, tc.req.path, pattern, tc.want)
		}
	}
}

func TestNotFound(t *testing.T) {
	auth, users := &fakeAuth{}, &fakeUsers{}
	h, _ := newTestHandler(t, auth, users)
	for _, req := range []request{
		{method: "GET", path: "/"},
		{method: "GET", path: "/nope"},
		{method: "GET", path: "/v1"},
		{method: "GET", path: "/v1/users/", header: bearer()},
		{method: "GET", path: "/v1/users/u1/extra", header: bearer()},
		{method: "POST", path: "/v2/login", body: `{}`},
		{method: "GET", path: "/v1/nope/<script>"},
	} {
		t.Run(req.method+" "+req.path, func(t *testing.T) {
			rec := serve(t, h, req)
			e := checkError(t, rec, http.StatusNotFound, "NOT_FOUND")
			if strings.Contains(e.Message, "<script>") {
				t.Errorf("message echoes the path: %q", e.Message)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("missing X-Content-Type-Options: nosniff")
			}
		})
	}
	if auth.total()+users.total() != 0 {
		t.Error("downstream called")
	}
}

func TestMethodNotAllowed(t *testing.T) {
	auth, users := &fakeAuth{}, &fakeUsers{}
	h, _ := newTestHandler(t, auth, users)
	for _, tc := range []struct {
		req   request
		allow []string
	}{
		{request{method: "GET", path: "/v1/login"}, []string{"POST"}},
		{request{method: "DELETE", path: "/v1/logout"}, []string{"POST"}},
		{request{method: "PUT", path: "/v1/users", body: `{}`}, []string{"GET", "HEAD", "POST"}},
		{request{method: "POST", path: "/v1/users/u1", body: `{}`}, []string{"DELETE", "GET", "HEAD"}},
		{request{method: "POST", path: "/v1/healthz"}, []string{"GET", "HEAD"}},
	} {
		t.Run(tc.req.method+" "+tc.req.path, func(t *testing.T) {
			rec := serve(t, h, tc.req)
			checkError(t, rec, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
			allow := strings.Split(rec.Header().Get("Allow"), ", ")
			for _, m := range tc.allow {
				found := false
				for _, a := range allow {
					found = found || a == m
				}
				if !found {
					t.Errorf("Allow = %q, missing %s", rec.Header().Get("Allow"), m)
				}
			}
		})
	}
	if auth.total()+users.total() != 0 {
		t.Error("downstream called")
	}
}

// TestOverRealServer runs a few requests through a real http.Server, where
// the mux's unmatched-route answers and MaxBytesReader behave as in
// production.
func TestOverRealServer(t *testing.T) {
	auth := &fakeAuth{login: func(context.Context, *authv1.LoginRequest) (*authv1.LoginResponse, error) {
		return &authv1.LoginResponse{Tokens: testTokens()}, nil
	}}
	h, _ := newTestHandler(t, auth, nil, WithMaxBodyBytes(128))
	srv := httptest.NewServer(h)
	defer srv.Close()

	// do returns the status and header rather than the *http.Response, whose
	// body it has already read and closed.
	do := func(method, path, ct string, body io.Reader) (int, http.Header, errorDetail) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorBody
		if resp.StatusCode >= 400 {
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type = %q", method, path, ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Errorf("%s %s: error body: %v", method, path, err)
			}
			if eb.Error.RequestID == "" || eb.Error.RequestID != resp.Header.Get(requestid.HeaderName) {
				t.Errorf("%s %s: request_id = %q", method, path, eb.Error.RequestID)
			}
		}
		return resp.StatusCode, resp.Header, eb.Error
	}

	if status, _, _ := do("POST", "/v1/login", "application/json", strings.NewReader(`{"username":"a","password":"b"}`)); status != 200 {
		t.Errorf("login: %d", status)
	}
	if status, header, e := do("GET", "/v1/login", "", nil); status != 405 || e.Code != "METHOD_NOT_ALLOWED" || header.Get("Allow") != "POST" {
		t.Errorf("GET /v1/login: %d %q Allow %q", status, e.Code, header.Get("Allow"))
	}
	if status, _, e := do("GET", "/missing", "", nil); status != 404 || e.Code != "NOT_FOUND" {
		t.Errorf("GET /missing: %d %q", status, e.Code)
	}
	// Chunked (no Content-Length) and over the limit.
	big := io.MultiReader(strings.NewReader(`{"username":"`), strings.NewReader(strings.Repeat("a", 1000)), strings.NewReader(`"}`))
	if status, _, e := do("POST", "/v1/login", "application/json", big); status != 413 || e.Code != "PAYLOAD_TOO_LARGE" {
		t.Errorf("chunked too large: %d %q", status, e.Code)
	}
	// With Content-Length over the limit.
	if status, _, e := do("POST", "/v1/login", "application/json", strings.NewReader(`{"username":"`+strings.Repeat("a", 1000)+`"}`)); status != 413 || e.Code != "PAYLOAD_TOO_LARGE" {
		t.Errorf("too large: %d %q", status, e.Code)
	}
}

func TestNewHandlerNilClients(t *testing.T) {
	for name, f := range map[string]func(){
		"auth":  func() { NewHandler(nil, &fakeUsers{}) },
		"users": func() { NewHandler(&fakeAuth{}, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

// TestEmptyDownstreamReply: a reply without its payload is the downstream's
// bug, answered as a generic 500.
func TestEmptyDownstreamReply(t *testing.T) {
	auth := &fakeAuth{login: func(context.Context, *authv1.LoginRequest) (*authv1.LoginResponse, error) {
		return &authv1.LoginResponse{}, nil
	}}
	users := &fakeUsers{getUser: func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
		return &userv1.GetUserResponse{}, nil
	}}
	h, logs := newTestHandler(t, auth, users)
	rec := serve(t, h, request{method: "POST", path: "/v1/login", body: `{"username":"a","password":"` + testPassword + `"}`})
	checkError(t, rec, http.StatusInternalServerError, "INTERNAL")
	rec = serve(t, h, request{method: "GET", path: "/v1/users/u1", header: bearer()})
	checkError(t, rec, http.StatusInternalServerError, "INTERNAL")
	if !strings.Contains(logs.String(), "missing") {
		t.Errorf("not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), testPassword) || strings.Contains(logs.String(), testToken) {
		t.Error("secret logged")
	}
}

// jsonLogger returns a logrus logger writing JSON lines to w.
func jsonLogger(w io.Writer) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(w)
	l.SetFormatter(&logrus.JSONFormatter{})
	return l
}
