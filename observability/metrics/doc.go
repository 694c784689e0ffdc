// Package metrics exports the four golden signals of every golden service to
// Prometheus: latency, traffic, errors and saturation, for the gRPC server,
// the gRPC client and the gateway's HTTP edge, plus build information and the
// Go runtime and process collectors.
//
// Metric names and labels are a contract that Prometheus rules and Grafana
// dashboards are written against; change them only together with those.
//
//	grpc_server_started_total{grpc_type,grpc_service,grpc_method,caller}
//	grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code,caller}
//	grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method,caller}     histogram
//	grpc_server_msg_received_total, grpc_server_msg_sent_total                    (streams)
//	grpc_client_started_total{grpc_type,grpc_service,grpc_method}
//	grpc_client_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//	grpc_client_handling_seconds{grpc_type,grpc_service,grpc_method}             histogram
//	grpc_client_msg_received_total, grpc_client_msg_sent_total                    (streams)
//	golden_in_flight_requests{server}                                             gauge, server="grpc"|"http"
//	golden_http_requests_total{route,method,code}
//	golden_http_request_duration_seconds{route,method}                            histogram
//	golden_ratelimit_rejections_total{caller}
//	golden_build_info{service,version,revision,goversion}                         gauge, always 1
//
// Every histogram has the classic buckets RPCBuckets, for bucket-based rules,
// and a native (sparse) histogram, for precise quantiles where Prometheus
// scrapes them. Counters and histograms carry a trace_id exemplar when the
// request's context holds a sampled OpenTelemetry span context, at most one
// every 10 ms per Server, Client or HTTP (a scrape shows only the latest;
// HTTP server errors always get theirs); Handler exposes exemplars through
// OpenMetrics.
//
// Cardinality is bounded whatever the traffic: labels take values only from
// the code (gRPC method names and codes, route templates, a fixed set of
// HTTP methods) or from verified client certificates (caller), never from
// user IDs, request IDs, raw paths or any other request data.
//
// Each of Server, Client and HTTP registers once per registry; a second
// registration of the same kind on one registry returns an error. Server and
// HTTP share golden_in_flight_requests when they are on the same registry.
package metrics
