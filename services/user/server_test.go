package user

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/jwtauth"
)

const testPassword = "Tr0ub4dor&3-horse"

func newTestServer(t *testing.T, opts ...Option) (*Server, *MemoryStore) {
	t.Helper()
	store := NewMemoryStore()
	opts = append([]Option{WithBcryptCost(bcrypt.MinCost)}, opts...)
	return NewServer(store, opts...), store
}

// asUser returns a context carrying access-token claims for subject id, as
// the jwtauth interceptor would.
func asUser(id string) context.Context {
	return jwtauth.NewContext(context.Background(), &jwtauth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: id},
	})
}

// wantCode fails unless err is a status error with the given code, and
// returns its message.
func wantCode(t *testing.T, err error, want codes.Code) string {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a gRPC status", err)
	}
	if st.Code() != want {
		t.Fatalf("code = %v (%q), want %v", st.Code(), st.Message(), want)
	}
	return st.Message()
}

// noPassword fails if the password appears anywhere in a response.
func noPassword(t *testing.T, m proto.Message) {
	t.Helper()
	if text := prototext.Format(m); strings.Contains(text, testPassword) {
		t.Fatalf("response contains the password:\n%s", text)
	}
}

func createUser(t *testing.T, s *Server, username string) *userv1.User {
	t.Helper()
	resp, err := s.CreateUser(context.Background(), &userv1.CreateUserRequest{
		Username: username,
		Email:    username + "@example.com",
		Password: testPassword,
	})
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", username, err)
	}
	noPassword(t, resp)
	return resp.GetUser()
}

func TestCreateUser(t *testing.T) {
	s, store := newTestServer(t)
	before := time.Now()
	u := createUser(t, s, "alice")

	if !isUserID(u.GetId()) || u.GetUsername() != "alice" || u.GetEmail() != "alice@example.com" {
		t.Errorf("user = %v", u)
	}
	if ts := u.GetCreatedAt().AsTime(); ts.Before(before.Add(-time.Second)) || !u.GetUpdatedAt().AsTime().Equal(ts) {
		t.Errorf("timestamps = %v, %v", u.GetCreatedAt(), u.GetUpdatedAt())
	}

	stored, err := store.Get(context.Background(), u.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.PasswordHash), testPassword) {
		t.Fatal("store holds the plain password")
	}
	if cost, err := bcrypt.Cost(stored.PasswordHash); err != nil || cost != bcrypt.MinCost {
		t.Errorf("stored hash cost = %d, %v; want a bcrypt hash at MinCost", cost, err)
	}
	if err := bcrypt.CompareHashAndPassword(stored.PasswordHash, []byte(testPassword)); err != nil {
		t.Errorf("stored hash does not match the password: %v", err)
	}
}

func TestCreateUserInvalid(t *testing.T) {
	s, _ := newTestServer(t)
	tests := []struct {
		name       string
		req        *userv1.CreateUserRequest
		wantFields []string
	}{
		{"empty request", &userv1.CreateUserRequest{}, []string{"username", "email", "password"}},
		{"bad username", &userv1.CreateUserRequest{Username: "Al", Email: "a@example.com", Password: testPassword}, []string{"username"}},
		{"bad email", &userv1.CreateUserRequest{Username: "alice", Email: "Alice <a@example.com>", Password: testPassword}, []string{"email"}},
		{"long password", &userv1.CreateUserRequest{Username: "alice", Email: "a@example.com", Password: strings.Repeat(testPassword, 5)}, []string{"password"}},
		{"whitespace password", &userv1.CreateUserRequest{Username: "alice", Email: "a@example.com", Password: "         "}, []string{"password"}},
		{"all bad", &userv1.CreateUserRequest{Username: "-x", Email: "x", Password: "x"}, []string{"username", "email", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateUser(context.Background(), tt.req)
			msg := wantCode(t, err, codes.InvalidArgument)
			for _, f := range tt.wantFields {
				if !strings.Contains(msg, f+": ") {
					t.Errorf("message %q does not name %s", msg, f)
				}
			}
			if strings.Contains(msg, testPassword) {
				t.Errorf("message %q echoes the password", msg)
			}
			// The same violations come as a BadRequest detail.
			var got []string
			for _, d := range status.Convert(err).Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						got = append(got, v.GetField())
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.wantFields, ",") {
				t.Errorf("BadRequest fields = %v, want %v", got, tt.wantFields)
			}
		})
	}
}

