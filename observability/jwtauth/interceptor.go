package jwtauth

import (
	"context"
	"errors"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
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

// Option configures UnaryServerInterceptor and StreamServerInterceptor.
type Option func(*options)

type options struct {
	public map[string]bool
}

// WithPublicMethods lists full gRPC method names, such as
// "/golden.auth.v1.AuthService/Login", that need no token. Calls to them
// reach the handler without claims in the context; a token sent anyway is
// ignored rather than checked.
func WithPublicMethods(fullMethod ...string) Option {
	return func(o *options) {
		for _, m := range fullMethod {
			o.public[m] = true
		}
	}
}

// UnaryServerInterceptor requires a valid access token, sent as
// "authorization: Bearer <token>" metadata, on every unary method except the
// public ones, and puts its claims in the handler's context. A missing,
// ill-formed or rejected token fails the call with codes.Unauthenticated and
// a message saying what was wrong; the token itself is never echoed.
//
// It is built on the go-grpc-middleware auth interceptor, so a service that
// implements auth.ServiceAuthFuncOverride replaces this check for all its
// methods; golden services must not implement it.
func UnaryServerInterceptor(v *Verifier, opts ...Option) grpc.UnaryServerInterceptor {
	return selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(authFunc(v)), protected(opts))
}

// StreamServerInterceptor is the streaming counterpart of
// UnaryServerInterceptor; handlers find the claims in the stream's context.
func StreamServerInterceptor(v *Verifier, opts ...Option) grpc.StreamServerInterceptor {
	return selector.StreamServerInterceptor(auth.StreamServerInterceptor(authFunc(v)), protected(opts))
}

// protected matches the methods that need a token: all but the public ones.
func protected(opts []Option) selector.Matcher {
	o := options{public: map[string]bool{}}
	for _, opt := range opts {
		opt(&o)
	}
	return selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return !o.public[c.FullMethod()]
	})
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
