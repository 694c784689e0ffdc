package logging

import (
	"context"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/golden-stack/golden/observability/safetext"
	"github.com/golden-stack/golden/observability/security"
)

// Access log messages, one per RPC or request.
const (
	msgUnary  = "finished unary call"
	msgStream = "finished streaming call"
	msgHTTP   = "finished HTTP request"
)

// maxUserAgent bounds the user agent kept in the access log: the client
// chooses it.
const maxUserAgent = 256

// sampler decides whether a successful request is logged.
type sampler float64

func (s sampler) keep() bool {
	switch {
	case s >= 1:
		return true
	case s <= 0:
		return false
	}
	return rand.Float64() < float64(s)
}

// UnaryServerInterceptor writes one access log entry per unary RPC on log,
// with the request's context fields and grpc.service, grpc.method,
// grpc.code, duration_ms, request_bytes and response_bytes (the protobuf
// sizes), caller (the authorized identity or, before authorization, the
// verified peer certificate's) and peer.address. Successful calls are
// written with probability sample (0 to 1); failed ones always: codes a
// client causes (such as InvalidArgument, NotFound, Unauthenticated) at
// warn, codes of a server fault (Unknown, DeadlineExceeded, Unimplemented,
// Internal, Unavailable, DataLoss; the ones the gateway maps to 5xx) at
// error. A handler panic is logged as Internal and the panic goes on to the
// recovery interceptor. Metadata and message contents are never logged.
func UnaryServerInterceptor(log *logrus.Entry, sample float64) grpc.UnaryServerInterceptor {
	smp := sampler(sample)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		panicked := true
		defer func() {
			if panicked {
				// Not recovered: the recovery interceptor outside handles it
				// with its stack intact.
				accessRPC(log, ctx, info.FullMethod, codes.Internal, start).
					WithField("panic", true).Error(msgUnary)
			}
		}()
		resp, err = handler(ctx, req)
		panicked = false
		code := status.Code(err)
		if code == codes.OK && !smp.keep() {
			return resp, err
		}
		e := accessRPC(log, ctx, info.FullMethod, code, start)
		if m, ok := req.(proto.Message); ok {
			e.Data["request_bytes"] = proto.Size(m)
		}
		if m, ok := resp.(proto.Message); ok && err == nil {
			e.Data["response_bytes"] = proto.Size(m)
		}
		if err != nil {
			e.Data[logrus.ErrorKey] = status.Convert(err).Message()
		}
		logAccess(e, rpcLevel(code), msgUnary)
		return resp, err
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor,
// without the byte counts.
func StreamServerInterceptor(log *logrus.Entry, sample float64) grpc.StreamServerInterceptor {
	smp := sampler(sample)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		ctx := ss.Context()
		panicked := true
		defer func() {
			if panicked {
				accessRPC(log, ctx, info.FullMethod, codes.Internal, start).
					WithField("panic", true).Error(msgStream)
			}
		}()
		err := handler(srv, ss)
		panicked = false
		code := status.Code(err)
		if code == codes.OK && !smp.keep() {
			return err
		}
		e := accessRPC(log, ctx, info.FullMethod, code, start)
		if err != nil {
			e.Data[logrus.ErrorKey] = status.Convert(err).Message()
		}
		logAccess(e, rpcLevel(code), msgStream)
		return err
	}
}

// accessEntries holds access entries, with their field maps, between
// calls: Entry.Log copies the entry and its fields before any hook or the
// formatter sees them, so the one accessEntry built is free again once
// Log returns (logAccess), and the next call reuses its map.
var accessEntries = sync.Pool{New: func() any { return new(logrus.Entry) }}

// accessEntry returns an entry of log's logger, on ctx, with log's fields
// in a map with room for the access fields and those the context hook adds.
// It stands in for log.WithContext(ctx).WithFields(...), which would copy
// the fields once per call each; the caller owns the entry, adds to its
// Data directly and writes it with logAccess (or drops it).
func accessEntry(log *logrus.Entry, ctx context.Context) *logrus.Entry {
	e := accessEntries.Get().(*logrus.Entry)
	if e.Data == nil {
		e.Data = make(logrus.Fields, len(log.Data)+16)
	}
	maps.Copy(e.Data, log.Data)
	e.Logger, e.Context = log.Logger, ctx
	return e
}

// logAccess writes e, an entry of accessEntry, at level and gives it back
// to accessEntries.
func logAccess(e *logrus.Entry, level logrus.Level, msg string) {
	e.Log(level, msg)
	data := e.Data
	clear(data)
	*e = logrus.Entry{Data: data}
	accessEntries.Put(e)
}

