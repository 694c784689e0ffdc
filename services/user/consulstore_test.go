package user

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/internal/testbackend"
)

// newConsulClient returns a client for the agent at addr (host:port).
func newConsulClient(t *testing.T, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, Scheme: "http"})
	if err != nil {
		t.Fatalf("api.NewClient: %v", err)
	}
	return c
}

func newConsulStore(t *testing.T, c *api.Client, prefix string, opts ...Option) *ConsulStore {
	t.Helper()
	s, err := NewConsulStore(c, prefix, opts...)
	if err != nil {
		t.Fatalf("NewConsulStore(%q): %v", prefix, err)
	}
	return s
}

// skipShort skips tests that start a Consul agent under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
}

// TestConsulStore runs everything that needs a live agent on one agent,
// each part under its own key prefix.
func TestConsulStore(t *testing.T) {
	skipShort(t)
	addr, _ := testbackend.StartConsul(t)
	client := newConsulClient(t, addr)
	var prefixes atomic.Int64
	newPrefix := func() string { return fmt.Sprintf("golden-test/%d", prefixes.Add(1)) }

	t.Run("Conformance", func(t *testing.T) {
		testStoreConformance(t, func(t *testing.T, now func() time.Time) Store {
			return newConsulStore(t, client, newPrefix(), WithClock(now))
		})
	})

	t.Run("Layout", func(t *testing.T) {
		prefix := newPrefix()
		s := newConsulStore(t, client, "/"+prefix+"/")
		u := mustCreate(t, s, User{Username: "Alice", Email: "Alice@Example.com", PasswordHash: []byte("hash\x00\xff")})

		kv := client.KV()
		get := func(key string) []byte {
			t.Helper()
			p, _, err := kv.Get(key, nil)
			if err != nil || p == nil {
				t.Fatalf("KV get %q: %v, %v", key, p, err)
			}
			return p.Value
		}
		var rec map[string]any
		if err := json.Unmarshal(get(prefix+"/users/"+u.ID), &rec); err != nil {
			t.Fatalf("user record is not JSON: %v", err)
		}
		want := map[string]any{
			"id": u.ID, "username": "Alice", "email": "Alice@Example.com",
			"password_hash": base64.StdEncoding.EncodeToString([]byte("hash\x00\xff")),
			"created_at":    u.CreatedAt.Format(time.RFC3339Nano),
			"updated_at":    u.UpdatedAt.Format(time.RFC3339Nano),
		}
		if fmt.Sprint(rec) != fmt.Sprint(want) {
			t.Errorf("user record = %v\nwant %v", rec, want)
		}
		if got := string(get(prefix + "/usernames/alice")); got != u.ID {
			t.Errorf("username index = %q, want %q", got, u.ID)
		}
		if got := string(get(prefix + "/emails/alice@example.com")); got != u.ID {
			t.Errorf("email index = %q, want %q", got, u.ID)
		}

		if err := s.Delete(context.Background(), u.ID); err != nil {
			t.Fatal(err)
		}
		if keys, _, err := kv.Keys(prefix+"/", "", nil); err != nil || len(keys) != 0 {
			t.Errorf("keys left after Delete: %v, %v", keys, err)
		}
	})

	t.Run("TwoInstances", func(t *testing.T) {
		// Two stores with their own clients, as two user instances.
		prefix := newPrefix()
		a := newConsulStore(t, newConsulClient(t, addr), prefix)
		b := newConsulStore(t, newConsulClient(t, addr), prefix)
		ctx := context.Background()

		u := mustCreate(t, a, newUser(1))
		if got, err := b.Get(ctx, u.ID); err != nil || got.Username != u.Username {
			t.Fatalf("Get through the other instance = %+v, %v", got, err)
		}
		if got, err := b.GetByUsername(ctx, "USER00001"); err != nil || got.ID != u.ID {
			t.Fatalf("GetByUsername through the other instance = %+v, %v", got, err)
		}
		if users, _, err := b.List(ctx, "", 10); err != nil || len(users) != 1 || users[0].ID != u.ID {
			t.Fatalf("List through the other instance = %v, %v", users, err)
		}
		if _, err := b.Create(ctx, newUser(1)); !errors.Is(err, ErrAlreadyExists) {
			t.Fatalf("duplicate through the other instance = %v, want ErrAlreadyExists", err)
		}
		if err := b.Delete(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete through the other instance = %v, want ErrNotFound", err)
		}
	})

	t.Run("ConcurrentSameUsernameTwoInstances", func(t *testing.T) {
		prefix := newPrefix()
		stores := []Store{
			newConsulStore(t, newConsulClient(t, addr), prefix),
			newConsulStore(t, newConsulClient(t, addr), prefix),
		}
		checkOneWinner(t, func(i int) Store { return stores[i%2] })
	})

	t.Run("ConcurrentSameEmailTwoInstances", func(t *testing.T) {
		prefix := newPrefix()
		a := newConsulStore(t, newConsulClient(t, addr), prefix)
		b := newConsulStore(t, newConsulClient(t, addr), prefix)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.Create(context.Background(), User{Username: fmt.Sprintf("u%d", i), Email: "Same@example.com"})
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrAlreadyExists) {
			t.Fatalf("errors = %v; want one success and one ErrAlreadyExists", errs)
		}
	})

	t.Run("ConcurrentDeleteAndRecreate", func(t *testing.T) {
		// Instances deleting the same user while another re-creates its
		// username: afterwards every index key must still point at the
		// user it belongs to.
		prefix := newPrefix()
		a := newConsulStore(t, newConsulClient(t, addr), prefix)
		b := newConsulStore(t, newConsulClient(t, addr), prefix)
		ctx := context.Background()
		for round := range 20 {
			u := mustCreate(t, a, newUser(round))
			var wg sync.WaitGroup
			var deletes atomic.Int32
			for _, s := range []Store{a, b, a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					switch err := s.Delete(ctx, u.ID); {
					case err == nil:
						deletes.Add(1)
					case !errors.Is(err, ErrNotFound):
						t.Errorf("Delete: %v", err)
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Fails while u exists, may succeed once it is gone.
				_, _ = b.Create(ctx, newUser(round))
			}()
			wg.Wait()
			if got := deletes.Load(); got != 1 {
				t.Fatalf("round %d: %d deletes succeeded, want 1", round, got)
			}
		}
		checkConsulIndexes(t, client, a, prefix)
	})

	t.Run("KeyEscaping", func(t *testing.T) {
		prefix := newPrefix()
		s := newConsulStore(t, client, prefix)
		ctx := context.Background()
		// Values the API's validation would reject still round-trip and
		// never share a key with another value.
		names := []string{"a/b", "a%2fb", ".", "..", "%2e%2e", "x?y#z", "ünï", "sp ace", "a//b", "new\nline"}
		ids := map[string]string{}
		for i, name := range names {
			u := mustCreate(t, s, User{Username: name, Email: fmt.Sprintf("%s@%d.example", name, i)})
			ids[name] = u.ID
		}
		for _, name := range names {
			got, err := s.GetByUsername(ctx, strings.ToUpper(name))
			if err != nil || got.ID != ids[name] || got.Username != name {
				t.Errorf("GetByUsername(%q) = %q %q, %v; want %q", strings.ToUpper(name), got.ID, got.Username, err, ids[name])
			}
		}
		checkConsulIndexes(t, client, s, prefix)
		for _, name := range names {
			if err := s.Delete(ctx, ids[name]); err != nil {
				t.Errorf("Delete(%q): %v", name, err)
			}
		}
		if keys, _, err := client.KV().Keys(prefix+"/", "", nil); err != nil || len(keys) != 0 {
			t.Errorf("keys left after deleting everyone: %q, %v", keys, err)
		}
	})

	t.Run("CorruptRecords", func(t *testing.T) {
		prefix := newPrefix()
		s := newConsulStore(t, client, prefix)
		ctx := context.Background()
		kv := client.KV()
		put := func(key, value string) {
			t.Helper()
			if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		const garbled = "01890a5d-ac96-774b-bcce-b302099a8057"
		const wrongID = "01890a5d-ac96-774b-bcce-b302099a8058"
		put(prefix+"/users/"+garbled, `{"id":`)
		put(prefix+"/users/"+wrongID, `{"id":"`+garbled+`","password_hash":"c2VjcmV0LWhhc2g="}`)
		put(prefix+"/usernames/ghost", wrongID[:35]+"9") // a valid ID with no user
		put(prefix+"/usernames/junk", "not an id")

		for _, id := range []string{garbled, wrongID} {
			_, err := s.Get(ctx, id)
			if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
				t.Errorf("Get(%s) = %v, want a corruption error", id, err)
			} else if strings.Contains(err.Error(), "secret-hash") || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error quotes the record: %v", err)
			}
		}
		if _, _, err := s.List(ctx, "", 10); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("List over corrupt records = %v, want a corruption error", err)
		}
		if _, err := s.GetByUsername(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetByUsername of a dangling index = %v, want ErrNotFound", err)
		}
		if _, err := s.GetByUsername(ctx, "junk"); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("GetByUsername of a junk index = %v, want a corruption error", err)
		}
		// Keys under users/ that are not IDs are ignored.
		clean := newPrefix()
		put(clean+"/users/", "")
		put(clean+"/users/README", "hello")
		if users, next, err := newConsulStore(t, client, clean).List(ctx, "", 10); err != nil || len(users) != 0 || next != "" {
			t.Errorf("List with foreign keys = %v, %q, %v; want empty", users, next, err)
		}
	})

	t.Run("TooLarge", func(t *testing.T) {
		prefix := newPrefix()
		s := newConsulStore(t, client, prefix)
		huge := strings.Repeat("x", maxConsulValueBytes)
		for _, u := range []User{
			{Username: "big", Email: "big@example.com", PasswordHash: []byte(huge)},
			{Username: huge[:maxConsulKeyBytes], Email: "big@example.com"},
			{Username: "big", Email: huge[:maxConsulKeyBytes] + "@example.com"},
		} {
			if _, err := s.Create(context.Background(), u); !errors.Is(err, errTooLarge) {
				t.Errorf("Create of an oversized user = %v, want errTooLarge", err)
			}
		}
		if keys, _, err := client.KV().Keys(prefix+"/", "", nil); err != nil || len(keys) != 0 {
			t.Errorf("oversized users were written: %q, %v", keys, err)
		}
		if _, err := s.GetByUsername(context.Background(), huge); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetByUsername of an oversized name = %v, want ErrNotFound", err)
		}
	})
}

