package logging

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/golden-stack/golden/observability/requestid"
)

// startHealth serves grpc.health.v1 behind the request ID and access log
// interceptors, as grpcserver chains them, and returns a client.
func startHealth(t *testing.T, l *Logger, sample float64) healthpb.HealthClient {
	t.Helper()
	srv := grpc.NewServer(
		grpc.Creds(insecure.NewCredentials()),
		grpc.ChainUnaryInterceptor(requestid.UnaryServerInterceptor(), UnaryServerInterceptor(l.Entry(), sample)),
	)
	hs := health.NewServer()
	hs.SetServingStatus("golden.user.v1.UserService", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	return healthpb.NewHealthClient(conn)
}

func TestUnaryAccessLog(t *testing.T) {
	l, out, _ := newLogger(t, nil)
	client := startHealth(t, l, 1)

	// Secrets in metadata must not reach the access log.
	ctx := metadata.AppendToOutgoingContext(context.Background(),
		"authorization", "Bearer md-s3cret", requestid.MetadataKey, "req-0001-abcd")
	req := &healthpb.HealthCheckRequest{Service: "golden.user.v1.UserService"}
	if _, err := client.Check(ctx, req); err != nil {
		t.Fatalf("Check: %v", err)
	}
	entries := out.entries(t)
	if len(entries) != 1 {
		t.Fatalf("%d entries for one call, want 1:\n%s", len(entries), out)
	}
	e := entries[0]
	want := map[string]any{
		"msg": msgUnary, "level": "info",
		"grpc.service": "grpc.health.v1.Health", "grpc.method": "Check", "grpc.code": "OK",
		"request_bytes": float64(proto.Size(req)), "response_bytes": float64(2),
		"request_id": "req-0001-abcd", "service": "user", "instance": "user-1",
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s = %#v, want %#v", k, e[k], v)
		}
	}
	if d, ok := e["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %#v, want a non-negative number", e["duration_ms"])
	}
	if a, _ := e["peer.address"].(string); !strings.HasPrefix(a, "127.0.0.1:") {
		t.Errorf("peer.address = %#v, want the loopback client", e["peer.address"])
	}
	if strings.Contains(out.String(), "md-s3cret") {
		t.Errorf("access log contains a metadata value:\n%s", out)
	}

	// An unknown service is NotFound: a client error, logged at warn.
	_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check(nope) = %v, want NotFound", err)
	}
	e = out.entries(t)[1]
	if e["grpc.code"] != "NotFound" || e["level"] != "warning" || e["error"] != "unknown service" {
		t.Errorf("NotFound entry = %v", e)
	}
	if _, ok := e["response_bytes"]; ok {
		t.Error("response_bytes set on a failed call")
	}
}

func TestUnaryAccessLogSampling(t *testing.T) {
	l, out, _ := newLogger(t, nil)
	client := startHealth(t, l, 0)
	for range 5 {
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	_, _ = client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "nope"})
	entries := out.entries(t)
	if len(entries) != 1 || entries[0]["grpc.code"] != "NotFound" {
		t.Errorf("with sample 0 got %v, want only the NotFound entry", entries)
	}
}

func TestUnaryAccessLogLevels(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/golden.user.v1.UserService/GetUser"}
	tests := []struct {
		err   error
		level string
	}{
		{nil, "info"},
		{status.Error(codes.InvalidArgument, "bad"), "warning"},
		{status.Error(codes.Unauthenticated, "who"), "warning"},
		{status.Error(codes.ResourceExhausted, "slow down"), "warning"},
		{status.Error(codes.Canceled, "gone"), "warning"},
		{status.Error(codes.Internal, "boom"), "error"},
		{status.Error(codes.Unavailable, "down"), "error"},
		{status.Error(codes.DeadlineExceeded, "late"), "error"},
		{errors.New("plain error"), "error"}, // Unknown
	}
	for _, tt := range tests {
		t.Run(status.Code(tt.err).String(), func(t *testing.T) {
			l, out, _ := newLogger(t, nil)
			icpt := UnaryServerInterceptor(l.Entry(), 1)
			_, _ = icpt(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, tt.err })
			e := out.entries(t)[0]
			if e["level"] != tt.level || e["grpc.code"] != status.Code(tt.err).String() {
				t.Errorf("level %v, code %v; want %s, %s", e["level"], e["grpc.code"], tt.level, status.Code(tt.err))
			}
		})
	}
}

