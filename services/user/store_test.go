package user

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// newUser returns a storable user whose username and email derive from n.
func newUser(n int) User {
	return User{
		Username:     fmt.Sprintf("user%05d", n),
		Email:        fmt.Sprintf("user%05d@example.com", n),
		PasswordHash: []byte("not-a-real-hash"),
	}
}

func mustCreate(t testing.TB, s Store, u User) User {
	t.Helper()
	got, err := s.Create(context.Background(), u)
	if err != nil {
		t.Fatalf("Create(%q): %v", u.Username, err)
	}
	return got
}

func TestMemoryStoreCreateGet(t *testing.T) {
	ctx := context.Background()
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := NewMemoryStore(WithClock(func() time.Time { return fixed }))

	in := newUser(1)
	in.ID = "caller-chosen-id-is-ignored"
	created := mustCreate(t, s, in)
	if !isUserID(created.ID) {
		t.Fatalf("ID %q is not a canonical UUIDv7", created.ID)
	}
	if !created.CreatedAt.Equal(fixed) || !created.UpdatedAt.Equal(fixed) {
		t.Errorf("timestamps = %v, %v; want %v from the clock", created.CreatedAt, created.UpdatedAt, fixed)
	}

	got, err := s.Get(ctx, created.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Username != in.Username || got.Email != in.Email || string(got.PasswordHash) != string(in.PasswordHash) {
		t.Errorf("Get = %+v, want fields of %+v", got, in)
	}

	byName, err := s.GetByUsername(ctx, "USER00001")
	if err != nil {
		t.Fatalf("GetByUsername is not case-insensitive: %v", err)
	}
	if byName.ID != created.ID {
		t.Errorf("GetByUsername ID = %q, want %q", byName.ID, created.ID)
	}
}

func TestMemoryStoreReturnsCopies(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	in := newUser(1)
	created := mustCreate(t, s, in)

	// Mutating the input, the returned value or a fetched value must not
	// reach the stored hash.
	in.PasswordHash[0] = 'X'
	created.PasswordHash[1] = 'X'
	got, _ := s.Get(ctx, created.ID)
	got.PasswordHash[2] = 'X'

	again, _ := s.Get(ctx, created.ID)
	if string(again.PasswordHash) != "not-a-real-hash" {
		t.Errorf("stored hash was mutated through an alias: %q", again.PasswordHash)
	}
}

func TestMemoryStoreDuplicates(t *testing.T) {
	s := NewMemoryStore()
	mustCreate(t, s, User{Username: "alice", Email: "alice@example.com"})

	tests := []struct {
		name string
		u    User
	}{
		{"same username", User{Username: "alice", Email: "other@example.com"}},
		{"username differing in case", User{Username: "ALICE", Email: "other@example.com"}},
		{"same email", User{Username: "bob", Email: "alice@example.com"}},
		{"email differing in case", User{Username: "bob", Email: "Alice@Example.COM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Create(context.Background(), tt.u); !errors.Is(err, ErrAlreadyExists) {
				t.Errorf("Create = %v, want ErrAlreadyExists", err)
			}
		})
	}
}

