package testbackend

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The node's network: pods get addresses of kubePodCIDR on the bridge
// kubeBridge, whose address kubeDNS is also where CoreDNS answers them.
// The range is the project's own (compose's engine uses 10.253.0.0/24 and
// 10.254.0.0/16), and pods' traffic is not masqueraded: it reaches nothing
// off the machine.
const (
	kubePodCIDR = "10.252.0.0/16"
	kubeDNS     = "10.252.0.1"
	kubeBridge  = "golden-kube0"
	kubeNode    = "golden-node"
)

// kubeNodeStartTimeout bounds how long the node may take to be Ready.
const kubeNodeStartTimeout = 3 * time.Minute

// KubeNode is a Kubernetes node on this machine, for a KubeAPI: the
// controller manager and the scheduler, containerd with runc, the CNI
// bridge, kubelet, kube-proxy (iptables) and CoreDNS. Pods run for real,
// reach each other and the host over the bridge, and Services by their
// cluster IPs and names. Started by StartKubeNode.
type KubeNode struct {
	containerd string // containerd's socket
	api        *KubeAPI
	dir        string
	proxyBin   string
}

// StartKubeNode starts a node for k until the test ends and waits until it
// is Ready. It needs root, Debian's containerd, runc and
// containernetworking-plugins, and a Docker engine (the pause image is
// made with it); without them it skips the test (fails it under
// GOLDEN_REQUIRE_BACKENDS).
//
// When the test ends, it deletes every namespace but Kubernetes' own and
// waits for their pods to go, then stops the processes and removes what
// the node added to the machine (teardown).
func StartKubeNode(t testing.TB, k *KubeAPI) *KubeNode {
	t.Helper()
	bins := map[string]string{}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns"} {
		bins[name] = Binary(t, name)
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"containerd", "runc", "ctr", "docker", "iptables", "ip", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		msg := "a Kubernetes node needs " + strings.Join(missing, ", ") + " (scripts/test-kubernetes.sh installs them)"
		if os.Getenv("GOLDEN_REQUIRE_BACKENDS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	start := time.Now()
	// Not t.TempDir: what the node mounts under it must be unmounted
	// first, by the cleanup below.
	dir, err := os.MkdirTemp("", "golden-kubenode-")
	if err != nil {
		t.Fatal(err)
	}
	n := &KubeNode{containerd: filepath.Join(dir, "containerd.sock"), api: k, dir: dir, proxyBin: bins["kube-proxy"]}
	// Cleanups run last first: this one after every process has stopped.
	netnsBefore, chainsBefore := netnsNames(), kubeChains()
	t.Cleanup(func() { n.teardown(t, netnsBefore, chainsBefore) })

	// The bridge first, with its address, so that CoreDNS can listen there
	// before any pod exists.
	n.bridge(t)
	pause := n.pauseImage(t)

	ports := freePorts(t, 6)
	controllers := Start(t, bins["kube-controller-manager"],
		"--kubeconfig", k.Kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[0]),
		"--leader-elect=false",
		"--service-account-private-key-file", k.saKey,
		"--use-service-account-credentials=false",
		"--allocate-node-cidrs=false",
		"--v=1",
	)
	scheduler := Start(t, bins["kube-scheduler"],
		"--kubeconfig", k.Kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[1]),
		"--leader-elect=false",
		"--v=1",
	)

	containerdConfig := n.containerdConfig(t, pause)
	containerd := Start(t, "containerd", "--config", containerdConfig)
	containerd.WaitFor(t, time.Minute, func() error {
		_, err := n.ctr("version")
		return err
	})
	n.ImportDockerImages(t, pause)

	kubelet := Start(t, bins["kubelet"],
		"--kubeconfig", k.Kubeconfig,
		"--config", n.kubeletConfig(t, ports[2], ports[3]),
		"--root-dir", filepath.Join(dir, "kubelet"),
		"--hostname-override", kubeNode,
		"--node-ip", "127.0.0.1",
		"--v=1",
	)
	proxy := Start(t, bins["kube-proxy"], "--config", n.proxyConfig(t, ports[4], ports[5]), "--v=1")
	dns := Start(t, bins["coredns"], "-conf", n.corefile(t), "-quiet")
	// And this one before any process stops.
	t.Cleanup(func() { n.drain(t) })

	deadline := time.Now().Add(kubeNodeStartTimeout)
	kubelet.WaitFor(t, time.Until(deadline), func() error {
		for _, p := range []*Process{controllers, scheduler, containerd, proxy, dns} {
			if p.Exited() {
				return fmt.Errorf("%s exited:\n%s", filepath.Base(p.cmd.Path), p.Output())
			}
		}
		out, err := k.Run(t, nil, "get", "node", kubeNode, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if out != "True" {
			return fmt.Errorf("node %s not Ready (%q)", kubeNode, out)
		}
		// The namespace's default service account, which pods need, comes
		// from the controller manager.
		_, err = k.Run(t, nil, "get", "serviceaccount", "default", "-n", "default")
		return err
	})
	t.Logf("kubernetes node %s Ready in %s", kubeNode, time.Since(start).Round(100*time.Millisecond))
	return n
}