func TestUnaryAccessLogPanic(t *testing.T) {
	l, out, _ := newLogger(t, nil)
	icpt := UnaryServerInterceptor(l.Entry(), 0)
	info := &grpc.UnaryServerInfo{FullMethod: "/golden.user.v1.UserService/GetUser"}
	func() {
		defer func() {
			if p := recover(); p != "handler bug" {
				t.Errorf("recovered %v, want the handler's panic to go on", p)
			}
		}()
		_, _ = icpt(context.Background(), nil, info, func(context.Context, any) (any, error) { panic("handler bug") })
	}()
	e := out.entries(t)[0]
	if e["grpc.code"] != "Internal" || e["panic"] != true || e["level"] != "error" {
		t.Errorf("panic entry = %v", e)
	}
}

func TestStreamAccessLog(t *testing.T) {
	l, out, _ := newLogger(t, nil)
	icpt := StreamServerInterceptor(l.Entry(), 0)
	info := &grpc.StreamServerInfo{FullMethod: "/grpc.health.v1.Health/Watch"}
	ok := func(any, grpc.ServerStream) error { return nil }
	fail := func(any, grpc.ServerStream) error { return status.Error(codes.PermissionDenied, "no") }
	ss := &fakeServerStream{ctx: requestid.NewContext(context.Background(), "req-0002-abcd")}
	_ = icpt(nil, ss, info, ok)
	_ = icpt(nil, ss, info, fail)
	entries := out.entries(t)
	if len(entries) != 1 {
		t.Fatalf("%d entries, want only the failed stream with sample 0", len(entries))
	}
	e := entries[0]
	if e["msg"] != msgStream || e["grpc.code"] != "PermissionDenied" || e["grpc.method"] != "Watch" || e["request_id"] != "req-0002-abcd" {
		t.Errorf("stream entry = %v", e)
	}
}

type fakeServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeServerStream) Context() context.Context { return s.ctx }

func TestHTTPAccessLog(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("POST /v1/login", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(b[:3])
	})
	mux.HandleFunc("GET /v1/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal", http.StatusInternalServerError)
	})

	tests := []struct {
		name   string
		sample float64
		req    func() *http.Request
		logged bool
		want   map[string]any
	}{
		{
			name: "success", sample: 1,
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/v1/users/42?page_token=qv-9f8e", nil)
				r.Header.Set("User-Agent", "curl/8.0")
				return r
			},
			logged: true,
			want: map[string]any{
				"msg": msgHTTP, "level": "info", "http.method": "GET", "http.route": "GET /v1/users/{id}",
				"http.status": float64(200), "http.bytes_out": float64(5), "http.bytes_in": float64(0),
				"http.user_agent": "curl/8.0", "request_id": "req-0003-abcd",
			},
		},
		{
			name: "success not sampled", sample: 0,
			req: func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v1/users/42", nil) },
		},
		{
			name: "client error always logged", sample: 0,
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/v1/login", strings.NewReader(`{"username":"bob","password":"hunter2"}`))
				r.Header.Set("Authorization", "Bearer s3cr3t")
				return r
			},
			logged: true,
			want: map[string]any{
				"level": "warning", "http.route": "POST /v1/login", "http.status": float64(401),
				"http.bytes_in": float64(39), "http.bytes_out": float64(3),
			},
		},
		{
			name: "server error always logged", sample: 0,
			req:    func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v1/fail", nil) },
			logged: true,
			want:   map[string]any{"level": "error", "http.status": float64(500)},
		},
		{
			name: "no route", sample: 1,
			req:    func() *http.Request { return httptest.NewRequest(http.MethodGet, "/nowhere", nil) },
			logged: true,
			want:   map[string]any{"level": "warning", "http.status": float64(404)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, out, _ := newLogger(t, nil)
			h := requestid.Middleware(HTTPMiddleware(l.Entry(), tt.sample, mux))
			r := tt.req()
			r.Header.Set(requestid.HeaderName, "req-0003-abcd")
			h.ServeHTTP(httptest.NewRecorder(), r)

			entries := out.entries(t)
			if !tt.logged {
				if len(entries) != 0 {
					t.Errorf("logged %v, want nothing", entries)
				}
				return
			}
			if len(entries) != 1 {
				t.Fatalf("%d entries, want 1", len(entries))
			}
			e := entries[0]
			for k, v := range tt.want {
				if e[k] != v {
					t.Errorf("%s = %#v, want %#v", k, e[k], v)
				}
			}
			for _, secret := range []string{"hunter2", "s3cr3t", "page_token", "qv-9f8e"} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("access log contains %q from a header, the query or the body:\n%s", secret, out)
				}
			}
		})
	}
}