// checkConsulIndexes checks that the index keys under prefix and the users
// of s agree: every user has both index entries and every entry points at
// a user with that username or email.
func checkConsulIndexes(t *testing.T, client *api.Client, s Store, prefix string) {
	t.Helper()
	users := map[string]User{}
	for _, id := range listAll(t, s, 100) {
		u, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		users[id] = u
	}
	for _, index := range []struct {
		dir   string
		field func(User) string
	}{
		{prefix + "/usernames/", func(u User) string { return u.Username }},
		{prefix + "/emails/", func(u User) string { return u.Email }},
	} {
		pairs, _, err := client.KV().List(index.dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(pairs) != len(users) {
			t.Errorf("%s has %d entries for %d users", index.dir, len(pairs), len(users))
		}
		for _, p := range pairs {
			u, ok := users[string(p.Value)]
			if !ok {
				t.Errorf("%s points at missing user %q", p.Key, p.Value)
				continue
			}
			if want := index.dir + keySegment(foldKey(index.field(u))); p.Key != want {
				t.Errorf("%s points at user %s, whose key is %s", p.Key, u.ID, want)
			}
		}
	}
}

func TestConsulStoreUnavailable(t *testing.T) {
	skipShort(t)
	consul := testbackend.NewConsul(t)
	consul.Start(t)
	s := newConsulStore(t, newConsulClient(t, consul.HTTPAddr), "golden/user")
	u := mustCreate(t, s, newUser(1))
	consul.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for name, call := range storeCalls(s, u) {
		err := call(ctx)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with Consul stopped = %v, want ErrUnavailable", name, err)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Errorf("%s error %v also claims to be a context error", name, err)
		}
	}

	// Through the gRPC server, the caller sees Unavailable and no detail.
	srv := NewServer(s, WithBcryptCost(bcrypt.MinCost))
	_, err := srv.GetUser(ctx, &userv1.GetUserRequest{Id: u.ID})
	if msg := wantCode(t, err, codes.Unavailable); msg != msgUnavailable {
		t.Errorf("message = %q, want %q", msg, msgUnavailable)
	}
}

