package ratelimit

import (
	"context"
	"strings"
	"testing"
	"time"
)

type keyCtx struct{}

func keyOf(ctx context.Context) string { s, _ := ctx.Value(keyCtx{}).(string); return s }

func TestPerKeyLimitsEachKeyOnItsOwn(t *testing.T) {
	now := time.Unix(1000, 0)
	var rejected []string
	p := New(1, 3, keyOf, WithClock(func() time.Time { return now }), WithRejectHook(func(k string) { rejected = append(rejected, k) }))
	a := context.WithValue(context.Background(), keyCtx{}, "a")
	b := context.WithValue(context.Background(), keyCtx{}, "b")

	for i := range 3 {
		if err := p.Limit(a); err != nil {
			t.Fatalf("request %d of burst refused: %v", i, err)
		}
	}
	err := p.Limit(a)
	if err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("4th request in the same instant: err = %v, want a rejection naming the caller", err)
	}
	if err := p.Limit(b); err != nil {
		t.Fatalf("another caller must have its own bucket: %v", err)
	}
	now = now.Add(time.Second)
	if err := p.Limit(a); err != nil {
		t.Fatalf("bucket must refill after a second: %v", err)
	}
	if len(rejected) != 1 || rejected[0] != "a" {
		t.Fatalf("reject hook saw %v", rejected)
	}
}

func TestPerKeyBoundsItsMemory(t *testing.T) {
	now := time.Unix(1000, 0)
	p := New(1, 1, keyOf, WithClock(func() time.Time { return now }))
	for i := range maxKeys + 10 {
		ctx := context.WithValue(context.Background(), keyCtx{}, string(rune('a'+i%26))+time.Duration(i).String())
		_ = p.Limit(ctx)
	}
	if n := len(p.buckets); n > maxKeys {
		t.Fatalf("%d buckets kept, bound is %d", n, maxKeys)
	}
}
