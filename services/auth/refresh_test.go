package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock safe for concurrent reads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t *testing.T, ttl time.Duration) (*RefreshStore, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	return NewRefreshStore(ttl, WithClock(clk.Now)), clk
}

// refreshFactory returns a new, empty store whose tokens live for ttl, on
// the returned clock.
type refreshFactory func(t *testing.T, ttl time.Duration) (RefreshTokens, *fakeClock)

// testRefreshContract checks the RefreshTokens contract, which every
// implementation must meet in the same way, on stores from newStore.
func testRefreshContract(t *testing.T, newStore refreshFactory) {
	for _, tt := range []struct {
		name string
		run  func(*testing.T, refreshFactory)
	}{
		{"IssueAndRotate", contractIssueAndRotate},
		{"ReuseRevokesFamily", contractReuseRevokesFamily},
		{"Expiry", contractExpiry},
		{"Revoke", contractRevoke},
		{"ConcurrentRotate", contractConcurrentRotate},
		{"DefaultTTL", contractDefaultTTL},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

func TestRefreshStoreContract(t *testing.T) {
	testRefreshContract(t, func(t *testing.T, ttl time.Duration) (RefreshTokens, *fakeClock) { return newStore(t, ttl) })
}

func mustIssue(t *testing.T, s RefreshTokens) string {
	t.Helper()
	tok, _, err := s.Issue(context.Background(), "user-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustRotate(t *testing.T, s RefreshTokens, tok string) string {
	t.Helper()
	_, _, next, _, err := s.Rotate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return next
}

// TestRefreshStoreKeepsOnlyHashes checks that RefreshStore keys tokens by
// their SHA-256 (PostgresRefreshStore's table has no other column for them).
func TestRefreshStoreKeepsOnlyHashes(t *testing.T) {
	s, _ := newStore(t, time.Hour)
	tok := mustIssue(t, s)
	s.mu.Lock()
	_, hashed := s.tokens[sha256.Sum256([]byte(tok))]
	s.mu.Unlock()
	if !hashed {
		t.Error("token not stored under its SHA-256")
	}
}

func contractIssueAndRotate(t *testing.T, newStore refreshFactory) {
	s, clk := newStore(t, time.Hour)
	tok, exp, err := s.Issue(context.Background(), "user-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("expiresAt = %v", exp)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token is not 32 base64url bytes: len %d, err %v", len(raw), err)
	}
	if strings.ContainsAny(tok, "=+/") {
		t.Error("token is not unpadded base64url")
	}

	clk.Advance(30 * time.Minute)
	uid, name, next, nextExp, err := s.Rotate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if uid != "user-1" || name != "alice" {
		t.Errorf("Rotate returned user %q %q", uid, name)
	}
	if next == tok || next == "" {
		t.Error("rotation did not produce a new token")
	}
	if !nextExp.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("next expiresAt = %v, want a fresh TTL", nextExp)
	}
	// The chain continues.
	next2 := mustRotate(t, s, next)
	mustRotate(t, s, next2)

	// Two logins are independent families.
	other := mustIssue(t, s)
	if other == tok {
		t.Error("two Issue calls returned the same token")
	}
}

func contractReuseRevokesFamily(t *testing.T, newStore refreshFactory) {
	s, _ := newStore(t, time.Hour)
	first := mustIssue(t, s)
	second := mustRotate(t, s, first)
	newest := mustRotate(t, s, second)
	unrelated := mustIssue(t, s)

	// An attacker replays the first token.
	if _, _, _, _, err := s.Rotate(context.Background(), first); !errors.Is(err, ErrReused) {
		t.Fatalf("replay: err = %v, want ErrReused", err)
	}
	// Now even the newest token of that family is dead...
	if _, _, _, _, err := s.Rotate(context.Background(), newest); !errors.Is(err, ErrRevoked) {
		t.Errorf("newest after reuse: err = %v, want ErrRevoked", err)
	}
	if _, _, _, _, err := s.Rotate(context.Background(), second); !errors.Is(err, ErrRevoked) {
		t.Errorf("middle after reuse: err = %v, want ErrRevoked", err)
	}
	// ...but other logins are untouched.
	mustRotate(t, s, unrelated)
}

func contractExpiry(t *testing.T, newStore refreshFactory) {
	s, clk := newStore(t, time.Hour)
	tok := mustIssue(t, s)
	clk.Advance(time.Hour - time.Second)
	next := mustRotate(t, s, tok)

	clk.Advance(time.Hour)
	if _, _, _, _, err := s.Rotate(context.Background(), next); !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
	// An expired used token is reported as expired, not as a reuse.
	if _, _, _, _, err := s.Rotate(context.Background(), tok); !errors.Is(err, ErrExpired) {
		t.Errorf("expired used token: err = %v", err)
	}
}

func contractRevoke(t *testing.T, newStore refreshFactory) {
	s, _ := newStore(t, time.Hour)
	first := mustIssue(t, s)
	second := mustRotate(t, s, first)

	// Logging out with any token of the family ends the session.
	if err := s.Revoke(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := s.Rotate(context.Background(), second); !errors.Is(err, ErrRevoked) {
		t.Errorf("after logout: err = %v, want ErrRevoked", err)
	}
	if err := s.Revoke(context.Background(), second); err != nil {
		t.Errorf("second logout: %v", err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 43), strings.Repeat("x", 1<<20)} {
		if err := s.Revoke(context.Background(), bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Revoke(len %d) = %v, want ErrInvalid", len(bad), err)
		}
		if _, _, _, _, err := s.Rotate(context.Background(), bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Rotate(len %d) = %v, want ErrInvalid", len(bad), err)
		}
	}
}

func TestRefreshSweep(t *testing.T) {
	s, clk := newStore(t, time.Hour)
	revoked := mustIssue(t, s)
	_ = mustRotate(t, s, revoked)
	if err := s.Revoke(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	expiring := mustIssue(t, s)
	if got := s.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}

	// Within the sweep interval nothing is dropped, so a revoked family
	// still answers ErrRevoked.
	clk.Advance(sweepInterval / 2)
	_ = mustIssue(t, s)
	if got := s.Len(); got != 4 {
		t.Fatalf("Len = %d, want 4 before the sweep interval", got)
	}

	// An expired token is still recognized as expired for a while...
	clk.Advance(time.Hour)
	if _, _, _, _, err := s.Rotate(context.Background(), expiring); !errors.Is(err, ErrExpired) {
		t.Errorf("recently expired token: err = %v, want ErrExpired", err)
	}
	// ...and after the retention a write sweeps everything old away.
	clk.Advance(expiredRetention)
	live := mustIssue(t, s)
	if got := s.Len(); got != 1 {
		t.Errorf("Len = %d after sweep, want 1", got)
	}
	if _, _, _, _, err := s.Rotate(context.Background(), revoked); !errors.Is(err, ErrInvalid) {
		t.Errorf("swept token: err = %v, want ErrInvalid", err)
	}
	mustRotate(t, s, live)
}

func contractConcurrentRotate(t *testing.T, newStore refreshFactory) {
	s, _ := newStore(t, time.Hour)
	for round := 0; round < 20; round++ {
		tok := mustIssue(t, s)
		const n = 16
		var ok, reused atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _, _, _, err := s.Rotate(context.Background(), tok)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrReused), errors.Is(err, ErrRevoked):
					reused.Add(1)
				default:
					t.Errorf("unexpected error %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || reused.Load() != n-1 {
			t.Fatalf("round %d: %d successes, %d rejections; want exactly 1 success", round, ok.Load(), reused.Load())
		}
	}
}

func contractDefaultTTL(t *testing.T, newStore refreshFactory) {
	s, clk := newStore(t, 0)
	_, exp, err := s.Issue(context.Background(), "u", "n")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(clk.Now().Add(DefaultRefreshTTL)) {
		t.Errorf("expiresAt = %v, want now + %v", exp, DefaultRefreshTTL)
	}
}