// bridge makes the pods' bridge with the gateway address, where CoreDNS
// listens.
func (n *KubeNode) bridge(t testing.TB) {
	t.Helper()
	_, _ = exec.Command("ip", "link", "del", kubeBridge).CombinedOutput() // an earlier run's
	for _, args := range [][]string{
		{"link", "add", kubeBridge, "type", "bridge"},
		{"addr", "add", kubeDNS + "/16", "dev", kubeBridge},
		{"link", "set", kubeBridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// pauseImage builds the pod sandbox's image (a static program that waits
// for a signal) with the Docker engine and returns its name.
func (n *KubeNode) pauseImage(t testing.TB) string {
	t.Helper()
	const name = "golden-test/pause:1"
	src := filepath.Join(n.dir, "pause")
	if err := os.MkdirAll(filepath.Join(src, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, "pause.go", `// Command pause holds a pod's namespaces until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
`)
	build := exec.Command("go", "build", "-o", filepath.Join(src, "root", "pause"), filepath.Join(src, "pause.go"))
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the pause program: %v\n%s", err, out)
	}
	if out, err := runIn(2*time.Minute, "sh", "-c", `tar -C "$1" -c pause | docker import --change 'ENTRYPOINT ["/pause"]' - "$2"`, "sh", filepath.Join(src, "root"), name); err != nil {
		t.Fatalf("docker import of the pause image: %v\n%s", err, out)
	}
	return name
}

// ImportDockerImages copies images from the Docker engine into the node's
// containerd, where kubelet finds them: every image a pod names must be
// there, as nothing is pulled.
func (n *KubeNode) ImportDockerImages(t testing.TB, images ...string) {
	t.Helper()
	start := time.Now()
	cmd := fmt.Sprintf(`docker save "$@" | ctr --address %q --namespace k8s.io images import -`, n.containerd)
	if out, err := runIn(10*time.Minute, "sh", append([]string{"-c", cmd, "sh"}, images...)...); err != nil {
		t.Fatalf("importing %s into containerd: %v\n%s", strings.Join(images, " "), err, out)
	}
	t.Logf("imported %d images from Docker into containerd in %s", len(images), time.Since(start).Round(100*time.Millisecond))
}

// ctr runs containerd's ctr against the node's containerd, namespace k8s.io.
func (n *KubeNode) ctr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.containerd, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

// containerdConfig writes containerd's configuration: its defaults with
// its own folders and socket, the pause image, the CNI bridge, and
// restrict_oom_score_adj. The last one because kubelet asks for a negative
// oom_score_adj for sandboxes (-998), and root here lacks CAP_SYS_RESOURCE
// to lower it: runc's init then dies ("can't get final child's PID from
// pipe: EOF"). Restricted, containerd never asks for less than its own.
func (n *KubeNode) containerdConfig(t testing.TB, pause string) string {
	t.Helper()
	out, err := exec.Command("containerd", "config", "default").Output()
	if err != nil {
		t.Fatalf("containerd config default: %v", err)
	}
	cni := filepath.Join(n.dir, "cni")
	if err := os.MkdirAll(cni, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cni, "10-golden.conflist", fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "golden",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q, "gateway": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}
`, kubeBridge, filepath.Join(n.dir, "ipam"), kubePodCIDR, kubeDNS))
	cfg := string(out)
	for _, r := range []struct{ old, new string }{
		{`root = "/var/lib/containerd"`, fmt.Sprintf("root = %q", filepath.Join(n.dir, "containerd"))},
		{`state = "/run/containerd"`, fmt.Sprintf("state = %q", filepath.Join(n.dir, "containerd-state"))},
		{`address = "/run/containerd/containerd.sock"`, fmt.Sprintf("address = %q", n.containerd)},
		{`sandbox_image = "registry.k8s.io/pause:3.6"`, fmt.Sprintf("sandbox_image = %q", "docker.io/"+pause)},
		{`bin_dir = "/opt/cni/bin"`, `bin_dir = "/usr/lib/cni"`},
		{`conf_dir = "/etc/cni/net.d"`, fmt.Sprintf("conf_dir = %q", cni)},
		{`restrict_oom_score_adj = false`, `restrict_oom_score_adj = true`},
		// runc's state of these containers apart from other containerds'.
		{`Root = ""`, fmt.Sprintf("Root = %q", filepath.Join(n.dir, "runc"))},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("containerd config default has no %s", r.old)
		}
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	return writeFile(t, n.dir, "containerd.toml", cfg)
}

// kubeletConfig writes kubelet's configuration, serving on loopback (port,
// healthzPort) only. cgroupfs without per-QoS cgroups and with no node
// allocatable enforced: the machine's cgroups are not kubelet's to manage.
func (n *KubeNode) kubeletConfig(t testing.TB, port, healthzPort int) string {
	t.Helper()
	return writeFile(t, n.dir, "kubelet.yaml", fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
makeIPTablesUtilChains: false
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: %s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
  nodefs.inodesFree: 1%%
`, port, healthzPort, n.containerd, kubeDNS, filepath.Join(n.dir, "pod-logs")))
}

// proxyConfig writes kube-proxy's configuration: iptables, the machine's
// conntrack settings left as they are, node ports on loopback only.
func (n *KubeNode) proxyConfig(t testing.TB, healthzPort, metricsPort int) string {
	t.Helper()
	return writeFile(t, n.dir, "kube-proxy.yaml", fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
nodePortAddresses: [127.0.0.1/32]
iptables:
  localhostNodePorts: false
  syncPeriod: 10s
  minSyncPeriod: 0s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, n.api.Kubeconfig, kubeNode, kubePodCIDR, healthzPort, metricsPort))
}

