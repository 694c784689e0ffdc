package security

import (
	"context"
	"crypto/x509"
	"net/url"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// IdentityURIPrefix starts the URI SAN that names a service in its certificate.
const IdentityURIPrefix = "spiffe://golden/"

type identityKey struct{}

// IdentityOf returns the identity a certificate names: the last path element
// of its spiffe://golden/ URI SAN, or its common name when it has none.
func IdentityOf(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if id, ok := plainIdentity(u); ok {
			return id
		}
		if s := u.String(); strings.HasPrefix(s, IdentityURIPrefix) {
			return strings.TrimPrefix(s, IdentityURIPrefix)
		}
	}
	return cert.Subject.CommonName
}

// plainIdentity reads the identity of the URI every golden certificate
// carries, spiffe://golden/<name> with a name of characters a URI never
// escapes, without building the URI's string: it is read on every RPC,
// several times. The identity is the one the string gives. ok is false for
// any other URI, whose string IdentityOf then reads.
func plainIdentity(u *url.URL) (id string, ok bool) {
	if u.Scheme != "spiffe" || u.Host != "golden" || u.Opaque != "" || u.User != nil ||
		u.RawPath != "" || u.ForceQuery || u.RawQuery != "" || u.Fragment != "" ||
		!strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	name := u.Path[1:]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return "", false
		}
	}
	return name, true
}

// PeerIdentity returns the identity of the caller of ctx's RPC, taken only from
// a client certificate that the TLS handshake verified against the CA; ok is
// false for a caller without one.
func PeerIdentity(ctx context.Context) (identity string, ok bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	id := IdentityOf(info.State.VerifiedChains[0][0])
	return id, id != ""
}

// NewContext returns ctx carrying the caller identity.
func NewContext(ctx context.Context, identity string) context.Context {
	return context.WithValue(ctx, identityKey{}, identity)
}

// IdentityFromContext returns the caller identity that the authorization
// interceptor put in ctx, or "" when there is none.
func IdentityFromContext(ctx context.Context) string {
	id, _ := ctx.Value(identityKey{}).(string)
	return id
}
