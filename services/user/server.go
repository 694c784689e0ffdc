package user

import (
	"context"
	"errors"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/jwtauth"
)

// Fixed client-facing messages. They are constants so that no store error
// text or request value ever reaches a caller.
const (
	msgInvalidCredentials = "invalid username or password"
	msgInternal           = "internal error"
	msgNotFound           = "user not found"
	msgAlreadyExists      = "username or email already taken"
	msgUnavailable        = "user store unavailable"
	msgUnauthenticated    = "missing or invalid access token"
	msgPermissionDenied   = "may only delete your own account"
)

// dummyPassword is hashed once per Server to give VerifyCredentials a hash
// to compare against when the username is unknown. Its value is irrelevant;
// only the cost of the comparison matters.
const dummyPassword = "golden-dummy-password-for-timing"

// Server implements userv1.UserServiceServer on top of a Store.
type Server struct {
	userv1.UnimplementedUserServiceServer

	store       Store
	bcryptCost  int
	healthy     func() bool
	defaultPage int
	maxPage     int
	// dummyHash has the same cost as new password hashes, so a lookup miss
	// costs as much as a wrong password and timing does not reveal
	// whether a username exists.
	dummyHash []byte
}

// NewServer returns a Server backed by store. It computes one bcrypt hash
// (for VerifyCredentials' timing protection), so it takes as long as one
// password hash at the configured cost. Of the options, it reads
// WithBcryptCost, WithHealth and WithPageSizes.
func NewServer(store Store, opts ...Option) *Server {
	o := newOptions(opts)
	s := &Server{
		store:       store,
		bcryptCost:  o.bcryptCost,
		healthy:     o.healthy,
		defaultPage: min(o.defaultPage, o.maxPage),
		maxPage:     o.maxPage,
	}
	// The cost is validated and the password is short, so this cannot
	// fail; if it somehow did, a nil hash makes every comparison fail,
	// which is still the right answer for an unknown user.
	s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte(dummyPassword), s.bcryptCost)
	return s
}

// Compile-time check that Server implements the generated interface.
var _ userv1.UserServiceServer = (*Server)(nil)

// CreateUser validates the request, hashes the password and stores the
// account.
func (s *Server) CreateUser(ctx context.Context, req *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
	if err := ValidateNewUser(req.GetUsername(), req.GetEmail(), req.GetPassword()); err != nil {
		return nil, invalidArgument(err)
	}
	// Hashing is the expensive step; skip it for a caller that has gone.
	if err := ctx.Err(); err != nil {
		return nil, storeError(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.GetPassword()), s.bcryptCost)
	if err != nil {
		return nil, status.Error(codes.Internal, msgInternal)
	}
	u, err := s.store.Create(ctx, User{
		Username:     req.GetUsername(),
		Email:        req.GetEmail(),
		PasswordHash: hash,
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &userv1.CreateUserResponse{User: toProto(u)}, nil
}

// GetUser returns one account by ID.
func (s *Server) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	if err := ValidateID(req.GetId()); err != nil {
		return nil, invalidArgument(err)
	}
	u, err := s.store.Get(ctx, req.GetId())
	if err != nil {
		return nil, storeError(err)
	}
	return &userv1.GetUserResponse{User: toProto(u)}, nil
}

// ListUsers returns one page of accounts in creation order.
func (s *Server) ListUsers(ctx context.Context, req *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
	size, err := ResolvePageSize(req.GetPageSize(), s.defaultPage, s.maxPage)
	if err != nil {
		return nil, invalidArgument(err)
	}
	after, err := DecodePageToken(req.GetPageToken())
	if err != nil {
		// The message is fixed: the token is opaque, so saying more about
		// why it failed would only describe its encoding.
		return nil, invalidArgumentMessage(ErrInvalidPageToken.Error(),
			FieldErrors{{Field: "page_token", Reason: "invalid"}})
	}
	users, next, err := s.store.List(ctx, after, size)
	if err != nil {
		return nil, storeError(err)
	}
	resp := &userv1.ListUsersResponse{
		Users:         make([]*userv1.User, len(users)),
		NextPageToken: EncodePageToken(next),
	}
	for i, u := range users {
		resp.Users[i] = toProto(u)
	}
	return resp, nil
}

// DeleteUser removes an account. Callers may delete only their own
// account: the subject of the access token must equal the ID. This is
// checked here, not only in an interceptor, because the rule depends on the
// request body.
func (s *Server) DeleteUser(ctx context.Context, req *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
	claims, ok := jwtauth.FromContext(ctx)
	if !ok || claims == nil || claims.Subject == "" {
		return nil, status.Error(codes.Unauthenticated, msgUnauthenticated)
	}
	if err := ValidateID(req.GetId()); err != nil {
		return nil, invalidArgument(err)
	}
	// Authorize before touching the store, so that a caller cannot learn
	// whether someone else's ID exists from NotFound versus
	// PermissionDenied.
	if claims.Subject != req.GetId() {
		return nil, status.Error(codes.PermissionDenied, msgPermissionDenied)
	}
	if err := s.store.Delete(ctx, req.GetId()); err != nil {
		return nil, storeError(err)
	}
	return &userv1.DeleteUserResponse{}, nil
}

// VerifyCredentials checks a username and password. An unknown username
// and a wrong password give the same status and message, and both cost one
// bcrypt comparison, so neither the answer nor its timing reveals which
// usernames exist.
func (s *Server) VerifyCredentials(ctx context.Context, req *userv1.VerifyCredentialsRequest) (*userv1.VerifyCredentialsResponse, error) {
	if err := ValidateCredentials(req.GetUsername(), req.GetPassword()); err != nil {
		return nil, invalidArgument(err)
	}
	u, err := s.store.GetByUsername(ctx, req.GetUsername())
	switch {
	case errors.Is(err, ErrNotFound):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(req.GetPassword()))
		return nil, status.Error(codes.Unauthenticated, msgInvalidCredentials)
	case err != nil:
		return nil, storeError(err)
	}
	err = bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(req.GetPassword()))
	switch {
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return nil, status.Error(codes.Unauthenticated, msgInvalidCredentials)
	case err != nil:
		// A stored hash bcrypt cannot read is our fault, not the caller's.
		return nil, status.Error(codes.Internal, msgInternal)
	}
	return &userv1.VerifyCredentialsResponse{User: toProto(u)}, nil
}

