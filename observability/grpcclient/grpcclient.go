// Package grpcclient opens the connections one golden service uses to call
// another: mutual TLS with the caller's own certificate, the server's name
// verified, and the request ID forwarded on every call.
package grpcclient

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"

	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/security"
)

// Option adds dial options, such as more interceptors.
type Option = grpc.DialOption

// ServiceConfig is the connection's service config: round robin over the
// instances of the call's track (package canary's golden_track policy:
// stable unless the call's route names the service's canary); every call
// waits for a ready instance within its deadline instead of failing at
// once while none is ready (at start-up, or while one restarts); and the methods listed in retried (full names,
// "/golden.user.v1.UserService/GetUser"), which must be safe to repeat, are
// retried once, on the next instance, when one answers Unavailable. New
// uses ServiceConfig() (no retries); pass ServiceConfig(...) to New to
// retry reads.
func ServiceConfig(retried ...string) Option {
	type name struct {
		Service string `json:"service,omitempty"`
		Method  string `json:"method,omitempty"`
	}
	type retryPolicy struct {
		MaxAttempts          int      `json:"maxAttempts"`
		InitialBackoff       string   `json:"initialBackoff"`
		MaxBackoff           string   `json:"maxBackoff"`
		BackoffMultiplier    float64  `json:"backoffMultiplier"`
		RetryableStatusCodes []string `json:"retryableStatusCodes"`
	}
	type methodConfig struct {
		Name         []name       `json:"name"`
		WaitForReady bool         `json:"waitForReady"`
		RetryPolicy  *retryPolicy `json:"retryPolicy,omitempty"`
	}
	methods := []methodConfig{{Name: []name{{}}, WaitForReady: true}}
	if len(retried) > 0 {
		mc := methodConfig{WaitForReady: true, RetryPolicy: &retryPolicy{
			MaxAttempts: 2, InitialBackoff: "0.01s", MaxBackoff: "0.1s", BackoffMultiplier: 2,
			RetryableStatusCodes: []string{"UNAVAILABLE"},
		}}
		for _, m := range retried {
			svc, method, _ := strings.Cut(strings.TrimPrefix(m, "/"), "/")
			mc.Name = append(mc.Name, name{Service: svc, Method: method})
		}
		methods = append(methods, mc)
	}
	raw, _ := json.Marshal(map[string]any{ // plain structs: Marshal cannot fail
		"loadBalancingConfig": []any{map[string]any{canary.BalancerName: map[string]any{}}},
		"methodConfig":        methods,
	})
	return grpc.WithDefaultServiceConfig(string(raw))
}

// Ready reports whether conn has at least one instance it can call now.
func Ready(conn *grpc.ClientConn) bool {
	return conn.GetState() == connectivity.Ready
}

// New returns a client connection to target for the service named server,
// whose certificate must carry that name. It starts connecting at once and
// redials by itself, so a peer that starts later is fine.
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
		ServiceConfig(),
		// Connections stay up while idle, so that a caller's readiness can
		// follow them (see Ready).
		grpc.WithIdleTimeout(0),
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
	// Connect now rather than at the first call, so that Ready can pass
	// before any traffic.
	conn.Connect()
	return conn, nil
}
