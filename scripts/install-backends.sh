#!/usr/bin/env bash
# Builds the real backends the tests run against (no container engine needed)
# from the Go module proxy, at the versions docker-compose.yml pins (and, for
# the tests of kubernetes/, the Kubernetes binaries, etcd and CoreDNS). Each
# binary is cached in
# $GOLDEN_BACKENDS_DIR/<name>-<version>/ and built only when missing, so the
# second run is instant.
#
#   scripts/install-backends.sh [consul|prometheus|alertmanager|jaeger|compose|ghz|mailpit|postgres|kube|etcd|coredns ...]
#
# With no arguments it installs all of them. It prints the cache folder.
set -euo pipefail

CONSUL_VERSION=v1.14.11
PROMETHEUS_VERSION=v0.307.3      # Prometheus 3.7.3
ALERTMANAGER_VERSION=v0.28.1
JAEGER_VERSION=v1.65.0           # Jaeger 2.2.0
COMPOSE_VERSION=v2.32.4
GHZ_VERSION=v0.93.0
MAILPIT_VERSION=v1.33.1
KUBE_VERSION=v1.34.3
ETCD_VERSION=v3.6.8
COREDNS_VERSION=v1.12.4

DIR="${GOLDEN_BACKENDS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/golden/backends}"
mkdir -p "$DIR"
export GOFLAGS=-mod=mod GOWORK=off

log() { echo "install-backends: $*" >&2; }

# copy_module MODULE@VERSION: a writable copy of the module's source, for
# modules that `go install` refuses (replace directives, go.work files).
copy_module() {
	local src tmp
	src=$(go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] || { log "cannot download $1"; exit 1; }
	tmp=$(mktemp -d)
	cp -r "$src/." "$tmp/"
	chmod -R u+w "$tmp"
	echo "$tmp"
}

# done_or_build NAME VERSION: true when NAME-VERSION is already built.
have() { [ -x "$DIR/$1-$2/$1" ]; }

build_consul() {
	have consul $CONSUL_VERSION && return
	log "building consul $CONSUL_VERSION (a few minutes)"
	local src; src=$(copy_module github.com/hashicorp/consul@$CONSUL_VERSION)
	(cd "$src" && go mod edit -dropreplace github.com/hashicorp/consul/api \
		-dropreplace github.com/hashicorp/consul/sdk -dropreplace github.com/hashicorp/consul/proto-public &&
		go build -o "$DIR/consul-$CONSUL_VERSION.tmp/consul" .)
	mv "$DIR/consul-$CONSUL_VERSION.tmp" "$DIR/consul-$CONSUL_VERSION"
	rm -rf "$src"
}

build_prometheus() {
	have prometheus $PROMETHEUS_VERSION && have promtool $PROMETHEUS_VERSION && return
	log "building prometheus and promtool $PROMETHEUS_VERSION (a few minutes)"
	local src; src=$(copy_module github.com/prometheus/prometheus@$PROMETHEUS_VERSION)
	rm -f "$src/go.work" "$src/go.work.sum"
	local out="$DIR/prometheus-$PROMETHEUS_VERSION.tmp"
	(cd "$src" && go build -o "$out/prometheus" ./cmd/prometheus && go build -o "$out/promtool" ./cmd/promtool)
	rm -rf "$DIR/prometheus-$PROMETHEUS_VERSION" "$DIR/promtool-$PROMETHEUS_VERSION"
	mkdir -p "$DIR/promtool-$PROMETHEUS_VERSION"
	mv "$out/promtool" "$DIR/promtool-$PROMETHEUS_VERSION/promtool"
	mv "$out" "$DIR/prometheus-$PROMETHEUS_VERSION"
	rm -rf "$src"
}

build_alertmanager() {
	have alertmanager $ALERTMANAGER_VERSION && have amtool $ALERTMANAGER_VERSION && return
	log "building alertmanager and amtool $ALERTMANAGER_VERSION"
	GOBIN="$DIR/alertmanager-$ALERTMANAGER_VERSION" go install github.com/prometheus/alertmanager/cmd/alertmanager@$ALERTMANAGER_VERSION
	GOBIN="$DIR/amtool-$ALERTMANAGER_VERSION" go install github.com/prometheus/alertmanager/cmd/amtool@$ALERTMANAGER_VERSION
}

build_jaeger() {
	have jaeger $JAEGER_VERSION && return
	log "building jaeger $JAEGER_VERSION"
	local src; src=$(copy_module github.com/jaegertracing/jaeger@$JAEGER_VERSION)
	(cd "$src" && go build -o "$DIR/jaeger-$JAEGER_VERSION.tmp/jaeger" ./cmd/jaeger)
	mv "$DIR/jaeger-$JAEGER_VERSION.tmp" "$DIR/jaeger-$JAEGER_VERSION"
	rm -rf "$src"
}

