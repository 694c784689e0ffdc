package testbackend

import (
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/devstack"
)

// consulStartTimeout bounds how long a dev agent may take to elect itself
// leader (about 3s here).
const consulStartTimeout = 30 * time.Second

// Consul is a Consul dev agent (in-memory state, HTTP API only, no DNS or
// gRPC ports) on loopback ports chosen once, so that it can be started
// late or restarted where clients expect it.
type Consul struct {
	// HTTPAddr is the host:port of the agent's HTTP API.
	HTTPAddr string
	// ManagementToken is the secret of the agent's management token, when
	// it has ACLs (NewConsulWithACLs).
	ManagementToken string
	bin             string
	args            []string
	proc            *Process
}

// NewConsul picks free loopback ports for a dev agent without starting it,
// for tests of what happens while Consul is not there yet. It skips the test
// when Consul is not installed.
func NewConsul(t testing.TB) *Consul {
	t.Helper()
	bin := Binary(t, "consul")
	ports := freePorts(t, 4)
	c := &Consul{HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), bin: bin}
	c.args = []string{
		"agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(ports[0]),
		"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
		"-serf-lan-port", strconv.Itoa(ports[1]),
		"-serf-wan-port", strconv.Itoa(ports[2]),
		"-server-port", strconv.Itoa(ports[3]),
		"-log-level", "info",
	}
	return c
}

// ACLConfig is the ACL block of docker-compose.yml's Consul (consul/consul.hcl):
// the ACL system on, everything denied that no token allows. Without its
// enable_token_persistence: a dev agent has no data folder and would write
// the agent's token to acl-tokens.json in the working directory, and it
// loses every token on a restart anyway.
const ACLConfig = `acl { enabled = true default_policy = "deny" }`

// NewConsulWithACLs is NewConsul with ACLConfig and, as docker-compose.yml
// gives it, a management token of the operator's choosing
// (acl.tokens.initial_management), ManagementToken.
func NewConsulWithACLs(t testing.TB) *Consul {
	t.Helper()
	c := NewConsul(t)
	c.ManagementToken = UUID(t)
	c.args = append(c.args, "-hcl", ACLConfig, "-hcl", fmt.Sprintf(`acl { tokens { initial_management = %q } }`, c.ManagementToken))
	return c
}

// UUID returns a random version 4 UUID, the form of a Consul token.
func UUID(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// StartConsul starts a dev agent on free loopback ports, waits until it has
// elected itself leader, and returns its HTTP address. It stops when the
// test ends.
func StartConsul(t testing.TB) (httpAddr string, p *Process) {
	t.Helper()
	c := NewConsul(t)
	c.Start(t)
	return c.HTTPAddr, c.proc
}

// Start starts the agent and waits until it has a leader. A fresh agent
// knows no services: -dev keeps its state in memory.
func (c *Consul) Start(t testing.TB) {
	t.Helper()
	if c.proc != nil && !c.proc.Exited() {
		t.Fatal("testbackend: Consul is already running")
	}
	c.proc = Start(t, c.bin, c.args...)
	c.proc.WaitFor(t, consulStartTimeout, devstack.ConsulLeader(c.HTTPAddr))
}

// Stop stops the agent, if running.
func (c *Consul) Stop() {
	if c.proc != nil {
		c.proc.Stop()
	}
}

// Restart stops the agent and starts a fresh one on the same ports, as
// when Consul restarts and loses every registration.
func (c *Consul) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	c.Start(t)
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago (FreePort never returns a port twice).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = FreePort(t)
	}
	return ports
}
