package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors returned by RefreshStore. Their messages are safe to show to
// clients.
var (
	// ErrInvalid means the refresh token is not one this store issued, or
	// it was forgotten after it expired or its family was revoked.
	ErrInvalid = errors.New("invalid refresh token")
	// ErrExpired means the refresh token's lifetime is over.
	ErrExpired = errors.New("refresh token expired")
	// ErrRevoked means the token's family was revoked by a logout or after
	// a reuse.
	ErrRevoked = errors.New("refresh token revoked")
	// ErrReused means an already rotated refresh token was presented again.
	// One of the two presenters is not the legitimate client, and there is
	// no telling which, so the whole family has been revoked.
	ErrReused = errors.New("refresh token reuse detected; all sessions of this login revoked")
	// ErrUnavailable means the store could not be reached or gave no
	// definite answer; the token is unchanged and the call may be retried.
	// Errors wrapping it carry the cause for logs and spans only.
	ErrUnavailable = errors.New("session store unavailable")
)

// RefreshTokens keeps the refresh tokens of logins: RefreshStore in memory
// (one instance), PostgresRefreshStore in PostgreSQL (shared by every
// instance). Implementations must be safe for concurrent use.
type RefreshTokens interface {
	// Issue starts a new token family for the user and returns its first
	// token and the time the token expires.
	Issue(ctx context.Context, userID, username string) (token string, expiresAt time.Time, err error)
	// Rotate exchanges token for the next token of its family and returns
	// the family's user with it. It fails with ErrInvalid for an unknown
	// token, ErrExpired for an expired one, ErrRevoked if the family was
	// revoked, and ErrReused, after revoking the family, if the token was
	// already rotated. Of concurrent rotations of one token exactly one
	// succeeds.
	Rotate(ctx context.Context, token string) (userID, username, newToken string, expiresAt time.Time, err error)
	// Revoke revokes the whole family of token, used or not, expired or
	// not. It fails with ErrInvalid only if the token is unknown.
	Revoke(ctx context.Context, token string) error
}

// DefaultRefreshTTL is the refresh token lifetime NewRefreshStore uses when
// given a non-positive one.
const DefaultRefreshTTL = 24 * time.Hour

const (
	// refreshTokenBytes is the entropy of a refresh token: 256 bits, so
	// guessing one is hopeless and a plain SHA-256 of it is a safe lookup
	// key (no salt or slow hash needed, unlike for passwords).
	refreshTokenBytes = 32
	// sweepInterval bounds how often a write walks the whole store to drop
	// expired entries and revoked families, keeping the amortized cost of
	// a write constant while memory stays bounded by the issue rate times
	// the TTL.
	sweepInterval = time.Minute
	// expiredRetention is how long the sweep keeps expired tokens, so that
	// a client returning a little late learns that its token expired
	// rather than that it is unknown. It adds little to memory compared
	// with the TTL.
	expiredRetention = time.Hour
)

// refreshTokenLen is the length of an encoded refresh token; anything else
// is rejected before hashing.
var refreshTokenLen = base64.RawURLEncoding.EncodedLen(refreshTokenBytes)

// RefreshStore keeps the refresh tokens of the auth service in memory. It
// is safe for concurrent use.
//
// Tokens are opaque random strings and the store keeps only their SHA-256
// hashes, so a memory dump does not yield usable tokens. Each login starts a
// family; every rotation marks the presented token used and issues the next
// one of the same family with a fresh TTL. Presenting a used token again
// revokes the family, which cuts off a thief and the legitimate client alike
// and forces a new login. Used tokens are remembered until they would have
// expired so that reuse is detected for as long as it matters.
//
// The store lives in one process: tokens do not survive a restart and are
// not shared between replicas (PostgresRefreshStore is).
type RefreshStore struct {
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	tokens    map[[sha256.Size]byte]*refreshEntry
	lastSweep time.Time
}

// refreshEntry is one issued token.
type refreshEntry struct {
	family    *tokenFamily
	expiresAt time.Time
	used      bool
}

// tokenFamily is the chain of tokens that descend from one login.
type tokenFamily struct {
	userID   string
	username string
	revoked  bool
}