// HealthCheck reports whether the service is serving, per the health
// function given to NewServer.
func (s *Server) HealthCheck(_ context.Context, _ *userv1.HealthCheckRequest) (*userv1.HealthCheckResponse, error) {
	st := userv1.HealthCheckResponse_STATUS_NOT_SERVING
	if s.healthy() {
		st = userv1.HealthCheckResponse_STATUS_SERVING
	}
	return &userv1.HealthCheckResponse{Status: st, Time: timestamppb.Now()}, nil
}

// toProto converts a stored user to its API form. It is the only place a
// User leaves the service, and it copies no password material.
func toProto(u User) *userv1.User {
	return &userv1.User{
		Id:        u.ID,
		Username:  u.Username,
		Email:     u.Email,
		CreatedAt: timestamppb.New(u.CreatedAt),
		UpdatedAt: timestamppb.New(u.UpdatedAt),
	}
}

// invalidArgument turns a validation error into InvalidArgument. The
// message lists every field error; a BadRequest detail carries the same
// violations for clients that want them field by field.
func invalidArgument(err error) error {
	var es FieldErrors
	es.add(err)
	return invalidArgumentMessage(es.Error(), es)
}

// invalidArgumentMessage is invalidArgument with a caller-chosen message.
func invalidArgumentMessage(msg string, es FieldErrors) error {
	st := status.New(codes.InvalidArgument, msg)
	br := &errdetails.BadRequest{}
	for _, e := range es {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       e.Field,
			Description: e.Reason,
		})
	}
	if withDetails, derr := st.WithDetails(br); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// storeError maps a Store (or context) error to a status. Known errors get their own
// codes (ErrUnavailable becomes Unavailable); context errors keep theirs;
// anything else becomes a generic Internal so that no internal detail
// reaches the caller.
func storeError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, msgNotFound)
	case errors.Is(err, ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, msgAlreadyExists)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, ErrUnavailable):
		// Unavailable tells clients a retry may succeed; the cause (an
		// address, a backend's answer) stays in the error for logs only.
		return status.Error(codes.Unavailable, msgUnavailable)
	}
	return status.Error(codes.Internal, msgInternal)
}
