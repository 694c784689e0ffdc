package bench

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/observability/requestid"
)

// Clients are n connections to one server, each its own HTTP/2 connection
// and TLS session, as ghz --connections opens them.
type Clients struct {
	conns []*grpc.ClientConn
	users []userv1.UserServiceClient
}

// Dial opens n client connections to addr over mTLS with the caller's
// certificate. They connect on first use.
func Dial(addr string, certs Certs, n int) (*Clients, error) {
	if n < 1 {
		return nil, errors.New("bench: at least one connection is needed")
	}
	tlsConf, err := certs.ClientTLS()
	if err != nil {
		return nil, err
	}
	c := &Clients{}
	for range n {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)))
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		c.conns = append(c.conns, conn)
		c.users = append(c.users, userv1.NewUserServiceClient(conn))
	}
	return c, nil
}

// Get returns the client of connection i modulo their number.
func (c *Clients) Get(i int) userv1.UserServiceClient { return c.users[i%len(c.users)] }

// Close closes every connection.
func (c *Clients) Close() error {
	var errs []error
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

// CallContext returns a context that sends token as a bearer token with
// every call. Every server gets it, so that every request has the same
// size; only golden verifies it.
func CallContext(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// WithRequestID returns ctx sending a new request ID, as the gateway sends
// one with every call to a service. Every server gets it; golden keeps it
// instead of making one.
func WithRequestID(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, requestid.MetadataKey, requestid.New())
}
