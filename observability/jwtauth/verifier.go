package jwtauth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors returned by Verifier.Verify. Every error Verify returns for a bad
// token matches exactly one of them with errors.Is; the jwt library error
// that caused it, if any, is reachable with errors.Is and errors.As too but
// never appears in the message, so messages are safe to send to clients.
var (
	// ErrMissingToken means no token was presented.
	ErrMissingToken = errors.New("missing access token")
	// ErrMalformedToken means the token is not a well-formed JWT.
	ErrMalformedToken = errors.New("malformed access token")
	// ErrAlgorithm means the token is signed with an algorithm other than
	// EdDSA, including "none" and HMAC.
	ErrAlgorithm = errors.New("access token signing algorithm not allowed, only EdDSA is accepted")
	// ErrSignature means the signature does not verify with the configured
	// public key: the token was altered or signed by another key.
	ErrSignature = errors.New("access token signature is invalid")
	// ErrExpired means the token's exp lies in the past.
	ErrExpired = errors.New("access token has expired")
	// ErrNotYetValid means the token's nbf or iat lies in the future.
	ErrNotYetValid = errors.New("access token is not valid yet")
	// ErrIssuer means the token was issued by someone else.
	ErrIssuer = errors.New("access token has the wrong issuer")
	// ErrAudience means the token is meant for someone else.
	ErrAudience = errors.New("access token has the wrong audience")
	// ErrMissingClaim means a required claim (exp, iss, aud or sub) is
	// absent; the message names the claim.
	ErrMissingClaim = errors.New("access token lacks a required claim")
	// ErrInvalidClaims means the claims are invalid in some other way.
	ErrInvalidClaims = errors.New("access token has invalid claims")
)

// errNotConfigured reports a Verifier without issuer or audience. It fails
// closed: skipping those checks would accept tokens minted for other
// deployments or services.
var errNotConfigured = errors.New("jwtauth: verifier needs an issuer and an audience")

// DefaultLeeway is the clock skew Verify tolerates on exp, nbf and iat
// unless WithLeeway says otherwise. It is small because access tokens are
// short-lived and all services share NTP-synchronized clocks.
const DefaultLeeway = 5 * time.Second

// maxTokenLength bounds the tokens Verify parses, so that a huge header
// cannot make the server decode megabytes of base64 and JSON. Our tokens are
// about 400 bytes.
const maxTokenLength = 8 << 10

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	key      ed25519.PublicKey
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	parser   *jwt.Parser
	cache    verifiedCache
}

// NewVerifier returns a Verifier that accepts only EdDSA tokens signed by
// key, issued by issuer and meant for audience. Issuer and audience must not
// be empty: a Verifier without them, or without a valid key, rejects every
// token with a configuration error rather than skip the check. Of the
// options, it reads WithClock and WithLeeway.
func NewVerifier(key ed25519.PublicKey, issuer, audience string, opts ...Option) *Verifier {
	o := newOptions(opts)
	v := &Verifier{key: key, issuer: issuer, audience: audience, leeway: o.leeway, now: o.now}
	v.parser = jwt.NewParser(
		// The allow list is what defeats "alg: none" and the HS256 trick
		// of using the public key as an HMAC secret.
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		// RFC 7515 tokens carry no padding and no stray bits; being
		// strict keeps one token from having several spellings.
		jwt.WithStrictDecoding(),
	)
	return v
}

// Verify checks the signature and claims of token and returns its claims.
// Errors for bad tokens match one of the Err variables of this package and
// never contain the token.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if v == nil || len(v.key) != ed25519.PublicKeySize {
		return nil, errNoKey
	}
	if v.issuer == "" || v.audience == "" {
		return nil, errNotConfigured
	}
	if token == "" {
		return nil, &VerifyError{kind: ErrMissingToken}
	}
	if len(token) > maxTokenLength {
		return nil, &VerifyError{kind: ErrMalformedToken, detail: "too long"}
	}
	now := v.now()
	if c, ok := v.cache.get(token, now); ok {
		return c, nil
	}
	claims := &Claims{}
	parsed, err := v.parser.ParseWithClaims(token, claims, v.keyFunc)
	if err != nil {
		return nil, classify(err, parsed, claims)
	}
	if claims.Subject == "" {
		return nil, &VerifyError{kind: ErrMissingClaim, detail: "sub"}
	}
	if err := checkClaimTypes(token); err != nil {
		return nil, err
	}
	v.cache.put(token, claims, claims.ExpiresAt.Add(v.leeway), now)
	return claims, nil
}

// claimKinds are the JSON types the claims golden reads must have:
// golang-jwt accepts a NumericDate sent as a string ("exp":"1700000000"),
// and a claim of an unexpected type is a token nobody here signed.
var claimKinds = map[string]string{
	"exp": "number", "nbf": "number", "iat": "number",
	"iss": "string", "sub": "string", "jti": "string", "username": "string",
	"aud": "string or array",
}

