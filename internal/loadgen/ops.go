package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/golden-stack/golden/observability/requestid"
)

// Op is one kind of request the generator sends. Mix weighs the first
// seven; the others are what some of them turn into.
type Op string

// The operations.
const (
	OpSignUp  Op = "signup"
	OpLogin   Op = "login"
	OpRefresh Op = "refresh"
	OpGet     Op = "get"
	OpList    Op = "list"
	OpDelete  Op = "delete"
	// OpFault stands for the four deliberate faults below in Mix; results
	// carry the fault sent.
	OpFault Op = "fault"

	// OpLogout ends a virtual user's session; a login picks it when every
	// idle virtual user is logged in already.
	OpLogout Op = "logout"
	// OpBadToken reads an account with a malformed access token: 401.
	OpBadToken Op = "bad_token"
	// OpExpiredToken lists accounts with a JWT that expired an hour ago and
	// carries no valid signature: 401.
	OpExpiredToken Op = "expired_token"
	// OpNotFound reads an account ID that does not exist, with a valid
	// token: 404.
	OpNotFound Op = "not_found"
	// OpWrongPassword logs in with a wrong password: 401.
	OpWrongPassword Op = "wrong_password"
)

// Outcome classifies a request.
type Outcome int

const (
	// Succeeded is a 2xx answer to a request meant to succeed.
	Succeeded Outcome = iota
	// ExpectedFailure is a deliberate fault answered with the status and
	// error code it must get.
	ExpectedFailure
	// UnexpectedFailure is anything else, including no answer at all.
	UnexpectedFailure
)

// String returns "succeeded", "expected failure" or "unexpected failure".
func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case ExpectedFailure:
		return "expected failure"
	case UnexpectedFailure:
		return "unexpected failure"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Codes of a request that got no HTTP answer (Result.Code, with Status 0).
const (
	// CodeTimeout: no answer within Config.Timeout.
	CodeTimeout = "TIMEOUT"
	// CodeNoResponse: the request could not be sent or its answer read
	// (connection refused, reset, ...).
	CodeNoResponse = "NO_RESPONSE"
)

// Result is the outcome of one request.
type Result struct {
	Op Op
	// Route is the gateway's route template, e.g. "GET /v1/users/{id}".
	Route string
	// RequestID is the X-Request-ID the request was sent with.
	RequestID string
	// Status is the HTTP status, or 0 when there was no answer.
	Status int
	// Code is error.code of an error body, CodeTimeout or CodeNoResponse
	// without an answer, and "" otherwise.
	Code    string
	Outcome Outcome
	// Latency runs from sending the request to reading the whole answer.
	Latency time.Duration
	// Err is why there was no answer; nil when there was one.
	Err error
}

// maxBodyBytes bounds how much of an answer is read.
const maxBodyBytes = 1 << 20

// listPageSizes are the page sizes list requests pick from.
var listPageSizes = []int{10, 20, 50}

// task is one request, planned by the scheduling goroutine.
type task struct {
	op       Op
	user     *vuser // checked out of the pool for this request, or nil
	username string // sign-up, or a wrong-password login without a user
	pageSize int
}

// pickOp draws an operation from the mix.
func (r *run) pickOp() Op {
	total := 0
	for _, op := range mixOps {
		total += *r.cfg.Mix.weight(op)
	}
	n := r.rng.IntN(total)
	for _, op := range mixOps {
		if n -= *r.cfg.Mix.weight(op); n < 0 {
			return op
		}
	}
	return OpGet // not reached: the weights add up to total
}

// plan turns the operation drawn into a request. An operation that needs a
// logged-in virtual user when none is idle becomes a login, and a login
// without an idle user a sign-up, so early in a run the mix leans toward
// sign-ups and logins until the pool fills.
func (r *run) plan(op Op) task {
	now := time.Now() // token lifetimes are wall-clock time, whatever the schedule's clock
	usable := func(u *vuser) bool { return u.sessionUsable(now) }
	switch op {
	case OpSignUp:
		return task{op: OpSignUp, username: r.nextUsername()}
	case OpLogin:
		return r.planLogin(now)
	case OpRefresh:
		if u := r.users.take(r.rng, usable); u != nil {
			return task{op: OpRefresh, user: u}
		}
		return r.planLogin(now)
	case OpGet, OpList, OpDelete:
		u := r.users.take(r.rng, usable)
		switch {
		case u == nil:
			return r.planLogin(now)
		case u.accessExpiring(now):
			// The access token is about to expire: what a real client
			// does first is refresh it.
			return task{op: OpRefresh, user: u}
		}
		return task{op: op, user: u, pageSize: listPageSizes[r.rng.IntN(len(listPageSizes))]}
	case OpFault:
		return r.planFault(now)
	}
	return task{op: OpSignUp, username: r.nextUsername()}
}

