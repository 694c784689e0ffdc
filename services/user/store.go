package user

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// User is the stored account. PasswordHash is a bcrypt hash, never the
// password itself.
type User struct {
	ID           string
	Username     string
	Email        string
	PasswordHash []byte
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// clone returns a copy that shares no memory with u, so callers can never
// mutate a stored hash through a returned value (or the reverse).
func (u User) clone() User {
	u.PasswordHash = slices.Clone(u.PasswordHash)
	return u
}

var (
	// ErrNotFound reports that no user matches the given ID or username.
	ErrNotFound = errors.New("user: not found")
	// ErrAlreadyExists reports that the username or email is already taken.
	ErrAlreadyExists = errors.New("user: already exists")
	// ErrUnavailable reports that a Store backed by another system (such as
	// PostgresStore) could not reach it or got no definite answer from it.
	// The operation may or may not have taken effect; retrying later may
	// succeed. Errors wrapping it carry the cause for logs and traces only.
	ErrUnavailable = errors.New("user store unavailable")
)

// Store persists user accounts. Implementations must be safe for concurrent
// use and must return ctx.Err() when the context is already done.
type Store interface {
	// Create assigns an ID and timestamps to u and stores it. Any ID or
	// timestamps set on u are ignored. It returns ErrAlreadyExists when the
	// username (case-insensitively) or the email (case-insensitively) is
	// already taken.
	Create(ctx context.Context, u User) (User, error)
	// Get returns the user with the given ID, or ErrNotFound.
	Get(ctx context.Context, id string) (User, error)
	// GetByUsername returns the user with the given username, compared
	// case-insensitively, or ErrNotFound.
	GetByUsername(ctx context.Context, username string) (User, error)
	// List returns up to limit users in creation order, starting after the
	// user whose ID is after ("" starts at the beginning). The after user
	// need not still exist; limit must be positive. next is the ID to pass
	// as after for the following page, or "" when this is the last page.
	List(ctx context.Context, after string, limit int) (users []User, next string, err error)
	// Delete removes the user with the given ID, or returns ErrNotFound.
	Delete(ctx context.Context, id string) error
}

// MemoryStore is an in-memory Store, safe for concurrent use.
//
// IDs are UUIDv7 strings in canonical lower-case form. Their first 48 bits
// are a millisecond timestamp followed by a sub-millisecond sequence that the
// uuid package keeps strictly increasing within the process, so string order
// is creation order; the remaining 62 bits are random, which makes IDs
// impractical to enumerate (authorization never relies on that, though).
//
// Listing keeps a sorted slice of IDs next to the map, so a page costs a
// binary search plus the page itself instead of sorting or copying the whole
// store. Deletes leave a tombstone in that slice (the ID is simply absent
// from the map) and the slice is compacted once tombstones outnumber live
// entries, which keeps both the scan and the compaction amortized O(1) per
// delete.
type MemoryStore struct {
	now func() time.Time

	mu         sync.RWMutex
	byID       map[string]User
	byUsername map[string]string // lower-cased username -> ID
	byEmail    map[string]string // lower-cased email -> ID
	order      []string          // IDs ascending; may hold deleted IDs
	dead       int               // number of deleted IDs still in order
}

// NewMemoryStore returns an empty MemoryStore. Of the options, it reads
// WithClock.
func NewMemoryStore(opts ...Option) *MemoryStore {
	return &MemoryStore{
		now:        newOptions(opts).now,
		byID:       make(map[string]User),
		byUsername: make(map[string]string),
		byEmail:    make(map[string]string),
	}
}

// Compile-time check that MemoryStore satisfies Store.
var _ Store = (*MemoryStore)(nil)

// Create implements Store.
func (s *MemoryStore) Create(ctx context.Context, u User) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	userKey, emailKey := foldKey(u.Username), foldKey(u.Email)

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.byUsername[userKey]; taken {
		return User{}, ErrAlreadyExists
	}
	if _, taken := s.byEmail[emailKey]; taken {
		return User{}, ErrAlreadyExists
	}
	// The ID is generated under the lock so that the order in which IDs
	// are appended to s.order is the order in which they were generated.
	id, err := newID()
	if err != nil {
		return User{}, err
	}
	now := s.now()
	u.ID = id
	u.CreatedAt, u.UpdatedAt = now, now
	u = u.clone()

	s.byID[u.ID] = u
	s.byUsername[userKey] = u.ID
	s.byEmail[emailKey] = u.ID
	s.insertOrdered(u.ID)
	return u.clone(), nil
}

// insertOrdered adds id to s.order. IDs are monotonic, so this is an append
// in practice; the binary-search insert only guards the invariant.
func (s *MemoryStore) insertOrdered(id string) {
	if n := len(s.order); n == 0 || s.order[n-1] < id {
		s.order = append(s.order, id)
		return
	}
	i, _ := slices.BinarySearch(s.order, id)
	s.order = slices.Insert(s.order, i, id)
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, id string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.byID[id]
	if !ok {
		return User{}, ErrNotFound
	}
	return u.clone(), nil
}

// GetByUsername implements Store.
func (s *MemoryStore) GetByUsername(ctx context.Context, username string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byUsername[foldKey(username)]
	if !ok {
		return User{}, ErrNotFound
	}
	return s.byID[id].clone(), nil
}

// errBadLimit rejects a non-positive List limit: an empty page cannot say
// where the next one starts, so it is a caller bug rather than a request.
var errBadLimit = errors.New("user: list limit must be positive")

// List implements Store. limit must be positive.
func (s *MemoryStore) List(ctx context.Context, after string, limit int) ([]User, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", errBadLimit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()

	// Searching by value rather than by index keeps tokens valid across
	// deletes and compactions, including when after itself was deleted.
	start := 0
	if after != "" {
		var found bool
		start, found = slices.BinarySearch(s.order, after)
		if found {
			start++
		}
	}

	users := make([]User, 0, min(limit, len(s.order)-start))
	i := start
	for ; i < len(s.order) && len(users) < limit; i++ {
		if u, ok := s.byID[s.order[i]]; ok {
			users = append(users, u.clone())
		}
	}
	// Report a next page only if a live user actually follows, so the
	// last page never hands out a token that leads to an empty page.
	for ; i < len(s.order); i++ {
		if _, ok := s.byID[s.order[i]]; ok {
			return users, users[len(users)-1].ID, nil
		}
	}
	return users, "", nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	delete(s.byID, id)
	delete(s.byUsername, foldKey(u.Username))
	delete(s.byEmail, foldKey(u.Email))
	s.dead++
	if s.dead > len(s.byID) {
		s.compact()
	}
	return nil
}

// compact drops deleted IDs from s.order. It allocates a fresh slice so the
// memory held by a once-large store is released.
func (s *MemoryStore) compact() {
	live := make([]string, 0, len(s.byID))
	for _, id := range s.order {
		if _, ok := s.byID[id]; ok {
			live = append(live, id)
		}
	}
	s.order, s.dead = live, 0
}

// newID returns a new user ID, a UUIDv7 in canonical lower-case form. The
// uuid package keeps IDs strictly increasing within the process, so their
// string order is their creation order (see MemoryStore). Both stores use
// it, so IDs look and sort the same whichever store issued them.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// foldKey is the uniqueness key for usernames and emails. Validation already
// rejects upper-case usernames; folding here still makes the store itself
// enforce case-insensitive uniqueness whatever its caller does. Emails are
// folded too: local parts are case-sensitive in theory but not in practice,
// and two accounts differing only in case are almost always a mistake.
func foldKey(s string) string {
	return strings.ToLower(s)
}
