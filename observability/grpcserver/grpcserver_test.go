package grpcserver

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
	"github.com/golden-stack/golden/internal/pki"
	"github.com/golden-stack/golden/observability/requestid"
	"github.com/golden-stack/golden/observability/security"
)

// stubUser answers GetUser with getUser; every other method is unimplemented.
type stubUser struct {
	userv1.UnimplementedUserServiceServer
	getUser func(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error)
}

func (s *stubUser) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	if s.getUser != nil {
		return s.getUser(ctx, req)
	}
	return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetId()}}, nil
}

// certs creates a CA and certificates for user (the server) and gateway (the
// client) in a temporary directory.
func certs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, pki.EnsureOptions{Names: []string{"user", "gateway"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func quietLogger() (*logrus.Logger, *logtest.Hook) { return logtest.NewNullLogger() }

// listen builds a server on a free loopback port with the user certificate,
// registers stub on it and closes it at the end of the test.
func listen(t *testing.T, dir string, stub *stubUser, opts ...Option) *Server {
	t.Helper()
	tlsConf, err := security.ServerConfig(security.DefaultFiles(dir, "user"))
	if err != nil {
		t.Fatal(err)
	}
	log, _ := quietLogger()
	s, err := Listen("127.0.0.1:0", tlsConf, append([]Option{WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if stub == nil {
		stub = &stubUser{}
	}
	userv1.RegisterUserServiceServer(s.GRPC(), stub)
	t.Cleanup(s.Close)
	return s
}

// serve runs s.Serve in the background; the returned channel yields its result.
func serve(t *testing.T, s *Server) <-chan error {
	t.Helper()
	served, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		served <- s.Serve()
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return served
}

// dial connects to s as gateway over mutual TLS, sending the request ID in
// the context.
func dial(t *testing.T, dir string, s *Server) *grpc.ClientConn {
	t.Helper()
	tlsConf, err := security.ClientConfig(security.DefaultFiles(dir, "gateway"), "user")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(s.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)),
		grpc.WithChainUnaryInterceptor(requestid.UnaryClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestPanicBecomesInternal(t *testing.T) {
	dir := certs(t)
	log, hook := quietLogger()
	s := listen(t, dir, &stubUser{getUser: func(_ context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
		if req.GetId() == "boom" {
			panic("handler exploded")
		}
		return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetId()}}, nil
	}}, WithServerOptions(grpc.ChainUnaryInterceptor(
		requestid.UnaryServerInterceptor(),
		recovery.UnaryServerInterceptor(RecoveryHandler(log)),
	)))
	serve(t, s)
	client := userv1.NewUserServiceClient(dial(t, dir, s))

	ctx := requestid.NewContext(t.Context(), "panic-req-0001")
	_, err := client.GetUser(ctx, &userv1.GetUserRequest{Id: "boom"})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("panicking handler: %v, want Internal \"internal error\"", err)
	}

	// The server keeps serving after the panic.
	for i := range 3 {
		resp, err := client.GetUser(t.Context(), &userv1.GetUserRequest{Id: "u1"})
		if err != nil || resp.GetUser().GetId() != "u1" {
			t.Fatalf("call %d after the panic: %v, %v", i, resp, err)
		}
	}

	var found bool
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel && e.Data["request_id"] == "panic-req-0001" && e.Data["panic"] == "handler exploded" {
			found = true
		}
	}
	if !found {
		t.Errorf("no error log of the panic with its request ID among %d entries", len(hook.AllEntries()))
	}
}

func TestAllBut(t *testing.T) {
	m := AllBut(HealthService, "/golden.user.v1.UserService/CreateUser")
	for method, want := range map[string]bool{
		"/grpc.health.v1.Health/Check":                false,
		"/grpc.health.v1.Health/Watch":                false,
		"/golden.user.v1.UserService/CreateUser":      false,
		"/golden.user.v1.UserService/GetUser":         true,
		"/grpc.channelz.v1.Channelz/GetTopChannels":   true,
		"/golden.user.v1.UserServiceX/CreateUser":     true,
		"/golden.user.v1.UserService/CreateUserExtra": true,
	} {
		if got := m.Match(t.Context(), interceptors.NewServerCallMeta(method, nil, nil)); got != want {
			t.Errorf("AllBut(...).Match(%s) = %v, want %v", method, got, want)
		}
	}
}

// TestAllButSkipsInterceptor wraps a refusing interceptor with AllBut(health)
// on both chains: user calls are refused, health checks and watches are not.
func TestAllButSkipsInterceptor(t *testing.T) {
	dir := certs(t)
	refuse := status.Error(codes.PermissionDenied, "refused")
	exempt := AllBut(HealthService)
	s := listen(t, dir, nil, WithServerOptions(
		grpc.ChainUnaryInterceptor(selector.UnaryServerInterceptor(
			func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) { return nil, refuse }, exempt)),
		grpc.ChainStreamInterceptor(selector.StreamServerInterceptor(
			func(any, grpc.ServerStream, *grpc.StreamServerInfo, grpc.StreamHandler) error { return refuse }, exempt)),
	))
	serve(t, s)
	conn := dial(t, dir, s)
	if _, err := userv1.NewUserServiceClient(conn).GetUser(t.Context(), &userv1.GetUserRequest{Id: "u1"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("GetUser: %v, want PermissionDenied from the interceptor", err)
	}
	health := healthpb.NewHealthClient(conn)
	if got := checkHealth(t, health, ""); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health Check: %v, want SERVING", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Errorf("health Watch: %v, want an answer", err)
	}
}

func checkHealth(t *testing.T, client healthpb.HealthClient, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health Check(%q): %v", service, err)
	}
	return resp.GetStatus()
}