// checkClaimTypes refuses a token whose claims, as sent, have other JSON
// types than claimKinds says. It runs after the signature check, on the
// payload that signature covered.
func checkClaimTypes(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return &VerifyError{kind: ErrMalformedToken}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return &VerifyError{kind: ErrMalformedToken}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return &VerifyError{kind: ErrMalformedToken}
	}
	for name, kind := range claimKinds {
		v, ok := raw[name]
		if !ok {
			continue
		}
		var first byte
		if t := bytes.TrimSpace(v); len(t) > 0 {
			first = t[0]
		}
		number := first == '-' || first >= '0' && first <= '9'
		ok = kind == "number" && number || kind == "string" && first == '"' ||
			kind == "string or array" && (first == '"' || first == '[')
		if !ok {
			return &VerifyError{kind: ErrMalformedToken, detail: "claim " + name + " must be a JSON " + kind}
		}
	}
	return nil
}

// verifiedCacheSize bounds the tokens remembered as verified: a few
// thousand active sessions, each a few hundred bytes.
const verifiedCacheSize = 4096

// verifiedCache remembers tokens that passed every check until they expire.
// An Ed25519 verification costs about 70 µs of CPU, the largest part of the
// instrumented request path, and a client presents the same access token on
// every call until it expires. The issuer, audience and key are fixed per
// Verifier, so a passed token stays valid until its exp (plus leeway); the
// exact token string is the key, so no other spelling can hit an entry.
type verifiedCache struct {
	mu sync.Mutex
	m  map[string]verifiedEntry
}

type verifiedEntry struct {
	claims  Claims
	expires time.Time
}

// get returns a copy of the claims of a remembered token still valid at now.
func (c *verifiedCache) get(token string, now time.Time) (*Claims, bool) {
	c.mu.Lock()
	e, ok := c.m[token]
	if ok && !now.Before(e.expires) {
		delete(c.m, token)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	cl := e.claims
	cl.Audience = slices.Clone(cl.Audience)
	return &cl, true
}

// put remembers a verified token until expires, making room by dropping
// expired entries, or all of them when every one is still valid.
func (c *verifiedCache) put(token string, claims *Claims, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]verifiedEntry)
	}
	if len(c.m) >= verifiedCacheSize {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= verifiedCacheSize {
			clear(c.m)
		}
	}
	cl := *claims
	cl.Audience = slices.Clone(cl.Audience)
	c.m[token] = verifiedEntry{claims: cl, expires: expires}
}

// keyFunc hands the parser the public key. It re-checks the algorithm even
// though WithValidMethods already did, so that the key can never reach
// another algorithm's verification code even if the parser options change.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodEdDSA {
		return nil, ErrAlgorithm
	}
	return v.key, nil
}

// VerifyError is the error Verify returns for a bad token. Its message is
// one of the Err variables of this package, sometimes with a short detail
// such as the missing claim's name; it is meant to be shown to clients.
type VerifyError struct {
	kind   error
	detail string
	cause  error
}

// Error implements error. It leaves out the underlying jwt error, whose
// messages can quote pieces of the token.
func (e *VerifyError) Error() string {
	if e.detail == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.detail
}

// Unwrap returns the package sentinel and, if there is one, the jwt library
// error that caused it.
func (e *VerifyError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// classify maps a jwt parse error to a VerifyError. The parser reports the
// rejected algorithm only in its message, so the token header is consulted
// to tell a wrong algorithm from a bad signature.
func classify(err error, token *jwt.Token, claims *Claims) error {
	e := &VerifyError{cause: err}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		e.kind = ErrMalformedToken
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, ErrAlgorithm):
		// The parser says unverifiable when alg is absent or unknown.
		e.kind, e.detail = ErrAlgorithm, algName(token)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if token != nil && token.Method != jwt.SigningMethodEdDSA {
			e.kind, e.detail = ErrAlgorithm, algName(token)
		} else {
			e.kind = ErrSignature
		}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		e.kind, e.detail = ErrMissingClaim, missingClaim(claims)
	// Identity mismatches go before time problems: a token for another
	// service that also expired is better explained by the former.
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		e.kind = ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		e.kind = ErrAudience
	case errors.Is(err, jwt.ErrTokenExpired):
		e.kind = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		e.kind = ErrNotYetValid
	default:
		e.kind = ErrInvalidClaims
	}
	return e
}

// algName returns the token's alg header for an error message, quoted, but
// only if it names an algorithm the jwt library knows: the header is
// attacker-controlled, and echoing arbitrary text back is not useful.
func algName(token *jwt.Token) string {
	if token == nil {
		return ""
	}
	alg, ok := token.Header["alg"].(string)
	switch {
	case !ok || alg == "":
		return "alg header missing"
	case jwt.GetSigningMethod(alg) == nil:
		return "unknown alg"
	default:
		return `got "` + alg + `"`
	}
}

// missingClaim names the first required claim absent from claims. The
// parser decodes claims before validating them, so they are filled in even
// when validation failed.
func missingClaim(c *Claims) string {
	switch {
	case c.ExpiresAt == nil:
		return "exp"
	case c.Issuer == "":
		return "iss"
	case len(c.Audience) == 0 || len(c.Audience) == 1 && c.Audience[0] == "":
		return "aud"
	default:
		return "unknown"
	}
}
