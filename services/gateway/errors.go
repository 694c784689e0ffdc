package gateway

import (
	"encoding/json"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/golden-stack/golden/observability/requestid"
)

// StatusClientClosedRequest is the non-standard HTTP status (from nginx, and
// used by grpc-gateway) for a request whose client went away: codes.Canceled.
const StatusClientClosedRequest = 499

// internalMessage replaces the downstream message of Internal, Unknown and
// DataLoss errors, which may describe the service's internals.
const internalMessage = "internal error"

// HTTPStatus returns the HTTP status the gateway answers a gRPC status code
// with. The mapping is grpc-gateway's (runtime.HTTPStatusFromCode); a code
// outside the known set maps to 500.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return StatusClientClosedRequest
	case codes.Unknown:
		return http.StatusInternalServerError
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.FailedPrecondition:
		// grpc-gateway deliberately maps FailedPrecondition to 400, not 412.
		return http.StatusBadRequest
	case codes.Aborted:
		return http.StatusConflict
	case codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Internal:
		return http.StatusInternalServerError
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DataLoss:
		return http.StatusInternalServerError
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// codeName returns the canonical upper-case name of c (google.rpc.Code), the
// "code" of the JSON error body.
func codeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	case codes.Unknown:
		return "UNKNOWN"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.Aborted:
		return "ABORTED"
	case codes.OutOfRange:
		return "OUT_OF_RANGE"
	case codes.Unimplemented:
		return "UNIMPLEMENTED"
	case codes.Internal:
		return "INTERNAL"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.DataLoss:
		return "DATA_LOSS"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	default:
		return "UNKNOWN"
	}
}

// apiError is an error as the gateway answers it.
type apiError struct {
	status  int    // HTTP status
	code    string // machine-readable code, e.g. "NOT_FOUND"
	message string // safe to show to the client
}

// httpError returns the error for an HTTP-level failure the gateway detects
// itself (bad body, missing token, unknown route). The code is the gRPC name
// where one fits, so clients see one vocabulary.
func httpError(httpStatus int, message string) apiError {
	var code string
	switch httpStatus {
	case http.StatusBadRequest:
		code = "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		code = "UNAUTHENTICATED"
	case http.StatusForbidden:
		code = "PERMISSION_DENIED"
	case http.StatusNotFound:
		code = "NOT_FOUND"
	case http.StatusMethodNotAllowed:
		code = "METHOD_NOT_ALLOWED"
	case http.StatusRequestEntityTooLarge:
		code = "PAYLOAD_TOO_LARGE"
	case http.StatusUnsupportedMediaType:
		code = "UNSUPPORTED_MEDIA_TYPE"
	case http.StatusTooManyRequests:
		code = "RESOURCE_EXHAUSTED"
	case http.StatusInternalServerError:
		code = "INTERNAL"
	case http.StatusNotImplemented:
		code = "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		code = "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		code = "DEADLINE_EXCEEDED"
	default:
		code = "UNKNOWN"
	}
	if message == "" {
		message = strings.ToLower(http.StatusText(httpStatus))
	}
	if message == "" {
		message = "error"
	}
	return apiError{status: httpStatus, code: code, message: message}
}

// grpcError converts an error from a downstream call to the error the client
// sees, and returns the gRPC status it was read as (for logging). Errors that
// carry no gRPC status are read as context errors where they are one
// (DeadlineExceeded, Canceled) and as Unknown otherwise. The message of
// Internal, Unknown and DataLoss is replaced by a generic one.
func grpcError(err error) (apiError, *status.Status) {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	c := st.Code()
	if c == codes.OK {
		// A non-nil error that claims OK is a bug somewhere below us.
		c = codes.Unknown
	}
	e := apiError{status: HTTPStatus(c), code: codeName(c), message: st.Message()}
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		e.message = internalMessage
	default:
		if e.status == http.StatusInternalServerError {
			// Codes outside the known set.
			e.code, e.message = "UNKNOWN", internalMessage
		}
	}
	if e.message == "" {
		e.message = strings.ToLower(http.StatusText(e.status))
		if e.message == "" {
			e.message = strings.ToLower(strings.ReplaceAll(e.code, "_", " "))
		}
	}
	return e, st
}

// errorBody is the JSON body of every error response:
//
//	{"error":{"code":"NOT_FOUND","message":"...","request_id":"..."}}
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError writes e as the JSON error body, with the request ID from r's
// context.
func writeError(w http.ResponseWriter, r *http.Request, e apiError) {
	body := errorBody{Error: errorDetail{
		Code:      e.code,
		Message:   e.message,
		RequestID: requestid.FromContext(r.Context()),
	}}
	writeJSON(w, e.status, body)
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The response types are plain structs of strings; this cannot
		// happen, but answer with a valid body if it does.
		httpStatus = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"INTERNAL","message":"internal error","request_id":""}}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(b)
}

// fallbackWriter turns the plain-text errors that http.ServeMux writes for
// requests no route matches (404, 405 with its Allow header, 400 for "*")
// into JSON error bodies. Redirects and other non-error answers pass through.
type fallbackWriter struct {
	w           http.ResponseWriter
	r           *http.Request
	wroteHeader bool
	intercepted bool
}

func (f *fallbackWriter) Header() http.Header { return f.w.Header() }

func (f *fallbackWriter) WriteHeader(code int) {
	if f.wroteHeader {
		return
	}
	f.wroteHeader = true
	if code >= http.StatusBadRequest {
		f.intercepted = true
		// The path is not echoed: it is client input and may carry
		// anything a client mistakenly put there.
		msg := ""
		switch code {
		case http.StatusNotFound:
			msg = "no such route"
		case http.StatusMethodNotAllowed:
			msg = "method not allowed for this route"
		}
		writeError(f.w, f.r, httpError(code, msg))
		return
	}
	f.w.WriteHeader(code)
}

func (f *fallbackWriter) Write(b []byte) (int, error) {
	if !f.wroteHeader {
		f.WriteHeader(http.StatusOK)
	}
	if f.intercepted {
		return len(b), nil
	}
	return f.w.Write(b)
}
