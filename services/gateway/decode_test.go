package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
)

// TestStrictDecoding sends bad bodies to every route that takes one; none may
// reach downstream, and no error may echo the password.
func TestStrictDecoding(t *testing.T) {
	const limit = 256
	pw := `"password":"` + testPassword + `"`
	for _, tc := range []struct {
		name        string
		contentType string // "-" sends none
		body        string
		status      int
		code        string
		mentions    string // the message must contain this
	}{
		{"unknown field", "", `{"username":"a",` + pw + `,"admin":true}`, 400, "INVALID_ARGUMENT", `"admin"`},
		{"field in other case", "", `{"Username":"a",` + pw + `}`, 400, "INVALID_ARGUMENT", `"Username"`},
		{"duplicate field", "", `{"username":"a","username":"b",` + pw + `}`, 400, "INVALID_ARGUMENT", `"username"`},
		{"trailing object", "", `{"username":"a",` + pw + `}{}`, 400, "INVALID_ARGUMENT", "single JSON object"},
		{"trailing garbage", "", `{"username":"a",` + pw + `} x`, 400, "INVALID_ARGUMENT", "single JSON object"},
		{"trailing brace", "", `{"username":"a",` + pw + `}}`, 400, "INVALID_ARGUMENT", "single JSON object"},
		{"empty", "", ``, 400, "INVALID_ARGUMENT", "empty"},
		{"whitespace", "", " \n\t ", 400, "INVALID_ARGUMENT", "empty"},
		{"null", "", `null`, 400, "INVALID_ARGUMENT", "JSON object"},
		{"array", "", `[{"username":"a"}]`, 400, "INVALID_ARGUMENT", "JSON object"},
		{"string", "", `"` + testPassword + `"`, 400, "INVALID_ARGUMENT", "JSON object"},
		{"malformed", "", `{"username":"a",` + pw, 400, "INVALID_ARGUMENT", "not valid JSON"},
		{"bad syntax", "", `{"username":a}`, 400, "INVALID_ARGUMENT", "not valid JSON"},
		{"number for string", "", `{"username":1,` + pw + `}`, 400, "INVALID_ARGUMENT", `"username" must be a string`},
		{"object for string", "", `{"password":{"x":"` + testPassword + `"}}`, 400, "INVALID_ARGUMENT", `"password" must be a string`},
		{"no content type", "-", `{"username":"a",` + pw + `}`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"text/plain", "text/plain", `{"username":"a",` + pw + `}`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"form", "application/x-www-form-urlencoded", `username=a&password=b`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"json suffix", "application/jsonx", `{"username":"a",` + pw + `}`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"other charset", "application/json; charset=latin1", `{"username":"a",` + pw + `}`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"other parameter", "application/json; foo=bar", `{"username":"a",` + pw + `}`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"bad media type", "application/json; ;", `{"username":"a",` + pw + `}`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"too large", "", `{"username":"` + strings.Repeat("a", limit) + `",` + pw + `}`, 413, "PAYLOAD_TOO_LARGE", "256 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, users := &fakeAuth{}, &fakeUsers{}
			h, logs := newTestHandler(t, auth, users, WithMaxBodyBytes(limit))
			for _, path := range []string{"/v1/login", "/v1/users"} {
				r := httptest.NewRequest("POST", path, strings.NewReader(tc.body))
				switch tc.contentType {
				case "":
					r.Header.Set("Content-Type", "application/json")
				case "-":
				default:
					r.Header.Set("Content-Type", tc.contentType)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if path == "/v1/users" && tc.name == "field in other case" {
					continue // checked on login; the user body has the same fields
				}
				e := checkError(t, rec, tc.status, tc.code)
				if !strings.Contains(e.Message, tc.mentions) {
					t.Errorf("%s: message %q does not mention %q", path, e.Message, tc.mentions)
				}
				if strings.Contains(rec.Body.String(), testPassword) {
					t.Errorf("%s: error echoes the password: %s", path, rec.Body.String())
				}
			}
			if n := auth.total() + users.total(); n != 0 {
				t.Errorf("%d downstream calls", n)
			}
			if strings.Contains(logs.String(), testPassword) {
				t.Error("password logged")
			}
		})
	}
}

// TestStrictDecodingRefreshBodies covers the refresh-token routes, whose one
// field is a secret.
func TestStrictDecodingRefreshBodies(t *testing.T) {
	for _, path := range []string{"/v1/refresh", "/v1/logout"} {
		for _, body := range []string{
			`{"refresh_token":"` + testRefresh + `","x":1}`,
			`{"refresh_token":"` + testRefresh + `"} {}`,
			`{"refresh_token":["` + testRefresh + `"]}`,
			`{"refresh_token":"` + testRefresh + `"`,
		} {
			auth := &fakeAuth{}
			h, _ := newTestHandler(t, auth, nil)
			rec := serve(t, h, request{method: "POST", path: path, body: body})
			checkError(t, rec, 400, "INVALID_ARGUMENT")
			if strings.Contains(rec.Body.String(), testRefresh) {
				t.Errorf("%s %s: error echoes the refresh token", path, body)
			}
			if auth.total() != 0 {
				t.Errorf("%s %s: downstream called", path, body)
			}
		}
	}
}

