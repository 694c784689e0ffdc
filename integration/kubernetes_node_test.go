package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"gopkg.in/yaml.v3"

	lg "github.com/golden-stack/golden/internal/loadgen"
	"github.com/golden-stack/golden/internal/testbackend"
)

// kubeGoldenDeployments are the Deployments of golden services that serve,
// with the Consul service and admin port of their pods.
var kubeGoldenDeployments = map[string]struct {
	service string
	admin   int
}{
	"auth": {"auth", 9101}, "user": {"user", 9102}, "user-canary": {"user", 9102}, "gateway": {"gateway", 9100},
}

// TestKubernetesStackOnNode runs kubernetes/ (the base, with the Secrets of
// kubernetes/secrets.sh) on a real node of this machine: a control plane,
// containerd, kubelet, kube-proxy and CoreDNS, the images from the Docker
// engine. Like the compose engine test: every pod ready, every golden
// instance an up target of Prometheus through consul_sd, a trace through
// Jaeger, load through the gateway's Service with no unexpected failure,
// also while each golden Deployment is restarted (kubectl rollout
// restart), and Consul's catalog holding exactly the running pods at the
// end. Components whose image is not in the Docker engine (Grafana without
// a registry) are left out.
func TestKubernetesStackOnNode(t *testing.T) {
	if os.Getenv("GOLDEN_KUBE_NODE") == "" {
		t.Skip("runs kubernetes/ on a node of this machine: make test-kubernetes")
	}
	kube := testbackend.StartKubeAPI(t)
	bin := buildGolden(t)
	rendered, err := exec.Command(kube.Kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", "../kubernetes/base").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	objects, images, leftOut := kubeRunnable(t, rendered)
	node := testbackend.StartKubeNode(t, kube)
	node.ImportDockerImages(t, images...)

	pki := filepath.Join(t.TempDir(), "pki")
	secretsScript(t, kube, bin, pki, "--apply")
	kubeVolumes(t, kube, objects)
	start := time.Now()
	if out, err := kube.Run(t, kubeListOf(t, objects), "apply", "--server-side", "--field-manager=golden", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := kube.Run(t, nil, "get", "pods", "-n", "golden", "-o", "wide")
			t.Logf("pods:\n%s", out)
			out, _ = kube.Run(t, nil, "get", "events", "-n", "golden", "--sort-by", ".lastTimestamp")
			t.Logf("events:\n%s", tail(out, 60))
		}
	})

	// Every workload rolled out, the Job complete.
	for _, o := range objects {
		switch o.Kind {
		case "Deployment", "StatefulSet":
			if out, err := kube.Run(t, nil, "rollout", "status", "-n", "golden", "--timeout", "6m", strings.ToLower(o.Kind)+"/"+o.Name); err != nil {
				t.Fatalf("%s %s did not roll out: %v\n%s", o.Kind, o.Name, err, out)
			}
		case "Job":
			if out, err := kube.Run(t, nil, "wait", "-n", "golden", "--for=condition=complete", "--timeout", "5m", "job/"+o.Name); err != nil {
				t.Fatalf("Job %s did not complete: %v\n%s", o.Name, err, out)
			}
		}
	}
	ready := time.Now()
	t.Logf("start-up: every workload rolled out in %s (left out, no image here: %s)", ready.Sub(start).Round(100*time.Millisecond), strings.Join(leftOut, " "))

	secret := func(name, key string) string {
		t.Helper()
		out, err := kube.Run(t, nil, "get", "secret", name, "-n", "golden", "-o", "jsonpath={.data."+key+"}")
		if err != nil {
			t.Fatal(err)
		}
		v, err := base64.StdEncoding.DecodeString(out)
		if err != nil {
			t.Fatalf("secret %s key %s: %v", name, key, err)
		}
		return strings.TrimSpace(string(v))
	}
	clusterIP := func(svc string) string {
		t.Helper()
		out, err := kube.Run(t, nil, "get", "service", svc, "-n", "golden", "-o", "jsonpath={.spec.clusterIP}")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Load through the gateway's Service (kube-proxy picks a pod per
	// connection), as a client inside the cluster would reach it.
	cfg := lg.DefaultConfig()
	cfg.Target = "http://" + clusterIP("gateway") + ":8080"
	cfg.Rate, cfg.Duration, cfg.ReportInterval, cfg.Seed = composeLoadRate, 0, 0, 1
	cfg.Mix = composeLoadMix
	load := startLoad(t, cfg)
	loadStart := time.Now()
	failures := func(step string, from, to time.Time) {
		t.Helper()
		(&composeStack{t: t, load: load}).failures(step, from, to)
	}

	consul, err := api.NewClient(&api.Config{Address: clusterIP("consul") + ":8500", Token: secret("consul-tokens", "operator")})
	if err != nil {
		t.Fatal(err)
	}
	instances := map[string]int{}
	for name, d := range kubeGoldenDeployments {
		instances[d.service] += len(node.PodIPs(t, "golden", "app.kubernetes.io/name="+name))
	}
	waitPassing(t, consul, instances, time.Minute)

	// Prometheus: every golden pod an up target through consul_sd (its
	// pod IP and admin port), and the backends' own jobs.
	promURL := "http://admin:" + secret("web-passwords", "prometheus") + "@" + clusterIP("prometheus") + ":9090"
	eventually(t, 90*time.Second, "every golden pod and backend an up target in Prometheus", func() error {
		var want []string
		for name, d := range kubeGoldenDeployments {
			for _, ip := range node.PodIPs(t, "golden", "app.kubernetes.io/name="+name) {
				want = append(want, fmt.Sprintf("golden %s:%d", ip, d.admin))
			}
		}
		want = append(want, "prometheus localhost:9090", "alertmanager alertmanager:9093", "consul consul:8500", "jaeger jaeger:8888", "canary-guard canary-guard:9096")
		return promTargetsUp(promURL, want)
	})
	t.Log("Prometheus: every golden pod (pod IP and admin port, through consul_sd) and every backend an up target")

	// Jaeger: a trace from the gateway through auth or user to PostgreSQL.
	jaegerURL := "http://admin:" + secret("web-passwords", "jaeger") + "@" + clusterIP("jaeger-auth") + ":16686"
	eventually(t, time.Minute, "a trace from the gateway through user or auth to PostgreSQL", func() error {
		return composeTraceThroughStore(jaegerURL, time.Time{})
	})
	t.Log("Jaeger: a trace from the gateway through auth or user to PostgreSQL")
	time.Sleep(5 * time.Second)
	failures("start-up, from every workload ready", ready, time.Now())

	// Each golden Deployment restarted (new pods first, maxUnavailable 0;
	// each old pod deregisters, drains and stops on SIGTERM).
	for _, name := range slices.Sorted(maps.Keys(kubeGoldenDeployments)) {
		from := time.Now()
		if _, err := kube.Run(t, nil, "rollout", "restart", "-n", "golden", "deployment/"+name); err != nil {
			t.Fatal(err)
		}
		if out, err := kube.Run(t, nil, "rollout", "status", "-n", "golden", "--timeout", "4m", "deployment/"+name); err != nil {
			t.Fatalf("rollout restart %s: %v\n%s", name, err, out)
		}
		waitPassing(t, consul, instances, time.Minute)
		// The old pods' drain (5 s in Consul, then the shutdown) ends
		// after the rollout reports done.
		time.Sleep(10 * time.Second)
		t.Logf("rollout restart %s: new pods ready and passing in Consul after %s", name, time.Since(from).Round(100*time.Millisecond))
		failures("rollout restart "+name, from, time.Now())
	}

	// Each old pod deregistered from the agent that held it: the catalog
	// holds exactly the pods that run (the consul Service's ClientIP
	// affinity keeps a pod on one server).
	eventually(t, time.Minute, "Consul's catalog holding exactly the running pods", func() error {
		return kubeCatalogMatches(t, consul, node)
	})
	t.Log("Consul: the catalog holds exactly the running golden pods")

	sum := load.Stop()
	t.Logf("load: %d requests in %.0f s (%.1f/s), %d dropped as %d were in flight, %d unexpected failures in all",
		sum.Requests, time.Since(loadStart).Seconds(), sum.Rate, sum.Dropped, cfg.Concurrency, sum.UnexpectedFailures)
	failures("the whole run, from every workload ready", ready, time.Now())
	out, _ := kube.Run(t, nil, "get", "pods", "-n", "golden", "-o", "wide")
	t.Logf("pods:\n%s", out)
}

