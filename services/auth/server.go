package auth

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/golden-stack/golden/api/golden/auth/v1"
	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/jwtauth"
)

// TokenType is the TokenPair.TokenType of every pair the Server returns: the
// access token goes into "authorization: Bearer <token>" metadata.
const TokenType = "Bearer"

// Input bounds. They reject absurd requests before they cost a call to the
// user service; real limits on usernames and passwords are the user
// service's business.
const (
	maxUsernameLen = 256
	maxPasswordLen = 1024
	// maxRefreshTokenLen is generous: a real token is 43 bytes, and the
	// store rejects any other length itself.
	maxRefreshTokenLen = 512
)

// Fixed client-facing messages. They are constants so that no upstream
// error text, token or password ever reaches a caller.
const (
	msgInvalidCredentials = "invalid username or password"
	msgUserUnavailable    = "user service unavailable; try again later"
	msgUserTimeout        = "user service did not answer in time"
	msgInternal           = "internal error"
)

// Server implements authv1.AuthServiceServer: it checks credentials with the
// user service, signs access tokens and rotates refresh tokens.
type Server struct {
	authv1.UnimplementedAuthServiceServer

	users   userv1.UserServiceClient
	signer  *jwtauth.Signer
	refresh RefreshTokens
	health  func() bool
	now     func() time.Time
}

// NewServer returns a Server that checks credentials with users, signs
// access tokens with signer and keeps refresh tokens in refresh. health
// reports whether the process is serving; nil means always. Of the options,
// it reads WithClock, for the time HealthCheck reports.
func NewServer(users userv1.UserServiceClient, signer *jwtauth.Signer, refresh RefreshTokens, health func() bool, opts ...Option) *Server {
	o := newOptions(opts)
	return &Server{users: users, signer: signer, refresh: refresh, health: health, now: o.now}
}

// Login checks the username and password with the user service and, if they
// match, returns an access token and the first refresh token of a new
// family. Wrong username and wrong password fail alike with
// codes.Unauthenticated.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	username, password := req.GetUsername(), req.GetPassword()
	switch {
	case username == "":
		return nil, status.Error(codes.InvalidArgument, "username is required")
	case len(username) > maxUsernameLen:
		return nil, status.Errorf(codes.InvalidArgument, "username is longer than %d bytes", maxUsernameLen)
	case password == "":
		return nil, status.Error(codes.InvalidArgument, "password is required")
	case len(password) > maxPasswordLen:
		return nil, status.Errorf(codes.InvalidArgument, "password is longer than %d bytes", maxPasswordLen)
	}
	// ctx goes through unchanged so the caller's deadline, cancellation and
	// request metadata reach the user service.
	resp, err := s.users.VerifyCredentials(ctx, &userv1.VerifyCredentialsRequest{Username: username, Password: password})
	if err != nil {
		return nil, userServiceError(err)
	}
	user := resp.GetUser()
	if user.GetId() == "" {
		// A success without a user is a user service bug; signing a token
		// without a subject would be worse than failing.
		return nil, status.Error(codes.Internal, msgInternal)
	}
	tokens, err := s.issue(user.GetId(), user.GetUsername(), func() (string, time.Time, error) {
		return s.refresh.Issue(ctx, user.GetId(), user.GetUsername())
	})
	if err != nil {
		return nil, err
	}
	return &authv1.LoginResponse{Tokens: tokens}, nil
}

// userServiceError maps a VerifyCredentials error to what Login returns.
// Anything that means "these credentials are no good" becomes one
// Unauthenticated answer, so callers cannot tell unknown users from wrong
// passwords; the user service's own message is never passed on.
func userServiceError(err error) error {
	switch status.Code(err) {
	case codes.NotFound, codes.Unauthenticated, codes.InvalidArgument:
		return status.Error(codes.Unauthenticated, msgInvalidCredentials)
	case codes.Unavailable:
		return status.Error(codes.Unavailable, msgUserUnavailable)
	case codes.DeadlineExceeded:
		return status.Error(codes.DeadlineExceeded, msgUserTimeout)
	case codes.Canceled:
		// The client gave up; nobody reads this answer.
		return status.Error(codes.Canceled, "request canceled")
	default:
		// PermissionDenied, for one, means this service is not allowed to
		// call the user service: a deployment problem, not the caller's.
		return status.Error(codes.Internal, msgInternal)
	}
}

