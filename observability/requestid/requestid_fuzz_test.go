package requestid

import (
	"strings"
	"testing"
)

// FuzzValid checks the contract between Valid and OrNew on arbitrary input:
// an accepted ID is within bounds and made only of the allowed characters and
// is kept; anything else is replaced by a fresh, valid ID. The seed corpus
// also lives in testdata/fuzz/FuzzValid.
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		"",
		"abcdefg",
		"abcdefgh",
		strings.Repeat("a", 64),
		strings.Repeat("a", 65),
		"0123456789abcdef0123456789abcdef",
		"-abcdefg",
		"a.b_c-d.",
		`abc"defg`,
		"abc:defg",
		"abc*defg",
		"abc defg",
		`abc\defg`,
		"abcdefg\n",
		"abcdéfgh",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) {
			if len(s) < 8 || len(s) > 64 {
				t.Fatalf("Valid(%q) with length %d outside 8..64", s, len(s))
			}
			for i := 0; i < len(s); i++ {
				if !allowed(s[i]) {
					t.Fatalf("Valid(%q) with byte %q at %d outside [A-Za-z0-9._-]", s, s[i], i)
				}
			}
			if got := OrNew(s); got != s {
				t.Fatalf("OrNew(%q) = %q, want it kept", s, got)
			}
			return
		}
		got := OrNew(s)
		if got == s {
			t.Fatalf("OrNew(%q) kept an ID that Valid rejects", s)
		}
		if !Valid(got) {
			t.Fatalf("OrNew(%q) = %q, which Valid rejects", s, got)
		}
	})
}

func allowed(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}
