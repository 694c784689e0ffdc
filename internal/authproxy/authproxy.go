// Package authproxy puts a sign-in in front of a server that has none:
// HTTP basic auth checked against bcrypt hashes kept in the web
// configuration format of Prometheus and Alertmanager (`golden web-config`
// writes it), for HTTP/1.1 and for HTTP/2 without TLS, so that a web
// interface and a gRPC API (Jaeger's, which cannot authenticate) can both
// sit behind it. Only what passes the check is forwarded, without the
// Authorization header.
package authproxy

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// Realm is the realm of the WWW-Authenticate challenge.
const Realm = "golden"

// maxCached bounds the remembered good sign-ins: bcrypt is slow on purpose,
// and a web page loads dozens of files, each with the same header.
const maxCached = 64

// WebConfig is the part of a web configuration file (Prometheus's and
// Alertmanager's --web.config.file, the exporter-toolkit format) that holds
// the sign-ins: user name to bcrypt hash. `golden web-config` writes it;
// LoadUsers reads it.
type WebConfig struct {
	BasicAuthUsers map[string]string `yaml:"basic_auth_users"`
}

// LoadUsers reads the basic_auth_users of a web configuration file (user
// name to bcrypt hash). An empty list is an error: a sign-in nobody passes
// is a mistake, not a lock.
func LoadUsers(file string) (map[string]string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("authproxy: %w", err)
	}
	var cfg WebConfig
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("authproxy: %s: %w", file, err)
	}
	if len(cfg.BasicAuthUsers) == 0 {
		return nil, fmt.Errorf("authproxy: %s has no basic_auth_users", file)
	}
	for user, hash := range cfg.BasicAuthUsers {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("authproxy: %s: user %q: not a bcrypt hash", file, user)
		}
	}
	return cfg.BasicAuthUsers, nil
}

// Proxy forwards signed-in requests to one upstream.
type Proxy struct {
	users map[string]string
	rp    *httputil.ReverseProxy

	mu   sync.Mutex
	good map[[sha256.Size]byte]bool
}

// New returns a proxy to upstream for users (name to bcrypt hash).
// upstream's scheme is http, or h2c for an upstream that speaks only
// HTTP/2 without TLS (a gRPC server).
func New(upstream *url.URL, users map[string]string) (*Proxy, error) {
	if len(users) == 0 {
		return nil, errors.New("authproxy: no users")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	target := *upstream
	switch upstream.Scheme {
	case "http":
	case "h2c":
		target.Scheme = "http"
		transport.Protocols = new(http.Protocols)
		transport.Protocols.SetUnencryptedHTTP2(true)
	default:
		return nil, fmt.Errorf("authproxy: upstream %q: scheme must be http or h2c", upstream.Redacted())
	}
	if target.Host == "" {
		return nil, fmt.Errorf("authproxy: upstream %q has no host", upstream.Redacted())
	}
	p := &Proxy{users: users, good: map[[sha256.Size]byte]bool{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&target)
			r.Out.Host = r.In.Host
			r.Out.Header.Del("Authorization")
		},
		Transport: transport,
		// gRPC streams and the UI's long responses pass as they come.
		FlushInterval: -1,
	}
	return p, nil
}

// ServeHTTP forwards r when it carries a good sign-in, and answers 401 with
// a challenge otherwise.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, password, ok := r.BasicAuth()
	if !ok || !p.allowed(user, password) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
		http.Error(w, "sign-in required", http.StatusUnauthorized)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// allowed checks user and password against the hashes, remembering good
// pairs (by their SHA-256, never in clear) so that bcrypt runs once per
// pair. Bad pairs are not remembered: each costs a bcrypt.
func (p *Proxy) allowed(user, password string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + password))
	p.mu.Lock()
	hit := p.good[key]
	p.mu.Unlock()
	if hit {
		return true
	}
	hash, known := p.users[user]
	if !known {
		// The same work as for a known user, so that timing does not
		// tell which names exist.
		hash = dummyHash()
	}
	ok := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil && known
	if ok {
		p.mu.Lock()
		if len(p.good) >= maxCached {
			clear(p.good)
		}
		p.good[key] = true
		p.mu.Unlock()
	}
	return ok
}

// dummyHash is a bcrypt hash (cost 10) of a random value nobody knows,
// made on first use rather than at start of every golden command.
var dummyHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), bcrypt.DefaultCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})
