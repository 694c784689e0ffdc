package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/jwtauth"
	"github.com/golden-stack/golden/services/user"
)

// Concurrency is the number of calls in flight in BenchmarkUnaryRPC, the
// same as the ghz runs' --concurrency.
const Concurrency = 32

// Connections is the number of client connections, as ghz --connections.
const Connections = 4

// benchEnv is what every server of one benchmark run shares.
type benchEnv struct {
	certs Certs
	token string
	sinks Sinks
	otlp  string // what receives the spans, for the log
}

// newBenchEnv makes certificates, a token and the sinks: Jaeger when it is
// installed (scripts/install-backends.sh jaeger), else a discarding OTLP
// receiver in this process; a discarding GELF UDP listener in a process of
// its own; /dev/null as the servers' stdout.
func newBenchEnv(tb testing.TB) benchEnv {
	tb.Helper()
	certs, err := EnsureCerts(filepath.Join(tb.TempDir(), "certs"))
	if err != nil {
		tb.Fatal(err)
	}
	token, err := certs.Token(time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	env := benchEnv{certs: certs, token: token}
	if _, ok := JaegerBinary(); ok && os.Getenv("GOLDEN_BENCH_OTLP") != "discard" {
		j := testbackend.StartJaeger(tb, filepath.Join("..", "jaeger", "config.yaml"))
		env.sinks.OTLPAddr, env.otlp = j.OTLPGRPCAddr, "jaeger"
	} else {
		s, err := StartOTLPSink()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		env.sinks.OTLPAddr, env.otlp = s.Addr(), "discarding OTLP receiver"
	}
	gelf, err := StartGELFSink()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = gelf.Close() })
	env.sinks.GELFAddr = gelf.Addr()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = devnull.Close() })
	env.sinks.Stdout = devnull
	return env
}

// BenchmarkUnaryRPC measures one GetUser call with a ~200-byte response
// over mTLS on loopback against each server of Names (see the package
// documentation), Concurrency calls in flight over Connections
// connections. Client and server share the process, so ns/op, B/op and
// allocs/op include the client's part, which is the same for all of them,
// and the background work of the instrumentation (span batching and
// export, the GELF sink): the differences between servers are the
// instrumentation's. cpu-ns/op is the process's CPU time (user+system)
// per call; spans are exported to Jaeger, a separate process, when it is
// installed.
func BenchmarkUnaryRPC(b *testing.B) {
	env := newBenchEnv(b)
	b.Logf("spans go to %s; GELF to %s (UDP, discarded)", env.otlp, env.sinks.GELFAddr)
	for _, name := range Names {
		var (
			srv     *Server
			clients *Clients
		)
		b.Run(name, func(b *testing.B) {
			if srv == nil {
				// Each sub-benchmark starts its server once and keeps it
				// for every round of b.N.
				var err error
				if srv, err = Start(name, env.certs, env.sinks); err != nil {
					b.Fatal(err)
				}
				if clients, err = Dial(srv.Addr(), env.certs, Connections); err != nil {
					b.Fatal(err)
				}
				warmUp(b, clients, env.token)
			}
			runParallel(b, clients, env.token)
		})
		if clients != nil {
			_ = clients.Close()
		}
		if srv != nil {
			if err := srv.Close(); err != nil {
				b.Errorf("stopping %s: %v", name, err)
			}
		}
	}
}

// warmUp connects every connection and checks the answer.
func warmUp(b *testing.B, clients *Clients, token string) {
	b.Helper()
	ctx := CallContext(context.Background(), token)
	for i := range 50 * Connections {
		resp, err := clients.Get(i).GetUser(ctx, Request())
		if err != nil {
			b.Fatalf("warm-up call: %v", err)
		}
		if !proto.Equal(resp, Response) {
			b.Fatalf("warm-up call answered %v, want %v", resp, Response)
		}
	}
}

func runParallel(b *testing.B, clients *Clients, token string) {
	ctx := CallContext(context.Background(), token)
	b.SetParallelism(max(1, Concurrency/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	var next atomic.Int64
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := clients.Get(int(next.Add(1)))
		req := Request()
		for pb.Next() {
			if _, err := client.GetUser(WithRequestID(ctx), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkJWTVerify measures the access-token check golden's chain makes
// on every call (an Ed25519 signature and the claims), for reading
// BenchmarkUnaryRPC's golden row.
func BenchmarkJWTVerify(b *testing.B) {
	certs, err := EnsureCerts(filepath.Join(b.TempDir(), "certs"))
	if err != nil {
		b.Fatal(err)
	}
	token, err := certs.Token(time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := jwtauth.LoadPublicKey(certs.PublicKeyFile())
	if err != nil {
		b.Fatal(err)
	}
	tc := user.DefaultConfig().Token
	v := jwtauth.NewVerifier(pub, tc.Issuer, tc.Audience)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}
