package canary

import (
	"context"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// UnaryServerInterceptor puts the caller's Route (the "golden-canary"
// metadata) in the context, so that the calls the handler makes stay on
// the request's tracks. A malformed value is ignored: the request goes to
// stable, and never fails for it.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(serverContext(ctx), req)
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		wrapped := middleware.WrapServerStream(ss)
		wrapped.WrappedContext = serverContext(ss.Context())
		return handler(srv, wrapped)
	}
}

func serverContext(ctx context.Context) context.Context {
	vals := metadata.ValueFromIncomingContext(ctx, MetadataKey)
	if len(vals) != 1 {
		return ctx
	}
	r, err := ParseRoute(vals[0])
	if err != nil || r.IsStable() {
		return ctx
	}
	return NewContext(ctx, r)
}

// UnaryClientInterceptor sends the Route in the context as "golden-canary"
// metadata, so that the called service passes it on.
func UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(outgoing(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor is the streaming twin of UnaryClientInterceptor.
func StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(outgoing(ctx), desc, cc, method, opts...)
	}
}

func outgoing(ctx context.Context) context.Context {
	r := FromContext(ctx)
	if r.IsStable() {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, r.String())
}
