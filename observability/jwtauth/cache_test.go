package jwtauth

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestVerifiedTokensExpireFromTheCache(t *testing.T) {
	pub, priv := newKey(t)
	now := testNow
	signer := NewSigner(priv, "iss", "aud", 15*time.Minute, WithClock(func() time.Time { return testNow }))
	v := NewVerifier(pub, "iss", "aud", WithClock(func() time.Time { return now }))
	tok, _, err := signer.Sign("user-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	first.Subject = "mallory" // a caller changing its copy must not change the cache

	now = testNow.Add(10 * time.Minute)
	again, err := v.Verify(tok)
	if err != nil || again.Subject != "user-1" || again.Username != "alice" {
		t.Fatalf("cached verification: %+v, %v", again, err)
	}

	now = testNow.Add(15*time.Minute + DefaultLeeway)
	if _, err := v.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired token served from the cache: err = %v", err)
	}

	// A token that differs in one character is verified on its own.
	now = testNow
	if _, err := v.Verify(tok + "x"); err == nil {
		t.Fatal("altered token accepted")
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	var c verifiedCache
	exp := testNow.Add(time.Hour)
	for i := range verifiedCacheSize + 100 {
		c.put(fmt.Sprint("token-", i), &Claims{}, exp, testNow)
	}
	if n := len(c.m); n > verifiedCacheSize {
		t.Fatalf("%d entries kept, bound %d", n, verifiedCacheSize)
	}
}