func TestMemoryStoreNotFound(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	const missing = "01890a5d-ac96-774b-bcce-b302099a8057"

	if _, err := s.Get(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	if _, err := s.GetByUsername(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetByUsername = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete = %v, want ErrNotFound", err)
	}
}

func TestMemoryStoreDelete(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	u := mustCreate(t, s, newUser(1))

	if err := s.Delete(ctx, u.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.GetByUsername(ctx, u.Username); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetByUsername after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	// The username and email are free again, under a new ID.
	again := mustCreate(t, s, newUser(1))
	if again.ID == u.ID {
		t.Errorf("re-created user reused ID %q", u.ID)
	}
}

func TestMemoryStoreCanceledContext(t *testing.T) {
	s := NewMemoryStore()
	u := mustCreate(t, s, newUser(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if _, err := s.Create(ctx, newUser(2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Create = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, u.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v, want context.Canceled", err)
	}
	if _, err := s.GetByUsername(ctx, u.Username); !errors.Is(err, context.Canceled) {
		t.Errorf("GetByUsername = %v, want context.Canceled", err)
	}
	if _, _, err := s.List(ctx, "", 10); !errors.Is(err, context.Canceled) {
		t.Errorf("List = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, u.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete = %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), u.ID); err != nil {
		t.Errorf("canceled Delete still deleted: %v", err)
	}
}

func TestMemoryStoreConcurrentSameUsername(t *testing.T) {
	s := NewMemoryStore()
	const n = 64
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make([]error, n)
		winnerID = make([]string, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Same username in varying case, distinct emails: only the
			// username can collide.
			name := "racer"
			if i%2 == 1 {
				name = "RACER"
			}
			u, err := s.Create(context.Background(), User{Username: name, Email: fmt.Sprintf("r%d@example.com", i)})
			errs[i], winnerID[i] = err, u.ID
		}()
	}
	close(start)
	wg.Wait()

	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			if winnerID[i] == "" {
				t.Errorf("winner %d got no ID", i)
			}
		case !errors.Is(err, ErrAlreadyExists):
			t.Errorf("loser %d: %v, want ErrAlreadyExists", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d creates won, want exactly 1", wins)
	}
	users, next, err := s.List(context.Background(), "", 100)
	if err != nil || len(users) != 1 || next != "" {
		t.Errorf("List = %d users, next %q, err %v; want the single winner", len(users), next, err)
	}
}

func TestMemoryStoreConcurrentMixed(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				u, err := s.Create(ctx, newUser(w*1000+i))
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				if _, _, err := s.List(ctx, "", 10); err != nil {
					t.Errorf("List: %v", err)
				}
				if i%3 == 0 {
					if err := s.Delete(ctx, u.ID); err != nil {
						t.Errorf("Delete: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()

	// 8 workers x 100 creates, 34 of each 100 deleted.
	all := listAll(t, s, 50)
	if len(all) != 8*66 {
		t.Errorf("listed %d users, want %d", len(all), 8*66)
	}
}

// listAll walks every page of s and returns the IDs in order.
func listAll(t *testing.T, s Store, pageSize int) []string {
	t.Helper()
	var ids []string
	after := ""
	for range 100000 {
		users, next, err := s.List(context.Background(), after, pageSize)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, u := range users {
			ids = append(ids, u.ID)
		}
		if next == "" {
			return ids
		}
		after = next
	}
	t.Fatal("listing did not terminate")
	return nil
}

func TestMemoryStoreIDsSortInCreationOrder(t *testing.T) {
	s := NewMemoryStore()
	var ids []string
	for i := range 2000 {
		ids = append(ids, mustCreate(t, s, newUser(i)).ID)
	}
	if !slices.IsSorted(ids) {
		t.Fatal("IDs are not increasing in creation order")
	}
	if got := listAll(t, s, 7); !slices.Equal(got, ids) {
		t.Fatal("List order differs from creation order")
	}
}

func TestMemoryStorePaginationWithDeletes(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	const total, pageSize = 1234, 100
	ids := make([]string, total)
	for i := range total {
		ids[i] = mustCreate(t, s, newUser(i)).ID
	}

	deleted := map[string]bool{}
	del := func(id string) {
		if deleted[id] {
			return
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		deleted[id] = true
	}

	seen := map[string]bool{}
	var order []string
	after := ""
	for page := 0; ; page++ {
		users, next, err := s.List(ctx, after, pageSize)
		if err != nil {
			t.Fatalf("List page %d: %v", page, err)
		}
		if next != "" && len(users) != pageSize {
			t.Fatalf("page %d has %d users but is not the last", page, len(users))
		}
		for _, u := range users {
			if seen[u.ID] {
				t.Fatalf("user %s listed twice", u.ID)
			}
			if deleted[u.ID] {
				t.Fatalf("user %s listed after it was deleted", u.ID)
			}
			seen[u.ID] = true
			order = append(order, u.ID)
		}
		if next == "" {
			break
		}
		// Between pages: delete the cursor user itself, a block of
		// users not yet listed (enough to force compactions), and some
		// users already listed.
		del(next)
		for i := page * 97; i < min(total, page*97+60); i++ {
			del(ids[(i*7+page)%total])
		}
		del(ids[page])
		after = next
	}

	for _, id := range ids {
		if !deleted[id] && !seen[id] {
			t.Errorf("surviving user %s was skipped", id)
		}
	}
	if !slices.IsSorted(order) {
		t.Error("pages are not in ID order")
	}
	if len(seen)+len(deleted) < total {
		t.Errorf("seen %d + deleted %d < %d users", len(seen), len(deleted), total)
	}
}

func TestMemoryStoreListEdges(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()

	users, next, err := s.List(ctx, "", 10)
	if err != nil || len(users) != 0 || next != "" {
		t.Fatalf("empty store: %d users, next %q, err %v", len(users), next, err)
	}
	if _, _, err := s.List(ctx, "", 0); err == nil {
		t.Error("List with limit 0 succeeded, want an error")
	}

	var ids []string
	for i := range 200 {
		ids = append(ids, mustCreate(t, s, newUser(i)).ID)
	}

	// An exact multiple of the page size: the second page is the last.
	page1, next, _ := s.List(ctx, "", 100)
	if len(page1) != 100 || next != ids[99] {
		t.Fatalf("page 1: %d users, next %q", len(page1), next)
	}
	page2, next, _ := s.List(ctx, next, 100)
	if len(page2) != 100 || next != "" {
		t.Fatalf("page 2: %d users, next %q; want 100 and no next", len(page2), next)
	}

	// When every user after the page is deleted, the page is the last.
	for _, id := range ids[150:] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	users, next, _ = s.List(ctx, ids[99], 50)
	if len(users) != 50 || next != "" {
		t.Errorf("trailing deletes: %d users, next %q; want 50 and no next", len(users), next)
	}

	// Continuing after a deleted ID resumes at the next survivor.
	if err := s.Delete(ctx, ids[10]); err != nil {
		t.Fatal(err)
	}
	users, _, _ = s.List(ctx, ids[10], 1)
	if len(users) != 1 || users[0].ID != ids[11] {
		t.Errorf("after deleted ID: got %v, want %s", users, ids[11])
	}

	// An ID past every user gives an empty last page.
	users, next, _ = s.List(ctx, "ffffffff-ffff-7fff-bfff-ffffffffffff", 10)
	if len(users) != 0 || next != "" {
		t.Errorf("after max ID: %d users, next %q", len(users), next)
	}
}

func TestMemoryStoreCompactionKeepsOrder(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	var keep []string
	for i := range 1000 {
		u := mustCreate(t, s, newUser(i))
		if i%10 == 0 {
			keep = append(keep, u.ID)
			continue
		}
		if err := s.Delete(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got := listAll(t, s, 9); !slices.Equal(got, keep) {
		t.Fatalf("after compaction listed %d users, want %d in order", len(got), len(keep))
	}
	if s.dead > len(s.byID) {
		t.Errorf("tombstones %d exceed live users %d", s.dead, len(s.byID))
	}
}
