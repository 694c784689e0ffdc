package integration

// Checks of the compose stack (docker-compose.yml, Dockerfile, .env files)
// that need no container engine: the file's structure and pins, its
// consistency with the rest of the repository, `docker compose config`
// validation, and the Dockerfile's build line producing a static binary.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/golden-stack/golden/internal/consulacl"
	"github.com/golden-stack/golden/internal/testbackend"
)

// composeMemoryBudget is what the whole stack may use: its containers'
// memory limits together stay below it (peers like the OpenTelemetry demo
// need ~6 GB, a common complaint). 4.75 GiB since PostgreSQL, the second
// auth instance, the canary user instance and its guard joined.
const composeMemoryBudget = 4864 << 20

// composeTestedImages maps each image whose backend the tests run (from
// scripts/install-backends.sh, internal/testbackend.Versions) to its
// testbackend name, the module version the tests build and the image tag
// of the same release. Bumping a backend means changing its row here, the
// image in docker-compose.yml and testbackend.Versions together.
var composeTestedImages = map[string]struct{ backend, module, tag string }{
	"hashicorp/consul":     {"consul", "v1.14.11", "1.14.11"},
	"prom/prometheus":      {"prometheus", "v0.307.3", "v3.7.3"}, // module v0.3MM.P is Prometheus 3.MM.P
	"prom/alertmanager":    {"alertmanager", "v0.28.1", "v0.28.1"},
	"jaegertracing/jaeger": {"jaeger", "v1.65.0", "2.2.0"}, // v1.65.0 ships Jaeger v2.2.0
	"axllent/mailpit":      {"mailpit", "v1.33.1", "v1.33.1"},
}

// composeUnpinnedImages are the images allowed without a
// major.minor.patch tag, and why.
var composeUnpinnedImages = map[string]string{
	"golden:local": "built from this repository's Dockerfile by `docker compose up --build`",
}

// composeOneShots are the init services (restart "no"): they run to
// completion and others wait for them. Every other service is long-running.
var composeOneShots = map[string]string{
	"volume-init":   "hands fresh volumes to the users of their images",
	"certs":         "creates or renews the CA, certificates and signing key",
	"consul-setup":  "creates Consul's ACL policies and writes each service's token",
	"web-auth":      "writes Prometheus's and Alertmanager's sign-in from .env",
	"graylog-setup": "creates Graylog's GELF inputs",
}

// composeNoHealthcheck are the long-running services without a healthcheck,
// and why.
var composeNoHealthcheck = map[string]string{
	"loadgen": "listens on no port: it only sends requests, and its effect is the gateway's traffic",
}

// composePublished is every port published to the host: the user-facing
// interfaces, the gateway and Jaeger's query API over gRPC (for `golden
// lookup`; Jaeger's two through jaeger-auth, its sign-in), each on
// 127.0.0.1 at the same port number.
var composePublished = map[string][]int{
	"gateway":      {8080},
	"grafana":      {3000},
	"prometheus":   {9090},
	"alertmanager": {9093},
	"jaeger-auth":  {16686, 16685},
	"graylog":      {9000},
	"consul":       {8500},
	"mailpit":      {8025},
}

// composePortVars name the variable each published port can be moved with
// (its default is the port itself).
var composePortVars = map[int]string{
	8080: "GATEWAY_PORT", 3000: "GRAFANA_PORT", 9090: "PROMETHEUS_PORT", 9093: "ALERTMANAGER_PORT",
	16686: "JAEGER_PORT", 16685: "JAEGER_GRPC_PORT", 9000: "GRAYLOG_PORT", 8500: "CONSUL_PORT", 8025: "MAILPIT_PORT",
}

// composeAdminPorts are the golden services' admin ports (README "Ports").
var composeAdminPorts = map[string]int{"gateway": 9100, "auth": 9101, "user": 9102}