// planLogin logs in an idle virtual user without a usable session, logs
// out one with a session when all idle ones have one, and signs up a new
// one when none is idle.
func (r *run) planLogin(now time.Time) task {
	if u := r.users.take(r.rng, func(u *vuser) bool { return !u.sessionUsable(now) }); u != nil {
		return task{op: OpLogin, user: u}
	}
	if u := r.users.take(r.rng, nil); u != nil {
		return task{op: OpLogout, user: u}
	}
	return task{op: OpSignUp, username: r.nextUsername()}
}

// planFault picks one of the four faults with equal chance.
func (r *run) planFault(now time.Time) task {
	switch r.rng.IntN(4) {
	case 0:
		return task{op: OpBadToken}
	case 1:
		return task{op: OpExpiredToken}
	case 2:
		u := r.users.take(r.rng, func(u *vuser) bool { return u.sessionUsable(now) && !u.accessExpiring(now) })
		if u == nil {
			return task{op: OpBadToken}
		}
		return task{op: OpNotFound, user: u}
	default:
		name := r.users.anyUsername(r.rng)
		if name == "" {
			// No account yet: an unknown user gets the same answer.
			name = "lg-" + r.id + "-nobody"
		}
		return task{op: OpWrongPassword, username: name}
	}
}

// call is one HTTP request to send.
type call struct {
	method string
	path   string // with the query, if any
	route  string
	body   any    // JSON-encoded when non-nil
	token  string // bearer token, or ""
}

// execute sends t and records its result. It runs on its own goroutine
// with t.user checked out of the pool, and returns the user to the pool.
func (r *run) execute(ctx context.Context, t task) {
	// In-flight requests finish even when the run is cancelled: they are
	// reported as what the target answered, and each is bounded anyway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	defer cancel()

	u := t.user
	var res Result
	var body []byte
	switch t.op {
	case OpSignUp:
		u = &vuser{username: t.username, password: newPassword()}
		res, body = r.send(ctx, call{method: http.MethodPost, path: "/v1/users", route: "POST /v1/users",
			body: map[string]string{"username": u.username, "email": u.username + "@loadgen.example.com", "password": u.password}})
		succeed(&res)
		var created struct {
			ID string `json:"id"`
		}
		if res.Outcome == Succeeded && json.Unmarshal(body, &created) == nil && created.ID != "" {
			u.id = created.ID
			r.users.add(u)
		}
		u = nil // not checked out
	case OpLogin:
		res, body = r.send(ctx, call{method: http.MethodPost, path: "/v1/login", route: "POST /v1/login",
			body: map[string]string{"username": u.username, "password": u.password}})
		succeed(&res)
		u.endSession()
		if res.Outcome == Succeeded {
			u.startSession(body, time.Now())
		}
	case OpLogout:
		res, _ = r.send(ctx, call{method: http.MethodPost, path: "/v1/logout", route: "POST /v1/logout",
			body: map[string]string{"refresh_token": u.refresh}})
		succeed(&res)
		u.endSession()
	case OpRefresh:
		res, body = r.send(ctx, call{method: http.MethodPost, path: "/v1/refresh", route: "POST /v1/refresh",
			body: map[string]string{"refresh_token": u.refresh}})
		succeed(&res)
		// After any failure the token's state is unknown (a timeout may
		// have rotated it); presenting it again could revoke the family,
		// so the user logs in anew instead.
		u.endSession()
		if res.Outcome == Succeeded {
			u.startSession(body, time.Now())
		}
	case OpGet:
		res, _ = r.send(ctx, call{method: http.MethodGet, path: "/v1/users/" + url.PathEscape(u.id), route: "GET /v1/users/{id}", token: u.access})
		succeed(&res)
		u.afterAuthed(res)
	case OpList:
		q := url.Values{"page_size": {strconv.Itoa(t.pageSize)}}
		if u.cursor != "" {
			q.Set("page_token", u.cursor)
		}
		res, body = r.send(ctx, call{method: http.MethodGet, path: "/v1/users?" + q.Encode(), route: "GET /v1/users", token: u.access})
		succeed(&res)
		u.afterAuthed(res)
		var page struct {
			NextPageToken string `json:"next_page_token"`
		}
		// From the start again after the last page or any failure.
		u.cursor = ""
		if res.Outcome == Succeeded && json.Unmarshal(body, &page) == nil {
			u.cursor = page.NextPageToken
		}
	case OpDelete:
		res, _ = r.send(ctx, call{method: http.MethodDelete, path: "/v1/users/" + url.PathEscape(u.id), route: "DELETE /v1/users/{id}", token: u.access})
		succeed(&res)
		if res.Outcome == Succeeded || res.Status == http.StatusNotFound {
			r.users.remove()
			u = nil
		} else {
			u.afterAuthed(res)
		}
	case OpBadToken:
		res, _ = r.send(ctx, call{method: http.MethodGet, path: "/v1/users/" + newUserID(), route: "GET /v1/users/{id}", token: "lg" + randomHex(16)})
		expect(&res, http.StatusUnauthorized, "UNAUTHENTICATED")
	case OpExpiredToken:
		res, _ = r.send(ctx, call{method: http.MethodGet, path: "/v1/users?page_size=10", route: "GET /v1/users", token: expiredJWT(time.Now())})
		expect(&res, http.StatusUnauthorized, "UNAUTHENTICATED")
	case OpNotFound:
		res, _ = r.send(ctx, call{method: http.MethodGet, path: "/v1/users/" + newUserID(), route: "GET /v1/users/{id}", token: u.access})
		expect(&res, http.StatusNotFound, "NOT_FOUND")
		u.afterAuthed(res)
	case OpWrongPassword:
		res, _ = r.send(ctx, call{method: http.MethodPost, path: "/v1/login", route: "POST /v1/login",
			body: map[string]string{"username": t.username, "password": "wrong-" + randomHex(8)}})
		expect(&res, http.StatusUnauthorized, "UNAUTHENTICATED")
	}
	res.Op = t.op
	if u != nil {
		r.users.giveBack(u)
	}
	r.stats.record(res)
	r.sayNoAnswer(res)
	if r.observe != nil {
		r.observe(res)
	}
}

