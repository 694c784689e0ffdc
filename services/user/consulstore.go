package user

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Limits on what ConsulStore writes. Consul's own limits (512 KiB per value
// and per transaction by default) are far above any real account; these
// catch a caller that skipped validation before Consul refuses the request
// with an error that would look like an outage.
const (
	// maxConsulValueBytes bounds one stored user record.
	maxConsulValueBytes = 16 << 10
	// maxConsulKeyBytes bounds one key, index keys included.
	maxConsulKeyBytes = 1 << 10
	// consulReadBatch is how many users List fetches per read transaction,
	// well below Consul's limit of 128 operations per transaction.
	consulReadBatch = 64
	// maxDeleteAttempts bounds Delete's retries when the user changes
	// between its read and its transaction.
	maxDeleteAttempts = 5
)

// errTooLarge rejects a user whose record or index keys exceed the limits
// above. Validation makes it unreachable through the API.
var errTooLarge = errors.New("user: record too large for the Consul store")

// ConsulStore keeps users in Consul's KV store, so every user instance sees
// the same accounts. It is safe for concurrent use, within one process and
// across processes sharing a Consul cluster and prefix.
//
// Layout under the prefix (values are JSON; password_hash is base64):
//
//	<prefix>/users/<id>               {"id","username","email","password_hash","created_at","updated_at"}
//	<prefix>/usernames/<lower(name)>  <id>
//	<prefix>/emails/<lower(email)>    <id>
//
// Index key segments are the folded value path-escaped (url.PathEscape,
// plus "." and ".." spelt %2E), so every value, even one containing "/",
// is exactly one key segment and distinct values never share a key;
// ordinary usernames and emails read as themselves.
//
// Create writes all three keys in one transaction, each set only if the key
// does not exist, so of two instances racing for a username or email exactly
// one wins. Delete removes all three in one transaction guarded by the
// user record's ModifyIndex. The index keys therefore always agree with the
// user records.
//
// Reads use Consul's default consistency mode: the leader answers without
// confirming its leadership with a quorum, so only during a leader change
// can a read miss a write that was just acknowledged. Writes go through raft
// and are visible to every instance once Create or Delete returns.
//
// IDs come from the same UUIDv7 generator as MemoryStore's. They increase
// strictly within one process; across instances they sort by millisecond
// (and by each host's clock), so List order is creation order only that
// closely. A user created while someone pages through List may therefore
// be missed by that listing if its ID sorts before the current page; users
// that exist throughout a listing are always returned exactly once.
//
// List reads every user key (Consul cannot page KV listings) and then the
// records of one page: about 60 bytes of keys per stored user per page.
// That is fine for thousands of users, not for millions.
//
// Errors: a call that could not reach Consul or got a 5xx or 429 answer
// wraps ErrUnavailable. The client library does not expose the status code
// of a failed transaction request, so every transaction error that is not
// a rolled-back transaction counts as unavailable too. Other refusals
// (ACL denials on reads, for example) and corrupt records are plain errors.
// When ctx ends first, the error wraps the context's error instead.
type ConsulStore struct {
	kv  *api.KV
	txn *api.Txn
	now func() time.Time

	// Key prefixes, each ending in "/".
	users, usernames, emails string
}

// Compile-time check that ConsulStore satisfies Store.
var _ Store = (*ConsulStore)(nil)

// NewConsulStore returns a ConsulStore that keeps users under prefix
// (for example "golden/user") in the KV store client talks to. The prefix is
// one or more segments of letters, digits, '.', '_' and '-' separated by
// '/'; leading and trailing slashes are ignored. It does not contact Consul.
// Of the options, it reads WithClock.
func NewConsulStore(client *api.Client, prefix string, opts ...Option) (*ConsulStore, error) {
	if client == nil {
		return nil, errors.New("user: NewConsulStore needs a Consul client")
	}
	prefix = strings.Trim(prefix, "/")
	if err := checkConsulPrefix(prefix); err != nil {
		return nil, err
	}
	return &ConsulStore{
		kv:        client.KV(),
		txn:       client.Txn(),
		now:       newOptions(opts).now,
		users:     prefix + "/users/",
		usernames: prefix + "/usernames/",
		emails:    prefix + "/emails/",
	}, nil
}