// composeGoldenImage is the image of every golden service.
const composeGoldenImage = "golden:local"

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string              `yaml:"image"`
	Build       any                 `yaml:"build"`
	Command     composeStrings      `yaml:"command"`
	Restart     string              `yaml:"restart"`
	PullPolicy  string              `yaml:"pull_policy"`
	User        string              `yaml:"user"`
	Healthcheck *composeHealthcheck `yaml:"healthcheck"`
	MemLimit    string              `yaml:"mem_limit"`
	Deploy      struct {
		Resources struct {
			Limits struct {
				Memory string `yaml:"memory"`
			} `yaml:"limits"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
	Ports       []any          `yaml:"ports"`
	Volumes     []any          `yaml:"volumes"`
	DependsOn   composeDeps    `yaml:"depends_on"`
	Environment composeEnv     `yaml:"environment"`
	Entrypoint  composeStrings `yaml:"entrypoint"`
}

type composeHealthcheck struct {
	Test    composeStrings `yaml:"test"`
	Disable bool           `yaml:"disable"`
}

// composeStrings is a command-like field: a list, or a string split on spaces.
type composeStrings []string

func (s *composeStrings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// composeDeps is depends_on in either form: a list of names (condition
// service_started) or a map of name to {condition}.
type composeDeps map[string]string

func (d *composeDeps) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDeps{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, name := range l {
			(*d)[name] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, c := range m {
		if c.Condition == "" {
			c.Condition = "service_started"
		}
		(*d)[name] = c.Condition
	}
	return nil
}

// composeEnv is environment in either form: a map, or a list of KEY=VALUE.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		if v == nil {
			(*e)[k] = ""
		} else {
			(*e)[k] = fmt.Sprint(v)
		}
	}
	return nil
}

// composeRoot is the repository root.
func composeRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readRepoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal(readRepoFile(t, "docker-compose.yml"), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return f
}

// imageTag splits an image reference into repository and tag.
func imageTag(image string) (repo, tag string) {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i+1:]
	}
	return image, ""
}

// exactTag is a release tag with at least major.minor.patch, optionally
// v-prefixed and suffixed (1.14.11, v3.7.3, 7.0.14, 2.15.0-jammy).
var exactTag = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+._][0-9A-Za-z._-]+)?$`)

// TestComposeNeverPullsGoldenImage: golden:local exists in no registry;
// compose builds it once (the service with build: .) and must not try to
// pull it for the others.
func TestComposeNeverPullsGoldenImage(t *testing.T) {
	for name, s := range loadCompose(t).Services {
		if s.Image == composeGoldenImage && s.Build == nil && s.PullPolicy != "never" {
			t.Errorf("%s: runs %s without build: and pull_policy %q, want never", name, composeGoldenImage, s.PullPolicy)
		}
	}
}

func TestComposeImagesArePinned(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		if s.Image == "" {
			t.Errorf("%s: no image (a build needs image: %s too, so every golden service runs the same one)", name, composeGoldenImage)
			continue
		}
		if _, ok := composeUnpinnedImages[s.Image]; ok {
			continue
		}
		if strings.Contains(s.Image, "$") {
			t.Errorf("%s: image %q comes from a variable; pin it in the file", name, s.Image)
			continue
		}
		repo, tag := imageTag(s.Image)
		// PostgreSQL's releases have been major.minor since version 10.
		if repo == "postgres" && regexp.MustCompile(`^\d+\.\d+$`).MatchString(tag) {
			continue
		}
		if !exactTag.MatchString(tag) {
			t.Errorf("%s: image %q is not pinned to an exact release (want a tag like 1.2.3)", name, s.Image)
		}
	}
}

func TestComposeTestedBackendsMatchTestVersions(t *testing.T) {
	f := loadCompose(t)
	used := map[string]bool{}
	for name, s := range f.Services {
		repo, tag := imageTag(s.Image)
		want, ok := composeTestedImages[repo]
		if !ok {
			continue
		}
		used[repo] = true
		if got := testbackend.Versions[want.backend]; got != want.module {
			t.Errorf("testbackend.Versions[%q] = %q, but this test maps image %s:%s to module %s: update the table with the image",
				want.backend, got, repo, want.tag, want.module)
		}
		if tag != want.tag {
			t.Errorf("%s: image %s, but the tests run %s %s (= %s:%s)", name, s.Image, want.backend, want.module, repo, want.tag)
		}
	}
	for repo, want := range composeTestedImages {
		if !used[repo] {
			t.Errorf("no service runs %s (%s, which the tests use)", repo, want.backend)
		}
	}
}

func TestComposeRestartPolicies(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		_, oneShot := composeOneShots[name]
		switch {
		case oneShot && s.Restart != "no":
			t.Errorf("%s: a one-shot init service needs restart: \"no\", has %q", name, s.Restart)
		case !oneShot && (s.Restart == "" || s.Restart == "no"):
			t.Errorf("%s: long-running service with restart %q; use unless-stopped (or add it to composeOneShots with a reason)", name, s.Restart)
		}
	}
	for name := range composeOneShots {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("composeOneShots names %s, which is not a service", name)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		if _, oneShot := composeOneShots[name]; oneShot {
			continue
		}
		_, exempt := composeNoHealthcheck[name]
		has := s.Healthcheck != nil && !s.Healthcheck.Disable && len(s.Healthcheck.Test) > 0 && s.Healthcheck.Test[0] != "NONE"
		switch {
		case !has && !exempt:
			t.Errorf("%s: long-running service without a healthcheck (or add it to composeNoHealthcheck with a reason)", name)
		case has && exempt:
			t.Errorf("%s: has a healthcheck now: remove it from composeNoHealthcheck", name)
		}
		if has && s.Healthcheck.Test[0] != "CMD" && s.Healthcheck.Test[0] != "CMD-SHELL" {
			t.Errorf("%s: healthcheck test %q must start with CMD or CMD-SHELL", name, s.Healthcheck.Test)
		}
		if has && s.Image == composeGoldenImage && s.Healthcheck.Test[0] != "CMD" {
			t.Errorf("%s: the golden image has no shell: use [\"CMD\", \"/golden\", \"probe\", URL]", name)
		}
	}
}

