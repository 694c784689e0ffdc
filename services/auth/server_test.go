package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/jwtauth"
)

const (
	testUser     = "alice"
	testPassword = "correct horse battery staple"
	testUserID   = "0190f3a2-user-1"
	testIssuer   = "golden-auth"
	testAudience = "golden"
)

// fakeUsers implements userv1.UserServiceClient; only VerifyCredentials is
// overridden, so calling any other method panics and fails the test.
type fakeUsers struct {
	userv1.UserServiceClient
	verify func(ctx context.Context, in *userv1.VerifyCredentialsRequest) (*userv1.VerifyCredentialsResponse, error)
	calls  int
}

func (f *fakeUsers) VerifyCredentials(ctx context.Context, in *userv1.VerifyCredentialsRequest, _ ...grpc.CallOption) (*userv1.VerifyCredentialsResponse, error) {
	f.calls++
	return f.verify(ctx, in)
}

// goodUsers knows one user, and answers NotFound for unknown usernames and
// Unauthenticated for wrong passwords, as a user service might.
func goodUsers() *fakeUsers {
	return &fakeUsers{verify: func(_ context.Context, in *userv1.VerifyCredentialsRequest) (*userv1.VerifyCredentialsResponse, error) {
		switch {
		case in.GetUsername() != testUser:
			return nil, status.Error(codes.NotFound, "no user named "+in.GetUsername())
		case in.GetPassword() != testPassword:
			return nil, status.Error(codes.Unauthenticated, "password mismatch for "+in.GetUsername())
		}
		return &userv1.VerifyCredentialsResponse{User: &userv1.User{Id: testUserID, Username: testUser, Email: "alice@example.com"}}, nil
	}}
}

type testEnv struct {
	srv      *Server
	users    *fakeUsers
	verifier *jwtauth.Verifier
	clock    *fakeClock
}

func newEnv(t *testing.T, users *fakeUsers) *testEnv {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	signer := jwtauth.NewSigner(priv, testIssuer, testAudience, 15*time.Minute, jwtauth.WithClock(clk.Now))
	verifier := jwtauth.NewVerifier(pub, testIssuer, testAudience, jwtauth.WithClock(clk.Now))
	store := NewRefreshStore(time.Hour, WithClock(clk.Now))
	return &testEnv{
		srv:      NewServer(users, signer, store, nil, WithClock(clk.Now)),
		users:    users,
		verifier: verifier,
		clock:    clk,
	}
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

func (e *testEnv) login(t *testing.T) *authv1.TokenPair {
	t.Helper()
	resp, err := e.srv.Login(context.Background(), &authv1.LoginRequest{Username: testUser, Password: testPassword})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return resp.GetTokens()
}

func (e *testEnv) refresh(token string) (*authv1.TokenPair, error) {
	resp, err := e.srv.Refresh(context.Background(), &authv1.RefreshRequest{RefreshToken: token})
	return resp.GetTokens(), err
}

func (e *testEnv) checkPair(t *testing.T, p *authv1.TokenPair) {
	t.Helper()
	if p.GetTokenType() != "Bearer" {
		t.Errorf("token type = %q", p.GetTokenType())
	}
	claims, err := e.verifier.Verify(p.GetAccessToken())
	if err != nil {
		t.Fatalf("access token does not verify: %v", err)
	}
	if claims.Subject != testUserID || claims.Username != testUser {
		t.Errorf("claims sub %q username %q", claims.Subject, claims.Username)
	}
	if !p.GetAccessExpiresAt().AsTime().Equal(claims.ExpiresAt.Time) {
		t.Errorf("access_expires_at %v, token exp %v", p.GetAccessExpiresAt().AsTime(), claims.ExpiresAt.Time)
	}
	if !p.GetRefreshExpiresAt().AsTime().Equal(e.clock.Now().Add(time.Hour)) {
		t.Errorf("refresh_expires_at = %v", p.GetRefreshExpiresAt().AsTime())
	}
	if p.GetRefreshToken() == "" {
		t.Error("no refresh token")
	}
}

func TestLoginOK(t *testing.T) {
	users := goodUsers()
	inner := users.verify
	type ctxKey struct{}
	users.verify = func(ctx context.Context, in *userv1.VerifyCredentialsRequest) (*userv1.VerifyCredentialsResponse, error) {
		// The caller's context, with its values, metadata and deadline,
		// must reach the user service.
		if ctx.Value(ctxKey{}) != "marker" {
			t.Error("Login did not pass its context to VerifyCredentials")
		}
		if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get("x-request-id")) == 0 {
			t.Error("outgoing metadata lost")
		}
		if _, ok := ctx.Deadline(); !ok {
			t.Error("deadline lost")
		}
		return inner(ctx, in)
	}
	e := newEnv(t, users)
	ctx := context.WithValue(context.Background(), ctxKey{}, "marker")
	ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", "r-1")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := e.srv.Login(ctx, &authv1.LoginRequest{Username: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	e.checkPair(t, resp.GetTokens())
}

