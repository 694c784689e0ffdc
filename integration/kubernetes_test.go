package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golden-stack/golden/internal/testbackend"
)

// goldenServices are the Deployments of the reference services, which must
// survive one pod going away: two replicas or more and a PodDisruptionBudget.
var goldenServices = []string{"auth", "user", "gateway"}

// kubeObject is the part of a Kubernetes object the invariants read.
type kubeObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		PodSelector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"podSelector"`
		PolicyTypes []string          `json:"policyTypes"`
		Ingress     []json.RawMessage `json:"ingress"`
		Template    podTemplate       `json:"template"`
	} `json:"spec"`
	Data map[string]string `json:"data"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds *int        `json:"terminationGracePeriodSeconds"`
		Containers                    []container `json:"containers"`
		InitContainers                []container `json:"initContainers"`
		Volumes                       []struct {
			Secret *struct {
				SecretName string `json:"secretName"`
				Optional   bool   `json:"optional"`
			} `json:"secret"`
			ConfigMap *struct {
				Name     string `json:"name"`
				Optional bool   `json:"optional"`
			} `json:"configMap"`
			Projected *struct {
				Sources []struct {
					Secret *struct {
						Name     string `json:"name"`
						Optional bool   `json:"optional"`
					} `json:"secret"`
					ConfigMap *struct {
						Name     string `json:"name"`
						Optional bool   `json:"optional"`
					} `json:"configMap"`
				} `json:"sources"`
			} `json:"projected"`
		} `json:"volumes"`
	} `json:"spec"`
}