func TestCreateUserDuplicate(t *testing.T) {
	s, _ := newTestServer(t)
	createUser(t, s, "alice")
	for _, req := range []*userv1.CreateUserRequest{
		{Username: "alice", Email: "other@example.com", Password: testPassword},
		{Username: "bob", Email: "ALICE@example.com", Password: testPassword},
	} {
		_, err := s.CreateUser(context.Background(), req)
		wantCode(t, err, codes.AlreadyExists)
	}
}

func TestGetUser(t *testing.T) {
	s, _ := newTestServer(t)
	u := createUser(t, s, "alice")

	resp, err := s.GetUser(context.Background(), &userv1.GetUserRequest{Id: u.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	noPassword(t, resp)
	if !proto.Equal(resp.GetUser(), u) {
		t.Errorf("GetUser = %v, want %v", resp.GetUser(), u)
	}

	_, err = s.GetUser(context.Background(), &userv1.GetUserRequest{Id: "garbage"})
	if msg := wantCode(t, err, codes.InvalidArgument); !strings.HasPrefix(msg, "id: ") {
		t.Errorf("message %q does not name id", msg)
	}
	_, err = s.GetUser(context.Background(), &userv1.GetUserRequest{})
	wantCode(t, err, codes.InvalidArgument)
	_, err = s.GetUser(context.Background(), &userv1.GetUserRequest{Id: "01890a5d-ac96-774b-bcce-b302099a8057"})
	wantCode(t, err, codes.NotFound)
}

func TestListUsers(t *testing.T) {
	s, _ := newTestServer(t, WithPageSizes(2, 3))
	var want []string
	for _, name := range []string{"u1a", "u2b", "u3c", "u4d", "u5e", "u6f", "u7g"} {
		want = append(want, createUser(t, s, name).GetId())
	}
	ctx := context.Background()

	// Page size 0 uses the default (2).
	resp, err := s.ListUsers(ctx, &userv1.ListUsersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetUsers()) != 2 || resp.GetNextPageToken() == "" {
		t.Fatalf("default page: %d users, token %q", len(resp.GetUsers()), resp.GetNextPageToken())
	}

	// A large page size is clamped to the maximum (3); walk all pages.
	var got []string
	token := ""
	for {
		resp, err := s.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		noPassword(t, resp)
		if len(resp.GetUsers()) > 3 {
			t.Fatalf("page of %d users exceeds the maximum", len(resp.GetUsers()))
		}
		for _, u := range resp.GetUsers() {
			got = append(got, u.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed %v, want %v", got, want)
	}

	_, err = s.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: -1})
	if msg := wantCode(t, err, codes.InvalidArgument); !strings.HasPrefix(msg, "page_size: ") {
		t.Errorf("message %q does not name page_size", msg)
	}
	for _, tok := range []string{"garbage!", want[0], EncodePageToken("nope"), strings.Repeat("A", 1<<16)} {
		_, err = s.ListUsers(ctx, &userv1.ListUsersRequest{PageToken: tok})
		if msg := wantCode(t, err, codes.InvalidArgument); msg != "invalid page_token" {
			t.Errorf("message %q, want %q", msg, "invalid page_token")
		}
	}
}

func TestListUsersEmpty(t *testing.T) {
	s, _ := newTestServer(t)
	resp, err := s.ListUsers(context.Background(), &userv1.ListUsersRequest{PageSize: 10})
	if err != nil || len(resp.GetUsers()) != 0 || resp.GetNextPageToken() != "" {
		t.Fatalf("empty list = %v, %v", resp, err)
	}
}

func TestDeleteUser(t *testing.T) {
	s, _ := newTestServer(t)
	alice := createUser(t, s, "alice")
	bob := createUser(t, s, "bob")
	req := &userv1.DeleteUserRequest{Id: alice.GetId()}

	_, err := s.DeleteUser(context.Background(), req)
	wantCode(t, err, codes.Unauthenticated)
	_, err = s.DeleteUser(jwtauth.NewContext(context.Background(), nil), req)
	wantCode(t, err, codes.Unauthenticated)
	_, err = s.DeleteUser(asUser(""), req)
	wantCode(t, err, codes.Unauthenticated)

	_, err = s.DeleteUser(asUser(bob.GetId()), req)
	wantCode(t, err, codes.PermissionDenied)
	// Someone else's missing ID is still PermissionDenied, not NotFound,
	// so deletion cannot be used to probe which IDs exist.
	_, err = s.DeleteUser(asUser(bob.GetId()), &userv1.DeleteUserRequest{Id: "01890a5d-ac96-774b-bcce-b302099a8057"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = s.DeleteUser(asUser(bob.GetId()), &userv1.DeleteUserRequest{Id: "garbage"})
	wantCode(t, err, codes.InvalidArgument)

	if _, err := s.DeleteUser(asUser(alice.GetId()), req); err != nil {
		t.Fatalf("deleting own account: %v", err)
	}
	_, err = s.GetUser(context.Background(), &userv1.GetUserRequest{Id: alice.GetId()})
	wantCode(t, err, codes.NotFound)
	_, err = s.DeleteUser(asUser(alice.GetId()), req)
	wantCode(t, err, codes.NotFound)

	// Bob is untouched.
	if _, err := s.GetUser(context.Background(), &userv1.GetUserRequest{Id: bob.GetId()}); err != nil {
		t.Errorf("bob: %v", err)
	}
}

func TestVerifyCredentials(t *testing.T) {
	s, _ := newTestServer(t)
	alice := createUser(t, s, "alice")
	ctx := context.Background()

	resp, err := s.VerifyCredentials(ctx, &userv1.VerifyCredentialsRequest{Username: "alice", Password: testPassword})
	if err != nil {
		t.Fatalf("correct credentials: %v", err)
	}
	noPassword(t, resp)
	if resp.GetUser().GetId() != alice.GetId() {
		t.Errorf("verified user = %v, want %v", resp.GetUser(), alice)
	}

	// Wrong password and unknown user must be indistinguishable.
	_, errWrong := s.VerifyCredentials(ctx, &userv1.VerifyCredentialsRequest{Username: "alice", Password: "wrong-password"})
	_, errUnknown := s.VerifyCredentials(ctx, &userv1.VerifyCredentialsRequest{Username: "mallory", Password: testPassword})
	msgWrong := wantCode(t, errWrong, codes.Unauthenticated)
	msgUnknown := wantCode(t, errUnknown, codes.Unauthenticated)
	if msgWrong != "invalid username or password" || msgUnknown != msgWrong {
		t.Errorf("messages %q and %q differ or are not the generic one", msgWrong, msgUnknown)
	}

	for _, req := range []*userv1.VerifyCredentialsRequest{
		{Username: "", Password: testPassword},
		{Username: "alice", Password: ""},
		{Username: strings.Repeat("a", 1<<16), Password: testPassword},
		{Username: "alice", Password: strings.Repeat(testPassword, 100)},
	} {
		_, err := s.VerifyCredentials(ctx, req)
		if msg := wantCode(t, err, codes.InvalidArgument); strings.Contains(msg, testPassword) {
			t.Errorf("message %q echoes the password", msg)
		}
	}
}

func TestVerifyCredentialsDummyHashMatchesCost(t *testing.T) {
	// The unknown-user path must cost as much as a real comparison.
	s, _ := newTestServer(t)
	if cost, err := bcrypt.Cost(s.dummyHash); err != nil || cost != s.bcryptCost {
		t.Errorf("dummy hash cost = %d, %v; want %d", cost, err, s.bcryptCost)
	}
	if d := NewServer(NewMemoryStore(), WithBcryptCost(1000)); d.bcryptCost != bcrypt.DefaultCost {
		t.Errorf("out-of-range cost accepted: %d", d.bcryptCost)
	}
}

func TestVerifyCredentialsCorruptHash(t *testing.T) {
	store := NewMemoryStore()
	s := NewServer(store, WithBcryptCost(bcrypt.MinCost))
	if _, err := store.Create(context.Background(), User{Username: "alice", Email: "a@example.com", PasswordHash: []byte("corrupt")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.VerifyCredentials(context.Background(), &userv1.VerifyCredentialsRequest{Username: "alice", Password: testPassword})
	wantCode(t, err, codes.Internal)
}

func TestHealthCheck(t *testing.T) {
	s, _ := newTestServer(t)
	resp, err := s.HealthCheck(context.Background(), &userv1.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != userv1.HealthCheckResponse_STATUS_SERVING {
		t.Fatalf("default health = %v, %v; want serving", resp, err)
	}
	if d := time.Since(resp.GetTime().AsTime()); d < 0 || d > time.Minute {
		t.Errorf("health time is %v off", d)
	}

	healthy := false
	s, _ = newTestServer(t, WithHealth(func() bool { return healthy }))
	resp, _ = s.HealthCheck(context.Background(), &userv1.HealthCheckRequest{})
	if resp.GetStatus() != userv1.HealthCheckResponse_STATUS_NOT_SERVING {
		t.Errorf("status = %v, want not serving", resp.GetStatus())
	}
}

// errStore fails every call with err.
type errStore struct{ err error }

func (e errStore) Create(context.Context, User) (User, error)          { return User{}, e.err }
func (e errStore) Get(context.Context, string) (User, error)           { return User{}, e.err }
func (e errStore) GetByUsername(context.Context, string) (User, error) { return User{}, e.err }
func (e errStore) List(context.Context, string, int) ([]User, string, error) {
	return nil, "", e.err
}
func (e errStore) Delete(context.Context, string) error { return e.err }

// everyRPC calls each store-backed RPC of a server on storeErr and returns
// the errors by method.
func everyRPC(storeErr error) map[string]func() error {
	s := NewServer(errStore{storeErr}, WithBcryptCost(bcrypt.MinCost))
	const id = "01890a5d-ac96-774b-bcce-b302099a8057"
	return map[string]func() error{
		"CreateUser": func() error {
			_, err := s.CreateUser(context.Background(), &userv1.CreateUserRequest{Username: "alice", Email: "a@example.com", Password: testPassword})
			return err
		},
		"GetUser": func() error {
			_, err := s.GetUser(context.Background(), &userv1.GetUserRequest{Id: id})
			return err
		},
		"ListUsers": func() error {
			_, err := s.ListUsers(context.Background(), &userv1.ListUsersRequest{})
			return err
		},
		"DeleteUser": func() error {
			_, err := s.DeleteUser(asUser(id), &userv1.DeleteUserRequest{Id: id})
			return err
		},
		"VerifyCredentials": func() error {
			_, err := s.VerifyCredentials(context.Background(), &userv1.VerifyCredentialsRequest{Username: "alice", Password: testPassword})
			return err
		},
	}
}

func TestStoreErrorsAreInternal(t *testing.T) {
	errSecret := errors.New("db at 10.0.0.7 exploded: secret detail")
	for name, call := range everyRPC(errSecret) {
		t.Run(name, func(t *testing.T) {
			if msg := wantCode(t, call(), codes.Internal); strings.Contains(msg, "secret") || strings.Contains(msg, "10.0.0.7") {
				t.Errorf("message %q leaks the store error", msg)
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	s, _ := newTestServer(t)
	u := createUser(t, s, "alice")
	ctx, cancel := context.WithCancel(asUser(u.GetId()))
	cancel()

	_, err := s.CreateUser(ctx, &userv1.CreateUserRequest{Username: "bob", Email: "b@example.com", Password: testPassword})
	wantCode(t, err, codes.Canceled)
	_, err = s.GetUser(ctx, &userv1.GetUserRequest{Id: u.GetId()})
	wantCode(t, err, codes.Canceled)
	_, err = s.ListUsers(ctx, &userv1.ListUsersRequest{})
	wantCode(t, err, codes.Canceled)
	_, err = s.VerifyCredentials(ctx, &userv1.VerifyCredentialsRequest{Username: "alice", Password: testPassword})
	wantCode(t, err, codes.Canceled)
	_, err = s.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: u.GetId()})
	wantCode(t, err, codes.Canceled)

	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	_, err = s.GetUser(dctx, &userv1.GetUserRequest{Id: u.GetId()})
	wantCode(t, err, codes.DeadlineExceeded)
}

func TestNilRequestsDoNotPanic(t *testing.T) {
	// Generated getters are nil-safe; a nil request is just an empty one.
	s, _ := newTestServer(t)
	ctx := context.Background()
	_, err := s.CreateUser(ctx, nil)
	wantCode(t, err, codes.InvalidArgument)
	_, err = s.GetUser(ctx, nil)
	wantCode(t, err, codes.InvalidArgument)
	if _, err := s.ListUsers(ctx, nil); err != nil {
		t.Errorf("ListUsers(nil): %v", err)
	}
	_, err = s.DeleteUser(ctx, nil)
	wantCode(t, err, codes.Unauthenticated)
	_, err = s.VerifyCredentials(ctx, nil)
	wantCode(t, err, codes.InvalidArgument)
	if _, err := s.HealthCheck(ctx, nil); err != nil {
		t.Errorf("HealthCheck(nil): %v", err)
	}
}
