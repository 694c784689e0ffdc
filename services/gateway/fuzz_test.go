package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
)

// FuzzHandler sends arbitrary methods, paths, queries, Authorization
// headers and bodies to the gateway's API (backends answer as fakes do):
// no input may produce a 5xx or a panic. Seeds live in
// testdata/fuzz/FuzzHandler; `go test -fuzz FuzzHandler ./services/gateway`
// explores from them.
func FuzzHandler(f *testing.F) {
	for _, seed := range []struct{ method, path, query, auth, body string }{
		{"GET", "/v1/users/0190a7b2-aaaa-7bbb-8ccc-0123456789ab", "", "Bearer " + testToken, ""},
		{"GET", "/v1/users", "page_size=20&page_token=abc", "Bearer " + testToken, ""},
		{"POST", "/v1/users", "", "", `{"username":"alice","email":"alice@example.com","password":"correct-horse"}`},
		{"POST", "/v1/login", "", "", `{"username":"alice","password":"correct-horse"}`},
		{"POST", "/v1/refresh", "", "", `{"refresh_token":"x"}`},
		{"DELETE", "/v1/users/\xff", "", "Bearer \xfe", ""},
		{"GET", "/v1/users/\xff\xfe", "", "Bearer " + testToken, ""},
		{"GET", "/v1/users", "page_token=%ff", "Bearer " + testToken, ""},
		{"POST", "/v1/users", "", "", "{\"username\":\"\\ud800\",\"password\":\"\xff\"}"},
		{"PATCH", "/v1/users/%2e%2e", "page_size=-1", "Basic", "[]"},
	} {
		f.Add(seed.method, seed.path, seed.query, seed.auth, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, method, path, query, auth string, body []byte) {
		h, _ := newTestHandler(t, marshallingAuth(), marshallingUsers())
		if !strings.HasPrefix(path, "/") {
			path = "/" + path // what a server hands a handler
		}
		if method == "" || strings.ContainsAny(method, " \t\r\n") {
			method = http.MethodGet
		}
		r := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(string(body))),
			Host:       "gateway",
			RemoteAddr: "127.0.0.1:1234",
		}
		r.ContentLength = int64(len(body))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r = r.WithContext(t.Context())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%s %q?%q (auth %q, body %q) answered %d: %s", method, path, query, auth, body, rec.Code, rec.Body.String())
		}
	})
}

// marshal does what gRPC's codec does to a request before sending it:
// proto.Marshal refuses strings that are not UTF-8, which a real client
// answers with codes.Internal (a 500 at the gateway).
func marshal(m proto.Message) error {
	if _, err := proto.Marshal(m); err != nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	return nil
}

// marshallingAuth answers every call with success once its request
// marshals.
func marshallingAuth() *fakeAuth {
	return &fakeAuth{
		login: func(_ context.Context, in *authv1.LoginRequest) (*authv1.LoginResponse, error) {
			return &authv1.LoginResponse{Tokens: testTokens()}, marshal(in)
		},
		refresh: func(_ context.Context, in *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
			return &authv1.RefreshResponse{Tokens: testTokens()}, marshal(in)
		},
		logout: func(_ context.Context, in *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
			return &authv1.LogoutResponse{}, marshal(in)
		},
	}
}

// marshallingUsers is marshallingAuth's twin for the user service.
func marshallingUsers() *fakeUsers {
	return &fakeUsers{
		createUser: func(_ context.Context, in *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
			return &userv1.CreateUserResponse{User: testUser("u1")}, marshal(in)
		},
		getUser: func(_ context.Context, in *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
			return &userv1.GetUserResponse{User: testUser("u1")}, marshal(in)
		},
		listUsers: func(_ context.Context, in *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
			return &userv1.ListUsersResponse{Users: []*userv1.User{testUser("u1")}}, marshal(in)
		},
		deleteUser: func(_ context.Context, in *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
			return &userv1.DeleteUserResponse{}, marshal(in)
		},
	}
}
