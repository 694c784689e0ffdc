// Package grpcclient opens the connections one golden service uses to call
// another: mutual TLS with the caller's own certificate, the server's name
// verified, and the request ID forwarded on every call.
package grpcclient

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/security"
)

// Option adds dial options, such as more interceptors.
type Option = grpc.DialOption

// New returns a client connection to target for the service named server,
// whose certificate must carry that name. The connection is lazy: it dials
// on first use and redials by itself, so a peer that starts later is fine.
// Nil options are skipped.
func New(target, server string, files security.Files, opts ...Option) (*grpc.ClientConn, error) {
	tlsConf, err := security.ClientConfig(files, server)
	if err != nil {
		return nil, err
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)),
		grpc.WithChainUnaryInterceptor(requestid.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(requestid.StreamClientInterceptor()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}
	for _, o := range opts {
		if o != nil {
			dialOpts = append(dialOpts, o)
		}
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	return conn, nil
}
