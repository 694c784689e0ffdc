package jwtauth

import "time"

// options holds what Option sets. NewSigner and NewVerifier each read the
// fields they need, so one Option type serves both.
type options struct {
	now    func() time.Time
	leeway time.Duration
}

// newOptions returns the defaults with opts applied; nil options are
// skipped.
func newOptions(opts []Option) options {
	o := options{now: time.Now, leeway: DefaultLeeway}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Option configures a Signer or a Verifier. Each option says which of the
// two reads it; the other ignores it, so one list can configure both.
type Option func(*options)

// WithClock makes the Signer or Verifier read the current time from now
// instead of time.Now, so tests can issue tokens at a fixed time and check
// expiry. A nil now keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithLeeway sets the clock skew a Verifier tolerates on exp, nbf and iat;
// negative values count as zero, and zero is a valid, strict setting. The
// default is DefaultLeeway. Signers ignore it.
func WithLeeway(d time.Duration) Option {
	return func(o *options) {
		o.leeway = max(d, 0)
	}
}
