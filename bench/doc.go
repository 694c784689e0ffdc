// Package bench measures what golden's instrumentation costs per RPC, in
// throughput and latency, and in memory. It builds gRPC servers that
// answer the same GetUser call with the same ~200-byte response over the
// same mutual TLS (TLS 1.3, the project's certificates, client certificate
// presented) and differ only in what surrounds the handler:
//
//   - bare: a plain grpc-go server, no interceptors or stats handlers;
//   - golden: the full chain a golden service runs, assembled as
//     services/user does it (service.Start kit, tracing at 100% exported over
//     OTLP, JSON access log on stdout and GELF over UDP, metrics, request ID,
//     caller authorization, per-caller rate limit, JWT verification);
//   - golden-nogelf: golden without the GELF sink, a diagnostic variant
//     that isolates what shipping logs costs;
//   - golden-nolog: golden without access lines for successful calls, a
//     diagnostic variant that isolates what the access log costs;
//   - peer: a typical chain after go-grpc-middleware's example server
//     (otelgrpc stats handler exporting over OTLP, the prometheus provider's
//     server metrics with a handling-time histogram, a logrus logging
//     interceptor, recovery);
//   - peer-nolog: peer without its logging interceptor, what the tracing
//     and metrics libraries cost before any log line.
//
// BenchmarkUnaryRPC runs them all in one `go test -bench` run;
// cmd/benchserver serves them for ghz; cmd/benchtool runs ghz, samples the
// RSS of real `golden serve` processes under load and turns everything into
// the Markdown report that scripts/bench.sh prints. README.md describes the
// method.
package bench
