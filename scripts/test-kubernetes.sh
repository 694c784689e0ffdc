#!/usr/bin/env bash
# make test-kubernetes: kubernetes/ on a Kubernetes node of this machine
# (integration/kubernetes_node_test.go): etcd, kube-apiserver, the
# controller manager and the scheduler on loopback; containerd and runc
# (Debian's, with docker.io), the CNI bridge (Debian's
# containernetworking-plugins), kubelet, kube-proxy and CoreDNS; the images
# of scripts/standin-images.sh, copied from the Docker engine. Needs root
# (installing the packages, and the node itself).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-backends.sh kube etcd coredns >/dev/null
state="${XDG_CACHE_HOME:-$HOME/.cache}/golden/docker-engine"
engine=$(scripts/docker-engine.sh start "$state")
[ "$engine" = started ] && trap 'scripts/docker-engine.sh stop "$state"' EXIT

if [ ! -x /usr/lib/cni/bridge ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "test-kubernetes: installing Debian's containernetworking-plugins" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >&2 ||
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >&2; }
fi
scripts/standin-images.sh >/dev/null

GOLDEN_KUBE_NODE=1 GOLDEN_REQUIRE_BACKENDS=1 \
	${GO:-go} test -race -count=1 -timeout 25m -run '^TestKubernetesStackOnNode$' -v ./integration
