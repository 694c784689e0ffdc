package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/requestid"
)

func TestHTTPStatus(t *testing.T) {
	for c, want := range map[codes.Code]int{
		codes.OK:                 200,
		codes.Canceled:           499,
		codes.Unknown:            500,
		codes.InvalidArgument:    400,
		codes.DeadlineExceeded:   504,
		codes.NotFound:           404,
		codes.AlreadyExists:      409,
		codes.PermissionDenied:   403,
		codes.ResourceExhausted:  429,
		codes.FailedPrecondition: 400,
		codes.Aborted:            409,
		codes.OutOfRange:         400,
		codes.Unimplemented:      501,
		codes.Internal:           500,
		codes.Unavailable:        503,
		codes.DataLoss:           500,
		codes.Unauthenticated:    401,
		codes.Code(99):           500,
	} {
		if got := HTTPStatus(c); got != want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", c, got, want)
		}
	}
}

// TestDownstreamErrors sends every gRPC code through a real route and checks
// the HTTP status, the JSON body and which messages reach the client.
func TestDownstreamErrors(t *testing.T) {
	const detail = "downstream detail: db at 10.0.0.7 said no"
	for _, tc := range []struct {
		code       codes.Code
		status     int
		name       string
		passesText bool
	}{
		{codes.Canceled, 499, "CANCELLED", true},
		{codes.Unknown, 500, "UNKNOWN", false},
		{codes.InvalidArgument, 400, "INVALID_ARGUMENT", true},
		{codes.DeadlineExceeded, 504, "DEADLINE_EXCEEDED", true},
		{codes.NotFound, 404, "NOT_FOUND", true},
		{codes.AlreadyExists, 409, "ALREADY_EXISTS", true},
		{codes.PermissionDenied, 403, "PERMISSION_DENIED", true},
		{codes.ResourceExhausted, 429, "RESOURCE_EXHAUSTED", true},
		{codes.FailedPrecondition, 400, "FAILED_PRECONDITION", true},
		{codes.Aborted, 409, "ABORTED", true},
		{codes.OutOfRange, 400, "OUT_OF_RANGE", true},
		{codes.Unimplemented, 501, "UNIMPLEMENTED", true},
		{codes.Internal, 500, "INTERNAL", false},
		{codes.Unavailable, 503, "UNAVAILABLE", true},
		{codes.DataLoss, 500, "DATA_LOSS", false},
		{codes.Unauthenticated, 401, "UNAUTHENTICATED", true},
		{codes.Code(99), 500, "UNKNOWN", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := &fakeUsers{getUser: func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
				return nil, status.Error(tc.code, detail)
			}}
			h, logs := newTestHandler(t, nil, users)
			rec := serve(t, h, request{method: "GET", path: "/v1/users/u1", header: bearer()})
			e := checkError(t, rec, tc.status, tc.name)
			if tc.passesText {
				if e.Message != detail {
					t.Errorf("message = %q, want the downstream message", e.Message)
				}
			} else {
				if e.Message != "internal error" {
					t.Errorf("message = %q, want %q", e.Message, "internal error")
				}
			}
			// Failures whose detail is hidden are logged with it, and with
			// the request ID that joins the log line to the response.
			if tc.status >= 500 {
				if l := logs.String(); !strings.Contains(l, detail) || !strings.Contains(l, e.RequestID) || !strings.Contains(l, "GET /v1/users/{id}") {
					t.Errorf("log %q lacks the detail, the request ID or the route", l)
				}
			}
			if strings.Contains(logs.String(), testToken) {
				t.Error("token logged")
			}
		})
	}
}

func TestDownstreamErrorEmptyMessage(t *testing.T) {
	users := &fakeUsers{getUser: func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
		return nil, status.Error(codes.NotFound, "")
	}}
	h, _ := newTestHandler(t, nil, users)
	rec := serve(t, h, request{method: "GET", path: "/v1/users/u1", header: bearer()})
	if e := checkError(t, rec, 404, "NOT_FOUND"); e.Message != "not found" {
		t.Errorf("message = %q", e.Message)
	}
}

func TestDownstreamNonStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"plain", errors.New("secret internals"), 500, "UNKNOWN"},
		{"wrapped status", fmt.Errorf("calling: %w", status.Error(codes.NotFound, "no such user")), 404, "NOT_FOUND"},
		{"deadline", fmt.Errorf("calling: %w", context.DeadlineExceeded), 504, "DEADLINE_EXCEEDED"},
		{"canceled", context.Canceled, 499, "CANCELLED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := &fakeUsers{getUser: func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
				return nil, tc.err
			}}
			h, _ := newTestHandler(t, nil, users)
			rec := serve(t, h, request{method: "GET", path: "/v1/users/u1", header: bearer()})
			e := checkError(t, rec, tc.status, tc.code)
			if tc.status == 500 && e.Message != "internal error" {
				t.Errorf("message = %q", e.Message)
			}
		})
	}
}

// TestErrorKeepsClientRequestID: a valid X-Request-ID from the client is the
// request_id of the error body.
func TestErrorKeepsClientRequestID(t *testing.T) {
	users := &fakeUsers{getUser: func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
		return nil, status.Error(codes.PermissionDenied, "not yours")
	}}
	h, _ := newTestHandler(t, nil, users)
	hdr := bearer()
	hdr.Set(requestid.HeaderName, "client-req-0001")
	rec := serve(t, h, request{method: "GET", path: "/v1/users/u1", header: hdr})
	if e := checkError(t, rec, 403, "PERMISSION_DENIED"); e.RequestID != "client-req-0001" {
		t.Errorf("request_id = %q", e.RequestID)
	}
}

// TestErrorWithoutRequestID: without the middleware the body still has the
// field, empty.
func TestErrorWithoutRequestID(t *testing.T) {
	h := NewHandler(&fakeAuth{}, &fakeUsers{})
	rec := serve(t, h, request{method: "GET", path: "/nope"})
	if rec.Code != 404 {
		t.Fatalf("status = %d", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), `"request_id":""`) {
		t.Errorf("body = %s", rec.Body.String())
	}
}

func TestHTTPErrorCodes(t *testing.T) {
	for s, want := range map[int]string{
		http.StatusBadRequest:            "INVALID_ARGUMENT",
		http.StatusUnauthorized:          "UNAUTHENTICATED",
		http.StatusNotFound:              "NOT_FOUND",
		http.StatusMethodNotAllowed:      "METHOD_NOT_ALLOWED",
		http.StatusRequestEntityTooLarge: "PAYLOAD_TOO_LARGE",
		http.StatusUnsupportedMediaType:  "UNSUPPORTED_MEDIA_TYPE",
		http.StatusInternalServerError:   "INTERNAL",
		http.StatusTeapot:                "UNKNOWN",
		599:                              "UNKNOWN",
	} {
		e := httpError(s, "")
		if e.code != want || e.status != s || e.message == "" {
			t.Errorf("httpError(%d) = %+v, want code %q", s, e, want)
		}
	}
}
