// Package logging builds the logger of a golden service: logrus writing JSON
// (or text) to stdout, and a GELF sink shipping the same entries to Graylog
// over UDP or TCP without ever slowing a request down.
//
// Services log with log.WithContext(ctx). Hooks then add, in this order:
//
//  1. request fields from the context: request_id, trace_id and span_id
//     (when the span context is valid), caller (the authorized identity) and
//     grpc.service / grpc.method (inside a gRPC handler); fields the caller
//     set explicitly win;
//  2. redaction: values of secret-looking keys become "[REDACTED]", and
//     bearer tokens, JWTs, secret=value pairs and URL passwords are cut out
//     of messages and string values (see SecretKey and RedactString);
//  3. the GELF hook, which turns the entry into a GELF 1.1 message and puts
//     it on a bounded queue. A background goroutine owns the connection and
//     writes the queue out, many messages per system call. A full queue
//     drops the entry and counts it in
//     golden_log_messages_dropped_total{sink="gelf",reason="queue_full"}: a
//     log call never waits for Graylog, even when it is down or stalled.
//
// Then the line is written to stdout: info, debug and trace lines wait up
// to Config.FlushInterval to go out together, warn and worse at once, after
// those waiting; Close writes what waits.
//
// Every entry carries service and instance from the base Entry. The access
// log (UnaryServerInterceptor, StreamServerInterceptor, HTTPMiddleware)
// writes one entry per RPC or HTTP request, never with metadata values or
// bodies.
package logging
