// Package jwtauth signs and verifies the access tokens of golden services and
// enforces them on gRPC servers.
//
// Access tokens are JWTs signed with Ed25519 (JWS alg "EdDSA"). Only the auth
// service holds the private key and signs with a Signer; every other service
// verifies with the public key alone through a Verifier, so a compromised
// service cannot mint tokens. The Verifier accepts exactly one algorithm,
// which rules out the classic "alg: none" and HMAC-with-public-key
// confusions, and it requires exp, iss, aud and sub.
//
// Key files are the ones the pki package writes: a PKCS#8 PEM "PRIVATE KEY"
// block (token-signing.key) and a PKIX PEM "PUBLIC KEY" block
// (token-signing.pub); LoadPrivateKey and LoadPublicKey read them.
//
// UnaryServerInterceptor and StreamServerInterceptor require an
// "authorization: Bearer <token>" metadata entry on every method except the
// configured public ones and make the verified Claims available to handlers
// through FromContext.
package jwtauth
