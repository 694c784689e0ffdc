package testbackend_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/golden-stack/golden/internal/testbackend"
)

const kubeTestDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: x
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
`

func TestKubeAPIValidatesAndAppliesManifests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	k := testbackend.StartKubeAPI(t)
	run := func(stdin string, args ...string) string {
		t.Helper()
		var in []byte
		if stdin != "" {
			in = []byte(stdin)
		}
		out, err := k.Run(t, in, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run("", "create", "namespace", "x")

	// A server-side dry run validates without storing.
	run(kubeTestDeployment, "apply", "--dry-run=server", "-f", "-")
	if _, err := k.Run(t, nil, "get", "deployment", "web", "-n", "x"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("after a dry run, get deployment: err = %v, want NotFound", err)
	}
	// What only the server knows is rejected: here a selector that does not
	// match the pod template's labels.
	bad := strings.Replace(kubeTestDeployment, "matchLabels: {app: web}", "matchLabels: {app: other}", 1)
	if _, err := k.Run(t, []byte(bad), "apply", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(err.Error(), "selector") {
		t.Fatalf("dry run of a Deployment whose selector misses its pods: err = %v, want a selector error", err)
	}

	run(kubeTestDeployment, "apply", "-f", "-")
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ Replicas int }
		}
	}
	if err := json.Unmarshal([]byte(run("", "get", "deployment", "-n", "x", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Metadata.Name != "web" || list.Items[0].Spec.Replicas != 2 {
		t.Fatalf("deployments in x = %+v, want web with 2 replicas", list.Items)
	}

	// RBAC decides for others than the test's user.
	as := "--as=system:serviceaccount:x:web"
	if out, err := k.Run(t, nil, "auth", "can-i", "get", "deployments", "-n", "x", as); err == nil {
		t.Fatalf("a service account without roles may get deployments: %s", out)
	}
	run("", "create", "role", "reader", "-n", "x", "--verb=get", "--resource=deployments")
	run("", "create", "rolebinding", "reader", "-n", "x", "--role=reader", "--serviceaccount=x:web")
	if got := strings.TrimSpace(run("", "auth", "can-i", "get", "deployments", "-n", "x", as)); got != "yes" {
		t.Fatalf("can-i after the role binding = %q, want yes", got)
	}
}
