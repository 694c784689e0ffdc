package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// TestInvalidUTF8Refused sends bytes that are not UTF-8 in every place the
// API reads a string: each request is answered 400 naming the place, and
// no backend is called (gRPC would refuse the string, a 500 before).
func TestInvalidUTF8Refused(t *testing.T) {
	auth, users := &fakeAuth{}, &fakeUsers{}
	h, _ := newTestHandler(t, auth, users)
	for _, tc := range []struct {
		name string
		req  request
		want string
	}{
		{"path", request{method: "GET", path: "/v1/users/%ff%fe", header: bearer()}, "request path"},
		{"query value", request{method: "GET", path: "/v1/users?page_token=%c3%28", header: bearer()}, `query parameter "page_token"`},
		{"query name", request{method: "GET", path: "/v1/users?%ff=1", header: bearer()}, "query parameter name"},
		{"authorization", request{method: "GET", path: "/v1/users", header: http.Header{"Authorization": {"Bearer \xff\xfe"}}}, "Authorization header"},
		{"body bytes", request{method: "POST", path: "/v1/login", body: "{\"username\":\"alice\",\"password\":\"pa\xffss\"}"}, "request body"},
		{"body escape", request{method: "POST", path: "/v1/users", body: `{"username":"bob","email":"bob@example.com","password":"pa\ud800ss-word"}`}, `field "password"`},
		{"replacement char", request{method: "POST", path: "/v1/login", body: `{"username":"al` + "\uFFFD" + `ice","password":"x"}`}, `field "username"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, h, tc.req)
			e := checkError(t, rec, http.StatusBadRequest, "INVALID_ARGUMENT")
			if !strings.Contains(e.Message, tc.want) || !strings.Contains(e.Message, "UTF-8") {
				t.Errorf("message %q does not name %s as not UTF-8", e.Message, tc.want)
			}
		})
	}
	if n := auth.total() + users.total(); n != 0 {
		t.Errorf("%d backend calls for requests that are not UTF-8", n)
	}
}
