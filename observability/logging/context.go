package logging

import (
	"strings"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/security"
)

// Field names every golden service uses, in stdout and (with a leading "_")
// in GELF. Graylog strips the "_": search request_id:abc.
const (
	FieldService     = "service"
	FieldInstance    = "instance"
	FieldTrack       = "track" // the instance's release track: stable or canary
	FieldRequestID   = "request_id"
	FieldTraceID     = "trace_id"
	FieldSpanID      = "span_id"
	FieldCaller      = "caller"
	FieldGRPCService = "grpc.service"
	FieldGRPCMethod  = "grpc.method"
)

// contextHook adds the request fields of entry.Context. A field the caller
// set explicitly is kept.
type contextHook struct{}

func (contextHook) Levels() []logrus.Level { return logrus.AllLevels }

func (contextHook) Fire(e *logrus.Entry) error {
	ctx := e.Context
	if ctx == nil {
		return nil
	}
	if id := requestid.FromContext(ctx); id != "" {
		setDefault(e.Data, FieldRequestID, id)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		if _, ok := e.Data[FieldTraceID]; !ok {
			e.Data[FieldTraceID] = sc.TraceID().String()
		}
		if _, ok := e.Data[FieldSpanID]; !ok {
			e.Data[FieldSpanID] = sc.SpanID().String()
		}
	}
	if id := security.IdentityFromContext(ctx); id != "" {
		setDefault(e.Data, FieldCaller, id)
	}
	if m, ok := grpc.Method(ctx); ok {
		svc, method := splitMethod(m)
		setDefault(e.Data, FieldGRPCService, svc)
		setDefault(e.Data, FieldGRPCMethod, method)
	}
	return nil
}

// setDefault sets f[k] = v unless f has k. v is a string so that it is
// boxed only when set: the access log sets most of these fields itself.
func setDefault(f logrus.Fields, k, v string) {
	if _, ok := f[k]; !ok {
		f[k] = v
	}
}

// splitMethod splits "/pkg.Service/Method" into its service and method; a
// malformed name is returned whole as the method.
func splitMethod(full string) (service, method string) {
	s := strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(s, '/'); i > 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}