type container struct {
	Name           string           `json:"name"`
	Image          string           `json:"image"`
	Ports          []struct{}       `json:"ports"`
	ReadinessProbe *json.RawMessage `json:"readinessProbe"`
	LivenessProbe  *json.RawMessage `json:"livenessProbe"`
	Resources      struct {
		Limits map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext *struct {
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		Capabilities             *struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	Env []struct {
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `json:"name"`
				Key      string `json:"key"`
				Optional bool   `json:"optional"`
			} `json:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name     string `json:"name"`
				Optional bool   `json:"optional"`
			} `json:"configMapKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
}

// kubeList returns the objects of kinds in namespace golden.
func kubeList(t *testing.T, kube *testbackend.KubeAPI, kinds string) []kubeObject {
	t.Helper()
	out, err := kube.Run(t, nil, "get", kinds, "-n", "golden", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get %s: %v", kinds, err)
	}
	var list struct {
		Items []kubeObject `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// selects reports whether every label of sel holds in labels.
func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// secretsScript runs kubernetes/secrets.sh against kube with args.
func secretsScript(t *testing.T, kube *testbackend.KubeAPI, bin, pki string, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../kubernetes/secrets.sh", "--pki", pki}, args...)...)
	cmd.Env = append(os.Environ(), "GOLDEN="+bin, "KUBECTL="+kube.Kubectl+" --kubeconfig "+kube.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubernetes/secrets.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKubernetesManifests applies kubernetes/ (the example overlay, with
// the Secrets kubernetes/secrets.sh makes) to a real API server: server-side
// dry run first (schemas, defaults, admission), then for real. No node
// runs, so no pod starts; the invariants are read back from the API: every
// reference service has two replicas or more and a PodDisruptionBudget,
// every golden container probes, limits and locks itself down, every
// Secret and ConfigMap a pod uses exists, a default-deny NetworkPolicy
// plus one for each pod, and the CA key in no Secret.
func TestKubernetesManifests(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and kube-apiserver")
	}
	kube := testbackend.StartKubeAPI(t)
	bin := buildGolden(t)
	pki := filepath.Join(t.TempDir(), "pki")

	rendered, err := exec.Command(kube.Kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", "../kubernetes/overlays/example").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}

	// The Secrets first (the script creates the namespace): then the dry
	// run finds every namespaced object's namespace.
	secretsScript(t, kube, bin, pki, "--apply")
	if out, err := kube.Run(t, rendered, "apply", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("server-side dry run: %v\n%s", err, out)
	}
	if got := kubeList(t, kube, "deployments"); len(got) != 0 {
		t.Fatalf("the dry run stored %d Deployments", len(got))
	}
	apply := func() {
		t.Helper()
		if out, err := kube.Run(t, rendered, "apply", "--server-side", "--field-manager=golden", "-f", "-"); err != nil {
			t.Fatalf("apply: %v\n%s", err, out)
		}
	}
	versions := func() string {
		t.Helper()
		out, err := kube.Run(t, nil, "get", "deployments,statefulsets,jobs,services,configmaps,secrets,poddisruptionbudgets,networkpolicies",
			"-n", "golden", "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}`)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	apply()
	// Applying again changes nothing (no object gets a new version); the
	// script neither.
	before := versions()
	apply()
	if after := versions(); after != before {
		t.Errorf("a second apply changed objects:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out := secretsScript(t, kube, bin, pki, "--apply"); !strings.Contains(out, "nothing to do") {
		t.Errorf("second secrets.sh:\n%s", out)
	}

	deployments := kubeList(t, kube, "deployments")
	statefulSets := kubeList(t, kube, "statefulsets")
	jobs := kubeList(t, kube, "jobs")
	pdbs := kubeList(t, kube, "poddisruptionbudgets")
	policies := kubeList(t, kube, "networkpolicies")
	secrets := map[string]kubeObject{}
	for _, s := range kubeList(t, kube, "secrets") {
		secrets[s.Metadata.Name] = s
	}
	configMaps := map[string]bool{}
	for _, c := range kubeList(t, kube, "configmaps") {
		configMaps[c.Metadata.Name] = true
	}

	byName := map[string]kubeObject{}
	for _, d := range deployments {
		byName[d.Metadata.Name] = d
	}
	for _, name := range goldenServices {
		d, ok := byName[name]
		switch {
		case !ok:
			t.Errorf("no Deployment %s", name)
			continue
		case d.Spec.Replicas == nil || *d.Spec.Replicas < 2:
			t.Errorf("Deployment %s: %v replicas, want 2 or more", name, d.Spec.Replicas)
		}
		if !slices.ContainsFunc(pdbs, func(p kubeObject) bool {
			return len(p.Spec.Selector.MatchLabels) > 0 && selects(p.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
		}) {
			t.Errorf("Deployment %s: no PodDisruptionBudget selects its pods", name)
		}
	}

	var pods []struct {
		owner string
		tmpl  podTemplate
	}
	for _, list := range [][]kubeObject{deployments, statefulSets, jobs} {
		for _, o := range list {
			pods = append(pods, struct {
				owner string
				tmpl  podTemplate
			}{o.Kind + " " + o.Metadata.Name, o.Spec.Template})
		}
	}
	if len(pods) < 10 {
		t.Fatalf("%d pod templates in all", len(pods))
	}
	var defaultDeny bool
	for _, p := range policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && slices.Contains(p.Spec.PolicyTypes, "Ingress") && len(p.Spec.Ingress) == 0 {
			defaultDeny = true
		}
	}
	if !defaultDeny {
		t.Error("no default-deny NetworkPolicy (empty pod selector, Ingress, no rule)")
	}
	for _, p := range pods {
		// Default deny selects every pod; one that serves needs a policy
		// of its own to be reached at all.
		serves := slices.ContainsFunc(p.tmpl.Spec.Containers, func(c container) bool { return len(c.Ports) > 0 })
		labels := p.tmpl.Metadata.Labels
		if serves && !slices.ContainsFunc(policies, func(np kubeObject) bool {
			return len(np.Spec.PodSelector.MatchLabels) > 0 && selects(np.Spec.PodSelector.MatchLabels, labels)
		}) {
			t.Errorf("%s: serves, but no NetworkPolicy of its own selects its pods", p.owner)
		}
		golden := false
		for _, c := range append(slices.Clone(p.tmpl.Spec.Containers), p.tmpl.Spec.InitContainers...) {
			if strings.Contains(c.Image, "golden") {
				golden = true
				sc := c.SecurityContext
				if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
					sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("%s, container %s: not non-root, read-only, without privilege escalation and capabilities", p.owner, c.Name)
				}
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("%s, container %s: no memory limit", p.owner, c.Name)
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil && !r.Optional {
					if s, ok := secrets[r.Name]; !ok {
						t.Errorf("%s, container %s: Secret %s does not exist", p.owner, c.Name, r.Name)
					} else if _, ok := s.Data[r.Key]; !ok {
						t.Errorf("%s, container %s: Secret %s has no key %s", p.owner, c.Name, r.Name, r.Key)
					}
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !r.Optional && !configMaps[r.Name] {
					t.Errorf("%s, container %s: ConfigMap %s does not exist", p.owner, c.Name, r.Name)
				}
			}
		}
		if golden && serves {
			for _, c := range p.tmpl.Spec.Containers {
				if c.ReadinessProbe == nil || c.LivenessProbe == nil {
					t.Errorf("%s, container %s: readiness and liveness probes wanted", p.owner, c.Name)
				}
			}
			if p.tmpl.Spec.TerminationGracePeriodSeconds == nil || *p.tmpl.Spec.TerminationGracePeriodSeconds < 16 {
				t.Errorf("%s: terminationGracePeriodSeconds %v, want more than the 15s shutdown timeout", p.owner, p.tmpl.Spec.TerminationGracePeriodSeconds)
			}
		}
		for _, v := range p.tmpl.Spec.Volumes {
			if v.Secret != nil && !v.Secret.Optional {
				if _, ok := secrets[v.Secret.SecretName]; !ok {
					t.Errorf("%s: volume Secret %s does not exist", p.owner, v.Secret.SecretName)
				}
			}
			if v.ConfigMap != nil && !v.ConfigMap.Optional && !configMaps[v.ConfigMap.Name] {
				t.Errorf("%s: volume ConfigMap %s does not exist", p.owner, v.ConfigMap.Name)
			}
			if v.Projected != nil {
				for _, src := range v.Projected.Sources {
					if src.Secret != nil && !src.Secret.Optional {
						if _, ok := secrets[src.Secret.Name]; !ok {
							t.Errorf("%s: projected Secret %s does not exist", p.owner, src.Secret.Name)
						}
					}
					if src.ConfigMap != nil && !src.ConfigMap.Optional && !configMaps[src.ConfigMap.Name] {
						t.Errorf("%s: projected ConfigMap %s does not exist", p.owner, src.ConfigMap.Name)
					}
				}
			}
		}
	}
	// The CA's key stays where secrets.sh keeps it, outside the cluster.
	for name, s := range secrets {
		for key := range s.Data {
			if strings.Contains(key, "ca.key") {
				t.Errorf("Secret %s holds %s", name, key)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(pki, "ca.key")); err != nil {
		t.Errorf("the CA key is not in the local PKI folder: %v", err)
	}
	t.Logf("applied %d Deployments, %d StatefulSets, %d Jobs, %d PodDisruptionBudgets, %d NetworkPolicies, %d Secrets, %d ConfigMaps",
		len(deployments), len(statefulSets), len(jobs), len(pdbs), len(policies), len(secrets), len(configMaps))
}