// waitNotServing polls s.Serving, bounded in count, until it reports false.
func waitNotServing(t *testing.T, s *Server) {
	t.Helper()
	for range 1000 {
		if !s.Serving() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("server still SERVING after Shutdown started")
}

// blockingStub returns a stub whose GetUser signals entered and then waits
// for release or for its context to end, reporting which on ended.
func blockingStub() (stub *stubUser, entered chan struct{}, release chan struct{}, ended chan error) {
	entered, release, ended = make(chan struct{}), make(chan struct{}), make(chan error, 1)
	stub = &stubUser{getUser: func(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
		close(entered)
		select {
		case <-release:
			ended <- nil
			return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetId()}}, nil
		case <-ctx.Done():
			ended <- ctx.Err()
			return nil, ctx.Err()
		}
	}}
	return stub, entered, release, ended
}

func TestHealthAndGracefulShutdown(t *testing.T) {
	dir := certs(t)
	stub, entered, release, ended := blockingStub()
	s := listen(t, dir, stub)
	if s.Name() != "grpc" {
		t.Errorf("Name() = %q, want grpc", s.Name())
	}
	if s.Serving() {
		t.Fatal("Serving() before Serve = true, want NOT_SERVING")
	}
	served := serve(t, s)
	conn := dial(t, dir, s)
	health := healthpb.NewHealthClient(conn)
	if got := checkHealth(t, health, ""); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health while serving = %v, want SERVING", got)
	}
	if got := checkHealth(t, health, userv1.UserService_ServiceDesc.ServiceName); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health of %s while serving = %v, want SERVING", userv1.UserService_ServiceDesc.ServiceName, got)
	}
	if !s.Serving() {
		t.Error("Serving() while serving = false")
	}

	type result struct {
		resp *userv1.GetUserResponse
		err  error
	}
	rpc := make(chan result, 1)
	go func() {
		resp, err := userv1.NewUserServiceClient(conn).GetUser(context.Background(), &userv1.GetUserRequest{Id: "in-flight"})
		rpc <- result{resp, err}
	}()
	<-entered

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	waitNotServing(t, s)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while an RPC was in flight", err)
	default:
	}

	close(release)
	if r := <-rpc; r.err != nil || r.resp.GetUser().GetId() != "in-flight" {
		t.Errorf("in-flight RPC during graceful shutdown: %v, %v; want it to finish", r.resp, r.err)
	}
	if err := <-ended; err != nil {
		t.Errorf("handler ended with %v, want released", err)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
	if s.Serving() {
		t.Error("Serving() after Shutdown = true")
	}
}

func TestShutdownExpiredContextCancelsRPC(t *testing.T) {
	dir := certs(t)
	stub, entered, release, ended := blockingStub()
	t.Cleanup(func() { close(release) })
	s := listen(t, dir, stub)
	served := serve(t, s)
	conn := dial(t, dir, s)

	rpc := make(chan error, 1)
	go func() {
		_, err := userv1.NewUserServiceClient(conn).GetUser(context.Background(), &userv1.GetUserRequest{Id: "stuck"})
		rpc <- err
	}()
	<-entered

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := s.Shutdown(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown(expired) = %v, want an error wrapping DeadlineExceeded", err)
	}
	if err := <-ended; err == nil {
		t.Error("stuck handler was released, want its context cancelled")
	}
	if err := <-rpc; status.Code(err) == codes.OK {
		t.Error("stuck RPC succeeded, want it cancelled")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
}

func TestCloseReleasesPort(t *testing.T) {
	dir := certs(t)
	tlsConf, err := security.ServerConfig(security.DefaultFiles(dir, "user"))
	if err != nil {
		t.Fatal(err)
	}
	log, _ := quietLogger()
	s, err := Listen("127.0.0.1:0", tlsConf, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()

	if _, err := Listen(addr, tlsConf, WithLogger(log)); err == nil {
		t.Fatalf("Listen(%s) on a taken port succeeded", addr)
	}
	s.Close()

	again, err := Listen(addr, tlsConf, WithLogger(log))
	if err != nil {
		t.Fatalf("Listen(%s) after Close: %v", addr, err)
	}
	again.Close()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("net.Listen(%s) after Close: %v", addr, err)
	}
	_ = lis.Close()
}

// lifecycle.Run may call Shutdown before the goroutine running Serve got to
// it (a SIGTERM during start-up); the lifecycle.Component contract says Serve
// then returns nil.
func TestServeAfterShutdownReturnsNil(t *testing.T) {
	dir := certs(t)
	s := listen(t, dir, nil)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil as lifecycle.Component requires", err)
	}
	if s.Serving() {
		t.Error("Serving() after Shutdown = true")
	}
}