// parseMemory parses a compose memory size: bytes, or a number with b, k,
// m, g or t (powers of 1024, optionally followed by b or ib).
func parseMemory(s string) (int64, error) {
	m := regexp.MustCompile(`(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid memory size %q", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[strings.ToLower(m[2])]
	return int64(n * float64(int64(1)<<shift)), nil
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"100663296": 96 << 20, "96m": 96 << 20, "1g": 1 << 30, "1024M": 1 << 30, "512MiB": 512 << 20, "64mb": 64 << 20, "1.5g": 3 << 29} {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "1x", "-1m"} {
		if _, err := parseMemory(in); err == nil {
			t.Errorf("parseMemory(%q) succeeded", in)
		}
	}
}

func TestComposeMemoryLimits(t *testing.T) {
	f := loadCompose(t)
	var total int64
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		s := f.Services[name]
		limit := s.Deploy.Resources.Limits.Memory
		if limit == "" {
			limit = s.MemLimit
		}
		if limit == "" {
			t.Errorf("%s: no memory limit (deploy.resources.limits.memory or mem_limit)", name)
			continue
		}
		n, err := parseMemory(limit)
		if err != nil || n <= 0 {
			t.Errorf("%s: memory limit %q: %v", name, limit, err)
			continue
		}
		total += n
		lines = append(lines, fmt.Sprintf("%-14s %5d MiB", name, n>>20))
	}
	if total >= composeMemoryBudget {
		t.Errorf("memory limits add up to %d MiB, want under %d MiB:\n%s", total>>20, composeMemoryBudget>>20, strings.Join(lines, "\n"))
	}
	// The file's header lists the limits and their total: keep it true.
	if want := fmt.Sprintf("%d MiB in all", total>>20); !bytes.Contains(readRepoFile(t, "docker-compose.yml"), []byte(want)) {
		t.Errorf("docker-compose.yml's header comment should say %q (the sum of the limits)", want)
	}
}

func TestComposePublishesOnlyUserFacingPortsOnLoopback(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		want, wantPublished := composePublished[name]
		if !wantPublished && len(s.Ports) > 0 {
			t.Errorf("%s: publishes %v; only %v may be published", name, s.Ports, composePublished)
			continue
		}
		if wantPublished && len(s.Ports) != len(want) {
			t.Errorf("%s: publishes %d ports, want exactly %v on 127.0.0.1", name, len(s.Ports), want)
		}
		for _, p := range s.Ports {
			var hostIP, published, target string
			switch p := p.(type) {
			case string:
				parts := strings.Split(strings.TrimSuffix(p, "/tcp"), ":")
				if len(parts) != 3 {
					t.Errorf("%s: port %q must name the host address: 127.0.0.1:PORT:PORT", name, p)
					continue
				}
				hostIP, published, target = parts[0], parts[1], parts[2]
			case map[string]any:
				hostIP, published, target = fmt.Sprint(p["host_ip"]), fmt.Sprint(p["published"]), fmt.Sprint(p["target"])
			default:
				t.Errorf("%s: port %v of unexpected form", name, p)
				continue
			}
			if hostIP != "127.0.0.1" {
				t.Errorf("%s: port %v is published on %q, want 127.0.0.1 only", name, p, hostIP)
			}
			port, _ := strconv.Atoi(target)
			if !slices.Contains(want, port) {
				t.Errorf("%s: publishes target %s, want only %v", name, target, want)
				continue
			}
			// The published port is a variable defaulting to the port, for
			// laptops where it is taken.
			if variable := fmt.Sprintf("${%s:-%d}", composePortVars[port], port); published != variable {
				t.Errorf("%s: port %v, want host_ip 127.0.0.1, published %q, target %d", name, p, variable, port)
			}
		}
	}
	for name := range composePublished {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("no service %s to publish", name)
		}
	}
}

// composeMount is one entry of a service's volumes.
type composeMount struct {
	bind           bool
	source, target string
	readOnly       bool
}

// defaultOf resolves ${VAR:-default} and ${VAR-default} to default; ok is
// false for other variables, whose value the file alone cannot tell.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

func defaultOf(s string) (string, bool) {
	ok := true
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		if !strings.Contains(m, "-") {
			ok = false
		}
		return sub[2]
	})
	return out, ok
}

func parseMount(t *testing.T, service string, v any) composeMount {
	t.Helper()
	switch v := v.(type) {
	case string:
		// SOURCE:TARGET[:MODE]; a variable in SOURCE may hold a colon only
		// in its default, which defaultOf resolves first.
		src, ok := defaultOf(v)
		if !ok {
			t.Errorf("%s: mount %q uses a variable without a default", service, v)
		}
		parts := strings.Split(src, ":")
		m := composeMount{source: parts[0]}
		if len(parts) > 1 {
			m.target = parts[1]
		}
		m.readOnly = len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
		m.bind = strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, "~")
		return m
	case map[string]any:
		m := composeMount{source: fmt.Sprint(v["source"]), target: fmt.Sprint(v["target"]), bind: v["type"] == "bind"}
		m.readOnly, _ = v["read_only"].(bool)
		if s, ok := defaultOf(m.source); ok {
			m.source = s
		}
		return m
	}
	t.Errorf("%s: volume %v of unexpected form", service, v)
	return composeMount{}
}

func TestComposeMountsExist(t *testing.T) {
	f := loadCompose(t)
	root := composeRoot(t)
	used := map[string]bool{}
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			m := parseMount(t, name, v)
			if m.target == "" || !strings.HasPrefix(m.target, "/") {
				t.Errorf("%s: mount %v has no absolute target", name, v)
			}
			if !m.bind {
				used[m.source] = true
				if _, ok := f.Volumes[m.source]; !ok {
					t.Errorf("%s: named volume %q is not declared under volumes:", name, m.source)
				}
				continue
			}
			if filepath.IsAbs(m.source) || strings.HasPrefix(m.source, "~") {
				t.Errorf("%s: bind mount %q is outside the repository (a default must be a repository path)", name, m.source)
				continue
			}
			p := filepath.Join(root, m.source)
			if rel, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: bind mount %q leaves the repository", name, m.source)
				continue
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: bind mount source %s does not exist in the repository: %v", name, m.source, err)
			}
			if !m.readOnly {
				t.Errorf("%s: bind mount %s of repository files should be read-only (:ro)", name, m.source)
			}
		}
	}
	for v := range f.Volumes {
		if !used[v] {
			t.Errorf("volume %q is declared but no service mounts it", v)
		}
	}
}

func TestComposeDependsOn(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		for dep, cond := range s.DependsOn {
			target, ok := f.Services[dep]
			if !ok {
				t.Errorf("%s: depends on %q, which is not a service", name, dep)
				continue
			}
			switch cond {
			case "service_started":
			case "service_healthy":
				if target.Healthcheck == nil || len(target.Healthcheck.Test) == 0 {
					t.Errorf("%s: waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case "service_completed_successfully":
				if _, ok := composeOneShots[dep]; !ok {
					t.Errorf("%s: waits for %s to complete, but %s is not a one-shot", name, dep, dep)
				}
			default:
				t.Errorf("%s: depends on %s with unknown condition %q", name, dep, cond)
			}
		}
	}
	// The start order the stack relies on.
	for _, want := range []struct{ service, dep, cond string }{
		{"certs", "volume-init", "service_completed_successfully"},
		{"jaeger", "volume-init", "service_completed_successfully"},
		{"graylog", "opensearch", "service_healthy"},
		{"graylog", "mongo", "service_healthy"},
		{"graylog-setup", "graylog", "service_healthy"},
		{"loadgen", "gateway", "service_healthy"},
	} {
		if got := f.Services[want.service].DependsOn[want.dep]; got != want.cond {
			t.Errorf("%s: depends on %s with %q, want %q", want.service, want.dep, got, want.cond)
		}
	}
}

// secretKey names environment variables whose values are secrets or point
// at them.
var secretKey = regexp.MustCompile(`(?i)PASSWORD|SECRET|TOKEN|KEY`)

// secretValue is what such a variable may hold: a reference to .env, or a
// file path.
var secretValue = regexp.MustCompile(`^(\$\{[A-Za-z_][A-Za-z0-9_]*(:?[?-][^}]*)?\}|/[A-Za-z0-9._/-]+)$`)

func TestComposeHasNoSecretLiterals(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		for k, v := range s.Environment {
			if secretKey.MatchString(k) && !secretValue.MatchString(v) {
				t.Errorf("%s: %s must be a ${VARIABLE} from .env or a file path, not a literal", name, k)
			}
		}
		for _, arg := range append(slices.Clone(s.Command), s.Entrypoint...) {
			// FILE=VARIABLE (golden web-config) names a variable of the
			// service's environment, which the loop above checked.
			_, named := s.Environment[arg[strings.LastIndex(arg, "=")+1:]]
			if l := strings.ToLower(arg); strings.Contains(l, "password") && !strings.Contains(l, "password-file") && !named {
				t.Errorf("%s: command argument %q: pass passwords through the environment, not the command line", name, arg)
			}
		}
	}
}

// requiredVar is ${VAR:?message}: a variable compose refuses to run without.
var requiredVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):?\?([^}]*)\}`)

