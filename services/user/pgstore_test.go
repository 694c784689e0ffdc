package user

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/golden-stack/golden/internal/testbackend"
)

// TestPostgresStore runs the Store contract and what only a shared
// database shows on one real PostgreSQL server, a database per store.
func TestPostgresStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	pg := testbackend.StartPostgres(t)

	t.Run("Conformance", func(t *testing.T) {
		testStoreConformance(t, func(t *testing.T, now func() time.Time) Store {
			return NewPostgresStore(testbackend.OpenPool(t, pg.NewDatabase(t), Migrations), WithClock(now))
		})
	})

	t.Run("MigrationsIdempotentAndLocked", func(t *testing.T) {
		dsn := pg.NewDatabase(t)
		// Instances starting together: one migrates, the others wait on
		// the advisory lock and find the schema current.
		var wg sync.WaitGroup
		pools := make([]*pgxpool.Pool, 4)
		for i := range pools {
			wg.Go(func() { pools[i] = testbackend.OpenPool(t, dsn, Migrations) })
		}
		wg.Wait()
		a, b := NewPostgresStore(pools[0]), NewPostgresStore(pools[1])
		u := mustCreate(t, a, User{Username: "alice", Email: "alice@example.com", PasswordHash: []byte("h")})
		if got, err := b.Get(context.Background(), u.ID); err != nil || got.Username != "alice" {
			t.Fatalf("second instance reads %+v, %v", got, err)
		}
		// And again later: nothing to do, nothing lost.
		c := NewPostgresStore(testbackend.OpenPool(t, dsn, Migrations))
		if _, err := c.GetByUsername(context.Background(), "ALICE"); err != nil {
			t.Fatalf("after re-opening: %v", err)
		}
		var versions int
		if err := pools[0].QueryRow(context.Background(), "SELECT count(*) FROM user_schema_version WHERE is_applied AND version_id > 0").Scan(&versions); err != nil || versions != 1 {
			t.Errorf("migrations applied %d times (%v), want once", versions, err)
		}
	})

	t.Run("TwoInstancesOneAccount", func(t *testing.T) {
		dsn := pg.NewDatabase(t)
		a, b := NewPostgresStore(testbackend.OpenPool(t, dsn, Migrations)), NewPostgresStore(testbackend.OpenPool(t, dsn, Migrations))
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				_, err := s.Create(context.Background(), User{Username: "Bob", Email: fmt.Sprintf("bob%d@example.com", i), PasswordHash: []byte("h")})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, ErrAlreadyExists):
					t.Errorf("Create: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d creations of one username succeeded, want 1", wins.Load())
		}
	})

	t.Run("DatabaseDownAndBack", func(t *testing.T) {
		s := NewPostgresStore(testbackend.OpenPool(t, pg.NewDatabase(t), Migrations))
		u := mustCreate(t, s, User{Username: "carol", Email: "carol@example.com", PasswordHash: []byte("h")})
		pg.Stop()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.Get(ctx, u.ID)
		cancel()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get with the database down: %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Get with the database down took %s, want a fast failure", took)
		}
		pg.Start(t)
		if got, err := s.Get(context.Background(), u.ID); err != nil || got.ID != u.ID {
			t.Errorf("Get after the database came back: %+v, %v", got, err)
		}
	})
}
