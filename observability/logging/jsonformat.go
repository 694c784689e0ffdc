package logging

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// jsonFormatter writes what logrus.JSONFormatter{TimestampFormat:
// time.RFC3339Nano} writes (one object per line, keys sorted, a field named
// time, msg, level or logrus_error renamed fields.NAME, errors as their
// text, encoding/json's escaping) but appends to the entry's pooled buffer
// instead of copying the fields into a map and encoding it with
// encoding/json: the stdout line of every request costs a fraction of the
// time and no allocation for the usual field types (strings, numbers,
// bools, errors, durations). Other types go through encoding/json.
//
// logrus_error, which logrus adds for a field it refused (a func value), is
// not written: logrus keeps that error unexported. Two things differ where
// logrus would lose the line: a NaN or
// infinite float is written as a string ("NaN", "+Inf", "-Inf") where
// encoding/json fails the whole entry, and a value encoding/json cannot
// marshal is written as its error text instead of dropping the line.
type jsonFormatter struct{}

// keysPool holds the key slices Format sorts.
var keysPool = sync.Pool{New: func() any { s := make([]string, 0, 32); return &s }}

// clashes reports the fields logrus renames fields.NAME: those named like
// the entry's own keys.
func clashes(k string) bool {
	switch k {
	case logrus.FieldKeyTime, logrus.FieldKeyMsg, logrus.FieldKeyLevel, logrus.FieldKeyLogrusError:
		return true
	}
	return false
}

// Format implements logrus.Formatter.
func (jsonFormatter) Format(e *logrus.Entry) ([]byte, error) {
	kp := keysPool.Get().(*[]string)
	keys := (*kp)[:0]
	keys = append(keys, logrus.FieldKeyLevel, logrus.FieldKeyMsg, logrus.FieldKeyTime)
	plain := true // no field renamed
	for k := range e.Data {
		switch {
		case clashes(k):
			k, plain = "fields."+k, false
		case strings.HasPrefix(k, "fields.") && clashes(k[len("fields."):]):
			plain = false
			if _, renamed := e.Data[k[len("fields."):]]; renamed {
				continue // logrus writes the renamed field in its place
			}
		}
		keys = append(keys, k)
	}
	order := sortKeys(keys, plain, e.Data)

	b := e.Buffer
	if b == nil {
		b = new(bytes.Buffer)
	}
	b.WriteByte('{')
	for i, k := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(appendJSONString(b.AvailableBuffer(), k))
		b.WriteByte(':')
		switch k {
		case logrus.FieldKeyLevel:
			b.Write(appendJSONString(b.AvailableBuffer(), e.Level.String()))
		case logrus.FieldKeyMsg:
			b.Write(appendJSONString(b.AvailableBuffer(), e.Message))
		case logrus.FieldKeyTime:
			// A formatted time has nothing to escape.
			out := append(b.AvailableBuffer(), '"')
			out = e.Time.AppendFormat(out, time.RFC3339Nano)
			b.Write(append(out, '"'))
		default:
			v := e.Data[k]
			if rest, renamed := strings.CutPrefix(k, "fields."); renamed && clashes(rest) {
				if own, clash := e.Data[rest]; clash {
					v = own
				}
			}
			writeJSONValue(b, v)
		}
	}
	b.WriteString("}\n")

	*kp = keys[:0]
	keysPool.Put(kp)
	return b.Bytes(), nil
}

// sortedKeys holds, by number of keys, the last sorted key list of an entry
// without renamed fields. A service's access lines share their keys, so
// most lines check that list, one map lookup per field, instead of sorting
// theirs: the sort was almost half of Format's time in a loaded server.
var sortedKeys [32]atomic.Pointer[[]string]

// sortKeys returns keys, the level, msg and time keys and those of data,
// sorted: the cached list when it holds the same keys, else keys sorted in
// place. plain says no field of data was renamed; only then is the cache
// used, so keys are exactly the three fixed ones and data's.
func sortKeys(keys []string, plain bool, data logrus.Fields) []string {
	n := len(keys)
	if !plain || n >= len(sortedKeys) {
		slices.Sort(keys)
		return keys
	}
	if c := sortedKeys[n].Load(); c != nil && sameKeys(*c, data) {
		return *c
	}
	slices.Sort(keys)
	sorted := slices.Clone(keys)
	sortedKeys[n].Store(&sorted)
	return keys
}

// sameKeys reports whether cached, a sorted key list of an entry without
// renamed fields and as long as data's, holds data's keys: each of its keys
// other than the three fixed ones is in data, and both lists are of
// distinct keys of one length.
func sameKeys(cached []string, data logrus.Fields) bool {
	for _, k := range cached {
		if clashes(k) {
			continue
		}
		if _, ok := data[k]; !ok {
			return false
		}
	}
	return true
}

// writeJSONValue writes v as encoding/json would.
func writeJSONValue(b *bytes.Buffer, v any) { b.Write(appendJSONValue(b.AvailableBuffer(), v)) }

// appendJSONValue appends v as encoding/json would.
func appendJSONValue(out []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		out = appendJSONString(out, x)
	case error:
		out = appendJSONString(out, x.Error())
	case bool:
		out = strconv.AppendBool(out, x)
	case int:
		out = strconv.AppendInt(out, int64(x), 10)
	case int8:
		out = strconv.AppendInt(out, int64(x), 10)
	case int16:
		out = strconv.AppendInt(out, int64(x), 10)
	case int32:
		out = strconv.AppendInt(out, int64(x), 10)
	case int64:
		out = strconv.AppendInt(out, x, 10)
	case time.Duration:
		out = strconv.AppendInt(out, int64(x), 10)
	case uint:
		out = strconv.AppendUint(out, uint64(x), 10)
	case uint8:
		out = strconv.AppendUint(out, uint64(x), 10)
	case uint16:
		out = strconv.AppendUint(out, uint64(x), 10)
	case uint32:
		out = strconv.AppendUint(out, uint64(x), 10)
	case uint64:
		out = strconv.AppendUint(out, x, 10)
	case float64:
		out = appendJSONFloat(out, x, 64)
	case float32:
		out = appendJSONFloat(out, float64(x), 32)
	case nil:
		out = append(out, "null"...)
	default:
		raw, err := json.Marshal(x) // escapes HTML, as the Encoder logrus uses
		if err != nil {
			out = appendJSONString(out, err.Error())
		} else {
			out = append(out, raw...)
		}
	}
	return out
}

// appendJSONFloat appends f as encoding/json does: the shortest decimal,
// in exponent form below 1e-6 or from 1e21, exponent without leading zero.
func appendJSONFloat(out []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendJSONString(out, strconv.FormatFloat(f, 'g', -1, bits))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	out = strconv.AppendFloat(out, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(out); n >= 4 && out[n-4] == 'e' && out[n-3] == '-' && out[n-2] == '0' {
			out[n-2] = out[n-1]
			out = out[:n-1]
		}
	}
	return out
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping on: <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029
// escaped, each invalid UTF-8 byte as \ufffd.
func appendJSONString(out []byte, s string) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			out = append(out, s[start:i]...)
			switch c {
			case '\\', '"':
				out = append(out, '\\', c)
			case '\b':
				out = append(out, '\\', 'b')
			case '\f':
				out = append(out, '\\', 'f')
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			default:
				out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, s[start:i]...)
			out = append(out, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			out = append(out, s[start:i]...)
			out = append(out, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}
