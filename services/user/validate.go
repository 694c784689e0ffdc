package user

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// Limits on account fields. They are exported so that clients (the gateway,
// tests) can apply the same rules before calling the service.
const (
	// MinUsernameLen and MaxUsernameLen bound usernames, in characters
	// (usernames are ASCII, so characters and bytes coincide).
	MinUsernameLen = 3
	MaxUsernameLen = 32
	// MaxEmailLen is the longest address SMTP can carry (RFC 5321 path
	// limit minus the angle brackets).
	MaxEmailLen = 254
	// MinPasswordLen and MaxPasswordLen bound passwords in bytes. bcrypt
	// ignores everything past 72 bytes, so longer passwords are rejected
	// rather than silently truncated.
	MinPasswordLen = 8
	MaxPasswordLen = 72
)

// Default page sizes for ListUsers; see WithPageSizes to change them.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// maxPageTokenLen bounds the work spent decoding a page token: a real one
// is the base64url form of a 36-character ID.
const maxPageTokenLen = 64

// usernameRE is the shape of a username. Upper case is deliberately not
// folded: rejecting it tells the user what was stored instead of silently
// storing something different from what they typed.
var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// FieldError is one invalid request field. Its message names the field and
// never quotes the value, so passwords and other input are not echoed back.
type FieldError struct {
	Field  string
	Reason string
}

// Error implements error as "field: reason".
func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// FieldErrors collects every invalid field of one request, so the caller
// can fix them all at once instead of one round trip per field.
type FieldErrors []FieldError

// Error implements error by joining the field errors with "; ".
func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// add appends err if it is a FieldError (or FieldErrors) and ignores nil.
func (es *FieldErrors) add(err error) {
	var fe FieldError
	var fes FieldErrors
	switch {
	case err == nil:
	case errors.As(err, &fes):
		*es = append(*es, fes...)
	case errors.As(err, &fe):
		*es = append(*es, fe)
	default:
		// Not expected from this package; do not echo its text.
		*es = append(*es, FieldError{Field: "request", Reason: "invalid"})
	}
}

// err returns es as an error, or nil when it is empty (never a typed nil).
func (es FieldErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// ValidateUsername checks a username for account creation.
func ValidateUsername(username string) error {
	const field = "username"
	switch {
	case username == "":
		return FieldError{field, "required"}
	case len(username) < MinUsernameLen || len(username) > MaxUsernameLen:
		return FieldError{field, fmt.Sprintf("must be %d-%d characters", MinUsernameLen, MaxUsernameLen)}
	case strings.ToLower(username) != username:
		return FieldError{field, "must be lower case"}
	case !usernameRE.MatchString(username):
		return FieldError{field, "must start with a letter or digit and contain only a-z, 0-9, '_', '.' and '-'"}
	}
	return nil
}

// ValidateEmail checks an email address. It must be a bare address: display
// names, comments and surrounding spaces are rejected rather than stripped,
// so what is stored is exactly what the caller sent.
func ValidateEmail(email string) error {
	const field = "email"
	switch {
	case email == "":
		return FieldError{field, "required"}
	case len(email) > MaxEmailLen:
		return FieldError{field, fmt.Sprintf("must be at most %d characters", MaxEmailLen)}
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return FieldError{field, "must be a plain address such as name@example.com"}
	}
	return nil
}

// ValidatePassword checks a new password. The limits are in bytes because
// that is what bcrypt consumes.
func ValidatePassword(password string) error {
	const field = "password"
	switch {
	case password == "":
		return FieldError{field, "required"}
	case len(password) < MinPasswordLen:
		return FieldError{field, fmt.Sprintf("must be at least %d bytes", MinPasswordLen)}
	case len(password) > MaxPasswordLen:
		return FieldError{field, fmt.Sprintf("must be at most %d bytes", MaxPasswordLen)}
	case strings.TrimSpace(password) == "":
		return FieldError{field, "must not be only whitespace"}
	}
	return nil
}

// ValidateNewUser checks every field of a CreateUser request and reports
// all invalid fields together.
func ValidateNewUser(username, email, password string) error {
	var es FieldErrors
	es.add(ValidateUsername(username))
	es.add(ValidateEmail(email))
	es.add(ValidatePassword(password))
	return es.err()
}

// ValidateCredentials bounds the input of a credential check. It only
// rejects values that no account can have (empty or over the limits), so
// its answer depends on the input alone and reveals nothing about which
// accounts exist, while sparing the bcrypt work for oversized input.
// Passwords shorter than MinPasswordLen are let through so that a future
// change of the minimum does not lock out existing accounts.
func ValidateCredentials(username, password string) error {
	var es FieldErrors
	switch {
	case username == "":
		es.add(FieldError{"username", "required"})
	case len(username) > MaxUsernameLen:
		es.add(FieldError{"username", fmt.Sprintf("must be at most %d characters", MaxUsernameLen)})
	}
	switch {
	case password == "":
		es.add(FieldError{"password", "required"})
	case len(password) > MaxPasswordLen:
		es.add(FieldError{"password", fmt.Sprintf("must be at most %d bytes", MaxPasswordLen)})
	}
	return es.err()
}

// ValidateID checks that id has the shape of an ID this service issues
// (a canonical lower-case UUIDv7), so a malformed ID is reported as invalid
// input instead of as a missing user.
func ValidateID(id string) error {
	const field = "id"
	if id == "" {
		return FieldError{field, "required"}
	}
	if !isUserID(id) {
		return FieldError{field, "must be a valid user ID"}
	}
	return nil
}

// isUserID reports whether s is a canonical UUIDv7 string. uuid.Parse also
// accepts braces, URNs and upper case; requiring the round trip to give s
// back rejects those, so each user has exactly one spelling of its ID.
func isUserID(s string) bool {
	if len(s) != 36 {
		return false
	}
	u, err := uuid.Parse(s)
	return err == nil && u.Version() == 7 && u.Variant() == uuid.RFC4122 && u.String() == s
}

// ResolvePageSize turns a requested page size into the one to use: 0 means
// def, anything above maxSize is clamped to it, and negative is invalid.
func ResolvePageSize(requested int32, def, maxSize int) (int, error) {
	switch {
	case requested < 0:
		return 0, FieldError{"page_size", "must not be negative"}
	case requested == 0:
		return def, nil
	case int(requested) > maxSize:
		return maxSize, nil
	}
	return int(requested), nil
}

// ErrInvalidPageToken reports a page token that this service did not issue.
var ErrInvalidPageToken = errors.New("invalid page_token")

// pageTokenEncoding is unpadded base64url so that tokens are safe in URLs
// and query strings without further escaping; Strict rejects alternative
// encodings of the same bytes.
var pageTokenEncoding = base64.RawURLEncoding.Strict()

// EncodePageToken returns the opaque token for the page after lastID, or ""
// when lastID is "" (no further page). Tokens are opaque to clients so that
// the encoding can change without breaking them.
func EncodePageToken(lastID string) string {
	if lastID == "" {
		return ""
	}
	return pageTokenEncoding.EncodeToString([]byte(lastID))
}

// DecodePageToken returns the last ID carried by a token from
// EncodePageToken; "" decodes to "" (start from the beginning). Anything
// else that is not such a token yields ErrInvalidPageToken.
func DecodePageToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if len(token) > maxPageTokenLen {
		return "", ErrInvalidPageToken
	}
	raw, err := pageTokenEncoding.DecodeString(token)
	if err != nil || !isUserID(string(raw)) {
		return "", ErrInvalidPageToken
	}
	return string(raw), nil
}