// checkConsulPrefix accepts only segments that need no escaping in a URL
// path and that no HTTP router cleans away ("." and "..").
func checkConsulPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("user: Consul key prefix must not be empty")
	}
	if len(prefix) > 256 {
		return fmt.Errorf("user: Consul key prefix must be at most 256 bytes, got %d", len(prefix))
	}
	for seg := range strings.SplitSeq(prefix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("user: Consul key prefix %q has an empty, \".\" or \"..\" segment", prefix)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("user: Consul key prefix %q may contain only letters, digits, '.', '_', '-' and '/'", prefix)
			}
		}
	}
	return nil
}

// consulUser is the JSON form of a stored user. Unknown fields are ignored
// when reading, so a later version can add fields without breaking this one.
// It has User's fields, in User's order, so that the two convert.
type consulUser struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	Email        string    `json:"email"`
	PasswordHash []byte    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (s *ConsulStore) userKey(id string) string { return s.users + id }
func (s *ConsulStore) usernameKey(name string) string {
	return s.usernames + keySegment(foldKey(name))
}
func (s *ConsulStore) emailKey(email string) string { return s.emails + keySegment(foldKey(email)) }

// keySegment escapes v into one key segment. url.PathEscape escapes '/',
// '%' and everything unprintable, which makes it injective; "." and ".."
// are escaped too because HTTP routers clean them out of paths. The client
// escapes the result once more on the wire and Consul decodes it once, so
// the stored key is exactly what this returns.
func keySegment(v string) string {
	switch v {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(v)
}

// query returns the options every call uses: ctx, default consistency.
func query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

// Create implements Store. The three keys are written in one transaction of
// create-only sets (CAS with index 0), so a taken username or email, even
// one taken a moment ago through another instance, rolls the whole
// transaction back and yields ErrAlreadyExists.
func (s *ConsulStore) Create(ctx context.Context, u User) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	id, err := newID()
	if err != nil {
		return User{}, err
	}
	// UTC without a monotonic reading: what Get will decode later.
	now := s.now().UTC()
	u.ID, u.CreatedAt, u.UpdatedAt = id, now, now
	u = u.clone()

	value, err := json.Marshal(consulUser(u))
	if err != nil {
		return User{}, fmt.Errorf("user: encoding user: %w", err)
	}
	userKey, nameKey, emailKey := s.userKey(id), s.usernameKey(u.Username), s.emailKey(u.Email)
	if len(value) > maxConsulValueBytes || len(nameKey) > maxConsulKeyBytes || len(emailKey) > maxConsulKeyBytes {
		return User{}, errTooLarge
	}

	// The user key comes first so that an error Consul reports against
	// operation 0 (as it does when a commit fails) is never mistaken for a
	// taken username or email.
	const opUser, opName, opEmail = 0, 1, 2
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: userKey, Value: value, Index: 0}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: nameKey, Value: []byte(id), Index: 0}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: emailKey, Value: []byte(id), Index: 0}},
	}
	ok, resp, _, err := s.txn.Txn(ops, query(ctx))
	if err != nil {
		return User{}, consulError(ctx, "create", err)
	}
	if ok {
		return u.clone(), nil
	}
	// Only a failed CAS on an index key means "taken"; anything else (an
	// ACL denial marks every operation, an ID collision marks operation 0)
	// is a real failure.
	var nameTaken, emailTaken bool
	for _, e := range resp.Errors {
		switch e.OpIndex {
		case opName:
			nameTaken = true
		case opEmail:
			emailTaken = true
		default:
			return User{}, txnFailed("create", resp.Errors)
		}
	}
	switch {
	case nameTaken && emailTaken:
		return User{}, fmt.Errorf("%w (username and email)", ErrAlreadyExists)
	case nameTaken:
		return User{}, fmt.Errorf("%w (username)", ErrAlreadyExists)
	case emailTaken:
		return User{}, fmt.Errorf("%w (email)", ErrAlreadyExists)
	}
	return User{}, txnFailed("create", resp.Errors)
}

