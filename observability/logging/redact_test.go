package logging

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
)

// jwt is a well-formed HS256 token (header.payload.signature).
const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

func TestSecretKey(t *testing.T) {
	secret := []string{
		"password", "Password", "PASSWORD", "passwd", "secret", "token", "access_token",
		"refresh_token", "authorization", "Authorization", "cookie", "Set-Cookie", "api_key",
		"x-api-key", "apikey", "private_key", "key", "signing.key", "user_password", "client_secret",
		"clientSecret", "accessToken", "apiKey", "grpc.metadata.authorization", "page_token",
		"credentials", "passphrase",
	}
	plain := []string{
		"user_id", "request_id", "trace_id", "span_id", "monkey", "tokens", "keyboard", "turkey",
		"grpc.method", "http.status", "duration_ms", "username", "email", "caller", "service",
		"author", "secretary", "passwords_count", "",
	}
	for _, k := range secret {
		if !SecretKey(k) {
			t.Errorf("SecretKey(%q) = false, want true", k)
		}
	}
	for _, k := range plain {
		if SecretKey(k) {
			t.Errorf("SecretKey(%q) = true, want false", k)
		}
	}
}

// secretKeyAnyWord is SecretKey comparing the key with every secret word,
// as it did before it looked only at the words ending in the key's last
// letter.
func secretKeyAnyWord(key string) bool {
	for _, w := range secretWords {
		if endsWithWord(key, w) {
			return true
		}
	}
	return false
}

// FuzzSecretKey checks that SecretKey agrees with secretKeyAnyWord. Its
// seeds, which go test runs, are every secret word in several cases after
// several prefixes, and keys with non-ASCII fold partners of its letters.
func FuzzSecretKey(f *testing.F) {
	for _, w := range secretWords {
		for _, word := range []string{w, strings.ToUpper(w), strings.ToUpper(w[:1]) + w[1:], w[:len(w)-1] + strings.ToUpper(w[len(w)-1:])} {
			for _, prefix := range []string{"", "x_", "x.", "x-", "my", "a1", "X", "ſ"} {
				f.Add(prefix + word)
				f.Add(prefix + word + "s")
			}
		}
	}
	for _, k := range []string{"ſecret", "Key", "toKen", "credentialſ", "password", "İd", "caller", "grpc.code", "", "y", "Y"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if got, want := SecretKey(key), secretKeyAnyWord(key); got != want {
			t.Errorf("SecretKey(%q) = %v, comparing every word gives %v", key, got, want)
		}
	})
}