func TestLoginBadCredentials(t *testing.T) {
	e := newEnv(t, goodUsers())
	var msgs []string
	for _, req := range []*authv1.LoginRequest{
		{Username: "mallory", Password: testPassword},
		{Username: testUser, Password: "wrong"},
	} {
		_, err := e.srv.Login(context.Background(), req)
		wantCode(t, err, codes.Unauthenticated)
		msg := status.Convert(err).Message()
		if strings.Contains(msg, req.Username) || strings.Contains(msg, req.Password) {
			t.Errorf("message %q leaks the request", msg)
		}
		msgs = append(msgs, msg)
	}
	// Unknown user and wrong password must be indistinguishable.
	if msgs[0] != msgs[1] || msgs[0] != "invalid username or password" {
		t.Errorf("messages differ or are unexpected: %q", msgs)
	}
}

func TestLoginUserServiceErrors(t *testing.T) {
	for _, tc := range []struct {
		upstream codes.Code
		want     codes.Code
	}{
		{codes.InvalidArgument, codes.Unauthenticated},
		{codes.Unavailable, codes.Unavailable},
		{codes.DeadlineExceeded, codes.DeadlineExceeded},
		{codes.PermissionDenied, codes.Internal},
		{codes.Internal, codes.Internal},
		{codes.Unknown, codes.Internal},
	} {
		t.Run(tc.upstream.String(), func(t *testing.T) {
			e := newEnv(t, &fakeUsers{verify: func(context.Context, *userv1.VerifyCredentialsRequest) (*userv1.VerifyCredentialsResponse, error) {
				return nil, status.Error(tc.upstream, "db at 10.0.0.7 said: secret detail")
			}})
			_, err := e.srv.Login(context.Background(), &authv1.LoginRequest{Username: testUser, Password: testPassword})
			wantCode(t, err, tc.want)
			if strings.Contains(err.Error(), "secret detail") {
				t.Errorf("upstream detail leaked: %v", err)
			}
		})
	}

	t.Run("success without user", func(t *testing.T) {
		e := newEnv(t, &fakeUsers{verify: func(context.Context, *userv1.VerifyCredentialsRequest) (*userv1.VerifyCredentialsResponse, error) {
			return &userv1.VerifyCredentialsResponse{}, nil
		}})
		_, err := e.srv.Login(context.Background(), &authv1.LoginRequest{Username: testUser, Password: testPassword})
		wantCode(t, err, codes.Internal)
	})
}

