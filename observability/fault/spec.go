package fault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/golden-stack/golden/observability/canary"

	"google.golang.org/grpc/codes"

	"github.com/golden-stack/golden/observability/safetext"
)

// Limits on a fault.
const (
	// MaxLatency bounds one injected delay: enough to outlast every
	// caller's deadline, short enough that a typo cannot park requests for
	// hours.
	MaxLatency = time.Minute
	// MaxValueBytes bounds a fault's JSON value; real ones are under 200.
	MaxValueBytes = 4 << 10
	// DefaultCode is the code `golden fault set` injects unless told
	// otherwise: what a client sees from an overloaded or missing instance.
	DefaultCode = codes.Unavailable
)

// Spec is one fault, the JSON value of a key under the prefix. Check it
// with Validate before use; ParseSpec does.
type Spec struct {
	// ErrorRate is the share of calls (0 to 1) answered with Code.
	ErrorRate float64 `json:"error_rate,omitempty"`
	// Code is the gRPC code name of injected errors, such as
	// "Unavailable" (see ParseCode); required when ErrorRate is above 0.
	Code string `json:"code,omitempty"`
	// Latency, when set, is the delay added to a share LatencyRate of calls.
	Latency *Latency `json:"latency,omitempty"`
	// LatencyRate is the share of calls (0 to 1) that get Latency; nil
	// means 1. It is only allowed with Latency.
	LatencyRate *float64 `json:"latency_rate,omitempty"`
	// ExpiresAt, when set, is when the fault stops being applied.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Track, when set, limits the fault to the instances on that track
	// (canary.Stable or canary.Canary): break a canary, not its service.
	Track string `json:"track,omitempty"`
}

// Latency is a delay: Fixed, or drawn uniformly between Min and Max (both
// included). Exactly one of the two forms is given.
type Latency struct {
	Fixed Duration `json:"fixed,omitzero"`
	Min   Duration `json:"min,omitzero"`
	Max   Duration `json:"max,omitzero"`
}

// Uniform reports whether l is drawn between Min and Max rather than Fixed.
func (l Latency) Uniform() bool { return l.Fixed == 0 }

// String returns "200ms" for a fixed delay and "50ms..500ms" for a uniform
// one.
func (l Latency) String() string {
	if l.Uniform() {
		return fmt.Sprintf("%s..%s", l.Min, l.Max)
	}
	return l.Fixed.String()
}

// Duration is a time.Duration written in JSON as a Go duration string,
// such as "200ms" or "1.5s".
type Duration time.Duration

// String returns d in Go duration syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string. Bare numbers are refused: "200"
// could mean nanoseconds or milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"200ms\", got %s", safetext.Line(string(b), 40))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"200ms\", got %q", safetext.Line(s, 40))
	}
	*d = Duration(v)
	return nil
}

