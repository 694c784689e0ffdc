package auth

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/golden-stack/golden/observability/postgres"
)

// migrationFS holds the schema of PostgresRefreshStore, applied at start.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are the auth service's schema migrations, recorded in their
// own version table.
var Migrations = postgres.Migrations{FS: migrationFS, Dir: "migrations", Table: "auth_schema_version"}

// PostgresRefreshStore keeps refresh tokens in PostgreSQL, shared by every
// instance of the auth service: a logout on one instance is effective on
// all, and a restart logs nobody out. Rotation locks the presented token's
// row, so of two instances rotating one token at the same moment exactly
// one succeeds, and the other sees a reuse.
type PostgresRefreshStore struct {
	pool *pgxpool.Pool
	ttl  time.Duration
	now  func() time.Time

	mu        sync.Mutex // guards lastSweep
	lastSweep time.Time
}

// Compile-time check that PostgresRefreshStore satisfies RefreshTokens.
var _ RefreshTokens = (*PostgresRefreshStore)(nil)

// NewPostgresRefreshStore returns a store on pool, whose schema Migrations
// must have brought up to date (postgres.Open does), issuing tokens that
// live for ttl (DefaultRefreshTTL if not positive). Of the options, it
// reads WithClock.
func NewPostgresRefreshStore(pool *pgxpool.Pool, ttl time.Duration, opts ...Option) *PostgresRefreshStore {
	if ttl <= 0 {
		ttl = DefaultRefreshTTL
	}
	return &PostgresRefreshStore{pool: pool, ttl: ttl, now: newOptions(opts).now}
}

// Issue implements RefreshTokens.
func (s *PostgresRefreshStore) Issue(ctx context.Context, userID, username string) (string, time.Time, error) {
	now := s.clock()
	s.maybeSweep(ctx, now)
	family, err := uuid.NewV7()
	if err != nil {
		return "", time.Time{}, err
	}
	token, hash, err := newRefreshToken()
	if err != nil {
		return "", time.Time{}, err
	}
	expiresAt := now.Add(s.ttl)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO refresh_families (id, user_id, username, created_at) VALUES ($1, $2, $3, $4)",
			family, userID, username, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO refresh_tokens (hash, family_id, expires_at) VALUES ($1, $2, $3)", hash[:], family, expiresAt)
		return err
	})
	if err != nil {
		return "", time.Time{}, unavailable(ctx, err)
	}
	return token, expiresAt, nil
}

// Rotate implements RefreshTokens.
func (s *PostgresRefreshStore) Rotate(ctx context.Context, token string) (userID, username, newToken string, expiresAt time.Time, err error) {
	hash, err := tokenHash(token)
	if err != nil {
		return "", "", "", time.Time{}, err
	}
	now := s.clock()
	var refused error // a verdict on the token, committed rather than rolled back
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			family        uuid.UUID
			tokenExpires  time.Time
			used, revoked *time.Time
		)
		// FOR UPDATE serializes rotations of this token across instances:
		// the second one waits, then reads the row as the first left it.
		err := tx.QueryRow(ctx, `SELECT t.family_id, t.expires_at, t.used_at, f.revoked_at, f.user_id, f.username
			FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
			WHERE t.hash = $1 FOR UPDATE OF t`, hash[:]).Scan(&family, &tokenExpires, &used, &revoked, &userID, &username)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			refused = ErrInvalid
			return nil
		case err != nil:
			return err
		case !now.Before(tokenExpires):
			// As in RefreshStore: expiry first, so that a stale token never
			// revokes anything.
			refused = ErrExpired
			return nil
		case revoked != nil:
			refused = ErrRevoked
			return nil
		case used != nil:
			refused = ErrReused
			_, err := tx.Exec(ctx, "UPDATE refresh_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", family, now)
			return err
		}
		var next [32]byte
		newToken, next, err = newRefreshToken()
		if err != nil {
			return err
		}
		expiresAt = now.Add(s.ttl)
		if _, err := tx.Exec(ctx, "UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1", hash[:], now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO refresh_tokens (hash, family_id, expires_at) VALUES ($1, $2, $3)", next[:], family, expiresAt)
		return err
	})
	switch {
	case err != nil:
		return "", "", "", time.Time{}, unavailable(ctx, err)
	case refused != nil:
		return "", "", "", time.Time{}, refused
	}
	return userID, username, newToken, expiresAt, nil
}

// Revoke implements RefreshTokens.
func (s *PostgresRefreshStore) Revoke(ctx context.Context, token string) error {
	hash, err := tokenHash(token)
	if err != nil {
		return err
	}
	var family uuid.UUID
	err = s.pool.QueryRow(ctx, `UPDATE refresh_families f SET revoked_at = coalesce(f.revoked_at, $2)
		FROM refresh_tokens t WHERE t.hash = $1 AND f.id = t.family_id RETURNING f.id`, hash[:], s.clock()).Scan(&family)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrInvalid
	case err != nil:
		return unavailable(ctx, err)
	}
	return nil
}

// clock returns the store's time at PostgreSQL's precision.
func (s *PostgresRefreshStore) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// maybeSweep deletes, at most once per sweepInterval per instance, the
// families revoked and the tokens expired for longer than
// expiredRetention, as RefreshStore does: the table stays bounded by the
// issue rate times the TTL. A failed sweep is retried at the next interval.
func (s *PostgresRefreshStore) maybeSweep(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := !now.Before(s.lastSweep.Add(sweepInterval)) || now.Before(s.lastSweep)
	if due {
		s.lastSweep = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	cutoff := now.Add(-expiredRetention)
	_, _ = s.pool.Exec(ctx, "DELETE FROM refresh_families WHERE revoked_at IS NOT NULL AND revoked_at < $1", cutoff)
	_, _ = s.pool.Exec(ctx, "DELETE FROM refresh_tokens WHERE expires_at < $1", cutoff)
	_, _ = s.pool.Exec(ctx, `DELETE FROM refresh_families f WHERE f.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)`, cutoff)
}

// unavailable wraps a database failure in ErrUnavailable, unless the
// caller's own context ended.
func unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