// corefile writes CoreDNS's configuration: the cluster's names from the
// API, answered on the bridge's address; no other name resolves.
func (n *KubeNode) corefile(t testing.TB) string {
	t.Helper()
	return writeFile(t, n.dir, "Corefile", fmt.Sprintf(`.:53 {
    bind %s
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s golden-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`, kubeDNS, n.api.Kubeconfig))
}

// drain deletes the namespaces the test made, while the node still runs:
// their pods stop, kubelet unmounts their volumes and containerd removes
// their network namespaces. What is left is killed.
func (n *KubeNode) drain(t testing.TB) {
	t.Helper()
	start := time.Now()
	if t.Failed() {
		n.logPods(t)
	}
	if out, err := n.api.Run(t, nil, "get", "namespaces", "-o", "name"); err == nil {
		var ns []string
		for _, name := range strings.Fields(out) {
			switch strings.TrimPrefix(name, "namespace/") {
			case "default", "kube-system", "kube-public", "kube-node-lease":
			default:
				ns = append(ns, name)
			}
		}
		if len(ns) > 0 {
			if _, err := n.api.Run(t, nil, append([]string{"delete", "--wait", "--timeout", "90s"}, ns...)...); err != nil {
				t.Logf("kubernetes node: deleting %s: %v", strings.Join(ns, " "), err)
			}
		}
	}
	if out, err := n.ctr("tasks", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			_, _ = n.ctr("tasks", "kill", "--signal", "SIGKILL", id)
			_, _ = n.ctr("tasks", "delete", "--force", id)
		}
	}
	t.Logf("kubernetes node: drained in %s", time.Since(start).Round(100*time.Millisecond))
}

