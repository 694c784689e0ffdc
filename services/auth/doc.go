// Package auth is the auth service: it logs users in, signing Ed25519 access
// tokens (JWT) that every other service verifies with the public key alone,
// and rotates opaque refresh tokens, single use, whose reuse revokes their
// whole family. It serves golden.auth.v1.AuthService over mutual TLS to the
// gateway and checks passwords by calling the user service.
//
// Refresh tokens live in memory (one instance) or in PostgreSQL, shared by
// every instance (--store postgres). The request path is written out in
// listenGRPC; New adds the server, its token store and the Consul
// registration.
package auth
