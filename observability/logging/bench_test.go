package logging

import (
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
)

// BenchmarkLogCall measures one request-path log call,
// log.WithContext(ctx).WithField(...).Info(...), with stdout discarded,
// against each state of the GELF sink. dropped/op shows how much of the
// load the sink shed: a dropped entry costs less than a queued one.
func BenchmarkLogCall(b *testing.B) {
	cases := []struct {
		name string
		addr func(b *testing.B) (addr, proto string)
	}{
		{"no-gelf", func(*testing.B) (string, string) { return "", "udp" }},
		{"udp-healthy", func(b *testing.B) (string, string) { return discardUDP(b), "udp" }},
		{"tcp-healthy", func(b *testing.B) (string, string) { return discardTCP(b), "tcp" }},
		{"udp-down", func(b *testing.B) (string, string) { return freePort(b, "udp"), "udp" }},
		{"tcp-down", func(b *testing.B) (string, string) { return freePort(b, "tcp"), "tcp" }},
		{"tcp-stalled", func(b *testing.B) (string, string) { return newTCPServer(b, false, 0).addr(), "tcp" }},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			addr, proto := bc.addr(b)
			cfg := DefaultConfig()
			cfg.GELFAddr, cfg.GELFProtocol = addr, proto
			reg := prometheus.NewPedanticRegistry()
			l, err := New(cfg, "user", "user-1", reg, WithOutput(io.Discard), WithWriteTimeout(200*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			ctx, _ := requestContext()
			e := l.Entry()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e.WithContext(ctx).WithField("user_id", i).Info("user fetched")
			}
			b.StopTimer()
			if addr != "" {
				b.ReportMetric(totalDropped(b, reg)/float64(b.N), "dropped/op")
			}
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = l.Close(cctx)
		})
	}
}

// BenchmarkAccessLog measures the access line of one successful unary
// call (UnaryServerInterceptor around a handler that answers at once, on a
// request's context: request ID, trace, caller, peer), written to
// /dev/null as an *os.File as on stdout, with the default flush interval
// (the lines of 2 ms together, up to 4 KiB per write), GELF off: serially, and
// from 32 goroutines on GOMAXPROCS cores, where the logger's lock is
// shared. cpu-ns/op is the process's CPU time per line, the flushing
// goroutine's included.
func BenchmarkAccessLog(b *testing.B) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	l, err := New(DefaultConfig(), "user", "user-1", nil, WithOutput(devnull))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Close(ctx)
	}()
	access := UnaryServerInterceptor(l.Entry(), 1)
	ctx, _ := requestContext()
	ctx = peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40312}})
	info := &grpc.UnaryServerInfo{FullMethod: userv1.UserService_GetUser_FullMethodName}
	req, resp := &userv1.GetUserRequest{Id: "0b6d8f8e-6c2e-4a59-9f0e-3f1f5d2b7a10"}, &userv1.GetUserResponse{}
	handler := func(context.Context, any) (any, error) { return resp, nil }
	call := func() {
		if _, err := access(ctx, req, info, handler); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := processCPU(b)
		for b.Loop() {
			call()
		}
		b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
		cpu0 := processCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				call()
			}
		})
		b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// processCPU returns the user and system CPU time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRedactString measures the redaction of a message without
// secrets, the common case, and of one with a bearer token.
func BenchmarkRedactString(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"clean", "user fetched from the primary replica in 3 attempts"},
		{"error-text", "rpc error: code = NotFound desc = user not found"},
		{"bearer", "Authorization: Bearer " + jwt},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = RedactString(bc.s)
			}
		})
	}
}
