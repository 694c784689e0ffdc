// Package consulacl sets up the ACL system of a Consul agent whose
// configuration has ACLs on, default deny, and a management token chosen by
// the operator (acl.tokens.initial_management): it creates golden's policies
// and tokens, one per golden service (register itself, read the catalog,
// read its own fault prefix), one for Prometheus (read the catalog and the
// agent's metrics), one for the operator's `golden fault` (write the fault
// prefix) and one for the agent itself. Running it again changes only what
// differs, and keeps every token's secret.
package consulacl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

// Names of the policies and tokens Apply creates, beside ServicePolicy's.
const (
	AgentPolicy      = "golden-agent"
	PrometheusPolicy = "golden-prometheus"
	OperatorPolicy   = "golden-operator"
	// CanaryGuardPolicy is `golden canary guard`'s: it rolls canaries back.
	CanaryGuardPolicy = "golden-canary-guard"
)

// ServicePolicy returns the name of service's policy (and token).
func ServicePolicy(service string) string { return "golden-service-" + service }

// Plan is what Apply sets up.
type Plan struct {
	// Services are the golden services that get a token each.
	Services []string
	// FaultPrefix is the KV prefix of the faults (fault.DefaultPrefix),
	// ending in "/": service S may read FaultPrefix+S+"/".
	FaultPrefix string
	// CanaryPrefix is the KV prefix of the canary weights
	// (canary.KVPrefix): every service may read it (the gateway routes
	// with it), the operator and the canary guard may write it. Empty: no
	// such rights, and no guard token.
	CanaryPrefix string
	// Secrets are secrets (UUIDs) chosen outside, by token name
	// (ServicePolicy(s), PrometheusPolicy, CanaryGuardPolicy), for where a
	// token must be known before Consul runs (Kubernetes Secrets). A token
	// given one gets it, replacing a token with another secret; the others
	// get a secret from Consul, which a rerun keeps.
	Secrets map[string]string
	// OperatorSecret is the secret of the operator's token, a UUID chosen
	// outside (docker-compose.yml takes it from .env), so that the
	// operator knows it without reading it back from Consul. Empty: no
	// operator token.
	OperatorSecret string
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidSecret reports whether s has the form Consul requires of a token's
// secret: a UUID.
func ValidSecret(s string) bool { return uuidPattern.MatchString(s) }

// Tokens are the secrets of the tokens Apply made or found.
type Tokens struct {
	// Services maps each service of the plan to its token's secret.
	Services map[string]string
	// Prometheus is the secret of Prometheus's read-only token.
	Prometheus string
	// CanaryGuard is the secret of the canary guard's token ("" without
	// Plan.CanaryPrefix).
	CanaryGuard string
}

// Rules returns the policies of p by name, in Consul's HCL rule language.
func (p Plan) Rules() map[string]string {
	rules := map[string]string{
		// The agent's own token: it registers its node and keeps the
		// catalog in sync with the services registered with it.
		AgentPolicy: `node_prefix "" { policy = "write" }
service_prefix "" { policy = "read" }
`,
		// consul_sd reads the catalog and health; the consul job reads
		// /v1/agent/metrics, which needs agent read.
		PrometheusPolicy: `service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
agent_prefix "" { policy = "read" }
`,
	}
	canaryRule := func(policy string) string {
		if p.CanaryPrefix == "" {
			return ""
		}
		return fmt.Sprintf("key_prefix %q { policy = %q }\n", p.CanaryPrefix, policy)
	}
	if p.OperatorSecret != "" {
		rules[OperatorPolicy] = fmt.Sprintf(`key_prefix %q { policy = "write" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
`, p.FaultPrefix) + canaryRule("write")
	}
	if p.CanaryPrefix != "" {
		rules[CanaryGuardPolicy] = canaryRule("write")
	}
	for _, s := range p.Services {
		// Register and deregister instances of this service only; find
		// peers through the catalog and health; follow its own faults and
		// the canary weights.
		rules[ServicePolicy(s)] = fmt.Sprintf(`service %q { policy = "write" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
key_prefix %q { policy = "read" }
`, s, p.FaultPrefix+s+"/") + canaryRule("read")
	}
	return rules
}

// ErrNotManagement is CheckManagement's error when the agent knows the
// token given but it is not a management token.
var ErrNotManagement = errors.New("consulacl: the token given is not a management token")

// CheckManagement checks that secret is a management token of the agent
// client talks to. Consul creates the token named by its configuration's
// acl.tokens.initial_management (docker-compose.yml sets it from .env) once
// a leader is elected, and then refuses any other bootstrap: so it is
// chosen by the operator, and nobody can bootstrap the ACL system before
// golden does. A token Consul does not know yet answers 403 "ACL not found"
// (retry: the leader may not have made it yet); ACLs off answer 401.
func CheckManagement(ctx context.Context, client *api.Client, secret string) error {
	self, _, err := client.ACL().TokenReadSelf((&api.QueryOptions{Token: secret}).WithContext(ctx))
	var se api.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusUnauthorized:
		return fmt.Errorf("consulacl: %w (is acl.enabled = true in the agent's configuration?)", err)
	case err != nil:
		return fmt.Errorf("consulacl: read the management token: %w", err)
	case !slices.ContainsFunc(self.Policies, func(l *api.ACLTokenPolicyLink) bool { return l.Name == "global-management" }):
		return ErrNotManagement
	}
	return nil
}