// FieldError is what is wrong with one field of a Spec. Field is the JSON
// path ("error_rate", "latency.max"), or "" for the Spec as a whole.
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "field: problem".
func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Problems returns everything wrong with s, each naming its field; none for
// a Spec that is safe to apply. Expiry is not checked: an expired Spec is
// valid, just no longer applied.
func (s Spec) Problems() []FieldError {
	var p []FieldError
	add := func(field, format string, args ...any) {
		p = append(p, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if s.Track != "" {
		if err := canary.CheckTrack(s.Track); err != nil {
			add("track", "%v", err)
		}
	}
	if !validRate(s.ErrorRate) {
		add("error_rate", "must be between 0 and 1, got %v", s.ErrorRate)
	}
	switch {
	case s.Code != "":
		if _, err := ParseCode(s.Code); err != nil {
			add("code", "%v", err)
		}
	case s.ErrorRate > 0:
		add("code", "must be set when error_rate is above 0 (for example %q)", DefaultCode.String())
	}
	if s.LatencyRate != nil {
		if !validRate(*s.LatencyRate) {
			add("latency_rate", "must be between 0 and 1, got %v", *s.LatencyRate)
		}
		if s.Latency == nil {
			add("latency_rate", "is only allowed with latency")
		}
	}
	if l := s.Latency; l != nil {
		switch {
		case l.Fixed != 0 && (l.Min != 0 || l.Max != 0):
			add("latency", "give fixed, or min and max, not both")
		case l.Fixed != 0:
			checkDelay(add, "latency.fixed", l.Fixed)
		case l.Min == 0 && l.Max == 0:
			add("latency", "give fixed, or min and max")
		default:
			if l.Min < 0 {
				add("latency.min", "must not be negative, got %s", l.Min)
			}
			checkDelay(add, "latency.max", l.Max)
			if l.Max < l.Min {
				add("latency.max", "must not be less than latency.min (%s), got %s", l.Min, l.Max)
			}
		}
	}
	if len(p) == 0 && !s.injectsErrors() && !s.injectsLatency() {
		add("", "injects nothing: set error_rate above 0, or latency with a latency_rate above 0")
	}
	return p
}

func checkDelay(add func(string, string, ...any), field string, d Duration) {
	switch {
	case d <= 0:
		add(field, "must be greater than 0, got %s", d)
	case time.Duration(d) > MaxLatency:
		add(field, "must be at most %s, got %s", MaxLatency, d)
	}
}

func validRate(r float64) bool { return r >= 0 && r <= 1 } // false for NaN

// Validate returns all of Problems joined, or nil.
func (s Spec) Validate() error {
	var errs []error
	for _, p := range s.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// EffectiveLatencyRate returns LatencyRate, 1 when it is nil.
func (s Spec) EffectiveLatencyRate() float64 {
	if s.LatencyRate == nil {
		return 1
	}
	return *s.LatencyRate
}

// Expired reports whether s has an ExpiresAt that is not after now.
func (s Spec) Expired(now time.Time) bool {
	return s.ExpiresAt != nil && !now.Before(*s.ExpiresAt)
}

func (s Spec) injectsErrors() bool { return s.ErrorRate > 0 }

func (s Spec) injectsLatency() bool { return s.Latency != nil && s.EffectiveLatencyRate() > 0 }

// ParseSpec decodes and validates a fault value. Unknown fields and
// anything after the object are refused, so that a misspelt field cannot
// silently turn into "no fault" or half of one.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	if len(data) > MaxValueBytes {
		return s, fmt.Errorf("value is %d bytes, more than the %d allowed", len(data), MaxValueBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return s, errors.New("value is empty, want a JSON object")
		}
		return s, fmt.Errorf("not a fault JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return s, errors.New("not a fault JSON object: data after the object")
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// codeNames maps normalized names (lower case, no underscores) to every
// code but OK.
var codeNames = func() map[string]codes.Code {
	m := make(map[string]codes.Code)
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		m[normalizeCode(c.String())] = c
	}
	return m
}()

func normalizeCode(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", ""))
}

// ParseCode returns the gRPC code named name: Go's spelling
// ("Unavailable", "DeadlineExceeded") or the canonical upper-case one
// ("UNAVAILABLE", "DEADLINE_EXCEEDED"), in any case. OK is refused: it
// injects no error.
func ParseCode(name string) (codes.Code, error) {
	if c, ok := codeNames[normalizeCode(name)]; ok {
		return c, nil
	}
	if normalizeCode(name) == "ok" {
		return codes.OK, errors.New("OK is not an error code")
	}
	names := make([]string, 0, len(codeNames))
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		names = append(names, c.String())
	}
	return codes.Unknown, fmt.Errorf("%q is not a gRPC error code (one of %s)", safetext.Line(name, 40), strings.Join(names, ", "))
}

// rule is a validated Spec ready for the interceptors.
type rule struct {
	method      string // the key's method, or AllMethods
	spec        Spec
	canonical   string // the Spec's JSON, to tell changes apart
	code        codes.Code
	errorRate   float64
	latencyRate float64
	fixed       time.Duration
	min, max    time.Duration
	expires     time.Time // zero: never
}

func newRule(method string, s Spec) *rule {
	r := &rule{method: method, spec: s, errorRate: s.ErrorRate}
	if b, err := json.Marshal(s); err == nil {
		r.canonical = string(b)
	}
	if s.injectsErrors() {
		r.code, _ = ParseCode(s.Code) // validated
	}
	if s.injectsLatency() {
		r.latencyRate = s.EffectiveLatencyRate()
		r.fixed, r.min, r.max = time.Duration(s.Latency.Fixed), time.Duration(s.Latency.Min), time.Duration(s.Latency.Max)
	}
	if s.ExpiresAt != nil {
		r.expires = *s.ExpiresAt
	}
	return r
}

func (r *rule) active(now time.Time) bool { return r.expires.IsZero() || now.Before(r.expires) }

// delay returns the delay for a draw u in [0, 1).
func (r *rule) delay(u float64) time.Duration {
	if r.fixed > 0 {
		return r.fixed
	}
	span := float64(r.max - r.min)
	// Rounding, so that max itself can be drawn; clamped for a source that
	// returns 1.
	d := r.min + time.Duration(math.Round(u*span))
	return min(max(d, r.min), r.max)
}
