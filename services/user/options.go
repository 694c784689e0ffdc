package user

import (
	"time"

	"golang.org/x/crypto/bcrypt"
)

// options holds what Option sets. NewMemoryStore, NewPostgresStore and
// NewServer each read the fields they need, so one Option type serves all
// three.
type options struct {
	now         func() time.Time
	bcryptCost  int
	healthy     func() bool
	defaultPage int
	maxPage     int
}

// newOptions returns the defaults with opts applied; nil options are
// skipped.
func newOptions(opts []Option) options {
	o := options{
		now:         time.Now,
		bcryptCost:  bcrypt.DefaultCost,
		healthy:     func() bool { return true },
		defaultPage: DefaultPageSize,
		maxPage:     MaxPageSize,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Option configures a MemoryStore, a PostgresStore or a Server. Each option
// says which constructors read it; the others ignore it.
type Option func(*options)

// WithClock sets the clock a MemoryStore or PostgresStore uses for CreatedAt
// and UpdatedAt, so tests can use fixed times. A nil now keeps time.Now.
// IDs still come from the real clock because their order must follow
// actual creation order. NewServer ignores it.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithBcryptCost sets the bcrypt cost of a Server's new password hashes.
// Values outside [bcrypt.MinCost, bcrypt.MaxCost] are ignored (the
// default, bcrypt.DefaultCost, stays) rather than failing later on every
// CreateUser. The stores ignore it.
func WithBcryptCost(cost int) Option {
	return func(o *options) {
		if cost >= bcrypt.MinCost && cost <= bcrypt.MaxCost {
			o.bcryptCost = cost
		}
	}
}

// WithHealth sets the function a Server's HealthCheck consults; nil is
// ignored. The default always reports serving. The stores ignore it.
func WithHealth(healthy func() bool) Option {
	return func(o *options) {
		if healthy != nil {
			o.healthy = healthy
		}
	}
}

// WithPageSizes sets the ListUsers page size a Server uses when the request
// asks for 0 and the largest one it allows. Non-positive values are
// ignored, and a default above the maximum is lowered to it. The stores
// ignore it.
func WithPageSizes(def, maxSize int) Option {
	return func(o *options) {
		if maxSize > 0 {
			o.maxPage = maxSize
		}
		if def > 0 {
			o.defaultPage = def
		}
	}
}
