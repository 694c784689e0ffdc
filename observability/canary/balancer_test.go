package canary_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/golden-stack/golden/observability/canary"
)

// instance is a gRPC server on loopback that counts the calls it gets and
// remembers the last route it saw.
type instance struct {
	addr string
	srv  *grpc.Server
	mu   sync.Mutex
	n    int
	seen canary.Route
}

func startInstance(t *testing.T) *instance {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{addr: lis.Addr().String()}
	in.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(canary.UnaryServerInterceptor(),
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			in.mu.Lock()
			in.n++
			in.seen = canary.FromContext(ctx)
			in.mu.Unlock()
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(in.srv, health.NewServer())
	go func() { _ = in.srv.Serve(lis) }()
	t.Cleanup(in.srv.Stop)
	return in
}

func (in *instance) calls() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.n
}

// dialTracks connects to the instances through the golden_track policy,
// the first ones stable and the last one canary, as the Consul resolver
// hands them over.
func dialTracks(t *testing.T, stable []*instance, canaryInst *instance) (*grpc.ClientConn, *manual.Resolver) {
	t.Helper()
	r := manual.NewBuilderWithScheme("test")
	var addrs []resolver.Address
	for _, in := range stable {
		addrs = append(addrs, canary.WithTrack(resolver.Address{Addr: in.addr}, "user", canary.Stable))
	}
	addrs = append(addrs, canary.WithTrack(resolver.Address{Addr: canaryInst.addr}, "user", canary.Canary))
	r.InitialState(resolver.State{Addresses: addrs})
	conn, err := grpc.NewClient("test:///user",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+canary.BalancerName+`":{}}],"methodConfig":[{"name":[{}],"waitForReady":true}]}`),
		grpc.WithChainUnaryInterceptor(canary.UnaryClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, r
}

func check(t *testing.T, conn *grpc.ClientConn, route canary.Route, n int) {
	t.Helper()
	client := healthpb.NewHealthClient(conn)
	for range n {
		ctx, cancel := context.WithTimeout(canary.NewContext(context.Background(), route), 5*time.Second)
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil {
			t.Fatalf("call with route %q: %v", route, err)
		}
	}
}

// waitAllReady calls until every instance has answered, so that later
// counts do not depend on connections still being set up.
func waitAllReady(t *testing.T, conn *grpc.ClientConn, all ...*instance) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		check(t, conn, canary.Route{}, 1)
		check(t, conn, canary.All(), 1)
		ready := true
		for _, in := range all {
			ready = ready && in.calls() > 0
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not every instance answered within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, in := range all {
		in.mu.Lock()
		in.n = 0
		in.mu.Unlock()
	}
}

func TestBalancerPicksTheRoutesTrack(t *testing.T) {
	s1, s2, c := startInstance(t), startInstance(t), startInstance(t)
	conn, _ := dialTracks(t, []*instance{s1, s2}, c)
	waitAllReady(t, conn, s1, s2, c)

	check(t, conn, canary.Route{}, 100)
	if c.calls() != 0 || s1.calls() != 50 || s2.calls() != 50 {
		t.Errorf("stable route: canary %d, stable %d and %d calls; want 0, 50, 50", c.calls(), s1.calls(), s2.calls())
	}
	// Interleaved with canary calls, stable calls still alternate.
	s1Before, s2Before := s1.calls(), s2.calls()
	for range 20 {
		check(t, conn, canary.Route{}, 1)
		check(t, conn, canary.To("user"), 1)
	}
	if d1, d2 := s1.calls()-s1Before, s2.calls()-s2Before; d1 != 10 || d2 != 10 {
		t.Errorf("stable calls interleaved with canary ones: %d and %d, want 10 and 10", d1, d2)
	}
	check(t, conn, canary.To("user"), 10)
	check(t, conn, canary.All(), 30)
	check(t, conn, canary.To("auth"), 30) // another service's canary: stable here
	if c.calls() != 60 || s1.calls()+s2.calls() != 150 {
		t.Errorf("canary routes: canary %d calls, stable %d; want 60 and 150", c.calls(), s1.calls()+s2.calls())
	}
	// The route travelled in the metadata.
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	if !seen.Canary("user") {
		t.Errorf("the canary saw route %q", seen)
	}
}

func TestBalancerFallsBackWhenTheTrackHasNoReadyInstance(t *testing.T) {
	s, c := startInstance(t), startInstance(t)
	conn, r := dialTracks(t, []*instance{s}, c)
	waitAllReady(t, conn, s, c)

	// The canary leaves: canary routes go to stable, none fails.
	r.UpdateState(resolver.State{Addresses: []resolver.Address{canary.WithTrack(resolver.Address{Addr: s.addr}, "user", canary.Stable)}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		before := c.calls()
		check(t, conn, canary.All(), 20)
		if c.calls() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("canary routes still reach the removed canary after 5s")
		}
	}
	// Only a canary is left: stable routes go there rather than fail.
	r.UpdateState(resolver.State{Addresses: []resolver.Address{canary.WithTrack(resolver.Address{Addr: c.addr}, "user", canary.Canary)}})
	deadline = time.Now().Add(5 * time.Second)
	for c.calls() == 0 {
		check(t, conn, canary.Route{}, 1)
		if time.Now().After(deadline) {
			t.Fatal("stable routes never reached the only instance left, a canary")
		}
	}
}

func TestServerInterceptorIgnoresBadRoutes(t *testing.T) {
	in := startInstance(t)
	conn, err := grpc.NewClient(in.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	for _, bad := range []string{"User", "a,,b", "x y"} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), canary.MetadataKey, bad)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil {
			t.Fatalf("route %q: the call failed: %v", bad, err)
		}
		in.mu.Lock()
		seen := in.seen
		in.mu.Unlock()
		if !seen.IsStable() {
			t.Errorf("route %q read as %q, want stable", bad, seen)
		}
	}
}

func ExampleWithTrack() {
	addr := canary.WithTrack(resolver.Address{Addr: "10.0.0.7:9002"}, "user", canary.Canary)
	fmt.Println(addr.Addr)
	// Output: 10.0.0.7:9002
}
