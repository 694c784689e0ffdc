package logging

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
)

// logrusJSON is the formatter jsonFormatter stands in for.
var logrusJSON = &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}

// sameAsLogrus fails unless jsonFormatter writes exactly the bytes
// logrus.JSONFormatter writes for an entry with data.
func sameAsLogrus(t *testing.T, msg string, data logrus.Fields) {
	t.Helper()
	e := &logrus.Entry{
		Logger:  logrus.New(),
		Data:    data,
		Time:    time.Date(2026, 12, 3, 17, 4, 5, 123456789, time.FixedZone("x", 3600)),
		Level:   logrus.WarnLevel,
		Message: msg,
	}
	want, err := logrusJSON.Format(e)
	if err != nil {
		t.Fatalf("logrus: %v", err)
	}
	e.Buffer = &bytes.Buffer{}
	got, err := jsonFormatter{}.Format(e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("for %q %v\n got %s\nwant %s", msg, data, got, want)
	}
}

// TestJSONFormatterMatchesLogrus: the same bytes as logrus.JSONFormatter for
// every field type the services log, escaping and key clashes included.
func TestJSONFormatterMatchesLogrus(t *testing.T) {
	type point struct{ X, Y int }
	sameAsLogrus(t, "finished unary call", logrus.Fields{
		"service": "user", "instance": "10.0.0.7:9102", "grpc.code": "OK", "duration_ms": 0.038432,
		"request_bytes": 51, "peer.address": "127.0.0.1:52638", "trace_id": "b184ff98e82e07da62e39deb9b153ba2",
	})
	sameAsLogrus(t, `quote " backslash \ <html> & newline
 tab	 bell `+"\x07\x7f \u2028 \u2029 \xff\xfe é 日本", logrus.Fields{
		"s": "<script>alert('x')</script> & \u2028", "bad": "\xc3\x28 ok", "ctl": "\x00\x1f\b\f\r",
	})
	sameAsLogrus(t, "numbers", logrus.Fields{
		"i": -7, "i8": int8(-8), "i16": int16(16), "i32": int32(-32), "i64": int64(math.MinInt64),
		"u": uint(7), "u8": uint8(255), "u16": uint16(16), "u32": uint32(32), "u64": uint64(math.MaxUint64),
		"f0": 0.0, "fneg0": math.Copysign(0, -1), "tiny": 1e-7, "small": 0.000001, "big": 1e21, "below": 999999999999999999999.0,
		"f32": float32(0.1), "f32tiny": float32(1e-7), "exp": 1.5e-300, "huge": 1.7e308, "frac": 123.456,
		"dur": 1500 * time.Millisecond, "code": codes.NotFound,
	})
	sameAsLogrus(t, "other types", logrus.Fields{
		"err": errors.New("boom <b>"), "nil": nil, "yes": true, "no": false,
		"struct": point{1, 2}, "slice": []string{"a", "<b>"}, "map": map[string]int{"z": 1, "a": 2},
		"ptr": &point{3, 4}, "nilptr": (*point)(nil), "bytes": []byte("hi"), "when": time.Unix(0, 5).UTC(),
	})
	// Fields named like the entry's own keys are kept under fields.NAME.
	sameAsLogrus(t, "clash", logrus.Fields{"time": "t", "msg": "m", "level": "l", "logrus_error": "e", "fields.x": 1})
	// logrus writes the renamed field over one already named fields.NAME.
	sameAsLogrus(t, "clash over", logrus.Fields{"msg": "renamed", "fields.msg": "lost", "fields.time": "kept"})
	sameAsLogrus(t, "", logrus.Fields{})
	sameAsLogrus(t, "no fields", nil)
}

// TestJSONFormatterKeepsUnencodableLines: where encoding/json fails the
// whole entry, the line is still written, with the value as text.
func TestJSONFormatterKeepsUnencodableLines(t *testing.T) {
	e := &logrus.Entry{Logger: logrus.New(), Message: "m", Data: logrus.Fields{
		"nan": math.NaN(), "inf": math.Inf(-1), "ch": make(chan int),
	}}
	if _, err := logrusJSON.Format(e); err == nil {
		t.Fatal("logrus.JSONFormatter encodes these; the test is meant for what it cannot")
	}
	got, err := jsonFormatter{}.Format(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ch":"json: unsupported type: chan int","inf":"-Inf","level":"panic","msg":"m","nan":"NaN","time":"0001-01-01T00:00:00Z"}` + "\n"
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// FuzzJSONFormatter: for any message, string field and float, the bytes of
// logrus.JSONFormatter.
func FuzzJSONFormatter(f *testing.F) {
	f.Add("msg", "value", 1.5, int64(3))
	f.Add("<&>\u2028", "\xff\x00\"\\", 1e-7, int64(-1))
	f.Add("", "日本語 é", 1e21, int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, msg, s string, fl float64, n int64) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			return // encoding/json refuses these; see TestJSONFormatterKeepsUnencodableLines
		}
		sameAsLogrus(t, msg, logrus.Fields{s: s, "f": fl, "f32": float32(fl), "n": n})
	})
}

// BenchmarkJSONFormat compares one access-log line formatted by logrus's
// JSONFormatter and by jsonFormatter.
func BenchmarkJSONFormat(b *testing.B) {
	data := logrus.Fields{
		"service": "user", "instance": "10.0.0.7:9102", "grpc.code": "OK", "grpc.method": "GetUser",
		"grpc.service": "golden.user.v1.UserService", "duration_ms": 0.412, "request_bytes": 51,
		"peer.address": "127.0.0.1:52638", "request_id": "20cd769034a1cd58da869f79b494c938",
		"trace_id": "b184ff98e82e07da62e39deb9b153ba2", "span_id": "615ae53619471270", "caller": "gateway",
	}
	for _, bc := range []struct {
		name string
		f    logrus.Formatter
	}{{"logrus", logrusJSON}, {"golden", jsonFormatter{}}} {
		b.Run(bc.name, func(b *testing.B) {
			e := &logrus.Entry{Logger: logrus.New(), Data: data, Time: time.Now(), Level: logrus.InfoLevel,
				Message: "finished unary call", Buffer: &bytes.Buffer{}}
			b.ReportAllocs()
			for b.Loop() {
				e.Buffer.Reset()
				out, err := bc.f.Format(e)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Discard.Write(out)
			}
		})
	}
}

// TestJSONFormatterKeyOrderCache: entries with as many fields as the one
// before but other keys, and entries with renamed fields between them, are
// still written in logrus's order, not in the order cached for their length.
func TestJSONFormatterKeyOrderCache(t *testing.T) {
	a := logrus.Fields{"service": "user", "grpc.code": "OK", "zeta": 1}
	b := logrus.Fields{"service": "user", "alpha": "OK", "zeta": 1}
	c := logrus.Fields{"service": "user", "time": "own", "zeta": 1} // renamed fields.time
	d := logrus.Fields{"service": "user", "aa": 1, "zz": 2, "mm": 3}
	for range 3 {
		for _, data := range []logrus.Fields{a, a, b, c, b, a, d, c} {
			sameAsLogrus(t, "m", data)
		}
	}
}
