// Package userv1 holds the Go code generated from golden/user/v1/user.proto
// (`make generate`): the UserService client and server interfaces and their
// messages.
package userv1