// Apply creates or updates p's policies and tokens through client, which
// must present a management token, and makes the agent use its token. It
// returns the tokens' secrets.
func Apply(ctx context.Context, client *api.Client, p Plan) (Tokens, error) {
	for _, s := range p.Services {
		if s == "" || strings.ContainsAny(s, "\"\\ \t\r\n") {
			return Tokens{}, fmt.Errorf("consulacl: %q is not a service name", s)
		}
	}
	if p.OperatorSecret != "" && !ValidSecret(p.OperatorSecret) {
		return Tokens{}, errors.New("consulacl: the operator token's secret must be a UUID")
	}
	for name, secret := range p.Secrets {
		if !ValidSecret(secret) {
			return Tokens{}, fmt.Errorf("consulacl: the secret chosen for token %s must be a UUID", name)
		}
	}
	acl := client.ACL()
	w := (&api.WriteOptions{}).WithContext(ctx)
	for name, rules := range p.Rules() {
		if err := ensurePolicy(ctx, acl, name, rules); err != nil {
			return Tokens{}, err
		}
	}
	tokens := Tokens{Services: map[string]string{}}
	var err error
	for _, s := range p.Services {
		if tokens.Services[s], err = ensureToken(ctx, acl, ServicePolicy(s), p.Secrets[ServicePolicy(s)]); err != nil {
			return Tokens{}, err
		}
	}
	if tokens.Prometheus, err = ensureToken(ctx, acl, PrometheusPolicy, p.Secrets[PrometheusPolicy]); err != nil {
		return Tokens{}, err
	}
	if p.OperatorSecret != "" {
		if _, err = ensureToken(ctx, acl, OperatorPolicy, p.OperatorSecret); err != nil {
			return Tokens{}, err
		}
	}
	if p.CanaryPrefix != "" {
		if tokens.CanaryGuard, err = ensureToken(ctx, acl, CanaryGuardPolicy, p.Secrets[CanaryGuardPolicy]); err != nil {
			return Tokens{}, err
		}
	}
	agent, err := ensureToken(ctx, acl, AgentPolicy, "")
	if err != nil {
		return Tokens{}, err
	}
	// Persisted by the agent (acl.enable_token_persistence), so a
	// restarted agent keeps it.
	if _, err := client.Agent().UpdateAgentACLToken(agent, w); err != nil {
		return Tokens{}, fmt.Errorf("consulacl: set the agent's token: %w", err)
	}
	return tokens, nil
}

// ensurePolicy creates the policy name with rules, or updates it when its
// rules differ.
func ensurePolicy(ctx context.Context, acl *api.ACL, name, rules string) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	w := (&api.WriteOptions{}).WithContext(ctx)
	have, _, err := acl.PolicyReadByName(name, q)
	if err != nil && !notFound(err) {
		return fmt.Errorf("consulacl: read policy %s: %w", name, err)
	}
	switch {
	case have == nil:
		_, _, err = acl.PolicyCreate(&api.ACLPolicy{Name: name, Description: "golden: " + name, Rules: rules}, w)
	case have.Rules != rules:
		have.Rules = rules
		_, _, err = acl.PolicyUpdate(have, w)
	}
	if err != nil {
		return fmt.Errorf("consulacl: write policy %s: %w", name, err)
	}
	return nil
}

// ensureToken makes sure the token of policy name exists, linked to that
// policy only, and returns its secret. Its AccessorID is derived from name,
// so a rerun finds it. With secret set, the token must have that secret:
// one with another secret is replaced (Consul cannot change a secret).
func ensureToken(ctx context.Context, acl *api.ACL, name, secret string) (string, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	w := (&api.WriteOptions{}).WithContext(ctx)
	accessor := AccessorID(name)
	want := []*api.ACLTokenPolicyLink{{Name: name}}
	have, _, err := acl.TokenRead(accessor, q)
	if err != nil && !notFound(err) {
		return "", fmt.Errorf("consulacl: read token %s: %w", name, err)
	}
	if have != nil && secret != "" && have.SecretID != secret {
		if _, err := acl.TokenDelete(accessor, w); err != nil {
			return "", fmt.Errorf("consulacl: replace token %s: %w", name, err)
		}
		have = nil
	}
	if have == nil {
		made, _, err := acl.TokenCreate(&api.ACLToken{AccessorID: accessor, SecretID: secret, Description: "golden: " + name, Policies: want}, w)
		if err != nil {
			return "", fmt.Errorf("consulacl: create token %s: %w", name, err)
		}
		return made.SecretID, nil
	}
	if len(have.Policies) != 1 || have.Policies[0].Name != name || len(have.Roles) != 0 || len(have.ServiceIdentities) != 0 || len(have.NodeIdentities) != 0 {
		have.Policies, have.Roles, have.ServiceIdentities, have.NodeIdentities = want, nil, nil, nil
		if _, _, err := acl.TokenUpdate(have, w); err != nil {
			return "", fmt.Errorf("consulacl: update token %s: %w", name, err)
		}
	}
	return have.SecretID, nil
}

// AccessorID returns the AccessorID Apply gives the token of policy name: a
// UUID made from the name, so that the same token is found on every run.
// AccessorIDs are not secret: they name a token, they do not grant it.
func AccessorID(name string) string {
	h := sha256.Sum256([]byte("golden consul token " + name))
	h[6] = h[6]&0x0f | 0x80 // version 8: custom
	h[8] = h[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// notFound reports whether err is Consul saying that an ACL object does
// not exist (403 "ACL not found" in older versions, 404 in newer ones).
func notFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && (se.Code == http.StatusNotFound || (se.Code == http.StatusForbidden && strings.Contains(se.Body, "not found")))
}
