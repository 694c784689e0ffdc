package user

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestOptionsSharedAndNilSafe(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	// One list for both constructors: each reads its own options and
	// ignores the others; nil options and values keep the defaults.
	opts := []Option{nil, WithClock(func() time.Time { return at }), WithClock(nil), WithHealth(nil),
		WithBcryptCost(bcrypt.MinCost), WithPageSizes(0, 0)}
	store := NewMemoryStore(opts...)
	u, err := store.Create(context.Background(), User{Username: "alice", Email: "alice@example.com"})
	if err != nil || !u.CreatedAt.Equal(at) {
		t.Fatalf("Create: CreatedAt = %v, err = %v", u.CreatedAt, err)
	}
	s := NewServer(store, opts...)
	if s.bcryptCost != bcrypt.MinCost || s.healthy == nil || !s.healthy() ||
		s.defaultPage != DefaultPageSize || s.maxPage != MaxPageSize {
		t.Errorf("server options: cost %d, pages %d/%d", s.bcryptCost, s.defaultPage, s.maxPage)
	}
}
