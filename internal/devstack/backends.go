package devstack

import (
	"fmt"
	"os"
	"path/filepath"
)

// Versions pins each backend, matching scripts/install-backends.sh and the
// images docker-compose.yml runs. The Kubernetes binaries, etcd and CoreDNS
// are only for the tests of kubernetes/: manifests checked against a real
// API server, and the stack run on a node of this machine.
var Versions = map[string]string{
	"consul":                  "v1.14.11",
	"prometheus":              "v0.307.3",
	"promtool":                "v0.307.3",
	"alertmanager":            "v0.28.1",
	"amtool":                  "v0.28.1",
	"jaeger":                  "v1.65.0",
	"docker-compose":          "v2.32.4",
	"ghz":                     "v0.93.0",
	"mailpit":                 "v1.33.1",
	"kube-apiserver":          "v1.34.3",
	"kubectl":                 "v1.34.3",
	"etcd":                    "v3.6.8",
	"kube-controller-manager": "v1.34.3",
	"kube-scheduler":          "v1.34.3",
	"kubelet":                 "v1.34.3",
	"kube-proxy":              "v1.34.3",
	"coredns":                 "v1.12.4",
}

// installName maps the binaries that scripts/install-backends.sh builds
// under another name to that name; the rest are built under their own.
var installName = map[string]string{
	"promtool":                "prometheus",
	"amtool":                  "alertmanager",
	"docker-compose":          "compose",
	"kube-apiserver":          "kube",
	"kubectl":                 "kube",
	"kube-controller-manager": "kube",
	"kube-scheduler":          "kube",
	"kubelet":                 "kube",
	"kube-proxy":              "kube",
}

// Dir returns the cache folder scripts/install-backends.sh fills:
// $GOLDEN_BACKENDS_DIR, else $XDG_CACHE_HOME/golden/backends, else
// ~/.cache/golden/backends.
func Dir() string {
	if d := os.Getenv("GOLDEN_BACKENDS_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "golden", "backends")
}

// Binary returns the path of the pinned version of backend name in dir (Dir
// when empty), or an error naming the command that installs it.
func Binary(dir, name string) (string, error) {
	v, ok := Versions[name]
	if !ok {
		return "", fmt.Errorf("unknown backend %q", name)
	}
	if dir == "" {
		dir = Dir()
	}
	p := filepath.Join(dir, name+"-"+v, name)
	if _, err := os.Stat(p); err != nil {
		target := name
		if n, ok := installName[name]; ok {
			target = n
		}
		return "", fmt.Errorf("%s %s is not installed at %s: run scripts/install-backends.sh %s", name, v, p, target)
	}
	return p, nil
}
