package user

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/golden-stack/golden/observability/postgres"
)

// migrationFS holds the schema of PostgresStore, applied at start.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are the user service's schema migrations, recorded in their
// own version table.
var Migrations = postgres.Migrations{FS: migrationFS, Dir: "migrations", Table: "user_schema_version"}

// PostgresStore is a Store in PostgreSQL, shared by every instance of the
// service. Uniqueness of usernames and emails is the database's (unique
// indexes on their lower-case forms), so two instances creating the same
// account at once cannot both succeed.
type PostgresStore struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Compile-time check that PostgresStore satisfies Store.
var _ Store = (*PostgresStore)(nil)

// NewPostgresStore returns a Store on pool, whose schema Migrations must
// have brought up to date (postgres.Open does). Of the options, it reads
// WithClock.
func NewPostgresStore(pool *pgxpool.Pool, opts ...Option) *PostgresStore {
	return &PostgresStore{pool: pool, now: newOptions(opts).now}
}

const userColumns = "id, username, email, password_hash, created_at, updated_at"

// Create implements Store.
func (s *PostgresStore) Create(ctx context.Context, u User) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	id, err := newID()
	if err != nil {
		return User{}, err
	}
	// PostgreSQL keeps microseconds: return what a later Get returns.
	now := s.now().UTC().Truncate(time.Microsecond)
	u.ID, u.CreatedAt, u.UpdatedAt = id, now, now
	if u.PasswordHash == nil {
		u.PasswordHash = []byte{} // NOT NULL; the server always sets one
	}
	_, err = s.pool.Exec(ctx, "INSERT INTO users ("+userColumns+") VALUES ($1, $2, $3, $4, $5, $6)",
		u.ID, u.Username, u.Email, u.PasswordHash, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return User{}, pgError(ctx, err)
	}
	return u.clone(), nil
}

// Get implements Store.
func (s *PostgresStore) Get(ctx context.Context, id string) (User, error) {
	return s.one(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id)
}

// GetByUsername implements Store.
func (s *PostgresStore) GetByUsername(ctx context.Context, username string) (User, error) {
	return s.one(ctx, "SELECT "+userColumns+" FROM users WHERE lower(username) = lower($1)", username)
}

func (s *PostgresStore) one(ctx context.Context, query, arg string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	rows, err := s.pool.Query(ctx, query, arg)
	if err != nil {
		return User{}, pgError(ctx, err)
	}
	u, err := pgx.CollectExactlyOneRow(rows, scanUser)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, pgError(ctx, err)
	}
	return u, nil
}

// List implements Store. limit must be positive.
func (s *PostgresStore) List(ctx context.Context, after string, limit int) ([]User, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", errBadLimit
	}
	// One row more than the page tells whether another page follows.
	rows, err := s.pool.Query(ctx, "SELECT "+userColumns+" FROM users WHERE id > $1 ORDER BY id LIMIT $2", after, limit+1)
	if err != nil {
		return nil, "", pgError(ctx, err)
	}
	users, err := pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, "", pgError(ctx, err)
	}
	if len(users) > limit {
		users = users[:limit]
		return users, users[limit-1].ID, nil
	}
	return users, "", nil
}

// Delete implements Store.
func (s *PostgresStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
	if err != nil {
		return pgError(ctx, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func scanUser(row pgx.CollectableRow) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.CreatedAt, &u.UpdatedAt)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, err
}

// pgError maps a database error to the Store's: a unique violation is
// ErrAlreadyExists, the caller's own deadline or cancellation is returned
// as such, anything else (connection refused, server gone) is
// ErrUnavailable with the cause for logs and spans.
func pgError(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		return ErrAlreadyExists
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
