package integration

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/jwtauth"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/services/user"
)

func signup(t *testing.T, s *stack, name string) string {
	t.Helper()
	r := s.call(t, "POST", "/v1/users", "", map[string]string{"username": name, "email": name + "@example.com", "password": "correct-horse-" + name})
	if r.status != 201 {
		t.Fatalf("sign-up %s: %d %v", name, r.status, r.body)
	}
	return r.str("id")
}

func login(t *testing.T, s *stack, name string) (access, refresh string) {
	t.Helper()
	r := s.call(t, "POST", "/v1/login", "", map[string]string{"username": name, "password": "correct-horse-" + name})
	if r.status != 200 {
		t.Fatalf("login %s: %d %v", name, r.status, r.body)
	}
	return r.str("access_token"), r.str("refresh_token")
}

func TestGatewayHappyPath(t *testing.T) {
	s := startStack(t, nil)

	aliceID := signup(t, s, "alice")
	signup(t, s, "bob")
	signup(t, s, "carol")
	if r := s.call(t, "POST", "/v1/users", "", map[string]string{"username": "alice", "email": "other@example.com", "password": "another-password"}); r.status != 409 {
		t.Fatalf("duplicate sign-up: %d %v", r.status, r.body)
	}
	access, refresh := login(t, s, "alice")
	if r := s.call(t, "POST", "/v1/login", "", map[string]string{"username": "alice", "password": "wrong-password"}); r.status != 401 {
		t.Fatalf("login with a wrong password: %d %v", r.status, r.body)
	}

	r := s.call(t, "GET", "/v1/users/"+aliceID, access, nil)
	if r.status != 200 || r.str("username") != "alice" || r.str("created_at") == "" {
		t.Fatalf("get user: %d %v", r.status, r.body)
	}
	if _, leaked := r.body["password"]; leaked {
		t.Fatal("password in response")
	}

	// Paging walks every user exactly once.
	seen := map[string]bool{}
	token := ""
	for page := 0; ; page++ {
		r := s.call(t, "GET", "/v1/users?page_size=2&page_token="+token, access, nil)
		if r.status != 200 {
			t.Fatalf("list page %d: %d %v", page, r.status, r.body)
		}
		for _, u := range r.body["users"].([]any) {
			seen[u.(map[string]any)["username"].(string)] = true
		}
		if token = r.str("next_page_token"); token == "" {
			break
		}
	}
	if len(seen) != 3 {
		t.Fatalf("listing saw %v", seen)
	}

	r = s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": refresh})
	if r.status != 200 || r.str("access_token") == "" || r.str("refresh_token") == refresh {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
	newRefresh := r.str("refresh_token")
	if r := s.call(t, "POST", "/v1/logout", "", map[string]string{"refresh_token": newRefresh}); r.status != 204 {
		t.Fatalf("logout: %d %v", r.status, r.body)
	}
	if r := s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": newRefresh}); r.status != 401 {
		t.Fatalf("refresh after logout: %d %v", r.status, r.body)
	}

	bobID := s.call(t, "GET", "/v1/users?page_size=1", access, nil).body["users"].([]any)[0].(map[string]any)["id"].(string)
	if bobID != aliceID {
		if r := s.call(t, "DELETE", "/v1/users/"+bobID, access, nil); r.status != 403 {
			t.Fatalf("deleting another user: %d %v", r.status, r.body)
		}
	}
	if r := s.call(t, "DELETE", "/v1/users/"+aliceID, access, nil); r.status != 204 {
		t.Fatalf("delete self: %d %v", r.status, r.body)
	}
	if r := s.call(t, "GET", "/v1/users/"+aliceID, access, nil); r.status != 404 || r.errorCode() != "NOT_FOUND" {
		t.Fatalf("get deleted user: %d %v", r.status, r.body)
	}
}