// Get implements Store. An ID this store could not have issued is
// ErrNotFound without asking Consul.
func (s *ConsulStore) Get(ctx context.Context, id string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	u, _, err := s.get(ctx, "get", id)
	return u, err
}

// get reads the user with the given ID and its ModifyIndex.
func (s *ConsulStore) get(ctx context.Context, op, id string) (User, uint64, error) {
	if !isUserID(id) {
		return User{}, 0, ErrNotFound
	}
	pair, _, err := s.kv.Get(s.userKey(id), query(ctx))
	if err != nil {
		return User{}, 0, consulError(ctx, op, err)
	}
	if pair == nil {
		return User{}, 0, ErrNotFound
	}
	u, err := decodeConsulUser(pair, id)
	if err != nil {
		return User{}, 0, err
	}
	return u, pair.ModifyIndex, nil
}

// GetByUsername implements Store. It reads the username index, then the
// user: two reads, because Consul has no secondary indexes.
func (s *ConsulStore) GetByUsername(ctx context.Context, username string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	key := s.usernameKey(username)
	if len(key) > maxConsulKeyBytes {
		return User{}, ErrNotFound // Create never writes such a key.
	}
	pair, _, err := s.kv.Get(key, query(ctx))
	if err != nil {
		return User{}, consulError(ctx, "get by username", err)
	}
	if pair == nil {
		return User{}, ErrNotFound
	}
	id := string(pair.Value)
	if !isUserID(id) {
		return User{}, fmt.Errorf("user: Consul username index %q holds no user ID", key)
	}
	// A user deleted between the two reads is simply not found.
	u, _, err := s.get(ctx, "get by username", id)
	if err != nil {
		return User{}, err
	}
	if foldKey(u.Username) != foldKey(username) {
		return User{}, fmt.Errorf("user: Consul username index %q points at user %s with another username", key, id)
	}
	return u, nil
}

// List implements Store. It reads the sorted user keys, then the records
// after after in read transactions of up to consulReadBatch users, fetching
// one user beyond the page to know whether a next page exists. Users
// deleted between those reads are skipped and the page is filled from the
// following ones.
func (s *ConsulStore) List(ctx context.Context, after string, limit int) ([]User, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", errBadLimit
	}
	keys, _, err := s.kv.Keys(s.users, "", query(ctx))
	if err != nil {
		return nil, "", consulError(ctx, "list", err)
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		// Skip anything else under the prefix, such as a folder key
		// made in the Consul UI.
		if id := strings.TrimPrefix(k, s.users); isUserID(id) {
			ids = append(ids, id)
		}
	}
	// Consul returns keys in byte order already; sorting only guards the
	// invariant and costs one pass when it holds.
	if !slices.IsSorted(ids) {
		slices.Sort(ids)
	}

	// Searching by value keeps tokens valid when after was deleted.
	i := 0
	if after != "" {
		var found bool
		i, found = slices.BinarySearch(ids, after)
		if found {
			i++
		}
	}
	want := min(limit, len(ids)-i) + 1 // one more than the page, if there is one
	users := make([]User, 0, want)
	for i < len(ids) && len(users) < want {
		n := min(consulReadBatch, want-len(users), len(ids)-i)
		batch, err := s.getMany(ctx, ids[i:i+n])
		if err != nil {
			return nil, "", err
		}
		users = append(users, batch...)
		i += n
	}
	if len(users) > limit {
		return users[:limit], users[limit-1].ID, nil
	}
	return users, "", nil
}