// envExampleVars returns the variables .env.example documents: "VAR=" lines,
// and "# VAR=" lines for optional ones (value, optional).
func envExampleVars(t *testing.T) map[string]struct {
	value    string
	optional bool
} {
	t.Helper()
	out := map[string]struct {
		value    string
		optional bool
	}{}
	line := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, ".env.example")))
	for sc.Scan() {
		if m := line.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			out[m[2]] = struct {
				value    string
				optional bool
			}{m[3], m[1] != ""}
		}
	}
	return out
}

func TestComposeSecretsComeFromEnvFile(t *testing.T) {
	raw := string(readRepoFile(t, "docker-compose.yml"))
	example := envExampleVars(t)

	required := map[string]bool{}
	for _, m := range requiredVar.FindAllStringSubmatch(raw, -1) {
		required[m[1]] = true
		if !strings.Contains(m[2], "make env") {
			t.Errorf("${%s:?%s}: the message should say to run make env", m[1], m[2])
		}
	}
	for _, want := range []string{"GRAYLOG_PASSWORD_SECRET", "GRAYLOG_ROOT_PASSWORD_SHA2", "GRAYLOG_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} {
		if !required[want] {
			t.Errorf("docker-compose.yml should require %s with ${%s:?run make env to create .env}", want, want)
		}
	}
	for v := range required {
		e, ok := example[v]
		switch {
		case !ok || e.optional:
			t.Errorf(".env.example does not document the required %s as a %s= line", v, v)
		case e.value != "":
			// Left empty so that copying the example fails fast instead of
			// running with a published password.
			t.Errorf(".env.example gives %s the value %q; leave it empty (make env fills it)", v, e.value)
		}
	}
	for _, m := range varRef.FindAllStringSubmatch(raw, -1) {
		if _, ok := example[m[1]]; !ok {
			t.Errorf("docker-compose.yml reads ${%s}, which .env.example does not document", m[1])
		}
	}
}

// runGenEnv runs scripts/gen-env.sh with args and returns its output.
func runGenEnv(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found")
	}
	cmd := exec.Command(bash, append([]string{filepath.Join(composeRoot(t), "scripts", "gen-env.sh")}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=VALUE", path, l)
		}
		env[k] = v
	}
	return env
}

func TestGenEnvWritesFreshSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	out, err := runGenEnv(t, path)
	if err != nil {
		t.Fatalf("gen-env.sh: %v\n%s", err, out)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf(".env has mode %v, want 0600", st.Mode().Perm())
	}
	env := parseEnvFile(t, path)
	for v, e := range envExampleVars(t) {
		if e.optional {
			continue
		}
		if env[v] == "" {
			t.Errorf("gen-env.sh left %s empty", v)
		}
		if strings.Contains(out, env[v]) {
			t.Errorf("gen-env.sh printed the value of %s", v)
		}
	}
	if n := len(env["GRAYLOG_PASSWORD_SECRET"]); n < 64 {
		t.Errorf("GRAYLOG_PASSWORD_SECRET has %d characters, want at least 64", n)
	}
	sum := sha256.Sum256([]byte(env["GRAYLOG_ADMIN_PASSWORD"]))
	if got, want := env["GRAYLOG_ROOT_PASSWORD_SHA2"], hex.EncodeToString(sum[:]); got != want {
		t.Errorf("GRAYLOG_ROOT_PASSWORD_SHA2 = %s, want sha256(GRAYLOG_ADMIN_PASSWORD) = %s", got, want)
	}
	if env["GRAYLOG_ADMIN_PASSWORD"] == env["GRAFANA_ADMIN_PASSWORD"] {
		t.Error("Graylog and Grafana got the same password")
	}

	for _, v := range []string{"CONSUL_MANAGEMENT_TOKEN", "CONSUL_OPERATOR_TOKEN"} {
		if !consulacl.ValidSecret(env[v]) {
			t.Errorf("%s is not a UUID", v)
		}
	}
	if env["CONSUL_MANAGEMENT_TOKEN"] == env["CONSUL_OPERATOR_TOKEN"] {
		t.Error("the two Consul tokens are the same")
	}

	// A file from before a variable existed gets it added, and keeps the
	// rest.
	raw, _ := os.ReadFile(path)
	var older []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "CONSUL_OPERATOR_TOKEN=") {
			older = append(older, l)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(older, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runGenEnv(t, path)
	if err != nil || !strings.Contains(out, "added CONSUL_OPERATOR_TOKEN and kept every other value") {
		t.Fatalf("run on a file without CONSUL_OPERATOR_TOKEN: %v\n%s", err, out)
	}
	added := parseEnvFile(t, path)
	for k, v := range env {
		if k != "CONSUL_OPERATOR_TOKEN" && added[k] != v {
			t.Errorf("%s changed", k)
		}
	}
	if !consulacl.ValidSecret(added["CONSUL_OPERATOR_TOKEN"]) || strings.Contains(out, added["CONSUL_OPERATOR_TOKEN"]) {
		t.Error("CONSUL_OPERATOR_TOKEN not added as a UUID, or printed")
	}
	env = added

	// It keeps a complete existing file unless told otherwise.
	before, _ := os.ReadFile(path)
	if out, err := runGenEnv(t, path); err == nil || !strings.Contains(out, "--force") {
		t.Errorf("second run: err %v, output %q; want a refusal that mentions --force", err, out)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("second run without --force changed the file")
	}
	if out, err := runGenEnv(t, "--force", path); err != nil {
		t.Fatalf("--force: %v\n%s", err, out)
	}
	if again := parseEnvFile(t, path); again["GRAYLOG_ADMIN_PASSWORD"] == env["GRAYLOG_ADMIN_PASSWORD"] {
		t.Error("--force kept the old password")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("gen-env.sh left temporary files: %v", entries)
	}
}

func TestComposeGoldenServices(t *testing.T) {
	f := loadCompose(t)
	instances := map[string][]string{}
	built := false
	for name, s := range f.Services {
		if s.Image != composeGoldenImage {
			if s.Build != nil {
				t.Errorf("%s: builds an image other than %s", name, composeGoldenImage)
			}
			continue
		}
		if s.Build != nil {
			if ctx, ok := s.Build.(string); !ok || ctx != "." {
				t.Errorf("%s: build %v, want build: . (the repository's Dockerfile)", name, s.Build)
			}
			built = true
		}
		if s.User != "" && s.User != "65532" && s.User != "65532:65532" {
			t.Errorf("%s: runs as %q; the golden image's nonroot user (65532) owns the certificates", name, s.User)
		}
		if len(s.Command) < 2 || s.Command[0] != "serve" {
			continue
		}
		kind := s.Command[1]
		port, ok := composeAdminPorts[kind]
		if !ok {
			t.Errorf("%s: serves unknown service %q", name, kind)
			continue
		}
		instances[kind] = append(instances[kind], name)
		want := map[string]string{
			"GOLDEN_CONSUL_ADDR":            "consul:8500",
			"GOLDEN_ADVERTISE_ADDR":         name,
			"GOLDEN_OTLP_ENDPOINT":          "jaeger:4317",
			"GOLDEN_GELF_ADDR":              "graylog:12201",
			"GOLDEN_DEPLOYMENT_ENVIRONMENT": "compose",
			"GOLDEN_TLS_CA":                 "/certs/ca.crt",
			"GOLDEN_TLS_CERT":               "/certs/" + kind + ".crt",
			"GOLDEN_TLS_KEY":                "/certs/" + kind + ".key",
			"GOLDEN_ADMIN_ADDR":             ":" + strconv.Itoa(port),
		}
		switch kind {
		case "auth":
			want["GOLDEN_TOKEN_PRIVATE_KEY"] = "/certs/token-signing.key"
			want["GOLDEN_STORE"] = "postgres"
		case "user":
			want["GOLDEN_TOKEN_PUBLIC_KEY"] = "/certs/token-signing.pub"
			want["GOLDEN_STORE"] = "postgres"
		}
		if kind == "auth" || kind == "user" {
			if url := s.Environment["GOLDEN_DB_URL"]; !strings.HasPrefix(url, "postgres://golden:${POSTGRES_PASSWORD:?") || !strings.HasSuffix(url, "@postgres:5432/golden?sslmode=disable") {
				t.Errorf("%s: GOLDEN_DB_URL=%q, want the postgres service's golden database with the password from .env", name, url)
			}
			if s.DependsOn["postgres"] != "service_healthy" {
				t.Errorf("%s: should wait for postgres (healthy), has %v", name, s.DependsOn)
			}
		}
		for k, v := range want {
			if got := s.Environment[k]; got != v {
				t.Errorf("%s: %s=%q, want %q", name, k, got, v)
			}
		}
		if proto := s.Environment["GOLDEN_GELF_PROTOCOL"]; proto != "" && proto != "udp" {
			t.Errorf("%s: GOLDEN_GELF_PROTOCOL=%q, want udp", name, proto)
		}
		probe := []string{"CMD", "/golden", "probe", fmt.Sprintf("http://127.0.0.1:%d/readyz", port)}
		if s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test, probe) {
			t.Errorf("%s: healthcheck %v, want %q", name, s.Healthcheck, probe)
		}
		// Its own certificate volume only: never the pki volume (the CA
		// key) nor another service's.
		var mounted []string
		for _, v := range s.Volumes {
			m := parseMount(t, name, v)
			mounted = append(mounted, m.source)
			if m.source == "certs-"+kind && (m.target != "/certs" || !m.readOnly) {
				t.Errorf("%s: mounts certs-%s at %s (read-only %v), want read-only at /certs", name, kind, m.target, m.readOnly)
			}
		}
		if !slices.Equal(mounted, []string{"certs-" + kind}) {
			t.Errorf("%s: mounts %v, want only its service's certificate volume certs-%s", name, mounted, kind)
		}
		if s.DependsOn["certs"] != "service_completed_successfully" || s.DependsOn["consul-setup"] != "service_completed_successfully" {
			t.Errorf("%s: should wait for certs and consul-setup (completed: its certificate and Consul token), has %v", name, s.DependsOn)
		}
		if s.Environment["GOLDEN_CONSUL_TOKEN_FILE"] != "/certs/consul.token" {
			t.Errorf("%s: GOLDEN_CONSUL_TOKEN_FILE %q, want /certs/consul.token (consul-setup writes it)", name, s.Environment["GOLDEN_CONSUL_TOKEN_FILE"])
		}
	}
	if !built {
		t.Errorf("no service builds %s from the Dockerfile (build: .)", composeGoldenImage)
	}
	for kind := range composeAdminPorts {
		if len(instances[kind]) == 0 {
			t.Errorf("no service runs golden serve %s", kind)
		}
	}
	for _, kind := range []string{"auth", "user"} {
		if len(instances[kind]) < 2 {
			t.Errorf("%s runs as %v; want two instances sharing PostgreSQL", kind, instances[kind])
		}
	}

	certs := strings.Join(f.Services["certs"].Command, " ")
	for _, want := range []string{"certs ensure", "--dir /pki", "--services auth,user,gateway", "--clients prometheus,admin", "--export /export"} {
		if !strings.Contains(certs, want) {
			t.Errorf("certs: command %q lacks %q", certs, want)
		}
	}
	// The CA key's volume is mounted by the steps that make it only.
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			if m := parseMount(t, name, v); m.source == "pki" && name != "certs" && name != "volume-init" {
				t.Errorf("%s mounts the pki volume, which holds the CA key", name)
			}
		}
	}
	for kind := range composeAdminPorts {
		found := false
		for _, v := range f.Services["certs"].Volumes {
			if m := parseMount(t, "certs", v); m.source == "certs-"+kind && m.target == "/export/"+kind {
				found = true
			}
		}
		if !found {
			t.Errorf("certs: does not export into certs-%s at /export/%s", kind, kind)
		}
	}
	loadgen := strings.Join(f.Services["loadgen"].Command, " ")
	if want := "loadgen --target http://gateway:8080"; !strings.HasPrefix(loadgen, want) {
		t.Errorf("loadgen: command %q, want it to start with %q", loadgen, want)
	}
}

