package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// maxEchoedFieldName bounds a field name quoted back in an error message.
const maxEchoedFieldName = 64

// decodeJSON reads r's body strictly into dst, a pointer to a flat struct
// whose fields carry json tags. It answers, as an *apiError:
//
//   - 415 unless Content-Type is application/json, optionally with
//     charset=utf-8 and no other parameter;
//   - 413 when the body is longer than maxBytes (read through
//     http.MaxBytesReader, which also tells the server to close the
//     connection);
//   - 400 when the body is empty, is not exactly one JSON object (trailing
//     data, null, arrays and other values included), is malformed, has a
//     field dst does not declare (names match exactly, case included; unlike
//     plain encoding/json, which matches case-insensitively), has a field
//     twice, or has a value of the wrong type (the message names the field).
//
// Error messages name fields but never echo values, so a password or token
// in a body never comes back in an error.
func decodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, dst any) *apiError {
	if e := checkContentType(r.Header); e != nil {
		return e
	}
	tooLarge := func() *apiError {
		e := httpError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body must not be larger than %d bytes", maxBytes))
		return &e
	}
	if r.ContentLength > maxBytes {
		return tooLarge()
	}
	var data []byte
	if r.Body != nil {
		var err error
		data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooLarge()
			}
			return badRequest("could not read request body")
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("request body must not be empty")
	}
	if !utf8.Valid(data) {
		// encoding/json would replace the bytes with U+FFFD: two different
		// passwords would become one.
		return badRequest("request body is not valid UTF-8")
	}
	if e := checkObject(data, jsonFields(dst)); e != nil {
		return e
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return badRequest(fmt.Sprintf("field %q must be %s", echoField(ute.Field), jsonTypeName(ute.Type)))
		}
		// checkObject has already ruled out syntax errors, non-objects and
		// unknown fields.
		return badRequest("invalid request body")
	}
	// A \ud800-style escape of half a surrogate pair decodes to U+FFFD
	// as silently; no field of the API has a use for that character.
	if name := replacedField(dst); name != "" {
		return badRequest(fmt.Sprintf("field %q is not valid UTF-8 (an unpaired surrogate escape or U+FFFD)", name))
	}
	return nil
}

// replacedField returns the JSON name of the first string field of *dst
// holding U+FFFD, or "".
func replacedField(dst any) string {
	v := reflect.ValueOf(dst).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.String && strings.ContainsRune(f.String(), utf8.RuneError) {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return ""
}

// checkContentType accepts application/json with at most a charset=utf-8
// parameter.
func checkContentType(h http.Header) *apiError {
	unsupported := func() *apiError {
		e := httpError(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return &e
	}
	vals := h.Values("Content-Type")
	if len(vals) != 1 {
		return unsupported()
	}
	mediaType, params, err := mime.ParseMediaType(vals[0])
	if err != nil || mediaType != "application/json" {
		return unsupported()
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return unsupported()
		}
	}
	return nil
}

// checkObject verifies that data is exactly one JSON object whose keys are all
// in allowed, each at most once. Values are checked for syntax only.
func checkObject(data []byte, allowed map[string]bool) *apiError {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return badRequest("request body must be a JSON object")
	}
	seen := make(map[string]bool, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return badRequest("request body is not valid JSON")
		}
		if !allowed[key] {
			return badRequest(fmt.Sprintf("unknown field %q", echoField(key)))
		}
		if seen[key] {
			return badRequest(fmt.Sprintf("duplicate field %q", echoField(key)))
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return syntaxError(err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body must contain a single JSON object and nothing after it")
	}
	return nil
}

func syntaxError(err error) *apiError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badRequest(fmt.Sprintf("request body is not valid JSON (at byte %d)", se.Offset))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("request body is not valid JSON (unexpected end)")
	}
	return badRequest("request body is not valid JSON")
}

func badRequest(msg string) *apiError {
	e := httpError(http.StatusBadRequest, msg)
	return &e
}

// echoField bounds a client-sent field name before it is quoted in an error.
func echoField(name string) string {
	if len(name) > maxEchoedFieldName {
		return name[:maxEchoedFieldName] + "..."
	}
	return name
}

// jsonFields returns the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]bool{}
	if t == nil || t.Kind() != reflect.Struct {
		return fields
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = true
	}
	return fields
}

// jsonTypeName describes the JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return "of type " + t.String()
	}
}