func TestLoginInvalidInput(t *testing.T) {
	e := newEnv(t, goodUsers())
	for name, req := range map[string]*authv1.LoginRequest{
		"nil request":   nil,
		"empty":         {},
		"no username":   {Password: testPassword},
		"no password":   {Username: testUser},
		"long username": {Username: strings.Repeat("a", maxUsernameLen+1), Password: testPassword},
		"long password": {Username: testUser, Password: strings.Repeat("p", maxPasswordLen+1)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.srv.Login(context.Background(), req)
			wantCode(t, err, codes.InvalidArgument)
		})
	}
	if e.users.calls != 0 {
		t.Errorf("invalid input reached the user service %d times", e.users.calls)
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, goodUsers())
	first := e.login(t)

	e.clock.Advance(10 * time.Minute)
	second, err := e.refresh(first.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	e.checkPair(t, second)
	if second.GetRefreshToken() == first.GetRefreshToken() || second.GetAccessToken() == first.GetAccessToken() {
		t.Error("refresh did not rotate the tokens")
	}
	third, err := e.refresh(second.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	e.checkPair(t, third)
}

func TestRefreshReuseThroughRPC(t *testing.T) {
	e := newEnv(t, goodUsers())
	first := e.login(t)
	second, err := e.refresh(first.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	third, err := e.refresh(second.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	other := e.login(t)

	_, err = e.refresh(first.GetRefreshToken())
	wantCode(t, err, codes.Unauthenticated)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "reuse detected") {
		t.Errorf("message = %q", msg)
	}
	// The legitimate client's newest token is revoked too.
	_, err = e.refresh(third.GetRefreshToken())
	wantCode(t, err, codes.Unauthenticated)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "revoked") {
		t.Errorf("message = %q", msg)
	}
	// A separate login keeps working.
	if _, err := e.refresh(other.GetRefreshToken()); err != nil {
		t.Errorf("unrelated login broken: %v", err)
	}
}

func TestRefreshErrors(t *testing.T) {
	e := newEnv(t, goodUsers())
	_, err := e.refresh("")
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.refresh(strings.Repeat("x", maxRefreshTokenLen+1))
	wantCode(t, err, codes.InvalidArgument)

	bogus := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	_, err = e.refresh(bogus)
	wantCode(t, err, codes.Unauthenticated)
	if strings.Contains(err.Error(), bogus) {
		t.Error("error echoes the token")
	}

	pair := e.login(t)
	e.clock.Advance(90 * time.Minute) // past the 1h TTL, within the retention
	_, err = e.refresh(pair.GetRefreshToken())
	wantCode(t, err, codes.Unauthenticated)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "expired") {
		t.Errorf("message = %q", msg)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, goodUsers())
	pair := e.login(t)
	resp, err := e.srv.Logout(context.Background(), &authv1.LogoutRequest{RefreshToken: pair.GetRefreshToken()})
	if err != nil || resp == nil {
		t.Fatalf("Logout = %v, %v", resp, err)
	}
	_, err = e.refresh(pair.GetRefreshToken())
	wantCode(t, err, codes.Unauthenticated)

	_, err = e.srv.Logout(context.Background(), &authv1.LogoutRequest{RefreshToken: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.srv.Logout(context.Background(), &authv1.LogoutRequest{})
	wantCode(t, err, codes.InvalidArgument)
}

func TestHealthCheck(t *testing.T) {
	serving := true
	e := newEnv(t, goodUsers())
	e.srv.health = func() bool { return serving }

	resp, err := e.srv.HealthCheck(context.Background(), &authv1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != authv1.HealthCheckResponse_STATUS_SERVING || !resp.GetTime().AsTime().Equal(e.clock.Now()) {
		t.Errorf("resp = %v", resp)
	}
	serving = false
	resp, _ = e.srv.HealthCheck(context.Background(), &authv1.HealthCheckRequest{})
	if resp.GetStatus() != authv1.HealthCheckResponse_STATUS_NOT_SERVING {
		t.Errorf("status = %v, want NOT_SERVING", resp.GetStatus())
	}

	// No health func means serving.
	e.srv.health = nil
	resp, _ = e.srv.HealthCheck(context.Background(), nil)
	if resp.GetStatus() != authv1.HealthCheckResponse_STATUS_SERVING {
		t.Errorf("status = %v, want SERVING", resp.GetStatus())
	}
}

// Server must keep satisfying the generated interface.
var _ authv1.AuthServiceServer = (*Server)(nil)
