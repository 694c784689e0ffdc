package logging

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Redacted replaces every secret the redaction hook finds.
const Redacted = "[REDACTED]"

// secretWords are the key endings that mark a secret. A word matches a whole
// key or its last part after '_', '.', '-' or a camelCase boundary, so
// "refresh_token", "x-api-key" and "clientSecret" match while "monkey" and
// "tokens" do not. Over-redaction is accepted: "page_token" and "cache_key"
// are redacted too.
var secretWords = []string{
	"password", "passwd", "passphrase", "secret", "token", "authorization",
	"cookie", "key", "apikey", "privatekey", "credential", "credentials",
}

// secretWordsByLast are secretWords by their last letter, in both cases.
var secretWordsByLast = func() (by [256][]string) {
	for _, w := range secretWords {
		c := w[len(w)-1]
		by[c] = append(by[c], w)
		by[c&^0x20] = append(by[c&^0x20], w)
	}
	return by
}()

// SecretKey reports whether a field named key holds a secret: the key, in any
// case, is one of password, passwd, passphrase, secret, token, authorization,
// cookie, key, apikey, privatekey, credential(s), or ends with one after '_',
// '.', '-' or a camelCase boundary (access_token, api_key, private_key,
// grpc.metadata.authorization, Set-Cookie, clientSecret).
func SecretKey(key string) bool {
	if key == "" {
		return false
	}
	// Only the words ending in the key's last letter can match. (A fold
	// partner of an ASCII letter outside ASCII is longer in UTF-8, so it
	// never ends a key matching a word of the same length.)
	for _, w := range secretWordsByLast[key[len(key)-1]] {
		if endsWithWord(key, w) {
			return true
		}
	}
	return false
}

// endsWithWord reports whether key, in any case, is w or ends with w after
// '_', '.', '-' or a camelCase boundary.
func endsWithWord(key, w string) bool {
	if len(key) < len(w) {
		return false
	}
	i := len(key) - len(w)
	if !strings.EqualFold(key[i:], w) {
		return false
	}
	if i == 0 {
		return true
	}
	prev, first := key[i-1], key[i]
	return prev == '_' || prev == '.' || prev == '-' ||
		first >= 'A' && first <= 'Z' && (prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9')
}

var (
	// bearerRE matches an Authorization bearer credential (RFC 6750 b64token).
	bearerRE = regexp.MustCompile(`(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*`)
	// jwtRE matches a JWS (three base64url segments) or JWE (five) in
	// compact form whose header starts with "eyJ", the base64url encoding of
	// `{"` followed by a letter, as every JOSE header does. Requiring it
	// keeps host names and version numbers, which also have three dotted
	// parts, readable.
	jwtRE = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}`)
	// kvRE matches secret=value as in query strings and DSNs.
	kvRE = regexp.MustCompile(`(?i)([\w.-]*(?:password|passwd|secret|token|api_?key|private_?key)=)[^\s&"',;]+`)
	// jsonKVRE matches "secret": "value" as in a JSON document.
	jsonKVRE = regexp.MustCompile(`(?i)("[\w.-]*(?:password|passwd|secret|token|api_?key|private_?key)"\s*:\s*")(?:[^"\\]|\\.)*"`)
	// userinfoRE matches the password of a URL with user information.
	userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@`)
)

// RedactString returns s with secrets replaced by [REDACTED]: bearer
// credentials, JWTs, secret=value pairs, "secret": "value" JSON pairs and
// URL passwords. Cheap substring checks skip the regular expressions for the
// common string that holds none of them.
func RedactString(s string) string {
	if len(s) < 8 {
		return s
	}
	if containsFold(s, "bearer") {
		s = bearerRE.ReplaceAllString(s, "${1}"+Redacted)
	}
	if strings.Contains(s, "eyJ") {
		s = jwtRE.ReplaceAllLiteralString(s, Redacted)
	}
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		s = userinfoRE.ReplaceAllString(s, "${1}"+Redacted+"@")
	}
	if strings.ContainsAny(s, "=:") && (containsFold(s, "pass") || containsFold(s, "secret") ||
		containsFold(s, "token") || containsFold(s, "key")) {
		s = kvRE.ReplaceAllString(s, "${1}"+Redacted)
		s = jsonKVRE.ReplaceAllString(s, `${1}`+Redacted+`"`)
	}
	return s
}

// containsFold reports whether s contains the lowercase ASCII word sub in
// any case, without allocating.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if c := s[i] | 0x20; c != sub[0] {
			continue
		}
		if strings.EqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

// redactHook enforces that nothing secret reaches stdout or Graylog. It runs
// after the context hook and before the GELF hook and the formatter.
type redactHook struct{}

func (redactHook) Levels() []logrus.Level { return logrus.AllLevels }

func (redactHook) Fire(e *logrus.Entry) error {
	e.Message = RedactString(e.Message)
	for k, v := range e.Data {
		if SecretKey(k) {
			e.Data[k] = Redacted
			continue
		}
		if r, changed := redactValue(v); changed {
			e.Data[k] = r
		}
	}
	return nil
}

// redactValue returns the redacted form of a field value and whether it
// differs. Strings and errors (as text) are scrubbed; maps of headers and metadata
// lose their secret keys; URLs lose their password; protobuf messages, which
// print every field including passwords, are replaced by their type name.
// Values encoding/json refuses (NaN, channels, functions, complex numbers)
// become text. Other values are left to the formatter. An unchanged value
// is returned as v itself: boxing it again would allocate for every field
// of every entry.
func redactValue(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		if r := RedactString(x); r != x {
			return r, true
		}
		return v, false
	case error:
		// Always replaced by its text: formatters call Error without
		// recovering, and it would run twice otherwise.
		return RedactString(safeError(x)), true
	case *url.URL:
		if x == nil {
			return v, false
		}
		s := x.Redacted()
		return RedactString(s), true
	case proto.Message:
		return fmt.Sprintf("%s %s", Redacted, x.ProtoReflect().Descriptor().FullName()), true
	case http.Header:
		return redactMultiMap(x), true
	case url.Values:
		return redactMultiMap(x), true
	case metadata.MD:
		return redactMultiMap(x), true
	case map[string][]string:
		return redactMultiMap(x), true
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, val := range x {
			out[k] = redactIfSecret(k, val)
		}
		return out, true
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = RedactString(s)
		}
		return out, true
	case float64:
		// encoding/json refuses NaN and infinities, and logrus's JSON
		// formatter would then lose the whole entry.
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return finite(x), true
		}
		return v, false
	case float32:
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return finite(f), true
		}
		return v, false
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return v, false
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return safeSprint(v), true // encoding/json refuses these too
	}
	return v, false
}

func redactMultiMap[M ~map[string][]string](m M) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, vals := range m {
		r := make([]string, len(vals))
		for i, s := range vals {
			r[i] = redactIfSecret(k, s)
		}
		out[k] = r
	}
	return out
}

func redactIfSecret(key, val string) string {
	if SecretKey(key) {
		return Redacted
	}
	return RedactString(val)
}
