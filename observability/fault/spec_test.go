package fault

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"

	"github.com/golden-stack/golden/observability/config"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // substring of the error; "" = valid
	}{
		{"error", `{"error_rate":0.2,"code":"Unavailable"}`, ""},
		{"canonical code", `{"error_rate":1,"code":"DEADLINE_EXCEEDED"}`, ""},
		{"fixed latency", `{"latency":{"fixed":"200ms"}}`, ""},
		{"uniform latency", `{"latency":{"min":"50ms","max":"500ms"},"latency_rate":0.5}`, ""},
		{"uniform from zero", `{"latency":{"min":"0s","max":"1s"}}`, ""},
		{"both kinds with expiry", `{"error_rate":0.1,"code":"Internal","latency":{"fixed":"1s"},"latency_rate":1,"expires_at":"2030-01-02T15:04:05Z"}`, ""},
		{"empty", ``, "empty"},
		{"not an object", `[1]`, "not a fault JSON object"},
		{"trailing data", `{"error_rate":1,"code":"Internal"} {}`, "data after the object"},
		{"unknown field", `{"eror_rate":1}`, "unknown field"},
		{"nothing", `{}`, "injects nothing"},
		{"rate zero", `{"error_rate":0,"code":"Internal"}`, "injects nothing"},
		{"latency rate zero", `{"latency":{"fixed":"1s"},"latency_rate":0}`, "injects nothing"},
		{"rate above 1", `{"error_rate":1.5,"code":"Internal"}`, "error_rate: must be between 0 and 1"},
		{"negative rate", `{"error_rate":-0.1,"code":"Internal"}`, "error_rate: must be between 0 and 1"},
		{"rate as string", `{"error_rate":"0.5","code":"Internal"}`, "not a fault JSON object"},
		{"no code", `{"error_rate":0.5}`, "code: must be set"},
		{"bad code", `{"error_rate":0.5,"code":"Broken"}`, `code: "Broken" is not a gRPC error code`},
		{"OK code", `{"error_rate":0.5,"code":"OK"}`, "OK is not an error code"},
		{"latency rate alone", `{"latency_rate":0.5,"error_rate":1,"code":"Internal"}`, "latency_rate: is only allowed with latency"},
		{"latency rate above 1", `{"latency":{"fixed":"1s"},"latency_rate":2}`, "latency_rate: must be between 0 and 1"},
		{"latency number", `{"latency":{"fixed":200}}`, "want a duration string"},
		{"latency garbage", `{"latency":{"fixed":"soon"}}`, "want a duration"},
		{"latency empty", `{"latency":{}}`, "latency: give fixed, or min and max"},
		{"latency both forms", `{"latency":{"fixed":"1s","max":"2s"}}`, "not both"},
		{"fixed negative", `{"latency":{"fixed":"-1s"}}`, "latency.fixed: must be greater than 0"},
		{"fixed too long", `{"latency":{"fixed":"2h"}}`, "latency.fixed: must be at most 1m0s"},
		{"max below min", `{"latency":{"min":"2s","max":"1s"}}`, "latency.max: must not be less than latency.min"},
		{"min only", `{"latency":{"min":"2s"}}`, "latency.max: must be greater than 0"},
		{"min negative", `{"latency":{"min":"-2s","max":"1s"}}`, "latency.min: must not be negative"},
		{"bad expiry", `{"error_rate":1,"code":"Internal","expires_at":"tomorrow"}`, "not a fault JSON object"},
		{"too large", `{"code":"` + strings.Repeat("x", MaxValueBytes) + `"}`, "more than the"},
		{"canary track", `{"error_rate":0.3,"code":"Unavailable","track":"canary"}`, ""},
		{"bad track", `{"error_rate":0.3,"code":"Unavailable","track":"beta"}`, `track: "beta" is not stable or canary`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseSpec(%s) = %v, want valid", tc.in, err)
			case tc.want != "" && err == nil:
				t.Fatalf("ParseSpec(%s) is valid, want an error with %q", tc.in, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("ParseSpec(%s) = %v, want an error with %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestSpecRoundTrip(t *testing.T) {
	rate := 0.5
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := Spec{ErrorRate: 0.2, Code: "Unavailable", Latency: &Latency{Min: Duration(50 * time.Millisecond), Max: Duration(500 * time.Millisecond)}, LatencyRate: &rate, ExpiresAt: &exp}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"error_rate":0.2,"code":"Unavailable","latency":{"min":"50ms","max":"500ms"},"latency_rate":0.5,"expires_at":"2030-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	got, err := ParseSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Latency.String() != "50ms..500ms" || *got.LatencyRate != 0.5 || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("round trip: %+v", got)
	}
	if !got.Expired(exp) || got.Expired(exp.Add(-time.Second)) {
		t.Error("Expired is wrong at the boundary")
	}
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]codes.Code{
		"Unavailable": codes.Unavailable, "unavailable": codes.Unavailable, "UNAVAILABLE": codes.Unavailable,
		"DeadlineExceeded": codes.DeadlineExceeded, "DEADLINE_EXCEEDED": codes.DeadlineExceeded,
		"Canceled": codes.Canceled, "Unauthenticated": codes.Unauthenticated,
	} {
		if got, err := ParseCode(in); err != nil || got != want {
			t.Errorf("ParseCode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "OK", "ok", "17", "Unavailable!", "Cancelled"} {
		if _, err := ParseCode(in); err == nil {
			t.Errorf("ParseCode(%q) succeeded", in)
		}
	}
}

func TestNamesAndKeys(t *testing.T) {
	for in, want := range map[string]string{
		"golden/faults/": "golden/faults/", "golden/faults": "golden/faults/", "/x/": "x/", "a.b_c-d": "a.b_c-d/",
	} {
		if got, err := NormalizePrefix(in); err != nil || got != want {
			t.Errorf("NormalizePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "a//b", "a/../b", "a b", "a/./b", "ü"} {
		if _, err := NormalizePrefix(in); err == nil {
			t.Errorf("NormalizePrefix(%q) succeeded", in)
		}
	}
	for _, ok := range []string{"GetUser", "*", "_x", "Get2"} {
		if err := CheckMethod(ok); err != nil {
			t.Errorf("CheckMethod(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "2Get", "Get/User", "/pkg.S/Get", "Get User", "**", strings.Repeat("a", 129)} {
		if err := CheckMethod(bad); err == nil {
			t.Errorf("CheckMethod(%q) succeeded", bad)
		}
	}
	for _, bad := range []string{"", ".", "..", "us/er", "us er", strings.Repeat("a", 65)} {
		if err := CheckService(bad); err == nil {
			t.Errorf("CheckService(%q) succeeded", bad)
		}
	}
	if k := Key("golden/faults/", "user", "GetUser"); k != "golden/faults/user/GetUser" {
		t.Errorf("Key = %q", k)
	}
	if s, m, ok := SplitKey("golden/faults", "golden/faults/user/*"); !ok || s != "user" || m != "*" {
		t.Errorf("SplitKey = %q %q %v", s, m, ok)
	}
	for _, bad := range []string{"golden/faults/user", "golden/faults/user/a/b", "other/user/GetUser", "golden/faults/user/"} {
		if _, _, ok := SplitKey("golden/faults/", bad); ok {
			t.Errorf("SplitKey(%q) succeeded", bad)
		}
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--fault-prefix", "a b"}); err != nil {
		t.Fatal(err)
	}
	var v config.Validator
	c.Validate(&v)
	if err := v.Err(); err == nil || !strings.Contains(err.Error(), "--fault-prefix (GOLDEN_FAULT_PREFIX)") {
		t.Fatalf("Validate = %v, want an error naming --fault-prefix", err)
	}
	if err := fs.Parse([]string{"--faults=false"}); err != nil {
		t.Fatal(err)
	}
	v = config.Validator{}
	c.Validate(&v)
	if err := v.Err(); err != nil {
		t.Fatalf("with faults off the prefix must not matter: %v", err)
	}
	if d := DefaultConfig(); !d.Enabled || d.Prefix != DefaultPrefix {
		t.Errorf("DefaultConfig = %+v", d)
	}
}

func TestDelayWithinBounds(t *testing.T) {
	r := newRule("GetUser", Spec{Latency: &Latency{Min: Duration(50 * time.Millisecond), Max: Duration(500 * time.Millisecond)}})
	for _, u := range []float64{0, 1e-9, 0.25, 0.5, 0.999999, 1} {
		d := r.delay(u)
		if d < 50*time.Millisecond || d > 500*time.Millisecond {
			t.Errorf("delay(%v) = %s, outside [50ms, 500ms]", u, d)
		}
	}
	if d := r.delay(0); d != 50*time.Millisecond {
		t.Errorf("delay(0) = %s, want the minimum", d)
	}
	if d := r.delay(0.5); d != 275*time.Millisecond {
		t.Errorf("delay(0.5) = %s, want the middle", d)
	}
	fixed := newRule("GetUser", Spec{Latency: &Latency{Fixed: Duration(time.Second)}})
	if d := fixed.delay(0.7); d != time.Second {
		t.Errorf("fixed delay = %s", d)
	}
}