func TestRedactString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "user fetched", "user fetched"},
		{"short", "abc", "abc"},
		{"bearer", "Authorization: Bearer abc.def-123~+/=", "Authorization: Bearer " + Redacted},
		{"bearer lower", "got bearer s3cr3tt0k3n here", "got bearer " + Redacted + " here"},
		{"jwt", "token " + jwt + " rejected", "token " + Redacted + " rejected"},
		{"jwt unsigned", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. ok", Redacted + " ok"},
		{"jwt in error", `parse "` + jwt + `": expired`, `parse "` + Redacted + `": expired`},
		{"jwe five parts", "eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn", Redacted},
		{"hostname kept", "dial auth.golden.internal:9001 failed", "dial auth.golden.internal:9001 failed"},
		{"version kept", "golden v1.2.3 starting", "golden v1.2.3 starting"},
		{"query token", "GET /cb?access_token=abc123&state=x", "GET /cb?access_token=" + Redacted + "&state=x"},
		{"password kv", "login password=hunter2 user=bob", "login password=" + Redacted + " user=bob"},
		{"json password", `body {"username":"bob","password":"hunter2"}`, `body {"username":"bob","password":"` + Redacted + `"}`},
		{"json escaped", `{"refresh_token":"a\"b"}`, `{"refresh_token":"` + Redacted + `"}`},
		{"url password", "dsn postgres://app:s3cret@db:5432/x", "dsn postgres://app:" + Redacted + "@db:5432/x"},
		{"url without password", "see https://example.com/a@b", "see https://example.com/a@b"},
		{"token word kept", "refresh token not found", "refresh token not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactString(tt.in); got != tt.want {
				t.Errorf("RedactString(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRedactionOnStdoutAndGELF logs secrets every way a service might and
// checks that neither stdout nor Graylog sees one.
func TestRedactionOnStdoutAndGELF(t *testing.T) {
	r := newUDPReader(t)
	l, out, _ := newLogger(t, func(c *Config) { c.GELFAddr = r.addr() })
	secrets := []string{"hunter2", "s3cr3tt0k3n", jwt, "c00kie", "k3y-m4t3r1al", "md-secret", "pw-in-url", "pb-password"}
	hdr := http.Header{"Authorization": {"Bearer s3cr3tt0k3n"}, "Cookie": {"session=c00kie"}, "Accept": {"application/json"}}
	md := metadata.Pairs("authorization", "Bearer md-secret", "x-request-id", "req-0001-abcd")
	u, _ := url.Parse("https://bob:pw-in-url@example.com/path")
	l.Entry().WithFields(logrus.Fields{
		"password":      "hunter2",
		"Authorization": "Bearer s3cr3tt0k3n",
		"api_key":       "k3y-m4t3r1al",
		"headers":       hdr,
		"md":            md,
		"url":           u,
		"request":       &authv1.LoginRequest{Username: "bob", Password: "pb-password"},
		"error":         errors.New("verify " + jwt + ": expired"),
		"user_id":       "u-42",
	}).Warn("login with Bearer " + jwt + " and password=hunter2")

	m := r.next(t, "login with Bearer "+Redacted+" and password="+Redacted)
	stdout := out.String()
	gelfText := m.Short + m.Full
	for k, v := range m.Extra {
		gelfText += " " + k + "=" + fmt.Sprint(v)
	}
	for _, s := range secrets {
		if strings.Contains(stdout, s) {
			t.Errorf("stdout contains the secret %q:\n%s", s, stdout)
		}
		if strings.Contains(gelfText, s) {
			t.Errorf("GELF message contains the secret %q:\n%s", s, gelfText)
		}
	}
	e := out.entries(t)[0]
	for k, want := range map[string]any{
		"password":      Redacted,
		"Authorization": Redacted,
		"api_key":       Redacted,
		"user_id":       "u-42",
		"error":         "verify " + Redacted + ": expired",
		"request":       Redacted + " golden.auth.v1.LoginRequest",
		"url":           "https://bob:" + Redacted + "@example.com/path",
	} {
		if e[k] != want {
			t.Errorf("stdout %s = %#v, want %#v", k, e[k], want)
		}
	}
	if got := fmt.Sprint(e["headers"]); !strings.Contains(got, "application/json") {
		t.Errorf("headers = %s, want the harmless Accept header kept", got)
	}
	if got := fmt.Sprint(e["md"]); !strings.Contains(got, "req-0001-abcd") {
		t.Errorf("md = %s, want the request ID kept", got)
	}
}

// TestRedactValueKeepsWhatItDoesNotChange: a value without a secret comes
// back unchanged, without an allocation (every field of every entry passes
// here); what encoding/json refuses becomes text.
func TestRedactValueKeepsWhatItDoesNotChange(t *testing.T) {
	for _, tt := range []struct {
		name    string
		v, want any
		changed bool
	}{
		{"string", "user fetched from the primary", "user fetched from the primary", false},
		{"string with a token", "Authorization: Bearer abc.def", "Authorization: Bearer " + Redacted, true},
		{"float64", 0.038, 0.038, false},
		{"float32", float32(1.5), float32(1.5), false},
		{"NaN", math.NaN(), "NaN", true},
		{"float32 -Inf", float32(math.Inf(-1)), "-Inf", true},
		{"int", 42, 42, false},
	} {
		got, changed := redactValue(tt.v)
		if got != tt.want || changed != tt.changed {
			t.Errorf("%s: redactValue(%v) = %v, %v; want %v, %v", tt.name, tt.v, got, changed, tt.want, tt.changed)
		}
	}
	for _, v := range []any{"user fetched from the primary", 0.038, float32(1.5)} {
		if n := testing.AllocsPerRun(100, func() { _, _ = redactValue(v) }); n != 0 {
			t.Errorf("redactValue(%v) allocates %v times, want 0", v, n)
		}
	}
}