// kubeManifest is one rendered object: as decoded, to apply it, and the
// parts the test reads.
type kubeManifest struct {
	raw  map[string]any
	Kind string
	Name string
}

// kubeRunnable decodes the rendered manifests and splits them into the
// objects to apply, the images those name (all in the Docker engine), and
// the workloads left out because an image of theirs is not there.
func kubeRunnable(t *testing.T, rendered []byte) (objects []kubeManifest, images, leftOut []string) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(rendered))
	have := map[string]bool{}
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if raw == nil {
			continue
		}
		b, err := json.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		var o kubeObject
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		m := kubeManifest{raw: raw, Kind: o.Kind, Name: o.Metadata.Name}
		missing := false
		for _, c := range append(slices.Clone(o.Spec.Template.Spec.Containers), o.Spec.Template.Spec.InitContainers...) {
			if _, ok := have[c.Image]; !ok {
				have[c.Image] = exec.Command("docker", "image", "inspect", c.Image).Run() == nil
			}
			missing = missing || !have[c.Image]
		}
		if missing {
			leftOut = append(leftOut, m.Kind+"/"+m.Name)
			continue
		}
		objects = append(objects, m)
	}
	for img, ok := range have {
		if ok {
			images = append(images, img)
		}
	}
	slices.Sort(images)
	return objects, images, leftOut
}