// sayNoAnswer writes one progress line, at once, when requests get no
// answer and none has had one yet (the target is down or the wrong one),
// rather than leaving the user with nothing until the first report.
func (r *run) sayNoAnswer(res Result) {
	if res.Status != 0 {
		r.answered.Store(true)
		return
	}
	if r.progress == nil || r.answered.Load() {
		return
	}
	r.saidNoAnswer.Do(func() {
		fmt.Fprintf(r.progress, "loadgen: no answer from %s yet (%v); still sending, failures are counted\n", r.cfg.Target, res.Err)
	})
}

// send sends c with a fresh request ID and returns its result, without an
// outcome, and, for a 2xx answer, the body.
func (r *run) send(ctx context.Context, c call) (Result, []byte) {
	res := Result{Route: c.route, RequestID: requestid.New(), Outcome: UnexpectedFailure}
	var body io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			res.Code, res.Err = CodeNoResponse, fmt.Errorf("encoding the request body: %w", err)
			return res, nil
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, r.target+c.path, body)
	if err != nil {
		res.Code, res.Err = CodeNoResponse, err
		return res, nil
	}
	req.Header.Set(requestid.HeaderName, res.RequestID)
	req.Header.Set("Accept", "application/json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}

	start := time.Now()
	resp, err := r.client.Do(req)
	var raw []byte
	if err == nil {
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes)) // lets the connection be reused
		resp.Body.Close()
	}
	res.Latency = time.Since(start)
	if err != nil {
		res.Code, res.Err = CodeNoResponse, err
		if errors.Is(err, context.DeadlineExceeded) {
			res.Code = CodeTimeout
		}
		return res, nil
	}
	res.Status = resp.StatusCode
	if res.Status >= 200 && res.Status < 300 {
		return res, raw
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil {
		res.Code = e.Error.Code
	}
	return res, nil
}

// succeed classifies a request meant to succeed.
func succeed(res *Result) {
	if res.Err == nil && res.Status >= 200 && res.Status < 300 {
		res.Outcome = Succeeded
		return
	}
	res.Outcome = UnexpectedFailure
}

// expect classifies a deliberate fault, which must get status and code.
func expect(res *Result, status int, code string) {
	if res.Err == nil && res.Status == status && res.Code == code {
		res.Outcome = ExpectedFailure
		return
	}
	res.Outcome = UnexpectedFailure
}

// newPassword returns a random password for a new account.
func newPassword() string { return "lg-" + randomHex(12) }

// newUserID returns a well-formed user ID (a UUIDv7) that no account has.
func newUserID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// Only when the system's randomness fails; a fixed well-formed ID
		// that no account has still gets 404.
		return "00000000-0000-7000-8000-000000000000"
	}
	return id.String()
}

// expiredJWT returns what looks like a golden access token that expired an
// hour before now, with a random signature: the user service must refuse it.
func expiredJWT(now time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"iss": "golden-auth",
		"aud": "golden",
		"sub": newUserID(),
		"iat": now.Add(-2 * time.Hour).Unix(),
		"exp": now.Add(-time.Hour).Unix(),
	})
	sig := make([]byte, 64)
	_, _ = rand.Read(sig) // crypto/rand.Read never fails on supported platforms.
	return header + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString(sig)
}
