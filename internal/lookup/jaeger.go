package lookup

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/internal/lookup/jaegerv3"
	"github.com/golden-stack/golden/observability/safetext"
)

// ErrTraceNotFound is returned by Jaeger.Trace when Jaeger does not have the
// trace: not sampled, not flushed yet, or expired.
var ErrTraceNotFound = errors.New("trace not found")

// JaegerTrace is one trace as the lookup reads it: spans with their tags
// and the services (processes) they came from, in the shape of Jaeger's v1
// JSON, to which Jaeger's answers are converted (see fromOTLP).
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
}

// JaegerSpan is one span of a JaegerTrace.
type JaegerSpan struct {
	TraceID       string            `json:"traceID"`
	SpanID        string            `json:"spanID"`
	OperationName string            `json:"operationName"`
	References    []JaegerReference `json:"references"`
	// StartTime is in microseconds since the Unix epoch, Duration in microseconds.
	StartTime uint64      `json:"startTime"`
	Duration  uint64      `json:"duration"`
	Tags      []JaegerTag `json:"tags"`
	ProcessID string      `json:"processID"`
}

// JaegerReference links a span to another: refType CHILD_OF or FOLLOWS_FROM.
type JaegerReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// JaegerTag is a key/value attribute; Type is string, bool, int64, float64
// or binary, and Value the matching JSON value (numbers are json.Number).
type JaegerTag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// JaegerProcess is the service a span came from.
type JaegerProcess struct {
	ServiceName string      `json:"serviceName"`
	Tags        []JaegerTag `json:"tags"`
}

// Jaeger is a client of Jaeger's query API v3 over gRPC (see package
// jaegerv3), linking traces to Jaeger's web interface.
type Jaeger struct {
	addr    string
	ui      *url.URL
	timeout time.Duration
	// signIn is the Authorization metadata value for a Jaeger behind a
	// sign-in (golden authproxy), or "".
	signIn string
}

// SignIn makes every call carry user and password as HTTP basic auth (the
// "authorization" metadata), for a Jaeger behind `golden authproxy`, as in
// docker-compose.yml.
func (j *Jaeger) SignIn(user, password string) {
	j.signIn = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// basicAuth is gRPC per-call credentials holding a basic auth header. It
// allows a connection without TLS: Jaeger's query API has none, and the
// sign-in only guards a loopback port.
type basicAuth string

func (b basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(b)}, nil
}

func (basicAuth) RequireTransportSecurity() bool { return false }

// NewJaeger returns a client of the api_v3 gRPC service at addr (host:port,
// for example localhost:16685, without TLS as Jaeger serves it), linking
// traces to the web interface at uiURL (for example
// http://localhost:16686); timeout bounds each request.
func NewJaeger(addr, uiURL string, timeout time.Duration) (*Jaeger, error) {
	if err := checkAddr(addr); err != nil {
		return nil, fmt.Errorf("jaeger address: %w", err)
	}
	ui, err := baseurl.Parse(uiURL) // the same rules: http(s), host, no credentials
	if err != nil {
		return nil, fmt.Errorf("jaeger URL: %w", err)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("jaeger: timeout must be greater than 0, got %s", timeout)
	}
	return &Jaeger{addr: addr, ui: ui, timeout: timeout}, nil
}

// checkAddr accepts host:port with a host and a port from 1 to 65535.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, perr := strconv.Atoi(port); host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not host:port with a port from 1 to 65535", addr)
	}
	return nil
}

// TraceURL returns the web interface's page of traceID.
func (j *Jaeger) TraceURL(traceID string) string {
	u := *j.ui
	u.Path = j.ui.Path + "/trace/" + traceID
	return u.String()
}

