package requestid

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"empty", "", false},
		{"7 chars", strings.Repeat("a", 7), false},
		{"8 chars", strings.Repeat("a", 8), true},
		{"64 chars", strings.Repeat("a", 64), true},
		{"65 chars", strings.Repeat("a", 65), false},
		{"all allowed classes", "Az09._-x", true},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", true},
		{"new format", "0123456789abcdef0123456789abcdef", true},
		{"leading digit", "0abcdefg", true},
		{"leading upper", "Zabcdefg", true},
		{"leading dash", "-abcdefg", false},
		{"leading dot", ".abcdefg", false},
		{"leading underscore", "_abcdefg", false},
		{"dash later", "abc-defg", true},
		{"only separators after first", "a-------", true},
		{"double quote", `abc"defg`, false},
		{"colon", "abc:defg", false},
		{"asterisk", "abc*defg", false},
		{"space", "abc defg", false},
		{"backslash", `abc\defg`, false},
		{"slash", "abc/defg", false},
		{"plus", "abc+defg", false},
		{"equals", "abc=defg", false},
		{"newline", "abcdefg\n", false},
		{"carriage return", "abc\rdefg", false},
		{"tab", "abc\tdefg", false},
		{"NUL", "abc\x00defg", false},
		{"unicode letter", "abcdéfgh", false},
		{"unicode digit", "abcd٣efgh", false},
		{"invalid utf-8", "abcd\xffefgh", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.id); got != tt.want {
				t.Errorf("Valid(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestOrNew(t *testing.T) {
	for _, id := range []string{"abcdefgh", strings.Repeat("Z", 64), "req-1.2_3"} {
		if got := OrNew(id); got != id {
			t.Errorf("OrNew(%q) = %q, want the valid ID kept", id, got)
		}
	}
	for _, id := range []string{"", "short", strings.Repeat("a", 65), "-abcdefg", `a"b:c*d e\f`, "abcdefg\n", "abcdéfgh"} {
		got := OrNew(id)
		if got == id {
			t.Errorf("OrNew(%q) kept an invalid ID", id)
		}
		if !Valid(got) {
			t.Errorf("OrNew(%q) = %q, which is not Valid", id, got)
		}
	}
}

var newFormat = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestNewFormatAndUniqueness(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	for range n {
		id := New()
		if !newFormat.MatchString(id) {
			t.Fatalf("New() = %q, want 32 lowercase hex digits", id)
		}
		if !Valid(id) {
			t.Fatalf("New() = %q, which Valid rejects", id)
		}
		if seen[id] {
			t.Fatalf("New() returned %q twice in %d calls", id, n)
		}
		seen[id] = true
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if got := FromContext(ctx); got != "" {
		t.Errorf("FromContext(empty) = %q, want \"\"", got)
	}
	ctx = NewContext(ctx, "abcdefgh")
	if got := FromContext(ctx); got != "abcdefgh" {
		t.Errorf("FromContext = %q, want %q", got, "abcdefgh")
	}
	if got := FromContext(NewContext(ctx, "ijklmnop")); got != "ijklmnop" {
		t.Errorf("inner NewContext: FromContext = %q, want %q", got, "ijklmnop")
	}
}