// getMany reads the users with the given IDs in one read-only transaction,
// which Consul answers without going through raft. Missing users are
// skipped; the others keep the order of ids.
func (s *ConsulStore) getMany(ctx context.Context, ids []string) ([]User, error) {
	ops := make(api.TxnOps, len(ids))
	for i, id := range ids {
		ops[i] = &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: s.userKey(id)}}
	}
	ok, resp, _, err := s.txn.Txn(ops, query(ctx))
	if err != nil {
		return nil, consulError(ctx, "list", err)
	}
	if !ok {
		return nil, txnFailed("list", resp.Errors)
	}
	byKey := make(map[string]*api.KVPair, len(resp.Results))
	for _, r := range resp.Results {
		if r != nil && r.KV != nil && r.KV.Value != nil {
			byKey[r.KV.Key] = r.KV
		}
	}
	users := make([]User, 0, len(ids))
	for _, id := range ids {
		pair, ok := byKey[s.userKey(id)]
		if !ok {
			continue // deleted since the keys were listed
		}
		u, err := decodeConsulUser(pair, id)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, nil
}

// Delete implements Store. It reads the user, then deletes its three keys
// in one transaction that first checks the user record still has the
// ModifyIndex it was read with. The check matters: were the user deleted
// and its username taken again by a new user in between, deleting the
// index keys unguarded would strip the new user's index entries. When the
// check fails, Delete reads again, up to maxDeleteAttempts times.
func (s *ConsulStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for range maxDeleteAttempts {
		u, index, err := s.get(ctx, "delete", id)
		if err != nil {
			return err
		}
		ops := api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: s.userKey(id), Index: index}},
			{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.userKey(id)}},
			{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.usernameKey(u.Username)}},
			{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.emailKey(u.Email)}},
		}
		ok, resp, _, err := s.txn.Txn(ops, query(ctx))
		if err != nil {
			return consulError(ctx, "delete", err)
		}
		if ok {
			return nil
		}
		for _, e := range resp.Errors {
			if e.OpIndex != 0 {
				return txnFailed("delete", resp.Errors)
			}
		}
		// Only the index check failed: the user changed or went away.
	}
	return fmt.Errorf("user: deleting user %s kept conflicting with concurrent changes (%d attempts)", id, maxDeleteAttempts)
}

// decodeConsulUser decodes the record stored for id.
func decodeConsulUser(pair *api.KVPair, id string) (User, error) {
	var r consulUser
	if err := json.Unmarshal(pair.Value, &r); err != nil {
		// The value holds a password hash: name the key, never quote it.
		return User{}, fmt.Errorf("user: Consul record %q is corrupt: %v", pair.Key, err)
	}
	if r.ID != id {
		return User{}, fmt.Errorf("user: Consul record %q holds the ID %q", pair.Key, r.ID)
	}
	return User(r), nil
}

// consulError classifies an error from the Consul client. When ctx has
// ended, that is the cause, whatever the client says. A definite refusal
// (a 4xx other than 429) is a plain error: retrying will not help. Anything
// else (no connection, a timeout, a 5xx, a 429, an unreadable answer, a
// failed transaction request, whose status the client hides) wraps
// ErrUnavailable. The cause is kept as text only, so that errors.Is finds
// ErrUnavailable and not, say, the HTTP client's own timeout.
func consulError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("user: consul %s: %w", op, ctxErr)
	}
	var se api.StatusError
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != http.StatusTooManyRequests {
		return fmt.Errorf("user: consul %s: %w", op, err)
	}
	return fmt.Errorf("%w: consul %s: %v", ErrUnavailable, op, err)
}

// txnFailed reports a transaction Consul rolled back for a reason other than
// the ones its caller expects.
func txnFailed(op string, errs api.TxnErrors) error {
	whats := make([]string, 0, len(errs))
	for _, e := range errs {
		if e != nil {
			whats = append(whats, fmt.Sprintf("op %d: %s", e.OpIndex, e.What))
		}
	}
	return fmt.Errorf("user: consul %s: transaction rolled back: %s", op, strings.Join(whats, "; "))
}
