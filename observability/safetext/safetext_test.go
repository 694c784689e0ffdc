package safetext

import (
	"fmt"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is 2 bytes: not split
		{"héllo", 3, "hé"},
		{"日本", 4, "日"},
		{"日本", 2, ""},
		{"abc", 0, ""},
		{"abc", -1, ""},
	} {
		if got := Truncate(c.in, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"  plain text ", 100, "plain text"},
		{"two\nlines\r\n\tand tabs", 100, "two lines and tabs"},
		{"escape \x1b[31mred\x1b[0m", 100, "escape [31mred [0m"},
		{"bad \xff\xfe bytes", 100, "bad bytes"},
		{"日本語のテキスト", 7, "日本..."},
		{"abcdef", 3, "abc..."},
	} {
		got := Line(c.in, c.n)
		if got != c.want {
			t.Errorf("Line(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Line(%q, %d) = %q is not valid UTF-8", c.in, c.n, got)
		}
	}
}

func ExampleLine() {
	// A remote server's answer, printed in an error message.
	body := "upstream error:\n\x1b[2J connection refused by 10.0.0.1"
	fmt.Println(Line(body, 40))
	// Output: upstream error: [2J connection refused b...
}