// Trace fetches one trace by its ID (32 hex digits); ErrTraceNotFound when
// Jaeger does not have it.
func (j *Jaeger) Trace(ctx context.Context, traceID string) (*JaegerTrace, error) {
	id, ok := NormalizeTraceID(traceID)
	if !ok {
		return nil, fmt.Errorf("jaeger: %q is not a trace ID (32 hex digits)", traceID)
	}
	var traces []JaegerTrace
	err := j.call(ctx, "GetTrace", func(ctx context.Context, conn *grpc.ClientConn) error {
		data, err := stream(ctx, conn, jaegerv3.GetTrace, jaegerv3.NewGetTraceRequest(id))
		traces = fromOTLP(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range traces {
		if traces[i].TraceID == id {
			return &traces[i], nil
		}
	}
	return nil, fmt.Errorf("jaeger at %s: GetTrace %s: %w", j.addr, id, ErrTraceNotFound)
}

// Services lists the services Jaeger has spans of.
func (j *Jaeger) Services(ctx context.Context) ([]string, error) {
	var services []string
	err := j.call(ctx, "GetServices", func(ctx context.Context, conn *grpc.ClientConn) error {
		resp := jaegerv3.New(jaegerv3.GetServicesResponse)
		if err := conn.Invoke(ctx, jaegerv3.GetServices, jaegerv3.New(jaegerv3.GetServicesRequest), resp); err != nil {
			return err
		}
		services = jaegerv3.Services(resp)
		return nil
	})
	return services, err
}

// FindTraces returns up to limit traces of service between start and end
// having a span with every tag in tags.
func (j *Jaeger) FindTraces(ctx context.Context, service string, tags map[string]string, start, end time.Time, limit int) ([]JaegerTrace, error) {
	var traces []JaegerTrace
	err := j.call(ctx, "FindTraces", func(ctx context.Context, conn *grpc.ClientConn) error {
		req := jaegerv3.NewFindTracesRequest(jaegerv3.Query{Service: service, Attributes: tags, StartMin: start, StartMax: end, Limit: limit})
		data, err := stream(ctx, conn, jaegerv3.FindTraces, req)
		traces = fromOTLP(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(traces) > limit {
		traces = traces[:limit]
	}
	return traces, nil
}

// maxJaegerMessage bounds one message of Jaeger's answer.
const maxJaegerMessage = 64 << 20

// call runs do on a connection to Jaeger within the timeout, and words its
// failure for a person: which Jaeger, which call, and why.
func (j *Jaeger) call(ctx context.Context, method string, do func(context.Context, *grpc.ClientConn) error) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("jaeger at %s: %s: "+format, append([]any{j.addr, method}, args...)...)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxJaegerMessage)),
		grpc.WithUserAgent("golden"),
	}
	if j.signIn != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(basicAuth(j.signIn)))
	}
	conn, err := grpc.NewClient(j.addr, opts...)
	if err != nil {
		return fail("%w", err)
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	err = do(rctx, conn)
	st := status.Convert(err)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fail("cancelled: %w", ctx.Err())
	case rctx.Err() != nil || st.Code() == codes.DeadlineExceeded:
		return fail("no answer within %s (timeout): %w", j.timeout, context.DeadlineExceeded)
	case st.Code() == codes.NotFound:
		return fail("%w", ErrTraceNotFound)
	case st.Code() == codes.Unauthenticated:
		return fail("Jaeger asks for a sign-in (a golden authproxy in front of it): set --jaeger-password or --jaeger-password-file, and --jaeger-user")
	default:
		return fail("%s: %s", st.Code(), safetext.Line(st.Message(), 1000))
	}
}

// stream sends req to a server-streaming method and collects every
// TracesData until the end of the stream.
func stream(ctx context.Context, conn *grpc.ClientConn, method string, req proto.Message) ([]*tracepb.TracesData, error) {
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(req); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	var out []*tracepb.TracesData
	for {
		td := &tracepb.TracesData{}
		if err := s.RecvMsg(td); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, td)
	}
}

// NormalizeTraceID returns id as 32 lowercase hex digits. Jaeger writes IDs
// whose high half is zero as 16 digits; those are padded. ok is false for
// anything else, including the invalid all-zero ID.
func NormalizeTraceID(id string) (string, bool) {
	if n := len(id); n != 16 && n != 32 {
		return "", false
	}
	id = strings.ToLower(id)
	zero := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
		zero = zero && c == '0'
	}
	if zero {
		return "", false
	}
	return strings.Repeat("0", 32-len(id)) + id, true
}
