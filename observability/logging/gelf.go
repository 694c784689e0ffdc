package logging

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/safetext"
)

// shortMax is the longest short_message; a longer or multi-line message is
// also sent whole as full_message.
const shortMax = 250

// gelfHook turns entries into GELF messages and hands them to the sink. It
// only converts and enqueues: encoding, compression and the network belong
// to the sink's goroutine.
type gelfHook struct {
	host string
	sink *sink
}

func (h *gelfHook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire never fails: an error would stop logrus from running later hooks and
// print to stderr on every call while Graylog is down.
func (h *gelfHook) Fire(e *logrus.Entry) error {
	if h.sink.own(e) || !h.sink.accepting() {
		return nil
	}
	h.sink.enqueue(toGELF(e, h.host))
	return nil
}

// toGELF converts an entry that the context and redaction hooks have seen.
// The fields are encoded here, once, into RawExtra, which go-gelf appends
// as it is; an Extra map would be copied from the entry and then encoded
// by encoding/json on the sink's goroutine, at several times the cost.
func toGELF(e *logrus.Entry, host string) *gelf.Message {
	short, full := splitMessage(e.Message)
	return &gelf.Message{
		Version:  "1.1",
		Host:     host,
		Short:    short,
		Full:     full,
		TimeUnix: unixSeconds(e.Time),
		Level:    syslogLevel(e.Level),
		RawExtra: gelfFields(e),
	}
}

// gelfField is one additional field of a GELF message: its GELF name and
// the field's value.
type gelfField struct {
	key   string
	value any
}

var gelfFieldsPool = sync.Pool{New: func() any { s := make([]gelfField, 0, 32); return &s }}

// gelfFields encodes the entry's fields (and its caller, when logrus
// reports it) as one JSON object of GELF additional fields: names from
// gelfKey, values as jsonValue converts them, nil values left out; nil when
// there is none. Two fields whose names gelfKey maps to the same GELF name
// are sent once (the caller's, or the first by name order).
func gelfFields(e *logrus.Entry) []byte {
	fp := gelfFieldsPool.Get().(*[]gelfField)
	fields := (*fp)[:0]
	rewritten := false
	if c := e.Caller; c != nil {
		// First, so that they win over fields of the same names.
		fields = append(fields, gelfField{"_file", c.File}, gelfField{"_line", c.Line}, gelfField{"_function", c.Function})
		rewritten = true
	}
	for k, v := range e.Data {
		if v == nil {
			continue
		}
		gk := cachedGELFKey(k)
		rewritten = rewritten || gk[1:] != k
		fields = append(fields, gelfField{gk, v})
	}
	if rewritten {
		// Rare: sort so that a repeated name is adjacent, and keep its first.
		slices.SortStableFunc(fields, func(a, b gelfField) int { return strings.Compare(a.key, b.key) })
		fields = slices.CompactFunc(fields, func(a, b gelfField) bool { return a.key == b.key })
	}

	out := make([]byte, 0, 48*len(fields)+2)
	out = append(out, '{')
	for _, f := range fields {
		mark := len(out)
		if mark > 1 {
			out = append(out, ',')
		}
		out = appendJSONString(out, f.key)
		out = append(out, ':')
		var ok bool
		if out, ok = appendGELFValue(out, f.value); !ok {
			out = out[:mark]
		}
	}
	out = append(out, '}')

	clear(fields)
	*fp = fields[:0]
	gelfFieldsPool.Put(fp)
	if len(out) == 2 {
		return nil // go-gelf would write a stray comma for "{}"
	}
	return out
}

// appendGELFValue appends v as jsonValue converts it, encoded as
// encoding/json would; the common types without the conversion's boxing.
// ok is false for nil, which is left out.
func appendGELFValue(out []byte, v any) (_ []byte, ok bool) {
	switch x := v.(type) {
	case string:
		return appendJSONString(out, x), true
	case float64:
		return appendJSONFloat(out, x, 64), true
	case float32:
		return appendJSONFloat(out, float64(x), 64), true
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return appendJSONValue(out, x), true
	}
	jv, ok := jsonValue(v)
	if !ok {
		return out, false
	}
	return appendJSONValue(out, jv), true
}

// gelfKeys caches gelfKey: field names are few and repeat on every call.
var (
	gelfKeys     sync.Map // field name -> GELF name
	gelfKeyCount atomic.Int32
)

// maxCachedGELFKeys bounds the cache, in case field names are made at run
// time.
const maxCachedGELFKeys = 4096

func cachedGELFKey(k string) string {
	if gk, ok := gelfKeys.Load(k); ok {
		return gk.(string)
	}
	gk := gelfKey(k)
	if gelfKeyCount.Load() < maxCachedGELFKeys {
		if _, loaded := gelfKeys.LoadOrStore(k, gk); !loaded {
			gelfKeyCount.Add(1)
		}
	}
	return gk
}

// unixSeconds is t as GELF's float seconds, split so that the sub-second
// part keeps microsecond precision.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// syslogLevel maps a logrus level to its syslog severity. Panic maps to 1
// (alert), not 0 (emergency): go-gelf omits a zero level, which Graylog
// then reads as 1 anyway.
func syslogLevel(l logrus.Level) int32 {
	switch l {
	case logrus.PanicLevel:
		return gelf.LOG_ALERT
	case logrus.FatalLevel:
		return gelf.LOG_CRIT
	case logrus.ErrorLevel:
		return gelf.LOG_ERR
	case logrus.WarnLevel:
		return gelf.LOG_WARNING
	case logrus.InfoLevel:
		return gelf.LOG_INFO
	default:
		return gelf.LOG_DEBUG
	}
}

// splitMessage returns GELF's short_message, required and non-blank, and
// full_message, set when the message is multi-line or longer than shortMax.
func splitMessage(msg string) (short, full string) {
	short = msg
	if i := strings.IndexByte(short, '\n'); i >= 0 {
		short = short[:i]
	}
	short = strings.TrimSpace(short)
	short = safetext.Truncate(short, shortMax)
	if short == "" {
		short = "(no message)"
	}
	if short != msg {
		full = msg
	}
	return short, full
}

// reservedKeys are additional field names Graylog refuses or that would
// overwrite a message field once Graylog strips the leading "_".
var reservedKeys = map[string]bool{
	"id": true, "message": true, "full_message": true, "short_message": true,
	"source": true, "timestamp": true, "level": true, "facility": true,
	"version": true, "host": true, "streams": true,
}

// gelfKey is the additional field name of a logrus field: "_" plus the key
// with every character outside [A-Za-z0-9_.-] replaced by "_". A reserved
// name gets a trailing "_" ("id" is sent as "_id_"), and a gl2_ name a
// leading "x", so no field can pose as one Graylog sets.
func gelfKey(k string) string {
	var b strings.Builder
	b.Grow(len(k) + 2)
	b.WriteByte('_')
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()[1:]
	switch {
	case name == "":
		return "_empty"
	case reservedKeys[strings.ToLower(name)]:
		return "_" + name + "_"
	case strings.HasPrefix(strings.ToLower(name), "gl2_"):
		return "_x" + name
	}
	return b.String()
}

// jsonValue converts a field value into one encoding/json always accepts and
// Graylog stores as a plain field: numbers and booleans stay, errors and
// Stringers become their text, NaN and infinities become strings, anything
// else is formatted with %v. ok is false for nil, which is left out.
func jsonValue(v any) (_ any, ok bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x, true
	case float64:
		return finite(x), true
	case float32:
		return finite(float64(x)), true
	case time.Time:
		return x.Format(time.RFC3339Nano), true
	case time.Duration:
		return x.String(), true
	case []byte:
		return string(x), true
	case error:
		return safeError(x), true
	case fmt.Stringer:
		return safeString(x), true
	}
	return safeSprint(v), true
}

func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// safeError, safeString and safeSprint format a value whose method may panic,
// such as a nil pointer with a value-receiver Error method: a log call must
// not crash the service.
func safeError(err error) (s string) {
	defer func() {
		if p := recover(); p != nil {
			s = fmt.Sprintf("<error formatting %T: %v>", err, p)
		}
	}()
	return err.Error()
}

func safeString(v fmt.Stringer) (s string) {
	defer func() {
		if p := recover(); p != nil {
			s = fmt.Sprintf("<error formatting %T: %v>", v, p)
		}
	}()
	return v.String()
}

func safeSprint(v any) string {
	// fmt already recovers from panics in String and Error methods.
	return fmt.Sprint(v)
}
