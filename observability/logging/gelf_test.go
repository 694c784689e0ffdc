package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/security"
)

// requestContext carries a request ID, a sampled span and a caller.
func requestContext() (context.Context, trace.SpanContext) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	ctx = requestid.NewContext(ctx, "req-0001-abcd")
	ctx = security.NewContext(ctx, "gateway")
	return ctx, sc
}

// checkRequestFields checks the GELF fields of an entry logged with
// requestContext by the "user"/"user-1" test logger.
func checkRequestFields(t *testing.T, m *gelf.Message, sc trace.SpanContext, at time.Time) {
	t.Helper()
	want := map[string]any{
		"_request_id": "req-0001-abcd",
		"_trace_id":   sc.TraceID().String(),
		"_span_id":    sc.SpanID().String(),
		"_service":    "user",
		"_instance":   "user-1",
		"_caller":     "gateway",
		"_user_id":    float64(42),
	}
	for k, v := range want {
		if m.Extra[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m.Extra[k], v)
		}
	}
	if m.Version != "1.1" {
		t.Errorf("version = %q, want 1.1", m.Version)
	}
	if m.Host == "" {
		t.Error("host is empty; Graylog drops such messages")
	}
	if m.Level != gelf.LOG_INFO {
		t.Errorf("level = %d, want %d", m.Level, gelf.LOG_INFO)
	}
	if d := math.Abs(m.TimeUnix - unixSeconds(at)); d > 1e-6 {
		t.Errorf("timestamp = %f, want the entry time %f", m.TimeUnix, unixSeconds(at))
	}
	key := regexp.MustCompile(`^_[\w\.\-]*$`)
	for k := range m.Extra {
		if !key.MatchString(k) || k == "_id" {
			t.Errorf("additional field %q breaks the GELF naming rules", k)
		}
	}
}

func TestGELFOverUDP(t *testing.T) {
	r := newUDPReader(t)
	l, _, reg := newLogger(t, func(c *Config) { c.GELFAddr = r.addr() })
	ctx, sc := requestContext()
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	l.Entry().WithContext(ctx).WithTime(at).WithField("user_id", 42).Info("user fetched")

	m := r.next(t, "user fetched")
	checkRequestFields(t, m, sc, at)
	// The counter moves after the write; Close waits for the goroutine.
	closeLogger(t, l)
	if got := sent(t, reg); got != 1 {
		t.Errorf("sent counter = %v, want 1", got)
	}
}

func TestGELFOverTCP(t *testing.T) {
	srv := newTCPServer(t, true, 0)
	l, _, _ := newLogger(t, func(c *Config) { c.GELFAddr = srv.addr(); c.GELFProtocol = "tcp" })
	ctx, sc := requestContext()
	at := time.Now()
	l.Entry().WithContext(ctx).WithTime(at).WithField("user_id", 42).Info("user fetched")

	checkRequestFields(t, waitMessage(t, srv.msgs, "user fetched"), sc, at)
}

func TestGELFHost(t *testing.T) {
	r := newUDPReader(t)
	l, _, _ := newLogger(t, func(c *Config) { c.GELFAddr = r.addr(); c.Host = "user-7.golden" })
	l.Entry().Info("host check")
	if m := r.next(t, "host check"); m.Host != "user-7.golden" {
		t.Errorf("host = %q, want the configured user-7.golden", m.Host)
	}

	r2 := newUDPReader(t)
	l2, _, _ := newLogger(t, func(c *Config) { c.GELFAddr = r2.addr() })
	l2.Entry().Info("default host")
	want, err := os.Hostname()
	if err != nil || want == "" {
		want = "user"
	}
	if m := r2.next(t, "default host"); m.Host != want {
		t.Errorf("host = %q, want the hostname %q", m.Host, want)
	}
}

func TestGELFLevels(t *testing.T) {
	r := newUDPReader(t)
	l, _, _ := newLogger(t, func(c *Config) { c.GELFAddr = r.addr() })
	tests := []struct {
		level logrus.Level
		want  int32
	}{
		{logrus.PanicLevel, 1}, // 0 would be dropped by go-gelf's omitempty
		{logrus.FatalLevel, 2},
		{logrus.ErrorLevel, 3},
		{logrus.WarnLevel, 4},
		{logrus.InfoLevel, 6},
		{logrus.DebugLevel, 7},
		{logrus.TraceLevel, 7},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			msg := "level " + tt.level.String()
			// Log (unlike Panic and Fatal) neither panics nor exits.
			l.Entry().Log(tt.level, msg)
			if m := r.next(t, msg); m.Level != tt.want {
				t.Errorf("GELF level = %d, want %d", m.Level, tt.want)
			}
		})
	}
}