// kubeListOf returns objects as one v1 List, which kubectl applies.
func kubeListOf(t *testing.T, objects []kubeManifest) []byte {
	t.Helper()
	items := make([]map[string]any, len(objects))
	for i, o := range objects {
		items[i] = o.raw
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kubeVolumes makes a hostPath PersistentVolume for each claim the
// StatefulSets' claim templates will make, bound to it by name (the node
// has no provisioner). Their folders are open to every user: hostPath
// volumes get no fsGroup.
func kubeVolumes(t *testing.T, kube *testbackend.KubeAPI, objects []kubeManifest) {
	t.Helper()
	dir := t.TempDir()
	var pvs []map[string]any
	for _, o := range objects {
		if o.Kind != "StatefulSet" {
			continue
		}
		spec, _ := o.raw["spec"].(map[string]any)
		replicas := 1
		if r, ok := spec["replicas"].(int); ok {
			replicas = r
		}
		templates, _ := spec["volumeClaimTemplates"].([]any)
		for _, tmpl := range templates {
			claim, _ := tmpl.(map[string]any)["metadata"].(map[string]any)["name"].(string)
			for i := range replicas {
				name := fmt.Sprintf("%s-%s-%d", claim, o.Name, i)
				path := filepath.Join(dir, name)
				if err := os.Mkdir(path, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o777); err != nil { // past the umask
					t.Fatal(err)
				}
				pvs = append(pvs, map[string]any{
					"apiVersion": "v1", "kind": "PersistentVolume",
					"metadata": map[string]any{"name": "golden-" + name},
					"spec": map[string]any{
						"capacity":                      map[string]any{"storage": "100Gi"},
						"accessModes":                   []string{"ReadWriteOnce"},
						"persistentVolumeReclaimPolicy": "Delete",
						"hostPath":                      map[string]any{"path": path, "type": "Directory"},
						"claimRef":                      map[string]any{"namespace": "golden", "name": name},
					},
				})
			}
		}
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": pvs})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := kube.Run(t, b, "apply", "-f", "-"); err != nil {
		t.Fatalf("PersistentVolumes: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = kube.Run(t, nil, "delete", "persistentvolumes", "--all", "--wait=false") })
}

// kubeCatalogMatches checks that Consul's catalog holds, for each golden
// service, the addresses of its running pods and no other.
func kubeCatalogMatches(t *testing.T, consul *api.Client, node *testbackend.KubeNode) error {
	want := map[string][]string{}
	for name, d := range kubeGoldenDeployments {
		want[d.service] = append(want[d.service], node.PodIPs(t, "golden", "app.kubernetes.io/name="+name)...)
	}
	for svc, ips := range want {
		entries, _, err := consul.Health().Service(svc, "", false, nil)
		if err != nil {
			return err
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Service.Address)
		}
		slices.Sort(got)
		slices.Sort(ips)
		if !slices.Equal(got, ips) {
			return fmt.Errorf("%s: catalog %v, running pods %v", svc, got, ips)
		}
	}
	return nil
}

// promTargetsUp checks that Prometheus has every target of want ("JOB
// INSTANCE") up.
func promTargetsUp(promURL string, want []string) error {
	resp, err := http.Get(promURL + "/api/v1/targets?state=active")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
				Health string            `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	up := map[string]bool{}
	for _, tg := range body.Data.ActiveTargets {
		if tg.Health == "up" {
			up[tg.Labels["job"]+" "+tg.Labels["instance"]] = true
		}
	}
	var missing []string
	for _, w := range want {
		if !up[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("not up: %s (up: %v)", strings.Join(missing, ", "), slices.Sorted(maps.Keys(up)))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
