package loadgen

import (
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// refreshMargin is how long before its access token expires a virtual user
// refreshes it instead of using it (a quarter of the token's lifetime when
// that is shorter).
const refreshMargin = 30 * time.Second

// vuser is a virtual user: an account the run created and its session.
// Only the request that has it checked out of the pool touches its
// mutable fields; username and password never change.
type vuser struct {
	username string
	password string
	id       string

	access    string
	refresh   string
	refreshAt time.Time // when to refresh rather than use access; zero: never
	staleAt   time.Time // when the refresh token is too old to use; zero: never
	cursor    string    // page token of the next list request
}

// loggedIn reports whether u has a session.
func (u *vuser) loggedIn() bool { return u.access != "" && u.refresh != "" }

// sessionUsable reports whether u has a session whose refresh token is
// still good at now; a user whose refresh token expired logs in again
// rather than fail.
func (u *vuser) sessionUsable(now time.Time) bool {
	return u.loggedIn() && (u.staleAt.IsZero() || now.Before(u.staleAt))
}

// accessExpiring reports whether u's access token is about to expire.
func (u *vuser) accessExpiring(now time.Time) bool {
	return !u.refreshAt.IsZero() && !now.Before(u.refreshAt)
}

// startSession keeps the token pair of a login or refresh answer received
// at now; an answer without both tokens leaves u logged out.
func (u *vuser) startSession(body []byte, now time.Time) {
	var p struct {
		AccessToken      string `json:"access_token"`
		RefreshToken     string `json:"refresh_token"`
		AccessExpiresAt  string `json:"access_expires_at"`
		RefreshExpiresAt string `json:"refresh_expires_at"`
	}
	if json.Unmarshal(body, &p) != nil || p.AccessToken == "" || p.RefreshToken == "" {
		u.endSession()
		return
	}
	u.access, u.refresh = p.AccessToken, p.RefreshToken
	u.refreshAt, u.staleAt = expiresBefore(p.AccessExpiresAt, now), expiresBefore(p.RefreshExpiresAt, now)
}

// expiresBefore returns when a token received at now that expires at the
// RFC 3339 time exp should no longer be used: refreshMargin before exp, or
// a quarter of its lifetime when that is shorter. Without a readable exp
// it returns the zero time: use the token as long as it works.
func expiresBefore(exp string, now time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, exp)
	if err != nil {
		return time.Time{}
	}
	return t.Add(-min(refreshMargin, t.Sub(now)/4))
}

// endSession forgets u's tokens.
func (u *vuser) endSession() {
	u.access, u.refresh, u.refreshAt, u.staleAt = "", "", time.Time{}, time.Time{}
}

// afterAuthed ends u's session when its access token was refused, so that
// it logs in again instead of failing on and on.
func (u *vuser) afterAuthed(res Result) {
	if res.Status == http.StatusUnauthorized {
		u.endSession()
	}
}

// pool holds up to max virtual users. A user is either idle in the pool or
// checked out to exactly one request, so no two requests race on its
// tokens.
type pool struct {
	mu   sync.Mutex
	max  int
	size int // idle plus checked out
	idle []*vuser
}

func newPool(maxUsers int) *pool {
	return &pool{max: maxUsers, idle: make([]*vuser, 0, min(maxUsers, 1024))}
}

// take checks out a random idle user for which want (nil: any) holds, or
// returns nil when there is none.
func (p *pool) take(rng *mrand.Rand, want func(*vuser) bool) *vuser {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	off := rng.IntN(n)
	for i := range n {
		j := (off + i) % n
		if u := p.idle[j]; want == nil || want(u) {
			p.idle[j] = p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			return u
		}
	}
	return nil
}

// anyUsername returns the username of a random idle user, or "".
func (p *pool) anyUsername(rng *mrand.Rand) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return ""
	}
	return p.idle[rng.IntN(len(p.idle))].username
}

// giveBack returns a checked-out user to the pool.
func (p *pool) giveBack(u *vuser) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, u)
}

// remove forgets a checked-out user (its account is gone).
func (p *pool) remove() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.size--
}

// add keeps a new user. A full pool makes room by forgetting an idle user
// without a session (nothing is left behind in auth); when every idle user
// has one, the new user is not kept.
func (p *pool) add(u *vuser) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size < p.max {
		p.size++
		p.idle = append(p.idle, u)
		return true
	}
	for i, old := range p.idle {
		if !old.loggedIn() {
			p.idle[i] = u
			return true
		}
	}
	return false
}

// len returns the number of users kept, idle or checked out.
func (p *pool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}