// NewRefreshStore returns an empty store whose tokens live for ttl, or
// DefaultRefreshTTL if ttl is not positive. It starts no goroutines. Of the
// options, it reads WithClock.
func NewRefreshStore(ttl time.Duration, opts ...Option) *RefreshStore {
	if ttl <= 0 {
		ttl = DefaultRefreshTTL
	}
	o := newOptions(opts)
	return &RefreshStore{ttl: ttl, now: o.now, tokens: map[[sha256.Size]byte]*refreshEntry{}}
}

// Compile-time check that RefreshStore satisfies RefreshTokens.
var _ RefreshTokens = (*RefreshStore)(nil)

// Issue implements RefreshTokens.
func (s *RefreshStore) Issue(_ context.Context, userID, username string) (token string, expiresAt time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.maybeSweep(now)
	return s.issueLocked(&tokenFamily{userID: userID, username: username}, now)
}

// Rotate implements RefreshTokens.
func (s *RefreshStore) Rotate(_ context.Context, token string) (userID, username, newToken string, expiresAt time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.maybeSweep(now)
	e, err := s.lookupLocked(token)
	if err != nil {
		return "", "", "", time.Time{}, err
	}
	switch {
	case !now.Before(e.expiresAt):
		// Expiry is checked before reuse: the sweep forgets expired
		// tokens anyway, and revoking on a stale token would make the
		// outcome depend on when the last sweep ran.
		return "", "", "", time.Time{}, ErrExpired
	case e.family.revoked:
		return "", "", "", time.Time{}, ErrRevoked
	case e.used:
		e.family.revoked = true
		return "", "", "", time.Time{}, ErrReused
	}
	newToken, expiresAt, err = s.issueLocked(e.family, now)
	if err != nil {
		// Leave the presented token unused so the client can retry.
		return "", "", "", time.Time{}, err
	}
	e.used = true
	return e.family.userID, e.family.username, newToken, expiresAt, nil
}

// Revoke implements RefreshTokens: logging out with any token of a session
// ends the session; revoking twice is fine.
func (s *RefreshStore) Revoke(_ context.Context, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maybeSweep(s.now())
	e, err := s.lookupLocked(token)
	if err != nil {
		return err
	}
	e.family.revoked = true
	return nil
}

// Len returns the number of tokens the store remembers, including used ones
// kept for reuse detection; it is meant for metrics and tests.
func (s *RefreshStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// lookupLocked finds the entry of token.
func (s *RefreshStore) lookupLocked(token string) (*refreshEntry, error) {
	h, err := tokenHash(token)
	if err != nil {
		return nil, err
	}
	e, ok := s.tokens[h]
	if !ok {
		return nil, ErrInvalid
	}
	return e, nil
}

// issueLocked creates and records a new token of family f.
func (s *RefreshStore) issueLocked(f *tokenFamily, now time.Time) (string, time.Time, error) {
	token, hash, err := newRefreshToken()
	if err != nil {
		return "", time.Time{}, err
	}
	expiresAt := now.Add(s.ttl)
	s.tokens[hash] = &refreshEntry{family: f, expiresAt: expiresAt}
	return token, expiresAt, nil
}

// newRefreshToken returns a new random token and the hash it is stored
// under.
func newRefreshToken() (string, [sha256.Size]byte, error) {
	raw := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", [sha256.Size]byte{}, fmt.Errorf("auth: generate refresh token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	return token, sha256.Sum256([]byte(token)), nil
}

// tokenHash returns the hash a well-formed token is stored under. Malformed
// tokens are rejected without hashing, which also bounds the work an
// oversized input can cause.
func tokenHash(token string) ([sha256.Size]byte, error) {
	if len(token) != refreshTokenLen {
		return [sha256.Size]byte{}, ErrInvalid
	}
	return sha256.Sum256([]byte(token)), nil
}

// maybeSweep drops tokens expired for longer than expiredRetention and all
// tokens of revoked families, at most once per sweepInterval. Afterwards such
// tokens are unknown (ErrInvalid) rather than expired or revoked, which
// callers treat alike.
func (s *RefreshStore) maybeSweep(now time.Time) {
	// A clock that went backwards also triggers a sweep, so a wrong
	// lastSweep in the future cannot postpone sweeping indefinitely.
	if now.Before(s.lastSweep.Add(sweepInterval)) && !now.Before(s.lastSweep) {
		return
	}
	s.lastSweep = now
	for h, e := range s.tokens {
		if e.family.revoked || !now.Before(e.expiresAt.Add(expiredRetention)) {
			delete(s.tokens, h)
		}
	}
}
