package jwtauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of an access token: the registered claims, with the
// subject (sub) holding the user ID, plus the username for display and
// logging.
type Claims struct {
	jwt.RegisteredClaims
	// Username is the login name of the user the token was issued to.
	Username string `json:"username,omitempty"`
}

// DefaultAccessTokenTTL is the access token lifetime NewSigner uses when
// given a non-positive one. Access tokens cannot be revoked, so they are
// kept short; refresh tokens carry the long-lived session.
const DefaultAccessTokenTTL = 15 * time.Minute

// jtiBytes is the size of the random token ID. 128 bits make collisions
// negligible, so the ID can key a deny list or an audit log.
const jtiBytes = 16

// Signer issues access tokens. It is safe for concurrent use.
type Signer struct {
	key      ed25519.PrivateKey
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewSigner returns a Signer that signs with key and stamps every token with
// issuer (iss), audience (aud) and a lifetime of ttl, or
// DefaultAccessTokenTTL if ttl is not positive. An invalid key is not
// reported here but by every call to Sign, so wiring code stays simple and
// still cannot issue tokens by mistake. Of the options, it reads WithClock.
func NewSigner(key ed25519.PrivateKey, issuer, audience string, ttl time.Duration, opts ...Option) *Signer {
	if ttl <= 0 {
		ttl = DefaultAccessTokenTTL
	}
	o := newOptions(opts)
	return &Signer{key: key, issuer: issuer, audience: audience, ttl: ttl, now: o.now}
}

// Sign returns a new access token for the user with ID subject and the given
// username, and the time it expires. The token carries iss, aud, sub, iat,
// nbf, exp and a random jti, and its header names alg EdDSA and typ JWT.
func (s *Signer) Sign(subject, username string) (token string, expiresAt time.Time, err error) {
	if s == nil || len(s.key) != ed25519.PrivateKeySize {
		return "", time.Time{}, errNoKey
	}
	if subject == "" {
		// A token without a subject would be rejected by every Verifier;
		// failing here points at the caller instead.
		return "", time.Time{}, errors.New("jwtauth: cannot sign an access token without a subject")
	}
	jti := make([]byte, jtiBytes)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, fmt.Errorf("jwtauth: generate token ID: %w", err)
	}
	now := s.now()
	// NumericDate truncates to whole seconds; returning the truncated
	// value keeps expiresAt equal to what the token says.
	exp := jwt.NewNumericDate(now.Add(s.ttl))
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{s.audience},
			ExpiresAt: exp,
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
		Username: username,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("jwtauth: sign access token: %w", err)
	}
	return signed, exp.Time, nil
}
