// Package authv1 holds the Go code generated from golden/auth/v1/auth.proto
// (`make generate`): the AuthService client and server interfaces and their
// messages.
package authv1
