package user

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// checkFieldError asserts that err is nil when wantOK, and otherwise that
// its message starts with the field name and does not echo the value.
func checkFieldError(t *testing.T, err error, wantOK bool, field, value string) {
	t.Helper()
	if wantOK {
		if err != nil {
			t.Errorf("got %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatal("got nil, want an error")
	}
	if !strings.HasPrefix(err.Error(), field+": ") {
		t.Errorf("error %q does not name field %q", err, field)
	}
	if len(value) >= 3 && strings.Contains(err.Error(), value) {
		t.Errorf("error %q echoes the value", err)
	}
}

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"abc", true},
		{"alice", true},
		{"a1_b.c-d", true},
		{"0day", true},
		{strings.Repeat("a", 32), true},
		{"", false},
		{"ab", false},
		{strings.Repeat("a", 33), false},
		{"Alice", false},
		{"ALICE", false},
		{"_alice", false},
		{".alice", false},
		{"-alice", false},
		{"al ice", false},
		{"al@ice", false},
		{"alice\n", false},
		{"al\x00ce", false},
		{"ålice", false},
		{"аlice", false}, // Cyrillic а
		{strings.Repeat("a", 10000), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			checkFieldError(t, ValidateUsername(tt.in), tt.ok, "username", "")
		})
	}
}

func TestValidateEmail(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com" // 254
	tests := []struct {
		in string
		ok bool
	}{
		{"alice@example.com", true},
		{"a.b+tag@sub.example.org", true},
		{long, true},
		{"", false},
		{"a" + long, false},
		{"alice", false},
		{"alice@", false},
		{"@example.com", false},
		{"Alice <alice@example.com>", false},
		{"<alice@example.com>", false},
		{" alice@example.com", false},
		{"alice@example.com ", false},
		{"alice@example.com (comment)", false},
		{"alice@example.com, bob@example.com", false},
		{"alice\r\n@example.com", false},
		{strings.Repeat("x", 100000), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			checkFieldError(t, ValidateEmail(tt.in), tt.ok, "email", "")
		})
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"8 bytes", "s3cretpw", true},
		{"72 bytes", strings.Repeat("p", 72), true},
		{"inner spaces", "correct horse battery", true},
		{"multibyte within 72 bytes", strings.Repeat("é", 36), true},
		{"empty", "", false},
		{"7 bytes", "s3cret!", false},
		{"73 bytes", strings.Repeat("p", 73), false},
		{"multibyte over 72 bytes", strings.Repeat("é", 37), false},
		{"only spaces", "          ", false},
		{"only mixed whitespace", " \t\n\r \t\n\r", false},
		{"huge", strings.Repeat("p", 1<<20), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldError(t, ValidatePassword(tt.in), tt.ok, "password", tt.in)
		})
	}
}

func TestValidateNewUserCombinesFields(t *testing.T) {
	if err := ValidateNewUser("alice", "alice@example.com", "s3cretpassword"); err != nil {
		t.Fatalf("valid user rejected: %v", err)
	}

	err := ValidateNewUser("A", "not-an-email", "short!")
	var es FieldErrors
	if !errors.As(err, &es) {
		t.Fatalf("error %T is not FieldErrors", err)
	}
	var fields []string
	for _, e := range es {
		fields = append(fields, e.Field)
	}
	if strings.Join(fields, ",") != "username,email,password" {
		t.Errorf("fields = %v, want username, email, password", fields)
	}
	msg := err.Error()
	for _, want := range []string{"username: ", "email: ", "password: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "short!") {
		t.Errorf("message %q echoes the password", msg)
	}

	// Only the bad field is reported.
	err = ValidateNewUser("alice", "alice@example.com", "short")
	if err == nil || err.Error() != "password: must be at least 8 bytes" {
		t.Errorf("got %v, want only the password error", err)
	}
}

