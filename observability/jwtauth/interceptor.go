package jwtauth

import (
	"context"
	"errors"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// claimsKey is the context key of the verified claims. An unexported type
// keeps other packages from forging or overwriting the value.
type claimsKey struct{}

// NewContext returns a copy of ctx that carries c.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the claims stored in ctx by NewContext, which the
// interceptors do for every authenticated call. It reports false for public
// methods and unauthenticated contexts.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// authorizationHeader is the metadata key clients put the token under.
const authorizationHeader = "authorization"

// UnaryServerInterceptor requires a valid access token, sent as
// "authorization: Bearer <token>" metadata, and puts its claims in the
// handler's context. Exempt public methods with go-grpc-middleware's
// selector (see grpcserver.AllBut). A missing,
// ill-formed or rejected token fails the call with codes.Unauthenticated and
// a message saying what was wrong; the token itself is never echoed.
//
// It is built on the go-grpc-middleware auth interceptor, so a service that
// implements auth.ServiceAuthFuncOverride replaces this check for all its
// methods; golden services must not implement it.
func UnaryServerInterceptor(v *Verifier) grpc.UnaryServerInterceptor {
	return auth.UnaryServerInterceptor(authFunc(v))
}

// StreamServerInterceptor is the streaming counterpart of
// UnaryServerInterceptor; handlers find the claims in the stream's context.
func StreamServerInterceptor(v *Verifier) grpc.StreamServerInterceptor {
	return auth.StreamServerInterceptor(authFunc(v))
}

// authFunc verifies the bearer token of an incoming call.
func authFunc(v *Verifier) auth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		// Presence is checked here rather than left to AuthFromMD so that a
		// missing token and a wrong scheme get different messages.
		switch vals := metadata.ValueFromIncomingContext(ctx, authorizationHeader); {
		case len(vals) == 0:
			return nil, status.Error(codes.Unauthenticated, `missing access token: send "authorization: Bearer <token>" metadata`)
		case len(vals) > 1:
			// Different layers might pick different values; refuse to guess.
			return nil, status.Error(codes.Unauthenticated, "more than one authorization metadata value")
		}
		token, err := auth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, `authorization metadata must have the form "Bearer <token>"`)
		}
		claims, err := v.Verify(strings.TrimSpace(token))
		if err != nil {
			return nil, verifyStatus(err)
		}
		return NewContext(ctx, claims), nil
	}
}

// verifyStatus turns a Verify error into a gRPC status. Token problems are
// the caller's and say what was wrong; anything else is a server
// misconfiguration the caller cannot fix, so its details stay on the server.
func verifyStatus(err error) error {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return status.Error(codes.Unauthenticated, ve.Error())
	}
	return status.Error(codes.Internal, "access token verification is not configured")
}
