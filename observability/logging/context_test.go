package logging

import (
	"context"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// fakeStream gives a context the method name grpc.Method reads.
type fakeStream struct{ method string }

func (s fakeStream) Method() string             { return s.method }
func (fakeStream) SetHeader(metadata.MD) error  { return nil }
func (fakeStream) SendHeader(metadata.MD) error { return nil }
func (fakeStream) SetTrailer(metadata.MD) error { return nil }

func TestContextFields(t *testing.T) {
	reqCtx, sc := requestContext()
	rpcCtx := grpc.NewContextWithServerTransportStream(reqCtx, fakeStream{"/golden.user.v1.UserService/GetUser"})

	tests := []struct {
		name   string
		log    func(e *logrus.Entry)
		want   map[string]any
		absent []string
	}{
		{
			name: "request context",
			log:  func(e *logrus.Entry) { e.WithContext(rpcCtx).Info("x") },
			want: map[string]any{
				FieldService: "user", FieldInstance: "user-1",
				FieldRequestID: "req-0001-abcd", FieldTraceID: sc.TraceID().String(), FieldSpanID: sc.SpanID().String(),
				FieldCaller: "gateway", FieldGRPCService: "golden.user.v1.UserService", FieldGRPCMethod: "GetUser",
			},
		},
		{
			name:   "explicit field wins",
			log:    func(e *logrus.Entry) { e.WithContext(reqCtx).WithField(FieldRequestID, "mine-0001").Info("x") },
			want:   map[string]any{FieldRequestID: "mine-0001", FieldCaller: "gateway"},
			absent: []string{FieldGRPCMethod},
		},
		{
			name:   "no context",
			log:    func(e *logrus.Entry) { e.Info("x") },
			want:   map[string]any{FieldService: "user", FieldInstance: "user-1"},
			absent: []string{FieldRequestID, FieldTraceID, FieldSpanID, FieldCaller, FieldGRPCMethod},
		},
		{
			name:   "empty context",
			log:    func(e *logrus.Entry) { e.WithContext(context.Background()).Info("x") },
			want:   map[string]any{FieldService: "user"},
			absent: []string{FieldRequestID, FieldTraceID, FieldSpanID, FieldCaller, FieldGRPCMethod},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, out, _ := newLogger(t, nil)
			tt.log(l.Entry())
			e := out.entries(t)[0]
			for k, v := range tt.want {
				if e[k] != v {
					t.Errorf("%s = %#v, want %#v", k, e[k], v)
				}
			}
			for _, k := range tt.absent {
				if v, ok := e[k]; ok {
					t.Errorf("%s = %#v, want it absent", k, v)
				}
			}
		})
	}
}

func TestSplitMethod(t *testing.T) {
	tests := []struct{ in, svc, method string }{
		{"/golden.user.v1.UserService/GetUser", "golden.user.v1.UserService", "GetUser"},
		{"/grpc.health.v1.Health/Check", "grpc.health.v1.Health", "Check"},
		{"bad", "", "bad"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if svc, m := splitMethod(tt.in); svc != tt.svc || m != tt.method {
			t.Errorf("splitMethod(%q) = %q, %q, want %q, %q", tt.in, svc, m, tt.svc, tt.method)
		}
	}
}

func TestTextFormat(t *testing.T) {
	l, out, _ := newLogger(t, func(c *Config) { c.Format = "text" })
	ctx, _ := requestContext()
	l.Entry().WithContext(ctx).WithField("password", "hunter2").Info("text entry")
	s := out.String()
	for _, want := range []string{"text entry", "request_id=req-0001-abcd", "service=user", "password=\"[REDACTED]\""} {
		if !strings.Contains(s, want) {
			t.Errorf("text output %q lacks %q", s, want)
		}
	}
	if strings.Contains(s, "hunter2") {
		t.Errorf("text output %q contains the password", s)
	}
}
