// Package user is the user service: golden's account store, and the only
// holder of password hashes. It serves golden.user.v1.UserService over
// mutual TLS to the gateway (sign-up, look-ups, listing, deletion of one's
// own account, each with the end user's access token) and to the auth
// service (VerifyCredentials, before any token exists).
//
// The request path is written out in ListenGRPC; New adds the server, its
// traced store (memory, or PostgreSQL shared by every instance) and
// the Consul registration.
package user