// TestComposeServesWhatPrometheusScrapes checks that every host in
// prometheus.yml's static targets, Consul servers and Alertmanagers is a
// compose service.
func TestComposeServesWhatPrometheusScrapes(t *testing.T) {
	f := loadCompose(t)
	var prom struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			ConsulSDConfigs []struct {
				Server string `yaml:"server"`
			} `yaml:"consul_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "prometheus/prometheus.yml"), &prom); err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, am := range prom.Alerting.Alertmanagers {
		for _, sc := range am.StaticConfigs {
			hosts = append(hosts, sc.Targets...)
		}
	}
	for _, job := range prom.ScrapeConfigs {
		for _, sc := range job.StaticConfigs {
			hosts = append(hosts, sc.Targets...)
		}
		for _, c := range job.ConsulSDConfigs {
			hosts = append(hosts, c.Server)
		}
	}
	if len(hosts) == 0 {
		t.Fatal("found no targets in prometheus/prometheus.yml")
	}
	for _, h := range hosts {
		host, _, _ := strings.Cut(h, ":")
		if host == "localhost" || host == "127.0.0.1" {
			continue
		}
		if _, ok := f.Services[host]; !ok {
			t.Errorf("prometheus.yml reaches %s, but no compose service is named %s", h, host)
		}
	}
}

// TestComposeJaegerHealthcheckMatchesItsConfig keeps the Jaeger healthcheck
// and jaeger/config.yaml's health extension together.
func TestComposeJaegerHealthcheckMatchesItsConfig(t *testing.T) {
	f := loadCompose(t)
	hc := f.Services["jaeger"].Healthcheck
	if hc == nil {
		t.Fatal("jaeger has no healthcheck")
	}
	var cfg struct {
		Service struct {
			Extensions []string `yaml:"extensions"`
		} `yaml:"service"`
		Extensions struct {
			HealthCheckV2 struct {
				HTTP struct {
					Endpoint string `yaml:"endpoint"`
				} `yaml:"http"`
			} `yaml:"healthcheckv2"`
		} `yaml:"extensions"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "jaeger/config.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.Service.Extensions, "healthcheckv2") {
		t.Fatalf("jaeger/config.yaml does not enable healthcheckv2 (service.extensions %v), which the compose healthcheck probes", cfg.Service.Extensions)
	}
	_, port, _ := strings.Cut(cfg.Extensions.HealthCheckV2.HTTP.Endpoint, ":")
	if want := "http://127.0.0.1:" + port + "/status"; port == "" || !slices.Contains(hc.Test, want) {
		t.Errorf("jaeger healthcheck %q should probe %s (healthcheckv2 endpoint %q)", hc.Test, want, cfg.Extensions.HealthCheckV2.HTTP.Endpoint)
	}
}