func TestHTTPAccessLogPanic(t *testing.T) {
	l, out, _ := newLogger(t, nil)
	h := HTTPMiddleware(l.Entry(), 0, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler bug") }))
	func() {
		defer func() {
			if p := recover(); p != "handler bug" {
				t.Errorf("recovered %v, want the handler's panic to go on", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	e := out.entries(t)[0]
	if e["http.status"] != float64(500) || e["panic"] != true || e["level"] != "error" {
		t.Errorf("panic entry = %v", e)
	}
}

func TestLoggerAccessMethods(t *testing.T) {
	l, out, _ := newLogger(t, func(c *Config) { c.AccessSample = 0 })
	if l.AccessSample() != 0 {
		t.Fatalf("AccessSample = %v, want 0", l.AccessSample())
	}
	h := l.HTTPMiddleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	_, _ = l.UnaryServerInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/s/M"},
		func(context.Context, any) (any, error) { return nil, nil })
	_ = l.StreamServerInterceptor()(nil, &fakeServerStream{ctx: context.Background()}, &grpc.StreamServerInfo{FullMethod: "/s/M"},
		func(any, grpc.ServerStream) error { return nil })
	if s := out.String(); s != "" {
		t.Errorf("sample 0 from the config still logged successes:\n%s", s)
	}
}

// keepHook keeps every entry it is given, as a hook that ships entries
// later may.
type keepHook struct {
	mu      sync.Mutex
	entries []*logrus.Entry
}

func (*keepHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *keepHook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, e)
	return nil
}

// TestAccessEntriesAreNotSharedWithHooks checks what the reuse of access
// entries rests on: hooks and the formatter get logrus's copy of the entry
// and of its fields, never the reused one, so the next access line leaves
// an entry a hook kept as it was.
func TestAccessEntriesAreNotSharedWithHooks(t *testing.T) {
	l, out, _ := newLogger(t, nil)
	keep := &keepHook{}
	l.Logger().AddHook(keep)
	access := UnaryServerInterceptor(l.Entry(), 1)
	ctx := requestid.NewContext(context.Background(), "req-0001-abcd")
	calls := []struct {
		method string
		err    error
	}{
		{"/golden.user.v1.UserService/GetUser", nil},
		{"/golden.user.v1.UserService/ListUsers", status.Error(codes.NotFound, "no such page")},
		{"/golden.user.v1.UserService/GetUser", nil},
	}
	for _, c := range calls {
		handler := func(context.Context, any) (any, error) { return nil, c.err }
		if _, err := access(ctx, nil, &grpc.UnaryServerInfo{FullMethod: c.method}, handler); status.Code(err) != status.Code(c.err) {
			t.Fatalf("%s: %v", c.method, err)
		}
	}
	if len(keep.entries) != len(calls) {
		t.Fatalf("the hook got %d entries, want %d", len(keep.entries), len(calls))
	}
	for i, c := range calls {
		e := keep.entries[i]
		_, method := splitMethod(c.method)
		if e.Data[FieldGRPCMethod] != method || e.Data["grpc.code"] != status.Code(c.err).String() || e.Context != ctx {
			t.Errorf("entry %d kept by the hook changed: method %v, code %v, context kept %v", i, e.Data[FieldGRPCMethod], e.Data["grpc.code"], e.Context == ctx)
		}
		if _, ok := e.Data[logrus.ErrorKey]; ok != (c.err != nil) {
			t.Errorf("entry %d: error field present %v, want %v", i, ok, c.err != nil)
		}
	}
	if got := len(out.entries(t)); got != len(calls) {
		t.Errorf("%d lines on stdout, want %d", got, len(calls))
	}
}
