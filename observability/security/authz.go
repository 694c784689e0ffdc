package security

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// AnyIdentity in a Policy allows every caller with a verified certificate.
	AnyIdentity = "*"
	// OperatorIdentity is the identity of a person's certificate
	// ("golden certs issue --name admin"), allowed the debug methods.
	OperatorIdentity = "admin"
	// ChannelzMethods names every method of the channelz debug service
	// (served with --debug-pages) in a Policy.
	ChannelzMethods = "grpc.channelz.v1.Channelz/*"
)

// Policy maps a method name to the identities allowed to call it. A method is
// named by its short name ("GetUser"), its full gRPC name
// ("/golden.user.v1.UserService/GetUser"), or all methods of a service at once
// ("grpc.channelz.v1.Channelz/*"); a method missing from the policy is denied
// to everyone.
type Policy map[string][]string

// ParsePolicy reads the flag and environment form of a Policy:
// "Method=id1,id2;Method2=*", entries separated by semicolons.
func ParsePolicy(s string) (Policy, error) {
	p := Policy{}
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		method, ids, ok := strings.Cut(entry, "=")
		method = strings.TrimSpace(method)
		if !ok || method == "" {
			return nil, fmt.Errorf("entry %q is not Method=identity[,identity]", entry)
		}
		for _, id := range strings.Split(ids, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				return nil, fmt.Errorf("entry %q has an empty identity", entry)
			}
			p[method] = append(p[method], id)
		}
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("policy is empty: every method would be denied")
	}
	return p, nil
}

// String renders p in the form ParsePolicy reads, sorted by method.
func (p Policy) String() string {
	methods := make([]string, 0, len(p))
	for m := range p {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	parts := make([]string, 0, len(methods))
	for _, m := range methods {
		parts = append(parts, m+"="+strings.Join(p[m], ","))
	}
	return strings.Join(parts, ";")
}

// Set implements pflag.Value.
func (p *Policy) Set(s string) error {
	parsed, err := ParsePolicy(s)
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// Type implements pflag.Value.
func (p *Policy) Type() string { return "policy" }

// Allows reports whether identity may call fullMethod. The most specific
// entry decides: the full method name, then the short name, then the
// service's wildcard "pkg.Service/*".
func (p Policy) Allows(fullMethod, identity string) bool {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	for _, key := range []string{fullMethod, method, service + "/*"} {
		if ids, ok := p[key]; ok {
			return slices.Contains(ids, identity) || slices.Contains(ids, AnyIdentity)
		}
	}
	return false
}

// UnaryServerInterceptor identifies the caller from its verified client
// certificate, puts the identity in the context, and lets the call through
// only when policy allows that identity the method: a caller without a
// certificate gets Unauthenticated, one that is not allowed PermissionDenied.
// Exempt the health service, which probes call with TLS alone, with
// go-grpc-middleware's selector (see grpcserver.AllBut).
func UnaryServerInterceptor(policy Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := authorize(ctx, policy, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is the streaming twin of UnaryServerInterceptor.
func StreamServerInterceptor(policy Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := authorize(ss.Context(), policy, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

func authorize(ctx context.Context, policy Policy, method string) (context.Context, error) {
	id, ok := PeerIdentity(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "a client certificate signed by the golden root CA is required")
	}
	if !policy.Allows(method, id) {
		return nil, status.Errorf(codes.PermissionDenied, "caller %q is not allowed to call %s", id, method)
	}
	return NewContext(ctx, id), nil
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
