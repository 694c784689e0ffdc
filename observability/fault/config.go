package fault

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/observability/config"
	"github.com/golden-stack/golden/observability/safetext"
)

// DefaultPrefix is the Consul KV prefix faults live under.
const DefaultPrefix = "golden/faults/"

// AllMethods is the method of a key whose fault applies to every method of
// the service that has no key of its own.
const AllMethods = "*"

// Config holds a service's fault injection settings. Faults also need
// Consul: without a Consul address no fault can be injected whatever these
// say.
type Config struct {
	// Enabled makes the service honour faults found in Consul; false turns
	// injection off entirely, as production deployments should.
	Enabled bool
	// Prefix is the KV prefix the service's keys are under.
	Prefix string
}

// DefaultConfig returns the defaults: faults honoured under DefaultPrefix.
func DefaultConfig() Config { return Config{Enabled: true, Prefix: DefaultPrefix} }

// RegisterFlags adds --faults and --fault-prefix to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.Enabled, "faults", c.Enabled, "honour the faults (errors, latency) set with golden fault set in Consul KV; false disables fault injection entirely, as in production")
	fs.StringVar(&c.Prefix, "fault-prefix", c.Prefix, "Consul KV prefix of the faults; this service reads <prefix><service>/<method>")
}

// Validate checks the settings. With faults off the prefix is not looked at.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	if _, err := NormalizePrefix(c.Prefix); err != nil {
		v.Check(false, "fault-prefix", "%v", err)
	}
}

// NormalizePrefix returns prefix without a leading "/" and with one
// trailing "/", as keys are built from it. It must be one or more segments
// of letters, digits, '.', '_' and '-'.
func NormalizePrefix(prefix string) (string, error) {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return "", errors.New("must not be empty")
	}
	if len(p) > 256 {
		return "", fmt.Errorf("must be at most 256 bytes, got %d", len(p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." || !validName(seg) {
			return "", fmt.Errorf("%q must be segments of letters, digits, '.', '_' and '-' separated by '/'", safetext.Line(prefix, 64))
		}
	}
	return p + "/", nil
}

// CheckService reports whether name can be a service in a key: 1 to 64
// letters, digits, '.', '_' and '-', not "." or "..".
func CheckService(name string) error {
	if name == "" || len(name) > 64 || name == "." || name == ".." || !validName(name) {
		return fmt.Errorf("%q is not a service name (1 to 64 letters, digits, '.', '_' or '-')", safetext.Line(name, 64))
	}
	return nil
}

// CheckMethod reports whether name can be a method in a key: AllMethods, or
// a protobuf RPC name (a letter or '_', then letters, digits and '_', at
// most 128).
func CheckMethod(name string) error {
	if name == AllMethods {
		return nil
	}
	ok := name != "" && len(name) <= 128
	for i, r := range name {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9')
	}
	if !ok {
		return fmt.Errorf("%q is not a method: give the short RPC name, such as GetUser, or %q for every method", safetext.Line(name, 64), AllMethods)
	}
	return nil
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Key returns the key of service's fault on method under prefix (which is
// normalized as NormalizePrefix does; pass a valid one).
func Key(prefix, service, method string) string {
	return strings.Trim(prefix, "/") + "/" + service + "/" + method
}

// SplitKey returns the service and method of key, a key under prefix, and
// whether key has that form with a valid service and method.
func SplitKey(prefix, key string) (service, method string, ok bool) {
	p := strings.Trim(prefix, "/") + "/"
	rest, found := strings.CutPrefix(key, p)
	if !found {
		return "", "", false
	}
	service, method, found = strings.Cut(rest, "/")
	if !found || CheckService(service) != nil || CheckMethod(method) != nil {
		return "", "", false
	}
	return service, method, true
}
