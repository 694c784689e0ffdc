package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/testbackend"
)

// TestPostgresRefreshStore runs the RefreshTokens contract and what only
// two instances sharing one database show, on a real PostgreSQL server.
func TestPostgresRefreshStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	pg := testbackend.StartPostgres(t)

	t.Run("Contract", func(t *testing.T) {
		testRefreshContract(t, func(t *testing.T, ttl time.Duration) (RefreshTokens, *fakeClock) {
			clk := newFakeClock()
			return NewPostgresRefreshStore(testbackend.OpenPool(t, pg.NewDatabase(t), Migrations), ttl, WithClock(clk.Now)), clk
		})
	})

	// Two instances on one database, as in docker-compose.yml.
	dsn := pg.NewDatabase(t)
	a := NewPostgresRefreshStore(testbackend.OpenPool(t, dsn, Migrations), time.Hour)
	b := NewPostgresRefreshStore(testbackend.OpenPool(t, dsn, Migrations), time.Hour)
	ctx := context.Background()

	t.Run("ConcurrentRotationOnTwoInstances", func(t *testing.T) {
		for round := range 100 {
			tok := mustIssue(t, a)
			var wins, reuses atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, s := range []RefreshTokens{a, b} {
				wg.Go(func() {
					<-start
					_, _, _, _, err := s.Rotate(ctx, tok)
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrReused):
						reuses.Add(1)
					default:
						t.Errorf("round %d: %v", round, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 || reuses.Load() != 1 {
				t.Fatalf("round %d: %d wins, %d reuses; want exactly one of each", round, wins.Load(), reuses.Load())
			}
		}
	})

	t.Run("ReuseSeenByOneRevokesOnBoth", func(t *testing.T) {
		first := mustIssue(t, a)
		second := mustRotate(t, a, first)
		if _, _, _, _, err := b.Rotate(ctx, first); !errors.Is(err, ErrReused) {
			t.Fatalf("replay on the other instance: %v, want ErrReused", err)
		}
		for name, s := range map[string]RefreshTokens{"a": a, "b": b} {
			if _, _, _, _, err := s.Rotate(ctx, second); !errors.Is(err, ErrRevoked) {
				t.Errorf("instance %s after the reuse: %v, want ErrRevoked", name, err)
			}
		}
	})

	t.Run("LogoutOnOneEndsTheSessionOnBoth", func(t *testing.T) {
		tok := mustIssue(t, a)
		if err := b.Revoke(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := a.Rotate(ctx, tok); !errors.Is(err, ErrRevoked) {
			t.Errorf("rotation after logout elsewhere: %v, want ErrRevoked", err)
		}
	})

	t.Run("DatabaseDown", func(t *testing.T) {
		tok := mustIssue(t, a)
		pg.Stop()
		start := time.Now()
		_, _, _, _, err := a.Rotate(ctx, tok)
		if !errors.Is(err, ErrUnavailable) || time.Since(start) > 3*time.Second {
			t.Errorf("Rotate with the database down: %v after %s, want a fast ErrUnavailable", err, time.Since(start))
		}
		pg.Start(t)
		// The token was not used up by the failed attempt.
		mustRotate(t, a, tok)
	})
}