// TestDecodingAccepts checks bodies that strict decoding must still let
// through.
func TestDecodingAccepts(t *testing.T) {
	for _, tc := range []struct{ name, contentType, body string }{
		{"plain", "application/json", `{"username":"alice","password":"pw"}`},
		{"charset", "application/json; charset=utf-8", `{"username":"alice","password":"pw"}`},
		{"charset case", "Application/JSON; Charset=UTF-8", `{"username":"alice","password":"pw"}`},
		{"whitespace", "application/json", "\n {\"username\" : \"alice\",\n\"password\":\"pw\" }\n\n"},
		{"escaped key", "application/json", `{"user\u006eame":"alice","password":"pw"}`},
		{"missing field", "application/json", `{"username":"alice"}`},
		{"null field", "application/json", `{"username":"alice","password":null}`},
		{"unicode", "application/json", `{"username":"alice","password":"pw \u00e9\u2603"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *authv1.LoginRequest
			auth := &fakeAuth{login: func(_ context.Context, in *authv1.LoginRequest) (*authv1.LoginResponse, error) {
				got = in
				return &authv1.LoginResponse{Tokens: testTokens()}, nil
			}}
			h, _ := newTestHandler(t, auth, nil)
			r := httptest.NewRequest("POST", "/v1/login", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d; body %s", rec.Code, rec.Body.String())
			}
			if got.GetUsername() != "alice" {
				t.Errorf("username = %q", got.GetUsername())
			}
		})
	}
}

// TestMaxBodyBytesDefault checks the 1 MiB default at its edge.
func TestMaxBodyBytesDefault(t *testing.T) {
	users := &fakeUsers{createUser: func(context.Context, *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
		return &userv1.CreateUserResponse{User: testUser("u1")}, nil
	}}
	h, _ := newTestHandler(t, nil, users, WithMaxBodyBytes(-1))
	const prefix, suffix = `{"username":"`, `"}`
	fits := prefix + strings.Repeat("a", int(DefaultMaxBodyBytes)-len(prefix)-len(suffix)) + suffix
	rec := serve(t, h, request{method: "POST", path: "/v1/users", body: fits})
	if rec.Code != http.StatusCreated {
		t.Fatalf("1 MiB body: status = %d", rec.Code)
	}
	rec = serve(t, h, request{method: "POST", path: "/v1/users", body: fits + " "})
	checkError(t, rec, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
}

// TestDecodeJSONUnit exercises decodeJSON directly, including a body read
// without a known Content-Length.
func TestDecodeJSONUnit(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int32  `json:"count"`
		Skip  string `json:"-"`
		Plain string
	}
	for _, tc := range []struct {
		body   string
		status int // 0: accepted
		msg    string
	}{
		{`{"name":"n","count":3,"Plain":"p"}`, 0, ""},
		{`{"count":"3"}`, 400, `"count" must be an integer`},
		{`{"count":1.5}`, 400, `"count" must be an integer`},
		{`{"count":9999999999}`, 400, `"count" must be an integer`},
		{`{"Skip":"x"}`, 400, `unknown field "Skip"`},
		{`{"-":"x"}`, 400, `unknown field "-"`},
		{`{"plain":"x"}`, 400, `unknown field "plain"`},
		{`{"` + strings.Repeat("k", 500) + `":1}`, 400, `unknown field "` + strings.Repeat("k", maxEchoedFieldName) + `..."`},
		{`{"name":"a"` + strings.Repeat(" ", 2000) + `}`, 413, "1024 bytes"},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		r.ContentLength = -1 // as for a chunked body
		r.Header.Set("Content-Type", "application/json")
		var dst body
		e := decodeJSON(httptest.NewRecorder(), r, 1024, &dst)
		switch {
		case tc.status == 0 && e != nil:
			t.Errorf("%s: %+v", tc.body, *e)
		case tc.status != 0 && e == nil:
			t.Errorf("%s: accepted", tc.body)
		case e != nil && (e.status != tc.status || !strings.Contains(e.message, tc.msg)):
			t.Errorf("%s: %+v, want %d mentioning %q", tc.body, *e, tc.status, tc.msg)
		}
		if tc.status == 0 && (dst.Name != "n" || dst.Count != 3 || dst.Plain != "p") {
			t.Errorf("%s: decoded %+v", tc.body, dst)
		}
	}
}