// variedText returns n bytes of words in random order: text that gzip
// shrinks, but not below gelf.ChunkSize.
func variedText(n int) string {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike " +
		"november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu " +
		"0 1 2 3 4 5 6 7 8 9 request user login refresh shard replica")
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteString(fmt.Sprint(rng.IntN(1000)))
		if rng.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()[:n]
}

func TestGELFLargeMessageIsChunked(t *testing.T) {
	r := newUDPReader(t)
	l, _, reg := newLogger(t, func(c *Config) { c.GELFAddr = r.addr() })
	msg := "large message\n" + variedText(200<<10)
	l.Entry().Info(msg)

	m := r.next(t, "large message")
	if m.Full != msg {
		t.Errorf("full_message has %d bytes, want the %d sent intact", len(m.Full), len(msg))
	}
	closeLogger(t, l)
	if got := dropped(t, reg, reasonWriteError); got != 0 {
		t.Errorf("write errors = %v, want 0", got)
	}
}

func TestSplitMessage(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name, msg, short, full string
	}{
		{"plain", "user fetched", "user fetched", ""},
		{"multi-line", "first\nsecond", "first", "first\nsecond"},
		{"empty", "", "(no message)", ""},
		{"blank", "  \n", "(no message)", "  \n"},
		{"long", long, long[:250], long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			short, full := splitMessage(tt.msg)
			if short != tt.short || full != tt.full {
				t.Errorf("splitMessage(%q) = %q, %q, want %q, %q", tt.msg, short, full, tt.short, tt.full)
			}
		})
	}
}

func TestGELFKey(t *testing.T) {
	tests := map[string]string{
		"user_id":      "_user_id",
		"grpc.method":  "_grpc.method",
		"a-b":          "_a-b",
		"with space":   "_with_space",
		"ü/x:y":        "_x_y",
		"id":           "_id_",
		"ID":           "_ID_",
		"message":      "_message_",
		"source":       "_source_",
		"timestamp":    "_timestamp_",
		"level":        "_level_",
		"gl2_remote":   "_xgl2_remote",
		"":             "_empty",
		"_already":     "__already",
		"request_id":   "_request_id",
		"http.status":  "_http.status",
		"duration_ms":  "_duration_ms",
		"peer.address": "_peer.address",
	}
	valid := regexp.MustCompile(`^_[\w\.\-]*$`)
	for in, want := range tests {
		got := gelfKey(in)
		if in == "ü/x:y" {
			want = "_" + strings.Repeat("_", len("ü/")) + "x_y"
		}
		if got != want {
			t.Errorf("gelfKey(%q) = %q, want %q", in, got, want)
		}
		if !valid.MatchString(got) || got == "_id" {
			t.Errorf("gelfKey(%q) = %q breaks the GELF naming rules", in, got)
		}
	}
}

type stringer struct{}

func (stringer) String() string { return "from String" }

type panicky struct{ p *int }

func (x panicky) Error() string  { return fmt.Sprint(*x.p) }
func (x panicky) String() string { return fmt.Sprint(*x.p) }