// logPods logs the last lines of every container's log (kubelet's
// podLogsDir: the API cannot fetch them, the node has no address it could
// reach kubelet at).
func (n *KubeNode) logPods(t testing.TB) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(n.dir, "pod-logs", "*", "*", "*.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		rel, _ := filepath.Rel(filepath.Join(n.dir, "pod-logs"), f)
		t.Logf("%s:\n%s", rel, strings.Join(lines, "\n"))
	}
}

// teardown removes what the node added to the machine, once its processes
// have stopped: the shims (they outlive containerd; each one's command
// line names its socket), the iptables chains of kube-proxy and kubelet,
// the bridge, network namespaces and mounts left behind, and the node's
// folder.
func (n *KubeNode) teardown(t testing.TB, netnsBefore []string, chainsBefore map[string]bool) {
	t.Helper()
	killMatching(n.containerd)
	if out, err := exec.Command(n.proxyBin, "--cleanup").CombinedOutput(); err != nil {
		t.Logf("kube-proxy --cleanup: %v\n%s", err, out)
	}
	removeKubeChains(chainsBefore)
	_, _ = exec.Command("ip", "link", "del", kubeBridge).CombinedOutput()
	for _, name := range netnsNames() {
		if !slices.Contains(netnsBefore, name) {
			p := "/run/netns/" + name
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
			_ = os.Remove(p)
		}
	}
	unmountUnder(n.dir)
	if err := os.RemoveAll(n.dir); err != nil {
		t.Errorf("kubernetes node: removing %s: %v", n.dir, err)
	}
}

// kubeChains returns the KUBE-* chains of iptables and ip6tables, as
// "COMMAND TABLE CHAIN".
func kubeChains() map[string]bool {
	chains := map[string]bool{}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, _ := exec.Command(cmd, "-t", table, "-S").Output()
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "-N" && strings.HasPrefix(f[1], "KUBE-") {
					chains[cmd+" "+table+" "+f[1]] = true
				}
			}
		}
	}
	return chains
}

// removeKubeChains deletes the KUBE-* chains that are not in before, and
// the rules that jump to them (kubelet makes KUBE-FIREWALL and its canary
// chains even where it is told not to manage iptables).
func removeKubeChains(before map[string]bool) {
	var added [][3]string
	for c := range kubeChains() {
		if !before[c] {
			f := strings.Fields(c)
			added = append(added, [3]string{f[0], f[1], f[2]})
		}
	}
	// Emptied first, so that only other chains' jumps still name them.
	for _, c := range added {
		_ = exec.Command(c[0], "-t", c[1], "-F", c[2]).Run()
	}
	for _, c := range added {
		out, _ := exec.Command(c[0], "-t", c[1], "-S").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if rule := strings.Fields(line); len(rule) > 2 && rule[0] == "-A" && slices.Contains(rule, c[2]) {
				_ = exec.Command(c[0], append([]string{"-t", c[1], "-D"}, rule[1:]...)...).Run()
			}
		}
	}
	for _, c := range added {
		_ = exec.Command(c[0], "-t", c[1], "-X", c[2]).Run()
	}
}

// netnsNames lists the named network namespaces (/run/netns).
func netnsNames() []string {
	entries, _ := os.ReadDir("/run/netns")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// unmountUnder unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// killMatching kills every process whose command line contains s.
func killMatching(s string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// runIn runs name with args within timeout and returns its combined output.
func runIn(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// PodIPs returns the IPs of the ready pods of namespace ns that label
// selector selects.
func (n *KubeNode) PodIPs(t testing.TB, ns, selector string) []string {
	t.Helper()
	out, err := n.api.Run(t, nil, "get", "pods", "-n", ns, "-l", selector, "-o",
		`jsonpath={range .items[?(@.status.phase=="Running")]}{.status.podIP}{" "}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range strings.Fields(out) {
		if net.ParseIP(ip) != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}
