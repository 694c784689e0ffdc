package jwtauth

import (
	"testing"
	"time"
)

func TestOptionsNilSafe(t *testing.T) {
	pub, priv := newKey(t)
	// Nil options and nil clocks keep the defaults instead of panicking
	// later in Sign or Verify; one option list configures both sides.
	opts := []Option{nil, WithClock(fixedClock(testNow)), WithClock(nil)}
	s := NewSigner(priv, testIssuer, testAudience, time.Minute, opts...)
	tok, exp, err := s.Sign("u", "alice")
	if err != nil || !exp.Equal(testNow.Add(time.Minute)) {
		t.Fatalf("Sign: exp = %v, err = %v", exp, err)
	}
	v := NewVerifier(pub, testIssuer, testAudience, opts...)
	if v.leeway != DefaultLeeway {
		t.Errorf("leeway = %v, want DefaultLeeway", v.leeway)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if d := NewVerifier(pub, testIssuer, testAudience, nil, WithClock(nil)); d.now == nil {
		t.Error("WithClock(nil) left the Verifier without a clock")
	}
	// Zero leeway is a real setting, not "keep the default".
	if v := NewVerifier(pub, testIssuer, testAudience, WithLeeway(0)); v.leeway != 0 {
		t.Errorf("WithLeeway(0): leeway = %v", v.leeway)
	}
}