func TestJSONValue(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"string", "s", "s"},
		{"int", 42, 42},
		{"uint8", uint8(7), uint8(7)},
		{"bool", true, true},
		{"float", 1.5, 1.5},
		{"NaN", math.NaN(), "NaN"},
		{"+Inf", math.Inf(1), "+Inf"},
		{"float32 -Inf", float32(math.Inf(-1)), "-Inf"},
		{"error", errors.New("boom"), "boom"},
		{"time", at, "2025-01-02T03:04:05.000000006Z"},
		{"duration", 1500 * time.Millisecond, "1.5s"},
		{"bytes", []byte("raw"), "raw"},
		{"stringer", stringer{}, "from String"},
		{"panicking error", error(panicky{}), "<error formatting logging.panicky: runtime error: invalid memory address or nil pointer dereference>"},
		{"struct", struct{ A int }{3}, "{3}"},
		{"slice", []int{1, 2}, "[1 2]"},
		{"channel", make(chan int), ""}, // checked for a string below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jsonValue(tt.in)
			if !ok {
				t.Fatalf("jsonValue(%v) left the field out", tt.in)
			}
			if tt.name == "channel" {
				if _, isString := got.(string); !isString {
					t.Errorf("jsonValue(chan) = %T, want a string", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("jsonValue(%v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
	if _, ok := jsonValue(nil); ok {
		t.Error("jsonValue(nil) kept the field, want it left out")
	}
}

// TestGELFUnencodableValues checks that values encoding/json refuses still
// reach Graylog, since a message that fails to encode is lost whole.
func TestGELFUnencodableValues(t *testing.T) {
	r := newUDPReader(t)
	l, _, reg := newLogger(t, func(c *Config) { c.GELFAddr = r.addr() })
	l.Entry().WithFields(logrus.Fields{
		"nan":   math.NaN(),
		"ch":    make(chan int),
		"fn":    func() {},
		"cmplx": complex(1, 2),
		"nil":   nil,
		"err":   panicky{},
	}).Warn("odd values")
	m := r.next(t, "odd values")
	if m.Extra["_nan"] != "NaN" || m.Extra["_cmplx"] != "(1+2i)" {
		t.Errorf("fields = %v", m.Extra)
	}
	if _, ok := m.Extra["_nil"]; ok {
		t.Error("a nil field was sent")
	}
	if got := dropped(t, reg, reasonWriteError); got != 0 {
		t.Errorf("write errors = %v, want 0", got)
	}
}

// TestGELFFieldsAsTheExtraMap: the fields toGELF encodes into RawExtra
// reach Graylog as the Extra map of go-gelf would send them (encoded by
// encoding/json), for every kind of value.
func TestGELFFieldsAsTheExtraMap(t *testing.T) {
	type point struct{ X, Y int }
	for _, data := range []logrus.Fields{
		{},
		{"nil": nil},
		{"request_id": "req-1", "user_id": 42, "duration_ms": 0.25, "ok": true, "code": codes.NotFound},
		{"s": "<b>&\u2028\xff\"\\\n", "f32": float32(0.1), "tiny": 1e-9, "big": 1e300, "nan": math.NaN(), "inf": math.Inf(1),
			"dur": 1500 * time.Millisecond, "when": time.Unix(5, 6).UTC(), "bytes": []byte("hi"), "err": errors.New("boom"),
			"struct": point{1, 2}, "ch": make(chan int), "u64": uint64(math.MaxUint64), "i8": int8(-8), "cmplx": complex(1, 2),
			"id": "reserved", "gl2_x": 1, "a b": "space", "": "empty"},
	} {
		e := &logrus.Entry{Data: data, Message: "m", Time: time.Unix(1, 0), Level: logrus.InfoLevel}
		got := &gelf.Message{}
		var buf bytes.Buffer
		if err := toGELF(e, "h").MarshalJSONBuf(&buf); err != nil {
			t.Fatal(err)
		}
		if err := got.UnmarshalJSON(buf.Bytes()); err != nil {
			t.Fatalf("%v: %s", err, buf.Bytes())
		}

		old := &gelf.Message{Version: "1.1", Host: "h", Short: "m", TimeUnix: 1, Level: gelf.LOG_INFO, Extra: map[string]any{}}
		for k, v := range data {
			if jv, ok := jsonValue(v); ok {
				old.Extra[gelfKey(k)] = jv
			}
		}
		buf.Reset()
		if err := old.MarshalJSONBuf(&buf); err != nil {
			t.Fatal(err)
		}
		want := &gelf.Message{}
		if err := want.UnmarshalJSON(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Extra, want.Extra) {
			t.Errorf("fields %v:\n got %v\nwant %v", data, got.Extra, want.Extra)
		}
	}
}

// BenchmarkGELFEncode measures one access-log entry made into a GELF
// message on the caller's goroutine (toGELF: the fields encoded once into
// RawExtra) and encoded as the sink's goroutine writes it (go-gelf's
// MarshalJSONBuf), with allocations: the two halves of what GELF adds to a
// log call besides the network.
func BenchmarkGELFEncode(b *testing.B) {
	e := &logrus.Entry{Logger: logrus.New(), Time: time.Now(), Level: logrus.InfoLevel, Message: "finished unary call",
		Data: logrus.Fields{
			"service": "user", "instance": "10.0.0.7:9102", "grpc.code": "OK", "grpc.method": "GetUser",
			"grpc.service": "golden.user.v1.UserService", "duration_ms": 0.412, "request_bytes": 51,
			"peer.address": "127.0.0.1:52638", "request_id": "20cd769034a1cd58da869f79b494c938",
			"trace_id": "b184ff98e82e07da62e39deb9b153ba2", "span_id": "615ae53619471270", "caller": "gateway",
		}}
	b.Run("toGELF", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = toGELF(e, "host-1")
		}
	})
	b.Run("marshal", func(b *testing.B) {
		m := toGELF(e, "host-1")
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := m.MarshalJSONBuf(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
}