// storeCalls returns one call of each Store method, for tests that expect
// the same error kind from all of them.
func storeCalls(s Store, u User) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Create": func(ctx context.Context) error { _, err := s.Create(ctx, newUser(2)); return err },
		"Get":    func(ctx context.Context) error { _, err := s.Get(ctx, u.ID); return err },
		"GetByUsername": func(ctx context.Context) error {
			_, err := s.GetByUsername(ctx, u.Username)
			return err
		},
		"List":   func(ctx context.Context) error { _, _, err := s.List(ctx, "", 10); return err },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, u.ID) },
	}
}

// fakeConsul serves handler as a Consul agent would, on loopback.
func fakeConsul(t *testing.T, handler http.HandlerFunc) *ConsulStore {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return newConsulStore(t, newConsulClient(t, strings.TrimPrefix(srv.URL, "http://")), "golden/user")
}

func TestConsulStoreServerErrors(t *testing.T) {
	u := User{ID: "01890a5d-ac96-774b-bcce-b302099a8057", Username: "alice"}
	for _, code := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			s := fakeConsul(t, func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "No cluster leader", code)
			})
			for name, call := range storeCalls(s, u) {
				if err := call(context.Background()); !errors.Is(err, ErrUnavailable) {
					t.Errorf("%s = %v, want ErrUnavailable", name, err)
				}
			}
		})
	}

	t.Run("refused read", func(t *testing.T) {
		// A 403 on a read is a definite answer (an ACL problem): retrying
		// will not help, so it is not ErrUnavailable.
		s := fakeConsul(t, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "Permission denied", http.StatusForbidden)
		})
		calls := storeCalls(s, u)
		for _, name := range []string{"Get", "GetByUsername", "List", "Delete"} {
			err := calls[name](context.Background())
			if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
				t.Errorf("%s = %v, want a plain error", name, err)
			}
		}
	})

	t.Run("unreadable answer", func(t *testing.T) {
		s := fakeConsul(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("<html>proxy error</html>"))
		})
		for name, call := range storeCalls(s, u) {
			if err := call(context.Background()); !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s = %v, want ErrUnavailable", name, err)
			}
		}
	})
}

