package auth

import "time"

// options holds what Option sets. NewRefreshStore and NewServer each read
// the fields they need, so one Option type serves both.
type options struct {
	now func() time.Time
}

// newOptions returns the defaults with opts applied; nil options are
// skipped.
func newOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Option configures a RefreshStore or a Server.
type Option func(*options)

// WithClock makes a RefreshStore or a Server read the current time from now
// instead of time.Now, so tests can expire refresh tokens and pin the time
// HealthCheck reports. A nil now keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}