build_compose() {
	have docker-compose $COMPOSE_VERSION && return
	log "building docker compose $COMPOSE_VERSION"
	local tmp; tmp=$(mktemp -d)
	GOBIN="$tmp" go install github.com/docker/compose/v2/cmd@$COMPOSE_VERSION
	mkdir -p "$DIR/docker-compose-$COMPOSE_VERSION"
	mv "$tmp/cmd" "$DIR/docker-compose-$COMPOSE_VERSION/docker-compose"
	rm -rf "$tmp"
}

# install_postgres: PostgreSQL 15 (the major version docker-compose.yml
# pins) from Debian's packages, when its server is missing. The tests run
# their own servers in temporary folders, so no cluster is created.
install_postgres() {
	[ -x /usr/lib/postgresql/15/bin/postgres ] && return
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		log "PostgreSQL 15 missing: install Debian's postgresql-15 (needs root and apt-get)"
		exit 1
	fi
	log "installing postgresql-15 from Debian's packages"
	mkdir -p /etc/postgresql-common
	echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >&2
}

build_mailpit() {
	have mailpit $MAILPIT_VERSION && return
	log "building mailpit $MAILPIT_VERSION"
	GOBIN="$DIR/mailpit-$MAILPIT_VERSION" go install github.com/axllent/mailpit@$MAILPIT_VERSION
}

build_ghz() {
	have ghz $GHZ_VERSION && return
	log "building ghz $GHZ_VERSION"
	GOBIN="$DIR/ghz-$GHZ_VERSION" go install github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION
}

# build_kube: the Kubernetes binaries: kube-apiserver and kubectl (the
# manifests' check), and kube-controller-manager, kube-scheduler, kubelet
# and kube-proxy (a node, for make test-kubernetes). k8s.io/kubernetes
# points its k8s.io/* staging modules at folders its module zip lacks; they
# are published as v0.<minor>.<patch>, so the replaces become requirements.
KUBE_BINARIES=(kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)
build_kube() {
	local b missing=0
	for b in "${KUBE_BINARIES[@]}"; do have "$b" $KUBE_VERSION || missing=1; done
	[ $missing = 1 ] || return 0
	log "building ${KUBE_BINARIES[*]} $KUBE_VERSION (several minutes)"
	local src; src=$(copy_module k8s.io/kubernetes@$KUBE_VERSION)
	rm -f "$src/go.work" "$src/go.work.sum"
	local staging="v0.${KUBE_VERSION#v1.}" m
	local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
	local ldflags="" pkg
	for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	done
	(
		cd "$src"
		for m in $(awk '$2 == "=>" && $3 ~ /^\.\// { print $1 }' go.mod); do
			go mod edit -dropreplace="$m" -require="$m@$staging"
		done
		go mod tidy
		for b in "${KUBE_BINARIES[@]}"; do
			go build -ldflags="$ldflags" -o "$DIR/$b-$KUBE_VERSION.tmp/$b" "./cmd/$b"
		done
	)
	for b in "${KUBE_BINARIES[@]}"; do
		rm -rf "$DIR/$b-$KUBE_VERSION"
		mv "$DIR/$b-$KUBE_VERSION.tmp" "$DIR/$b-$KUBE_VERSION"
	done
	rm -rf "$src"
}

# build_etcd: etcd's own module has replace directives `go install` refuses,
# so its server's main package is built from a module of our own.
build_etcd() {
	have etcd $ETCD_VERSION && return
	log "building etcd $ETCD_VERSION"
	local src; src=$(mktemp -d)
	cat >"$src/main.go" <<-'EOF'
	// Command etcd is etcd's server.
	package main

	import (
		"os"

		"go.etcd.io/etcd/server/v3/etcdmain"
	)

	func main() { etcdmain.Main(os.Args) }
	EOF
	(
		cd "$src"
		go mod init etcd
		go get go.etcd.io/etcd/server/v3@$ETCD_VERSION
		go mod tidy
		go build -o "$DIR/etcd-$ETCD_VERSION.tmp/etcd" .
	)
	mv "$DIR/etcd-$ETCD_VERSION.tmp" "$DIR/etcd-$ETCD_VERSION"
	rm -rf "$src"
}

# build_coredns: the cluster DNS of the node make test-kubernetes runs.
build_coredns() {
	have coredns $COREDNS_VERSION && return
	log "building coredns $COREDNS_VERSION (a few minutes)"
	GOBIN="$DIR/coredns-$COREDNS_VERSION.tmp" go install github.com/coredns/coredns@$COREDNS_VERSION
	mv "$DIR/coredns-$COREDNS_VERSION.tmp" "$DIR/coredns-$COREDNS_VERSION"
}

# The Go tool has to run outside this repository so that its go.mod does not
# take part in the builds.
cd "$DIR"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(consul prometheus alertmanager jaeger compose ghz mailpit postgres kube etcd coredns)
for t in "${targets[@]}"; do
	case "$t" in
	consul | prometheus | alertmanager | jaeger | compose | ghz | mailpit | kube | etcd | coredns) "build_$t" ;;
	postgres) install_postgres ;;
	*) log "unknown backend $t"; exit 2 ;;
	esac
done
echo "$DIR"
