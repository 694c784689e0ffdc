package loadgen

import (
	mrand "math/rand/v2"
	"testing"
	"time"
)

func TestSessionRefreshesBeforeExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ttl, refreshAfter time.Duration
	}{
		{15 * time.Minute, 15*time.Minute - 30*time.Second},
		{time.Minute, 45 * time.Second}, // a quarter of a short lifetime
	} {
		var u vuser
		body := `{"access_token":"a","refresh_token":"r","access_expires_at":"` + now.Add(tc.ttl).Format(time.RFC3339Nano) + `"}`
		u.startSession([]byte(body), now)
		if !u.loggedIn() {
			t.Fatal("not logged in")
		}
		if u.accessExpiring(now.Add(tc.refreshAfter-time.Second)) || !u.accessExpiring(now.Add(tc.refreshAfter)) {
			t.Errorf("ttl %s: want a refresh from %s on, refreshAt %s", tc.ttl, tc.refreshAfter, u.refreshAt.Sub(now))
		}
	}
	var r vuser
	r.startSession([]byte(`{"access_token":"a","refresh_token":"r","refresh_expires_at":"`+now.Add(24*time.Hour).Format(time.RFC3339)+`"}`), now)
	if !r.sessionUsable(now.Add(24*time.Hour-31*time.Second)) || r.sessionUsable(now.Add(24*time.Hour-30*time.Second)) {
		t.Errorf("want a new login 30s before the refresh token expires, stale at %s", r.staleAt.Sub(now))
	}
	var u vuser
	u.startSession([]byte(`{"access_token":"a","refresh_token":"r"}`), now)
	if !u.sessionUsable(now.Add(100*time.Hour)) || u.accessExpiring(now.Add(100*time.Hour)) {
		t.Error("a token without expiry is used as long as it works")
	}
	u.startSession([]byte(`{"access_token":"a"}`), now)
	if u.loggedIn() {
		t.Error("an answer without a refresh token starts no session")
	}
}

func TestPoolChecksUsersOutExclusively(t *testing.T) {
	p := newPool(3)
	rng := mrand.New(mrand.NewPCG(1, 1))
	users := []*vuser{{username: "a"}, {username: "b", access: "x", refresh: "y"}, {username: "c"}}
	for _, u := range users {
		if !p.add(u) {
			t.Fatal("add refused with room left")
		}
	}
	if got := p.take(rng, (*vuser).loggedIn); got != users[1] {
		t.Fatalf("took %v, want the logged-in user", got)
	}
	if got := p.take(rng, (*vuser).loggedIn); got != nil {
		t.Fatalf("the logged-in user is checked out, yet took %v", got)
	}
	// Full: a new user replaces an idle one without a session.
	if !p.add(&vuser{username: "d"}) || p.len() != 3 {
		t.Fatalf("add to a full pool: len %d", p.len())
	}
	p.giveBack(users[1])
	p.remove() // one checked-out user's account deleted
	if p.len() != 2 {
		t.Errorf("len %d, want 2", p.len())
	}
}