func TestConsulStoreContextEndsFirst(t *testing.T) {
	testDone := make(chan struct{})
	s := fakeConsul(t, func(_ http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up;
		// then hang until it does, or until the test ends.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-testDone:
		}
	})
	t.Cleanup(func() { close(testDone) }) // runs before the server's Close
	u := User{ID: "01890a5d-ac96-774b-bcce-b302099a8057", Username: "alice"}
	for name, call := range storeCalls(s, u) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s = %v, want only context.DeadlineExceeded", name, err)
		}
	}
}

func TestNewConsulStoreValidation(t *testing.T) {
	client := newConsulClient(t, "127.0.0.1:1")
	if _, err := NewConsulStore(nil, "golden/user"); err == nil {
		t.Error("NewConsulStore(nil client) succeeded")
	}
	for _, prefix := range []string{"golden/user", "/golden/user/", "a", "a.b/c_d/e-f/V2"} {
		if _, err := NewConsulStore(client, prefix); err != nil {
			t.Errorf("NewConsulStore(%q) = %v, want success", prefix, err)
		}
	}
	for _, prefix := range []string{"", "/", "//", "a//b", "a/./b", "a/..", "a b", "ü", "a?b", "a%2Fb", strings.Repeat("a", 257)} {
		if _, err := NewConsulStore(client, prefix); err == nil {
			t.Errorf("NewConsulStore(%q) succeeded, want an error", prefix)
		}
	}
}

func TestKeySegmentIsInjective(t *testing.T) {
	seen := map[string]string{}
	for _, v := range []string{"", ".", "..", "...", "%2E", "%2e", "%2E%2E", "a/b", "a%2Fb", "a%252Fb", "alice", "alice@example.com", "ü", "%C3%BC"} {
		k := keySegment(v)
		if strings.Contains(k, "/") || k == "." || k == ".." {
			t.Errorf("keySegment(%q) = %q is not one safe segment", v, k)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("keySegment(%q) = keySegment(%q) = %q", v, other, k)
		}
		seen[k] = v
	}
	if got := keySegment("alice@example.com"); got != "alice@example.com" {
		t.Errorf("keySegment of an ordinary email = %q, want it unchanged", got)
	}
}

func TestStoreUnavailableIsUnavailable(t *testing.T) {
	// The error as ConsulStore returns it when Consul is down, with an
	// internal address that must not reach the caller.
	errConsulDown := fmt.Errorf("%w: consul get: dial tcp 10.0.0.7:8500: connection refused", ErrUnavailable)
	calls := everyRPC(errConsulDown)
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if msg := wantCode(t, call(), codes.Unavailable); msg != "user store unavailable" {
				t.Errorf("message = %q, want the fixed %q", msg, "user store unavailable")
			}
		})
	}
}