// composeConfig runs `docker-compose ARGS -f docker-compose.yml config -q`
// in the repository root with env as its only variables.
func composeConfig(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "-f", "docker-compose.yml", "config", "-q")...)
	cmd.Dir = composeRoot(t)
	home := t.TempDir() // no user's ~/.docker settings take part
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_CONFIG=" + home}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestComposeConfigValidates(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the docker-compose binary")
	}
	bin := testbackend.Binary(t, "docker-compose")

	// With the .env make env writes.
	envFile := filepath.Join(t.TempDir(), ".env")
	if out, err := runGenEnv(t, envFile); err != nil {
		t.Fatalf("gen-env.sh: %v\n%s", err, out)
	}
	if out, err := composeConfig(t, bin, nil, "--env-file", envFile); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("docker-compose config -q with a generated .env: %v\n%s", err, out)
	}

	// With each secret missing in turn, it stops and says what to do.
	full := parseEnvFile(t, envFile)
	for _, missing := range []string{"GRAYLOG_PASSWORD_SECRET", "GRAYLOG_ROOT_PASSWORD_SHA2", "GRAYLOG_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} {
		t.Run("without "+missing, func(t *testing.T) {
			var env []string
			for k, v := range full {
				if k != missing {
					env = append(env, k+"="+v)
				}
			}
			// An empty env file, so that no .env of the checkout is read.
			empty := filepath.Join(t.TempDir(), "empty.env")
			if err := os.WriteFile(empty, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := composeConfig(t, bin, env, "--env-file", empty)
			if err == nil {
				t.Fatalf("docker-compose config accepted the stack without %s", missing)
			}
			if !strings.Contains(out, missing) || !strings.Contains(out, "run make env to create .env") {
				t.Errorf("without %s the error should name it and say to run make env:\n%s", missing, out)
			}
			for k, v := range full {
				if strings.Contains(out, v) {
					t.Errorf("the error shows the value of %s", k)
				}
			}
		})
	}
}

