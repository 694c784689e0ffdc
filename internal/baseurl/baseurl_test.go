package baseurl

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080":        "http://127.0.0.1:8080",
		"https://graylog.example/api/": "https://graylog.example/api",
		"http://jaeger:16686//":        "http://jaeger:16686",
	} {
		u, err := Parse(raw)
		if err != nil || u.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", raw, u, err, want)
		}
	}
	for raw, want := range map[string]string{
		"127.0.0.1:8080":             "not a URL",
		"ftp://host":                 "http://",
		"http://":                    "no host",
		"http://admin:secret@host":   "credentials",
		"http://host/?q=1":           "query",
		"http://host/#top":           "fragment",
		"http://host:port-not-a-num": "not a URL",
	} {
		_, err := Parse(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error mentioning %q", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) error shows the password: %v", raw, err)
		}
	}
}