func TestGatewayRequestID(t *testing.T) {
	s := startStack(t, nil)

	r := s.call(t, "GET", "/v1/users/nope", "", nil, "X-Request-ID", "client-chosen-0001")
	if r.requestID != "client-chosen-0001" {
		t.Fatalf("well-formed X-Request-ID not kept: %q", r.requestID)
	}
	e := r.body["error"].(map[string]any)
	if e["request_id"] != "client-chosen-0001" {
		t.Fatalf("error body request_id = %v", e["request_id"])
	}
	for _, bad := range []string{`x" OR request_id:*`, "short", strings.Repeat("a", 65), "has space in it"} {
		r := s.call(t, "GET", "/v1/healthz", "", nil, "X-Request-ID", bad)
		if r.requestID == bad || !requestid.Valid(r.requestID) {
			t.Fatalf("malformed X-Request-ID %q answered with %q", bad, r.requestID)
		}
	}
	if r := s.call(t, "GET", "/v1/healthz", "", nil); !requestid.Valid(r.requestID) {
		t.Fatalf("no request ID generated: %q", r.requestID)
	}
}

// recordingUsers is a user service that records what the gateway sends it.
type recordingUsers struct {
	userv1.UnimplementedUserServiceServer
	mu       sync.Mutex
	md       metadata.MD
	deadline time.Duration
}

func (r *recordingUsers) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	dl, _ := ctx.Deadline()
	r.mu.Lock()
	r.md, r.deadline = md, time.Until(dl)
	r.mu.Unlock()
	return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetId(), Username: "recorded"}}, nil
}

