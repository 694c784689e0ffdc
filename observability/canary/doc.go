// Package canary routes requests between the two tracks a golden service
// can run on, stable and canary.
//
// An instance's track is a setting (--track); it registers in Consul with
// the track as a tag and in the Meta "track", so Prometheus labels its
// series by track and discovery hands the track to gRPC with each address.
// The edge (the gateway) decides per request which services' canaries it
// goes to: a tester's X-Canary header, or the weight set for the service in
// Consul KV, sticky per caller (Decide). The decision travels in the
// "golden-canary" gRPC metadata (the interceptors), so every hop of the
// request stays on its track, and the "golden_track" load balancer picks an
// instance of the right track for each call, falling back to stable where
// a service has no ready canary.
package canary
