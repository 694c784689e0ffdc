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

// storeFactory returns a new, empty Store whose timestamps come from now
// (the real clock when now is nil).
type storeFactory func(t *testing.T, now func() time.Time) Store

// testStoreConformance checks the Store contract, which every
// implementation must meet in the same way, on stores from newStore.
func testStoreConformance(t *testing.T, newStore storeFactory) {
	tests := []struct {
		name string
		run  func(t *testing.T, newStore storeFactory)
	}{
		{"CreateGet", conformCreateGet},
		{"ReturnsCopies", conformReturnsCopies},
		{"Duplicates", conformDuplicates},
		{"NotFound", conformNotFound},
		{"Delete", conformDelete},
		{"CanceledContext", conformCanceledContext},
		{"ConcurrentSameUsername", conformConcurrentSameUsername},
		{"ConcurrentMixed", conformConcurrentMixed},
		{"IDsSortInCreationOrder", conformIDsSortInCreationOrder},
		{"PaginationWithDeletes", func(t *testing.T, newStore storeFactory) {
			checkPagingWithDeletes(t, newStore(t, nil), 300, 25)
		}},
		{"ListEdges", conformListEdges},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

func TestMemoryStoreConformance(t *testing.T) {
	testStoreConformance(t, func(_ *testing.T, now func() time.Time) Store {
		return NewMemoryStore(WithClock(now))
	})
}

func conformCreateGet(t *testing.T, newStore storeFactory) {
	ctx := context.Background()
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	s := newStore(t, func() time.Time { return fixed })

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
	if got.ID != created.ID || got.Username != in.Username || got.Email != in.Email || string(got.PasswordHash) != string(in.PasswordHash) {
		t.Errorf("Get = %+v, want fields of %+v", got, in)
	}
	if !got.CreatedAt.Equal(fixed) || !got.UpdatedAt.Equal(fixed) {
		t.Errorf("Get timestamps = %v, %v; want %v", got.CreatedAt, got.UpdatedAt, fixed)
	}

	byName, err := s.GetByUsername(ctx, "USER00001")
	if err != nil {
		t.Fatalf("GetByUsername is not case-insensitive: %v", err)
	}
	if byName.ID != created.ID {
		t.Errorf("GetByUsername ID = %q, want %q", byName.ID, created.ID)
	}
}

func conformReturnsCopies(t *testing.T, newStore storeFactory) {
	ctx := context.Background()
	s := newStore(t, nil)
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

func conformDuplicates(t *testing.T, newStore storeFactory) {
	s := newStore(t, nil)
	mustCreate(t, s, User{Username: "alice", Email: "alice@example.com"})

	tests := []struct {
		name string
		u    User
	}{
		{"same username", User{Username: "alice", Email: "other@example.com"}},
		{"username differing in case", User{Username: "ALICE", Email: "other@example.com"}},
		{"same email", User{Username: "bob", Email: "alice@example.com"}},
		{"email differing in case", User{Username: "bob", Email: "Alice@Example.COM"}},
		{"both", User{Username: "Alice", Email: "ALICE@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Create(context.Background(), tt.u); !errors.Is(err, ErrAlreadyExists) {
				t.Errorf("Create = %v, want ErrAlreadyExists", err)
			}
		})
	}
	// A losing Create leaves nothing behind: its free email stays free.
	if _, err := s.Create(context.Background(), User{Username: "carol", Email: "other@example.com"}); err != nil {
		t.Errorf("Create after rejected duplicates: %v", err)
	}
	if users, _, err := s.List(context.Background(), "", 10); err != nil || len(users) != 2 {
		t.Errorf("List = %d users, %v; want alice and carol", len(users), err)
	}
}

func conformNotFound(t *testing.T, newStore storeFactory) {
	ctx := context.Background()
	s := newStore(t, nil)
	const missing = "01890a5d-ac96-774b-bcce-b302099a8057"

	for _, id := range []string{missing, "not-an-id", ""} {
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
		if err := s.Delete(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := s.GetByUsername(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetByUsername = %v, want ErrNotFound", err)
	}
}

func conformDelete(t *testing.T, newStore storeFactory) {
	ctx := context.Background()
	s := newStore(t, nil)
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

func conformCanceledContext(t *testing.T, newStore storeFactory) {
	s := newStore(t, nil)
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
	if _, err := s.GetByUsername(context.Background(), newUser(2).Username); !errors.Is(err, ErrNotFound) {
		t.Errorf("canceled Create still created: %v", err)
	}
}

func conformConcurrentSameUsername(t *testing.T, newStore storeFactory) {
	s := newStore(t, nil)
	checkOneWinner(t, func(int) Store { return s })
}

// checkOneWinner races 64 creates of one username (in varying case, with
// distinct emails) through the stores storeFor returns, and checks that
// exactly one wins and the others get ErrAlreadyExists.
func checkOneWinner(t *testing.T, storeFor func(i int) Store) {
	t.Helper()
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
			name := "racer"
			if i%2 == 1 {
				name = "RACER"
			}
			u, err := storeFor(i).Create(context.Background(), User{Username: name, Email: fmt.Sprintf("r%d@example.com", i)})
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
	users, next, err := storeFor(0).List(context.Background(), "", 100)
	if err != nil || len(users) != 1 || next != "" {
		t.Errorf("List = %d users, next %q, err %v; want the single winner", len(users), next, err)
	}
}

func conformConcurrentMixed(t *testing.T, newStore storeFactory) {
	ctx := context.Background()
	s := newStore(t, nil)
	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
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

	// Each worker deletes users 0, 3, ..., 39: 14 of its 40.
	all := listAll(t, s, 50)
	if want := workers * (perWorker - 14); len(all) != want {
		t.Errorf("listed %d users, want %d", len(all), want)
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

func conformIDsSortInCreationOrder(t *testing.T, newStore storeFactory) {
	s := newStore(t, nil)
	var ids []string
	for i := range 300 {
		ids = append(ids, mustCreate(t, s, newUser(i)).ID)
	}
	if !slices.IsSorted(ids) {
		t.Fatal("IDs are not increasing in creation order")
	}
	if got := listAll(t, s, 7); !slices.Equal(got, ids) {
		t.Fatal("List order differs from creation order")
	}
}

// checkPagingWithDeletes creates total users in s and pages through them
// pageSize at a time, deleting users between pages (the cursor user
// itself, a scattered block of users not yet listed, and users already
// listed), then checks that no user was listed twice or after its
// deletion and no survivor was skipped.
func checkPagingWithDeletes(t *testing.T, s Store, total, pageSize int) {
	t.Helper()
	ctx := context.Background()
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

	step, block := pageSize*97/100, pageSize*6/10
	seen := map[string]bool{}
	var order []string
	after := ""
	for page := 0; ; page++ {
		if page > total {
			t.Fatal("listing did not terminate")
		}
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
		del(next)
		for i := page * step; i < min(total, page*step+block); i++ {
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

func conformListEdges(t *testing.T, newStore storeFactory) {
	ctx := context.Background()
	s := newStore(t, nil)

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

	// A page larger than the store holds everything.
	all, next, _ := s.List(ctx, "", 1000)
	if len(all) != 200 || next != "" {
		t.Fatalf("page of 1000: %d users, next %q; want 200 and no next", len(all), next)
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

	// A page that starts in a run of deleted users is filled from the
	// survivors after it.
	for _, id := range ids[20:40] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	users, next, _ = s.List(ctx, ids[19], 5)
	if len(users) != 5 || users[0].ID != ids[40] || next != ids[44] {
		t.Errorf("after deleted run: %d users, next %q; want 5 from %s", len(users), next, ids[40])
	}

	// An ID past every user gives an empty last page.
	users, next, _ = s.List(ctx, "ffffffff-ffff-7fff-bfff-ffffffffffff", 10)
	if len(users) != 0 || next != "" {
		t.Errorf("after max ID: %d users, next %q", len(users), next)
	}
}

func TestMemoryStorePaginationWithDeletes(t *testing.T) {
	// Large enough, with enough deletes, to force compactions.
	checkPagingWithDeletes(t, NewMemoryStore(), 1234, 100)
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
