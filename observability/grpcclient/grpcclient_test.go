package grpcclient

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/grpcserver"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/security"
)

type stubUser struct {
	userv1.UnimplementedUserServiceServer
}

func (stubUser) GetUser(_ context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetId()}}, nil
}

// observed is what the server saw of the last call.
type observed struct {
	mu       sync.Mutex
	incoming []string // x-request-id metadata as received
	ctxID    string   // request ID in the handler context
	caller   string   // identity from the verified client certificate
}

func (o *observed) get() observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return observed{incoming: o.incoming, ctxID: o.ctxID, caller: o.caller}
}

// startUser serves a stub user service over mutual TLS with certificates for
// user and gateway in dir, recording what each call carried.
func startUser(t *testing.T, dir string) (string, *observed) {
	t.Helper()
	tlsConf, err := security.ServerConfig(security.DefaultFiles(dir, "user"))
	if err != nil {
		t.Fatal(err)
	}
	obs := &observed{}
	log, _ := test.NewNullLogger()
	s, err := grpcserver.Listen("127.0.0.1:0", tlsConf, grpcserver.WithLogger(log),
		grpcserver.WithServerOptions(grpc.ChainUnaryInterceptor(requestid.UnaryServerInterceptor(), func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			caller, _ := security.PeerIdentity(ctx)
			obs.mu.Lock()
			obs.incoming = metadata.ValueFromIncomingContext(ctx, requestid.MetadataKey)
			obs.ctxID = requestid.FromContext(ctx)
			obs.caller = caller
			obs.mu.Unlock()
			return h(ctx, req)
		})))
	if err != nil {
		t.Fatal(err)
	}
	userv1.RegisterUserServiceServer(s.GRPC(), stubUser{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve()
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return s.Addr().String(), obs
}

func certs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"user", "gateway"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNewErrors(t *testing.T) {
	dir := certs(t)
	missing := security.Files{
		CA:   filepath.Join(dir, "ca.crt"),
		Cert: filepath.Join(dir, "missing.crt"),
		Key:  filepath.Join(dir, "missing.key"),
	}
	if _, err := New("127.0.0.1:1", "user", missing); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("New with missing files: %v, want an error naming --tls-cert", err)
	}
	if _, err := New("127.0.0.1:1", "user", security.Files{}); err == nil {
		t.Error("New with no files succeeded")
	}
	if _, err := New("127.0.0.1:1", "", security.DefaultFiles(dir, "gateway")); err == nil {
		t.Error("New without a server name succeeded")
	}
}

func TestCallOverMutualTLSForwardsRequestID(t *testing.T) {
	dir := certs(t)
	addr, obs := startUser(t, dir)
	conn, err := New(addr, "user", security.DefaultFiles(dir, "gateway"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := userv1.NewUserServiceClient(conn)

	ctx := requestid.NewContext(t.Context(), "gw-req-000001")
	var header metadata.MD
	resp, err := client.GetUser(ctx, &userv1.GetUserRequest{Id: "u1"}, grpc.Header(&header))
	if err != nil || resp.GetUser().GetId() != "u1" {
		t.Fatalf("GetUser = %v, %v", resp, err)
	}
	got := obs.get()
	if len(got.incoming) != 1 || got.incoming[0] != "gw-req-000001" || got.ctxID != "gw-req-000001" {
		t.Errorf("server received %q and put %q in ctx, want gw-req-000001 for both", got.incoming, got.ctxID)
	}
	if got.caller != "gateway" {
		t.Errorf("server saw caller %q, want gateway from the client certificate", got.caller)
	}
	if h := header.Get(requestid.MetadataKey); len(h) != 0 {
		t.Errorf("response header %s = %q, want none: the caller sent the ID", requestid.MetadataKey, h)
	}

	// Without an ID in the context nothing is sent, the server makes one
	// and tells the caller.
	header = nil
	if _, err := client.GetUser(t.Context(), &userv1.GetUserRequest{Id: "u2"}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	got = obs.get()
	if len(got.incoming) != 0 || !requestid.Valid(got.ctxID) {
		t.Errorf("call without ID: server received %q, ctx ID %q; want none sent and a new one made", got.incoming, got.ctxID)
	}
	if h := header.Get(requestid.MetadataKey); len(h) != 1 || h[0] != got.ctxID {
		t.Errorf("call without ID: response header %s = %q, want [%q]", requestid.MetadataKey, h, got.ctxID)
	}
}

func TestServerNameIsVerified(t *testing.T) {
	dir := certs(t)
	addr, _ := startUser(t, dir)
	// The user certificate does not name "auth", so the handshake must fail
	// even though the address is right.
	conn, err := New(addr, "auth", security.DefaultFiles(dir, "gateway"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	// Calls wait for a ready instance (ServiceConfig), so the failure
	// comes with the call's deadline, naming the handshake's error.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = userv1.NewUserServiceClient(conn).GetUser(ctx, &userv1.GetUserRequest{Id: "u1"})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("call to a server with another name: %v, want DeadlineExceeded naming the certificate", err)
	}
}

// TestServiceConfigRetriesListedMethodsOnce serves a user service whose
// every first attempt of a method fails with Unavailable: a listed method
// succeeds on its one retry, an unlisted one fails.
func TestServiceConfigRetriesListedMethodsOnce(t *testing.T) {
	dir := certs(t)
	tlsConf, err := security.ServerConfig(security.DefaultFiles(dir, "user"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := map[string]int{}
	flaky := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		mu.Lock()
		attempts[info.FullMethod]++
		n := attempts[info.FullMethod]
		mu.Unlock()
		if n%2 == 1 {
			return nil, status.Error(codes.Unavailable, "first attempt fails")
		}
		return h(ctx, req)
	}
	log, _ := test.NewNullLogger()
	s, err := grpcserver.Listen("127.0.0.1:0", tlsConf, grpcserver.WithLogger(log), grpcserver.WithServerOptions(grpc.ChainUnaryInterceptor(flaky)))
	if err != nil {
		t.Fatal(err)
	}
	userv1.RegisterUserServiceServer(s.GRPC(), stubUser{})
	go func() { _ = s.Serve() }()
	t.Cleanup(s.Close)

	conn, err := New(s.Addr().String(), "user", security.DefaultFiles(dir, "gateway"), ServiceConfig(userv1.UserService_GetUser_FullMethodName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := userv1.NewUserServiceClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := client.GetUser(ctx, &userv1.GetUserRequest{Id: "u1"}); err != nil {
		t.Errorf("GetUser (retried): %v", err)
	}
	if _, err := client.CreateUser(ctx, &userv1.CreateUserRequest{Username: "a"}); status.Code(err) != codes.Unavailable {
		t.Errorf("CreateUser (not retried): %v, want Unavailable", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts[userv1.UserService_GetUser_FullMethodName] != 2 || attempts[userv1.UserService_CreateUser_FullMethodName] != 1 {
		t.Errorf("attempts %v: want GetUser twice, CreateUser once", attempts)
	}
	if !Ready(conn) {
		t.Error("Ready = false on a connection that just answered")
	}
}
