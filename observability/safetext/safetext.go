// Package safetext shortens and cleans text for messages: log fields, error
// messages and terminal output that may carry what a client or a remote
// server sent. It never splits a UTF-8 character.
package safetext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Truncate returns s cut to at most n bytes without splitting a UTF-8
// character. It does not change anything else.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Line returns s as one line that is safe to print or log: each run of
// white space becomes one space, control characters and bytes that are not
// UTF-8 are dropped (a body could carry terminal escapes), and a result
// longer than n bytes is cut with "..." appended.
func Line(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) > n {
		return Truncate(s, n) + "..."
	}
	return s
}
