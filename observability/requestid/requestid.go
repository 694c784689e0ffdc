// Package requestid creates, validates and carries the request ID that joins
// one request's logs and spans across services.
//
// The gateway creates an ID for every request, or keeps a well-formed one sent
// by the client in the X-Request-ID header; anything else is replaced, never
// trusted, because the ID ends up in log queries and span attributes. Inside
// the system the ID travels in the gRPC metadata key x-request-id.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

const (
	// HeaderName is the HTTP header that carries the request ID at the edge.
	HeaderName = "X-Request-ID"
	// MetadataKey is the gRPC metadata key that carries the request ID between services.
	MetadataKey = "x-request-id"
	// MaxLength bounds an accepted request ID.
	MaxLength = 64
	// minLength keeps accepted IDs long enough to be unique in practice.
	minLength = 8
)

type ctxKey struct{}

// New returns a fresh random request ID: 32 lowercase hex digits.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// Valid reports whether id may be accepted from a client: 8 to 64 characters
// from [A-Za-z0-9._-], starting with a letter or digit. The set excludes
// everything with meaning in log query languages (quotes, spaces, colons,
// wildcards, backslashes) so an accepted ID can be searched for verbatim.
func Valid(id string) bool {
	if len(id) < minLength || len(id) > MaxLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// OrNew returns id when it is Valid and a fresh ID otherwise.
func OrNew(id string) string {
	if Valid(id) {
		return id
	}
	return New()
}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request ID in ctx, or "" when there is none.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}
