package requestid

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// UnaryServerInterceptor puts the caller's x-request-id in the context. A
// missing or malformed ID is replaced by a new one, which the response
// header carries back: services behind the gateway still get an ID for
// every request, a bad value from a peer never reaches logs or spans, and a
// caller without an ID learns the one its call is logged under. A caller's
// own well-formed ID is not echoed: it already has it, and echoing would
// make every call inside the system build, send and decode one more header.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = serverContext(ctx)
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &serverStream{ServerStream: ss, ctx: serverContext(ss.Context())})
	}
}

func serverContext(ctx context.Context) context.Context {
	var sent string
	if vals := metadata.ValueFromIncomingContext(ctx, MetadataKey); len(vals) > 0 {
		sent = vals[0]
	}
	id := OrNew(sent)
	if id != sent {
		// SetHeader fails only once headers were sent, which cannot have
		// happened before the handler ran.
		_ = grpc.SetHeader(ctx, metadata.MD{MetadataKey: {id}})
	}
	return NewContext(ctx, id)
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// UnaryClientInterceptor forwards the request ID in the context as
// x-request-id metadata on every outgoing call.
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
	id := FromContext(ctx)
	if id == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, id)
}
