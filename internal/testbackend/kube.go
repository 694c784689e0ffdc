package testbackend

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kubeStartTimeout bounds how long etcd and then kube-apiserver may take to
// be ready (about 20s for the API server on a busy machine).
const kubeStartTimeout = 2 * time.Minute

// kubectlTimeout bounds one kubectl command.
const kubectlTimeout = 2 * time.Minute

// KubeUser is the user of KubeAPI's token, a member of system:masters.
const KubeUser = "golden-test"

// KubeAPI is a real Kubernetes API server (with its own etcd) on loopback,
// started by StartKubeAPI, to validate and apply manifests against. It has
// no nodes and no controller manager: objects are stored and validated, but
// nothing runs them, and a namespace gets no "default" service account by
// itself.
type KubeAPI struct {
	// URL is the API server's base URL, https://127.0.0.1:PORT (a
	// self-signed certificate).
	URL string
	// Kubeconfig is the path of a kubeconfig for URL with Token.
	Kubeconfig string
	// Kubectl is the path of the kubectl of the server's version.
	Kubectl string
	// Token is a bearer token of KubeUser, who may do anything.
	Token    string
	cacheDir string
	// saKey signs service account tokens (the controller manager's too).
	saKey string
}

// StartKubeAPI starts etcd and kube-apiserver on free loopback ports until
// the test ends, and waits until the API serves the default namespace. It
// skips the test when they are not installed (fails it under
// GOLDEN_REQUIRE_BACKENDS): scripts/install-backends.sh kube etcd.
func StartKubeAPI(t testing.TB) *KubeAPI {
	t.Helper()
	etcdBin := Binary(t, "etcd")
	apiserverBin := Binary(t, "kube-apiserver")
	k := &KubeAPI{Kubectl: Binary(t, "kubectl")}
	start := time.Now()
	dir := t.TempDir()
	ports := freePorts(t, 3)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	k.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	k.cacheDir = filepath.Join(dir, "kubectl-cache")

	etcd := Start(t, etcdBin,
		"--name", "golden-test",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL,
		"--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "golden-test="+peerURL,
		// Throwaway data: durability only costs time.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	)
	etcd.WaitFor(t, kubeStartTimeout, HTTPReady(etcdURL+"/health"))

	k.Token = randomHex(t, 16)
	tokens := writeFile(t, dir, "tokens.csv", fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", k.Token, KubeUser, UUID(t)))
	saKey, saPub := serviceAccountKeys(t, dir)
	k.saKey = saKey
	apiserver := Start(t, apiserverBin,
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[2]),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--token-auth-file", tokens,
		// RBAC as in real clusters, so that `kubectl auth can-i --as` answers
		// what a service account's roles grant; the token's user is in
		// system:masters, which RBAC lets do anything.
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saPub,
		"--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		// As kubeadm sets it: privileged pods are for admission to judge.
		"--allow-privileged",
		// Fewer controllers to start; no load to share fairly here.
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	)
	deadline := time.Now().Add(kubeStartTimeout)
	apiserver.WaitFor(t, time.Until(deadline), k.httpOK("/readyz"))
	apiserver.WaitFor(t, time.Until(deadline), k.httpOK("/api/v1/namespaces/default"))

	k.Kubeconfig = writeFile(t, dir, "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: golden-test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: %s
  user:
    token: %s
contexts:
- name: golden-test
  context:
    cluster: golden-test
    user: %s
current-context: golden-test
`, k.URL, KubeUser, k.Token, KubeUser))
	if _, err := k.Run(t, nil, "get", "namespace", "default"); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver at %s ready in %s", k.URL, time.Since(start).Round(100*time.Millisecond))
	return k
}

// Run runs kubectl against the server with args and stdin (none when nil),
// and returns its standard output; the error carries its standard error.
// Warnings kubectl prints on success are logged.
func (k *KubeAPI) Run(t testing.TB, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	// Its own discovery cache: ~/.kube/cache is the user's, and ports are
	// reused between servers.
	cmd := exec.CommandContext(ctx, k.Kubectl, append([]string{"--kubeconfig", k.Kubeconfig, "--cache-dir", k.cacheDir}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("kubectl %s: %s", strings.Join(args, " "), s)
	}
	return stdout.String(), nil
}

// httpOK returns a check that GET path with the token answers 200. The
// certificate is the server's own self-signed one, on loopback: not checked.
func (k *KubeAPI) httpOK(path string) func() error {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
	}
	return func() error {
		req, err := http.NewRequest(http.MethodGet, k.URL+path, http.NoBody)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+k.Token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	}
}

// serviceAccountKeys writes an ECDSA key pair for signing service account
// tokens into dir and returns the private and public key files.
func serviceAccountKeys(t testing.TB, dir string) (keyFile, pubFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = writeFile(t, dir, "sa.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pubFile = writeFile(t, dir, "sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	return keyFile, pubFile
}

// writeFile writes content to dir/name, readable by its owner only, and
// returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// randomHex returns n random bytes in hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
