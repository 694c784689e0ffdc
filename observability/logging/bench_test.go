package logging

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
		{"tcp-healthy", func(b *testing.B) (string, string) { return newTCPServer(b, true, 0).addr(), "tcp" }},
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