func TestValidateCredentials(t *testing.T) {
	tests := []struct {
		name, user, pass string
		wantFields       string
	}{
		{"ok", "alice", "whatever-password", ""},
		{"short password allowed", "alice", "x", ""},
		{"upper case username allowed", "Alice", "password", ""},
		{"empty username", "", "password", "username"},
		{"long username", strings.Repeat("a", 33), "password", "username"},
		{"empty password", "alice", "", "password"},
		{"long password", "alice", strings.Repeat("p", 73), "password"},
		{"both empty", "", "", "username,password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCredentials(tt.user, tt.pass)
			var fields []string
			var es FieldErrors
			if errors.As(err, &es) {
				for _, e := range es {
					fields = append(fields, e.Field)
				}
			} else if err != nil {
				t.Fatalf("error %T is not FieldErrors", err)
			}
			if got := strings.Join(fields, ","); got != tt.wantFields {
				t.Errorf("fields = %q, want %q (err %v)", got, tt.wantFields, err)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	v7 := uuid.Must(uuid.NewV7()).String()
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"v7", v7, true},
		{"empty", "", false},
		{"garbage", "not-an-id", false},
		{"upper case", strings.ToUpper(v7), false},
		{"no dashes", strings.ReplaceAll(v7, "-", ""), false},
		{"braces", "{" + v7 + "}", false},
		{"urn", "urn:uuid:" + v7, false},
		{"v4", uuid.Must(uuid.NewRandom()).String(), false},
		{"nil uuid", uuid.Nil.String(), false},
		{"wrong variant", v7[:19] + "c" + v7[20:], false},
		{"trailing newline", v7 + "\n", false},
		{"huge", strings.Repeat("a", 1<<16), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldError(t, ValidateID(tt.in), tt.ok, "id", "")
		})
	}
}

func TestResolvePageSize(t *testing.T) {
	tests := []struct {
		in      int32
		want    int
		wantErr bool
	}{
		{0, 50, false},
		{1, 1, false},
		{50, 50, false},
		{500, 500, false},
		{501, 500, false},
		{1 << 30, 500, false},
		{-1, 0, true},
		{-1 << 31, 0, true},
	}
	for _, tt := range tests {
		got, err := ResolvePageSize(tt.in, DefaultPageSize, MaxPageSize)
		if tt.wantErr {
			if err == nil || !strings.HasPrefix(err.Error(), "page_size: ") {
				t.Errorf("ResolvePageSize(%d) err = %v, want a page_size error", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ResolvePageSize(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestPageToken(t *testing.T) {
	id := uuid.Must(uuid.NewV7()).String()
	tok := EncodePageToken(id)
	if tok == "" || strings.Contains(tok, id) {
		t.Fatalf("token %q is empty or not opaque", tok)
	}
	if got, err := DecodePageToken(tok); err != nil || got != id {
		t.Fatalf("round trip = %q, %v; want %q", got, err, id)
	}
	if EncodePageToken("") != "" {
		t.Error("empty last ID must give an empty token")
	}
	if got, err := DecodePageToken(""); err != nil || got != "" {
		t.Errorf("empty token = %q, %v; want start of listing", got, err)
	}

	bad := []string{
		"!!!",
		id,                           // a raw ID is not a token
		tok + "=",                    // padding
		tok[:len(tok)-1],             // truncated
		EncodePageToken("not-an-id"), // well-encoded garbage
		EncodePageToken(strings.ToUpper(id)),
		strings.Repeat("A", 10000),
	}
	for _, b := range bad {
		if _, err := DecodePageToken(b); !errors.Is(err, ErrInvalidPageToken) {
			t.Errorf("DecodePageToken(%.20q) = %v, want ErrInvalidPageToken", b, err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("alice", "alice@example.com", "password1", "tok")
	f.Fuzz(func(t *testing.T, user, email, pass, tok string) {
		// None of these may panic, whatever the input.
		_ = ValidateNewUser(user, email, pass)
		_ = ValidateCredentials(user, pass)
		_ = ValidateID(user)
		_, _ = DecodePageToken(tok)
	})
}