// TestGatewayForwardsRequestIDAndDeadline puts a recording user service,
// serving with the user certificate over real mTLS, behind the gateway.
func TestGatewayForwardsRequestIDAndDeadline(t *testing.T) {
	rec := &recordingUsers{}
	certs := newCerts(t)
	fake := startFakeUserService(t, certs, rec)
	s := startStackWithCerts(t, certs, func(sc *stackConfig) {
		sc.gateway.CallTimeout = 3 * time.Second
		sc.gatewayUserAddr = fake
	})

	r := s.call(t, "GET", "/v1/users/abc", "some.token.value", nil, "X-Request-ID", "trace-me-12345")
	if r.status != 200 {
		t.Fatalf("%d %v", r.status, r.body)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.md.Get("x-request-id"); len(got) != 1 || got[0] != "trace-me-12345" {
		t.Fatalf("x-request-id metadata = %v", got)
	}
	if got := rec.md.Get("authorization"); len(got) != 1 || got[0] != "Bearer some.token.value" {
		t.Fatalf("authorization metadata = %v", got)
	}
	if rec.deadline <= 0 || rec.deadline > 3*time.Second {
		t.Fatalf("downstream deadline %s, want within the 3s call timeout", rec.deadline)
	}
}

func TestTransportSecurity(t *testing.T) {
	s := startStack(t, nil)

	// Material no honest caller has: a certificate of another CA, and an
	// expired one of the right CA, both for the gateway identity.
	foreign := filepath.Join(t.TempDir(), "foreign")
	otherCA, err := pki.InitCA(foreign, pki.CAOptions{CommonName: "impostor CA"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherCA.Issue(foreign, pki.Request{Name: "gateway"}); err != nil {
		t.Fatal(err)
	}
	expired := filepath.Join(t.TempDir(), "expired")
	ca, err := pki.LoadCA(s.certs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(expired, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueAt(expired, pki.Request{Name: "gateway", Validity: time.Hour}, time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}

	userAddr, authAddr := s.user.GRPCAddr(), s.auth.GRPCAddr()
	tests := []struct {
		name    string
		conn    *grpc.ClientConn
		call    func(*grpc.ClientConn) error
		want    codes.Code
		message string
	}{
		{"no client certificate", dial(t, userAddr, "user", s.certs, "", ""), getUser, codes.Unauthenticated, "client certificate"},
		// A TLS client offers only certificates of the CAs the server names,
		// so an honest client of another CA arrives without one...
		{"certificate of another CA", dial(t, userAddr, "user", s.certs, foreign, "gateway"), getUser, codes.Unauthenticated, "client certificate"},
		// ...and one that forces it on the server fails the handshake.
		{"certificate of another CA forced", dialForcing(t, userAddr, s.certs, foreign, "gateway"), getUser, codes.Unavailable, ""},
		{"expired certificate", dial(t, userAddr, "user", s.certs, expired, "gateway"), getUser, codes.Unavailable, ""},
		{"identity not allowed the method", dial(t, userAddr, "user", s.certs, s.certs, "reporter"), getUser, codes.PermissionDenied, `"reporter"`},
		{"gateway may not verify credentials", dial(t, userAddr, "user", s.certs, s.certs, "gateway"), verifyCredentials, codes.PermissionDenied, "VerifyCredentials"},
		{"auth may not list users", dial(t, userAddr, "user", s.certs, s.certs, "auth"), listUsers, codes.PermissionDenied, `"auth"`},
		{"reporter may not log in", dial(t, authAddr, "auth", s.certs, s.certs, "reporter"), loginCall, codes.PermissionDenied, "Login"},
		{"auth without certificate", dial(t, authAddr, "auth", s.certs, "", ""), loginCall, codes.Unauthenticated, "client certificate"},
		{"health probe needs no certificate", dial(t, userAddr, "user", s.certs, "", ""), healthCheck, codes.OK, ""},
		{"allowed caller passes transport checks", dial(t, userAddr, "user", s.certs, s.certs, "gateway"), getUser, codes.Unauthenticated, "access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.conn)
			st := status.Convert(err)
			if st.Code() != tt.want {
				t.Fatalf("code %s (%v), want %s", st.Code(), err, tt.want)
			}
			if !strings.Contains(st.Message(), tt.message) {
				t.Fatalf("message %q does not mention %q", st.Message(), tt.message)
			}
		})
	}
}

func getUser(c *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := userv1.NewUserServiceClient(c).GetUser(ctx, &userv1.GetUserRequest{Id: "x"})
	return err
}

func listUsers(c *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := userv1.NewUserServiceClient(c).ListUsers(ctx, &userv1.ListUsersRequest{})
	return err
}

func verifyCredentials(c *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := userv1.NewUserServiceClient(c).VerifyCredentials(ctx, &userv1.VerifyCredentialsRequest{Username: "a", Password: "b"})
	return err
}

func loginCall(c *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := authv1.NewAuthServiceClient(c).Login(ctx, &authv1.LoginRequest{Username: "a", Password: "b"})
	return err
}

func healthCheck(c *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %s", resp.GetStatus())
	}
	return err
}

func TestBadAccessTokens(t *testing.T) {
	s := startStack(t, nil)
	id := signup(t, s, "dave")
	good, _ := login(t, s, "dave")

	key, err := jwtauth.LoadPrivateKey(filepath.Join(s.certs, "token-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(s.certs, "token-signing.pub"))
	if err != nil {
		t.Fatal(err)
	}
	_, foreignKey, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(k ed25519.PrivateKey, iss, aud string, now time.Time) string {
		tok, _, err := jwtauth.NewSigner(k, iss, aud, 15*time.Minute, jwtauth.WithClock(func() time.Time { return now })).Sign(id, "dave")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	claims := jwt.MapClaims{"iss": "golden-auth", "aud": "golden", "sub": id, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}

	conn := dial(t, s.user.GRPCAddr(), "user", s.certs, s.certs, "gateway")
	users := userv1.NewUserServiceClient(conn)
	tests := []struct {
		name, token, message string
	}{
		{"missing", "", "missing"},
		{"malformed", "not-a-jwt", "malformed"},
		{"expired", sign(key, "golden-auth", "golden", time.Now().Add(-time.Hour)), "expired"},
		{"wrong issuer", sign(key, "someone-else", "golden", time.Now()), "issuer"},
		{"wrong audience", sign(key, "golden-auth", "another-app", time.Now()), "audience"},
		{"alg none", none, "algorithm"},
		{"HS256 keyed with the public key", hs256, "algorithm"},
		{"foreign key", sign(foreignKey, "golden-auth", "golden", time.Now()), "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if tt.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tt.token)
			}
			_, err := users.GetUser(ctx, &userv1.GetUserRequest{Id: id})
			st := status.Convert(err)
			if st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), tt.message) {
				t.Fatalf("got %s %q, want Unauthenticated mentioning %q", st.Code(), st.Message(), tt.message)
			}
			if tt.token != "" && strings.Contains(st.Message(), tt.token) {
				t.Fatal("error message echoes the token")
			}
			// The same token at the edge is a 401.
			if r := s.call(t, "GET", "/v1/users/"+id, tt.token, nil); r.status != 401 {
				t.Fatalf("gateway answered %d %v", r.status, r.body)
			}
		})
	}
	if r := s.call(t, "GET", "/v1/users/"+id, good, nil); r.status != 200 {
		t.Fatalf("good token refused: %d %v", r.status, r.body)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	s := startStack(t, nil)
	signup(t, s, "erin")
	_, first := login(t, s, "erin")
	_, other := login(t, s, "erin") // a second login is a separate family

	r := s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": first})
	if r.status != 200 {
		t.Fatalf("first refresh: %d %v", r.status, r.body)
	}
	second := r.str("refresh_token")

	r = s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": first})
	if r.status != 401 || !strings.Contains(fmt.Sprint(r.body), "reuse") {
		t.Fatalf("reusing a refresh token: %d %v", r.status, r.body)
	}
	if r := s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": second}); r.status != 401 {
		t.Fatalf("newest token of a revoked family still works: %d %v", r.status, r.body)
	}
	if r := s.call(t, "POST", "/v1/refresh", "", map[string]string{"refresh_token": other}); r.status != 200 {
		t.Fatalf("another family was revoked too: %d %v", r.status, r.body)
	}
}

func TestRateLimitPerCaller(t *testing.T) {
	s := startStack(t, func(sc *stackConfig) {
		sc.user.GRPC.RateLimit = 0.5
		sc.user.GRPC.RateBurst = 3
	})
	users := userv1.NewUserServiceClient(dial(t, s.user.GRPCAddr(), "user", s.certs, s.certs, "gateway"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var codesSeen []codes.Code
	for range 5 {
		_, err := users.HealthCheck(ctx, &userv1.HealthCheckRequest{})
		codesSeen = append(codesSeen, status.Code(err))
	}
	if codesSeen[0] != codes.OK || codesSeen[4] != codes.ResourceExhausted {
		t.Fatalf("codes %v: want OK first and ResourceExhausted past the burst of 3", codesSeen)
	}
	// Another caller has its own bucket.
	authConn := userv1.NewUserServiceClient(dial(t, s.user.GRPCAddr(), "user", s.certs, s.certs, "auth"))
	if _, err := authConn.HealthCheck(ctx, &userv1.HealthCheckRequest{}); err != nil {
		t.Fatalf("another caller limited too: %v", err)
	}
	// At the edge the gateway's exhausted bucket is a 429.
	if r := s.call(t, "POST", "/v1/users", "", map[string]string{"username": "frank", "email": "frank@example.com", "password": "long-enough-pw"}); r.status != 429 {
		t.Fatalf("gateway answered %d %v", r.status, r.body)
	}
}

// TestGracefulShutdownFinishesInFlight stops the user service while slow
// requests (bcrypt at a high cost) are in flight: every one of them must
// succeed and Run must return nil.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: hashes passwords at a high bcrypt cost")
	}
	certs := newCerts(t)
	cfg := userConfig(certs)
	cfg.BcryptCost = 10
	cfg.ShutdownTimeout = time.Minute // a bound for a loaded machine, not a speed assertion
	svc, err := user.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	users := userv1.NewUserServiceClient(dial(t, svc.GRPCAddr(), "user", certs, certs, "gateway"))
	if _, err := users.HealthCheck(context.Background(), &userv1.HealthCheckRequest{}); err != nil {
		t.Fatal(err) // connection up before the burst
	}
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := users.CreateUser(context.Background(), &userv1.CreateUserRequest{
				Username: fmt.Sprintf("inflight%d", i), Email: fmt.Sprintf("inflight%d@example.com", i), Password: "correct-horse-battery",
			})
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // all n are in the handler: 6 hashes at cost 10 under -race take seconds on 2 cores
	stop()
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			failed++
			t.Errorf("in-flight request failed: %v", err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after SIGTERM: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("service did not stop")
	}
	t.Logf("%d in-flight requests, %d failed", n, failed)
	if _, err := users.HealthCheck(context.Background(), &userv1.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("after shutdown: %v, want Unavailable", err)
	}
}