// accessRPC builds the entry with the fields every RPC access entry has.
func accessRPC(log *logrus.Entry, ctx context.Context, fullMethod string, code codes.Code, start time.Time) *logrus.Entry {
	svc, method := splitMethod(fullMethod)
	e := accessEntry(log, ctx)
	f := e.Data
	f[FieldGRPCService] = svc
	f[FieldGRPCMethod] = method
	f["grpc.code"] = codeName(code)
	f["duration_ms"] = durationMS(time.Since(start))
	caller := security.IdentityFromContext(ctx)
	if caller == "" {
		caller, _ = security.PeerIdentity(ctx)
	}
	if caller != "" {
		f[FieldCaller] = caller
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		f["peer.address"] = p.Addr.String()
	}
	return e
}

// codeNames holds the names of the gRPC codes already boxed as field
// values, so that the access line does not allocate one per call.
var codeNames = func() (names [codes.Unauthenticated + 1]any) {
	for c := range names {
		names[c] = codes.Code(c).String()
	}
	return names
}()

// codeName returns c's name as a field value.
func codeName(c codes.Code) any {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

// rpcLevel is info for OK, error for codes of a server fault and warn for
// the rest, which a client causes.
func rpcLevel(c codes.Code) logrus.Level {
	switch c {
	case codes.OK:
		return logrus.InfoLevel
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return logrus.ErrorLevel
	}
	return logrus.WarnLevel
}

// HTTPMiddleware writes one access log entry per HTTP request on log, with
// the request's context fields and http.method, http.route (the
// http.ServeMux pattern that matched, read after next ran), http.status,
// duration_ms, http.bytes_in (request body bytes the handler read),
// http.bytes_out (response body bytes) and http.user_agent. Responses below
// 400 are written with probability sample (0 to 1); 4xx are always written,
// at warn, because like non-OK gRPC codes they show clients in trouble or
// probing; 5xx always, at error. A handler panic is logged as 500 and goes
// on to the recovery middleware outside. Put it inside requestid.Middleware
// and pass the request unchanged down to the ServeMux, which sets Pattern on
// it; the middleware itself only wraps r.Body to count it. Headers, the
// query and bodies are never logged.
func HTTPMiddleware(log *logrus.Entry, sample float64, next http.Handler) http.Handler {
	smp := sampler(sample)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		m := httpsnoop.Metrics{Code: http.StatusOK}
		panicked := true
		defer func() {
			if panicked {
				accessHTTP(log, r, http.StatusInternalServerError, start, body, m.Written).
					WithField("panic", true).Error(msgHTTP)
			}
		}()
		m.CaptureMetrics(w, func(w http.ResponseWriter) { next.ServeHTTP(w, r) })
		panicked = false
		if m.Code < 400 && !smp.keep() {
			return
		}
		logAccess(accessHTTP(log, r, m.Code, start, body, m.Written), httpLevel(m.Code), msgHTTP)
	})
}

func accessHTTP(log *logrus.Entry, r *http.Request, code int, start time.Time, body *countingBody, written int64) *logrus.Entry {
	var in int64
	if body != nil {
		in = body.n
	}
	e := accessEntry(log, r.Context())
	f := e.Data
	f["http.method"] = safetext.Truncate(r.Method, 32)
	f["http.status"] = code
	f["duration_ms"] = durationMS(time.Since(start))
	f["http.bytes_in"] = in
	f["http.bytes_out"] = written
	if r.Pattern != "" {
		f["http.route"] = r.Pattern
	}
	if ua := r.UserAgent(); ua != "" {
		f["http.user_agent"] = safetext.Truncate(ua, maxUserAgent)
	}
	return e
}

func httpLevel(code int) logrus.Level {
	switch {
	case code >= 500:
		return logrus.ErrorLevel
	case code >= 400:
		return logrus.WarnLevel
	}
	return logrus.InfoLevel
}

func durationMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// countingBody counts the request body bytes the handler reads.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// UnaryServerInterceptor is the package's UnaryServerInterceptor on the base
// entry with the configured access sample.
func (l *Logger) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return UnaryServerInterceptor(l.base, l.sample)
}

// StreamServerInterceptor is the package's StreamServerInterceptor on the
// base entry with the configured access sample.
func (l *Logger) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return StreamServerInterceptor(l.base, l.sample)
}

// HTTPMiddleware is the package's HTTPMiddleware on the base entry with the
// configured access sample.
func (l *Logger) HTTPMiddleware(next http.Handler) http.Handler {
	return HTTPMiddleware(l.base, l.sample, next)
}
