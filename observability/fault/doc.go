// Package fault injects errors and latency into a running golden service's
// gRPC methods, switched on and off at run time through Consul's KV store,
// so that the golden signals, alerts, logs and traces can be seen reacting
// to a failure on demand.
//
// # Keys and values
//
// A fault lives at <prefix><service>/<method>, by default
// golden/faults/user/GetUser, where method is the short RPC name or "*" for
// every method of the service. A key for the exact method wins over "*".
// The value is a JSON Spec:
//
//	{"error_rate":0.2,"code":"Unavailable"}
//	{"latency":{"fixed":"200ms"},"latency_rate":1}
//	{"latency":{"min":"50ms","max":"500ms"},"latency_rate":0.5,"expires_at":"2030-01-02T15:04:05Z"}
//
// error_rate (0 to 1) is the share of calls answered with code instead of
// reaching the handler. latency delays a share latency_rate (0 to 1,
// default 1) of calls before they go on: by a fixed duration, or by one
// drawn uniformly between min and max. A call may be delayed and then
// failed. Each delay is at most MaxLatency, and always ends early when the
// call's context ends, with DeadlineExceeded or Canceled. After expires_at
// the fault is no longer applied, even while the key stays. `golden fault
// set|clear|list` writes, removes and shows faults, validating them first.
//
// # The service side
//
// A Watcher follows the service's keys with Consul blocking queries and
// applies what it finds at once. A value that does not parse or validate is
// ignored with a logged warning, never applied in part. While Consul is
// unreachable (or leaderless) the watcher retries with backoff and keeps the
// faults it knew, so a fault experiment is not ended by a Consul outage; a
// fault's expires_at (`golden fault set --ttl`) still ends it on time.
// Without a Consul address, or with
// --faults=false, the watcher is off and its interceptors pass every call
// straight through.
//
// The services exempt gRPC's own services (grpc.health.v1,
// grpc.channelz.v1) from the interceptors with go-grpc-middleware's selector,
// so health checks and debugging keep working while a service is being
// broken on purpose. Placed right after the observers (metrics, access log,
// tracing), what they inject is seen by all of them like a real failure, and
// said to be one:
//
//   - metrics: golden_fault_active{service,method,kind} is 1 for each kind
//     ("error", "latency") of each fault in force, method being the key's
//     ("*" included); a fault cleared or expired has no series.
//     golden_faults_injected_total{service,method,kind,code} counts
//     injections by the RPC's method: for kind="error" code is the injected
//     code; for kind="latency" it is OK when the whole delay passed and the
//     call went on, or DeadlineExceeded / Canceled when the caller gave up
//     during it. Both carry a trace_id exemplar for sampled traces.
//   - spans: the RPC's span gets fault.injected=true and fault.kind
//     ("error" when an error was injected, "latency" otherwise) and one
//     "fault injected" event per injection, with its kind and code or delay.
//   - logs: an injected error's status message starts with "injected
//     fault:", which the access log writes as the entry's error; and each
//     injected failure gets a log entry of its own with fault.injected=true,
//     fault.kind and fault.code besides the request's fields (request_id,
//     trace_id, grpc.method), at warn. Delays that did not fail the call are
//     logged at debug. Every change of the faults in force is logged at warn.
package fault