// Refresh exchanges a refresh token for a new token pair. The presented
// token is used up; presenting it again revokes every token of its login.
func (s *Server) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	token, err := refreshTokenArg(req.GetRefreshToken())
	if err != nil {
		return nil, err
	}
	userID, username, newToken, expiresAt, err := s.refresh.Rotate(ctx, token)
	if err != nil {
		return nil, refreshError(err)
	}
	tokens, err := s.issue(userID, username, func() (string, time.Time, error) {
		return newToken, expiresAt, nil
	})
	if err != nil {
		return nil, err
	}
	return &authv1.RefreshResponse{Tokens: tokens}, nil
}

// Logout revokes the family of the given refresh token, ending that login
// on every device that shares it. Access tokens already issued stay valid
// until they expire, which their short lifetime bounds.
func (s *Server) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	token, err := refreshTokenArg(req.GetRefreshToken())
	if err != nil {
		return nil, err
	}
	if err := s.refresh.Revoke(ctx, token); err != nil {
		return nil, refreshError(err)
	}
	return &authv1.LogoutResponse{}, nil
}

// HealthCheck reports whether the service is serving, and the server's time
// so that clients can spot clock skew, which matters for token expiry.
func (s *Server) HealthCheck(context.Context, *authv1.HealthCheckRequest) (*authv1.HealthCheckResponse, error) {
	st := authv1.HealthCheckResponse_STATUS_SERVING
	if s.health != nil && !s.health() {
		st = authv1.HealthCheckResponse_STATUS_NOT_SERVING
	}
	return &authv1.HealthCheckResponse{Status: st, Time: timestamppb.New(s.now())}, nil
}

// issue signs an access token and pairs it with the refresh token that
// refresh returns. The access token is signed first so that a signing
// failure does not leave a refresh family behind.
func (s *Server) issue(userID, username string, refresh func() (string, time.Time, error)) (*authv1.TokenPair, error) {
	access, accessExp, err := s.signer.Sign(userID, username)
	if err != nil {
		return nil, status.Error(codes.Internal, msgInternal)
	}
	rt, rtExp, err := refresh()
	if err != nil {
		return nil, refreshError(err)
	}
	return &authv1.TokenPair{
		AccessToken:      access,
		AccessExpiresAt:  timestamppb.New(accessExp),
		RefreshToken:     rt,
		RefreshExpiresAt: timestamppb.New(rtExp),
		TokenType:        TokenType,
	}, nil
}

// refreshTokenArg validates the refresh_token field of a request.
func refreshTokenArg(token string) (string, error) {
	switch {
	case token == "":
		return "", status.Error(codes.InvalidArgument, "refresh_token is required")
	case len(token) > maxRefreshTokenLen:
		return "", status.Errorf(codes.InvalidArgument, "refresh_token is longer than %d bytes", maxRefreshTokenLen)
	}
	return token, nil
}

// refreshError maps a RefreshStore error to a status. Every store verdict
// is Unauthenticated with the store's message, which tells the client
// whether logging in again is the remedy and never includes the token.
func refreshError(err error) error {
	for _, known := range []error{ErrReused, ErrRevoked, ErrExpired, ErrInvalid} {
		if errors.Is(err, known) {
			return status.Error(codes.Unauthenticated, known.Error()+"; log in again")
		}
	}
	if errors.Is(err, ErrUnavailable) {
		return status.Error(codes.Unavailable, ErrUnavailable.Error()+"; try again")
	}
	return status.Error(codes.Internal, msgInternal)
}