// dockerInstructions returns the Dockerfile's instructions, continuation
// lines joined and comments dropped, as (KEYWORD, rest) pairs.
func dockerInstructions(t *testing.T) [][2]string {
	t.Helper()
	var out [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(string(readRepoFile(t, "Dockerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		kw, rest, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, [2]string{strings.ToUpper(kw), strings.TrimSpace(rest)})
		cur.Reset()
	}
	return out
}

// shellWords splits a simple shell command into words: blanks separate,
// single and double quotes group, backslash escapes. Anything that needs a
// real shell (expansions, operators) is an error: the build line must be a
// command a test can run as is.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '$' || s[i] == '`' {
					return nil, fmt.Errorf("expansion in %q", s)
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf(`unterminated " in %q`, s)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("$`;&|<>(){}*?[", c) >= 0:
			return nil, fmt.Errorf("%q needs a shell (%q); keep the go build line a simple command", s, c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	got, err := shellWords(`CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o '/out/a b' ./cmd/golden`)
	want := []string{"CGO_ENABLED=0", "go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/a b", "./cmd/golden"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("shellWords = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{`go build && rm -rf /`, `go build -o $OUT`, `go build "-o ${X}"`, `go build 'x`} {
		if _, err := shellWords(bad); err == nil {
			t.Errorf("shellWords(%q) accepted it", bad)
		}
	}
}

// dockerBuildCommand returns the environment assignments and the go command
// of the Dockerfile's `go build` RUN line.
func dockerBuildCommand(t *testing.T) (env, args []string) {
	t.Helper()
	var found []string
	for _, ins := range dockerInstructions(t) {
		if ins[0] == "RUN" && strings.Contains(ins[1], "go build") {
			found = append(found, ins[1])
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one RUN with go build in the Dockerfile, found %q", found)
	}
	words, err := shellWords(found[0])
	if err != nil {
		t.Fatal(err)
	}
	// RUN's own flags (--mount=..., --network=...) come first.
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:]
	}
	for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
		env = append(env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("the RUN line %q should be [VAR=value...] go build ...", found[0])
	}
	return env, words[1:]
}

func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t)
	var froms []string
	for _, i := range ins {
		if i[0] == "FROM" {
			froms = append(froms, i[1])
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build (builder + runtime), FROM lines: %q", froms)
	}

	// The builder uses the Go release go.mod asks for.
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+\.\d+)$`).FindSubmatch(readRepoFile(t, "go.mod"))
	if goVersion == nil {
		t.Fatal("go.mod has no go 1.x.y line")
	}
	if builder := froms[0]; !strings.HasPrefix(builder, "golang:"+string(goVersion[1])+"-") {
		t.Errorf("builder %q, want golang:%s-<distribution> (go.mod's go version)", builder, goVersion[1])
	}
	runtime := strings.Fields(froms[len(froms)-1])[0]
	if runtime != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime image %q, want gcr.io/distroless/static-debian12:nonroot", runtime)
	}

	// The final stage's settings.
	var user, entrypoint string
	copyGoMod, download, copyAll := -1, -1, -1
	for n, i := range ins {
		switch {
		case i[0] == "USER":
			user = i[1]
		case i[0] == "ENTRYPOINT":
			entrypoint = i[1]
		case i[0] == "COPY" && strings.Fields(i[1])[0] == "go.mod":
			copyGoMod = n
		case i[0] == "RUN" && strings.Contains(i[1], "go mod download"):
			download = n
		case i[0] == "COPY" && i[1] == ". .":
			copyAll = n
		}
	}
	if !slices.Contains([]string{"nonroot", "nonroot:nonroot", "65532", "65532:65532"}, user) {
		t.Errorf("USER %q, want the nonroot user (65532)", user)
	}
	if entrypoint != `["/golden"]` {
		t.Errorf(`ENTRYPOINT %s, want ["/golden"]`, entrypoint)
	}
	if copyGoMod < 0 || download < copyGoMod || copyAll < download {
		t.Error("copy go.mod and go.sum and run go mod download before COPY . . so that the modules layer is cached")
	}

	env, args := dockerBuildCommand(t)
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("go build runs with %q; want CGO_ENABLED=0 (static binary)", env)
	}
	for _, want := range []string{"-trimpath", "-o", "/out/golden", "./cmd/golden"} {
		if !slices.Contains(args, want) {
			t.Errorf("go build %q lacks %s", args, want)
		}
	}

	ignored := map[string]bool{}
	for _, l := range strings.Split(string(readRepoFile(t, ".dockerignore")), "\n") {
		ignored[strings.TrimPrefix(strings.TrimSpace(l), "/")] = true
	}
	for _, want := range []string{".git", ".golden", "bin", ".tools", ".env", "certs", "*.test"} {
		if !ignored[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// TestDockerfileBuildIsStatic runs the Dockerfile's go build line, with its
// environment and flags, and checks the binary needs no dynamic loader and
// no shared library (the runtime image has neither), has no symbol table
// (-s) and no path of this machine (-trimpath).
func TestDockerfileBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env, args := dockerBuildCommand(t)
	out := filepath.Join(t.TempDir(), "golden")
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = composeRoot(t)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s go %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags=-s missing")
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(composeRoot(t))) {
		t.Errorf("the binary contains the build path %s: -trimpath missing", composeRoot(t))
	}
}

// volumeFile is a file a container reads from a named volume: a path in its
// healthcheck or command under one of its volume mounts.
var volumeFile = regexp.MustCompile(`/[A-Za-z0-9._/-]+`)

// TestComposeVolumeFilesAreWritten: every file a service's healthcheck reads
// from a named volume (a password, a token) is written into that volume by
// a one-shot: named in its command under the path where it mounts the same
// volume. A healthcheck reading a file nobody writes never passes.
func TestComposeVolumeFilesAreWritten(t *testing.T) {
	f := loadCompose(t)
	// written[volume] holds the file names one-shots name in their commands.
	written := map[string]map[string]bool{}
	for name, s := range f.Services {
		if _, oneShot := composeOneShots[name]; !oneShot {
			continue
		}
		for _, v := range s.Volumes {
			m := parseMount(t, name, v)
			if m.bind {
				continue
			}
			for _, arg := range s.Command {
				for _, p := range volumeFile.FindAllString(arg, -1) {
					if rel, ok := strings.CutPrefix(p, strings.TrimSuffix(m.target, "/")+"/"); ok {
						if written[m.source] == nil {
							written[m.source] = map[string]bool{}
						}
						written[m.source][rel] = true
					}
				}
			}
		}
	}
	checked := 0
	for name, s := range f.Services {
		if s.Healthcheck == nil {
			continue
		}
		for _, v := range s.Volumes {
			m := parseMount(t, name, v)
			if m.bind {
				continue
			}
			for _, p := range volumeFile.FindAllString(strings.Join(s.Healthcheck.Test, " "), -1) {
				rel, ok := strings.CutPrefix(p, strings.TrimSuffix(m.target, "/")+"/")
				if !ok {
					continue
				}
				checked++
				if !written[m.source][rel] {
					t.Errorf("%s: healthcheck reads %s from volume %s, which no one-shot writes (%v)", name, p, m.source, written[m.source])
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no healthcheck reads a file from a volume: the check checks nothing")
	}
}
