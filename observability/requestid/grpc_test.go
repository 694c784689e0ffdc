package requestid

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// seen records what the server side observed for the last RPC.
type seen struct {
	mu       sync.Mutex
	ctxID    string   // FromContext after the request ID interceptor
	incoming []string // raw x-request-id metadata as received
}

func (s *seen) record(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctxID = FromContext(ctx)
	s.incoming = metadata.ValueFromIncomingContext(ctx, MetadataKey)
}

func (s *seen) get() (string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctxID, s.incoming
}

// startServer runs the health service behind the request ID interceptors on
// a loopback listener, with a recorder placed after them.
func startServer(t *testing.T) (string, *seen) {
	t.Helper()
	rec := &seen{}
	srv := grpc.NewServer(
		grpc.Creds(insecure.NewCredentials()),
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(),
			func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				rec.record(ctx)
				return h(ctx, req)
			}),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(),
			func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				rec.record(ss.Context())
				return h(srv, ss)
			}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return lis.Addr().String(), rec
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func TestUnaryServerInterceptor(t *testing.T) {
	addr, rec := startServer(t)
	client := dial(t, addr)

	tests := []struct {
		name string
		sent []string // x-request-id values sent; nil sends none
		keep bool
	}{
		{"valid kept", []string{"upstream-id-0001"}, true},
		{"malformed replaced", []string{`bad" id:*`}, false},
		{"too short replaced", []string{"abc"}, false},
		{"too long replaced", []string{"a123456789012345678901234567890123456789012345678901234567890123456789"}, false},
		{"missing created", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			for _, v := range tt.sent {
				ctx = metadata.AppendToOutgoingContext(ctx, MetadataKey, v)
			}
			var header metadata.MD
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
				t.Fatalf("Check: %v", err)
			}
			ctxID, _ := rec.get()
			if !Valid(ctxID) {
				t.Fatalf("handler context ID = %q, not Valid", ctxID)
			}
			if tt.keep && ctxID != tt.sent[0] {
				t.Errorf("handler context ID = %q, want the caller's %q", ctxID, tt.sent[0])
			}
			if !tt.keep && len(tt.sent) > 0 && ctxID == tt.sent[0] {
				t.Errorf("handler context kept the malformed ID %q", ctxID)
			}
			checkEcho(t, header, ctxID, tt.keep)
		})
	}
}

func TestStreamServerInterceptor(t *testing.T) {
	addr, rec := startServer(t)
	client := dial(t, addr)

	for _, tt := range []struct {
		name string
		sent string
		keep bool
	}{
		{"valid kept", "stream-id-0001", true},
		{"malformed replaced", "no spaces allowed", false},
		{"missing created", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.sent != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, MetadataKey, tt.sent)
			}
			stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatalf("Watch Recv: %v", err)
			}
			header, err := stream.Header()
			if err != nil {
				t.Fatalf("Header: %v", err)
			}
			ctxID, _ := rec.get()
			if !Valid(ctxID) {
				t.Fatalf("stream context ID = %q, not Valid", ctxID)
			}
			if tt.keep != (ctxID == tt.sent) {
				t.Errorf("stream context ID = %q for sent %q, keep = %v", ctxID, tt.sent, tt.keep)
			}
			checkEcho(t, header, ctxID, tt.keep)
		})
	}
}

// checkEcho checks the response header: the ID the server chose, or none
// when it kept the caller's.
func checkEcho(t *testing.T, header metadata.MD, ctxID string, kept bool) {
	t.Helper()
	got := header.Get(MetadataKey)
	switch {
	case kept && len(got) != 0:
		t.Errorf("response header %s = %q, want none: the caller sent the ID", MetadataKey, got)
	case !kept && (len(got) != 1 || got[0] != ctxID):
		t.Errorf("response header %s = %q, want [%q]", MetadataKey, got, ctxID)
	}
}

func TestClientInterceptors(t *testing.T) {
	addr, rec := startServer(t)
	client := dial(t, addr,
		grpc.WithChainUnaryInterceptor(UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(StreamClientInterceptor()))

	t.Run("unary forwards the context ID", func(t *testing.T) {
		ctx := NewContext(t.Context(), "from-ctx-0001")
		if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("Check: %v", err)
		}
		ctxID, incoming := rec.get()
		if len(incoming) != 1 || incoming[0] != "from-ctx-0001" {
			t.Errorf("server received %s = %q, want [from-ctx-0001]", MetadataKey, incoming)
		}
		if ctxID != "from-ctx-0001" {
			t.Errorf("server context ID = %q, want from-ctx-0001", ctxID)
		}
	})

	t.Run("unary without an ID sends none", func(t *testing.T) {
		if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("Check: %v", err)
		}
		ctxID, incoming := rec.get()
		if len(incoming) != 0 {
			t.Errorf("server received %s = %q, want none", MetadataKey, incoming)
		}
		if !Valid(ctxID) {
			t.Errorf("server context ID = %q, want a new valid one", ctxID)
		}
	})

	t.Run("stream forwards the context ID", func(t *testing.T) {
		ctx, cancel := context.WithCancel(NewContext(t.Context(), "from-ctx-0002"))
		defer cancel()
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("Watch Recv: %v", err)
		}
		ctxID, incoming := rec.get()
		if len(incoming) != 1 || incoming[0] != "from-ctx-0002" || ctxID != "from-ctx-0002" {
			t.Errorf("server received %q and put %q in ctx, want from-ctx-0002 for both", incoming, ctxID)
		}
	})
}
