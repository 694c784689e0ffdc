#!/usr/bin/env bash
# The images docker-compose.yml names, for `make test-compose` on a machine
# that may reach no registry.
#
#   scripts/standin-images.sh    # prints the services to leave out, one a line
#
# golden:local is always built anew: the binary by the Dockerfile's own
# build line on the host (a module download inside a container may not
# verify the proxy's certificate), then the Dockerfile's runtime stage
# around it. Every other image is used when present and pulled when it can
# be. Where it cannot, a stand-in is built under the pinned name (labelled
# org.golden.standin) from Debian's packages (debootstrap) and the binaries
# scripts/install-backends.sh builds, with the upstream image's entrypoint,
# user, working directory and volumes and the tools its healthcheck runs;
# README.md ("Stand-in images") says how each differs. Images nothing here
# can stand in for (Grafana, Graylog, MongoDB, OpenSearch) are left out with
# the services that need them: their names are printed.
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE="${GOLDEN_STANDIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/golden/standins}"
BACKENDS=$(scripts/install-backends.sh consul prometheus alertmanager jaeger mailpit)
# A stand-in built by another version of this script is built again.
STAMP=$(sha256sum "$0" | cut -c1-16)
mkdir -p "$CACHE"

log() { echo "standin-images: $*" >&2; }

# image NAME: the image of service NAME in docker-compose.yml.
image() {
	awk -v svc="  $1:" '/^services:/ {s=1} s && $0 == svc {on=1; next} on && /^  [a-z]/ {exit} on && $1 == "image:" {print $2; exit}' docker-compose.yml
}

present() { docker image inspect "$1" >/dev/null 2>&1; }

# usable NAME: true when the image is here, as itself or as a current
# stand-in, or can be pulled.
usable() {
	local label
	if present "$1"; then
		label=$(docker image inspect -f '{{index .Config.Labels "org.golden.standin"}}' "$1")
		[ -z "$label" ] || [ "$label" = "$STAMP" ] && return 0
		return 1
	fi
	timeout 60 docker pull -q "$1" >/dev/null 2>&1
}

# rootfs NAME PACKAGES: a minimal Debian 12 root filesystem as a tarball in
# the cache (debootstrap, once for each package list).
rootfs() {
	local tar="$CACHE/$1-$(printf '%s' "$2" | sha256sum | cut -c1-8).tar" dir
	[ -s "$tar" ] && { echo "$tar"; return; }
	command -v debootstrap >/dev/null || {
		[ "$(id -u)" = 0 ] || { log "debootstrap missing (Debian's package debootstrap)"; exit 1; }
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
	}
	log "debootstrap $1 ($2)"
	dir=$(mktemp -d)
	debootstrap --variant=minbase --include="$2" bookworm "$dir" http://deb.debian.org/debian >"$CACHE/$1.log" 2>&1 ||
		{ log "debootstrap failed: $CACHE/$1.log"; exit 1; }
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
	# postgresql-common creates a cluster on install; the entrypoint makes its own.
	rm -rf "$dir"/var/lib/postgresql/15 "$dir"/etc/postgresql/15
	tar -C "$dir" -cf "$tar.tmp" .
	mv "$tar.tmp" "$tar"
	rm -rf "$dir"
	echo "$tar"
}

# base NAME PACKAGES: the root filesystem imported as image golden-standin/NAME.
base() {
	local tag="golden-standin/$1:$STAMP"
	present "$tag" || docker import "$(rootfs "$1" "$2")" "$tag" >/dev/null
	echo "$tag"
}

# build NAME CONTEXT [ARGS]: builds the Dockerfile in CONTEXT as image NAME
# with the legacy builder (no buildx needed), quiet unless it fails.
build() {
	local name=$1 dir=$2 old
	shift 2
	old=$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)
	DOCKER_BUILDKIT=0 docker build "$@" -t "$name" "$dir" >"$dir/build.log" 2>&1 ||
		{ cat "$dir/build.log" >&2; log "building $name failed"; exit 1; }
	# The image it replaces would stay behind untagged.
	[ -z "$old" ] || [ "$old" = "$(docker image inspect -f '{{.Id}}' "$name")" ] || docker rmi "$old" >/dev/null 2>&1 || true
}

# standin NAME CONTEXT: build, labelled as a stand-in.
standin() {
	log "building stand-in $1"
	build "$1" "$2" --label "org.golden.standin=$STAMP"
}

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

# The Debian base: what the upstream images' healthchecks run (curl, wget),
# the CA bundle, and busybox for the busybox stand-in.
DEBIAN_PACKAGES=curl,wget,ca-certificates,busybox-static
debian() { base debian "$DEBIAN_PACKAGES"; }

standin_busybox() { # busybox: Debian's static busybox, its applets linked in /bin.
	mkdir -p "$ctx/$1/bin"
	tar -xOf "$(rootfs debian "$DEBIAN_PACKAGES")" ./usr/bin/busybox >"$ctx/$1/bin/busybox"
	chmod 755 "$ctx/$1/bin/busybox"
	cat >"$ctx/$1/Dockerfile" <<-'EOF'
		FROM scratch
		COPY bin/busybox /bin/busybox
		RUN ["/bin/busybox", "--install", "-s", "/bin"]
		CMD ["sh"]
	EOF
	standin "$1" "$ctx/$1"
}

standin_distroless() { # gcr.io/distroless/static-debian12:nonroot
	mkdir -p "$ctx/$1/etc/ssl/certs" "$ctx/$1/tmp" "$ctx/$1/home/nonroot"
	tar -xOf "$(rootfs debian "$DEBIAN_PACKAGES")" ./etc/ssl/certs/ca-certificates.crt >"$ctx/$1/etc/ssl/certs/ca-certificates.crt"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ctx/$1/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$ctx/$1/etc/group"
	cat >"$ctx/$1/Dockerfile" <<-'EOF'
		FROM scratch
		COPY --chown=0:0 etc /etc
		COPY --chown=65532:65532 home /home
		COPY tmp /tmp
		USER 65532:65532
		WORKDIR /home/nonroot
	EOF
	chmod 1777 "$ctx/$1/tmp"
	standin "$1" "$ctx/$1"
}

standin_consul() { # hashicorp/consul: docker-entrypoint.sh's CONSUL_LOCAL_CONFIG and `agent` handling, as user consul.
	mkdir -p "$ctx/$1"
	cp "$BACKENDS/consul-v1.14.11/consul" "$ctx/$1/consul"
	cat >"$ctx/$1/docker-entrypoint.sh" <<-'EOF'
		#!/bin/sh
		set -e
		if [ -n "$CONSUL_LOCAL_CONFIG" ]; then
			echo "$CONSUL_LOCAL_CONFIG" >/consul/config/local.json
		fi
		if [ "${1#-}" != "$1" ]; then set -- agent "$@"; fi
		if [ "$1" = agent ]; then
			shift
			set -- consul agent -data-dir=/consul/data -config-dir=/consul/config "$@"
		elif consul --help "$1" >/dev/null 2>&1; then
			set -- consul "$@"
		fi
		if [ "$1" = consul ] && [ "$(id -u)" = 0 ]; then
			chown -R consul:consul /consul/data 2>/dev/null || true
			exec setpriv --reuid=consul --regid=consul --init-groups "$@"
		fi
		exec "$@"
	EOF
	cat >"$ctx/$1/Dockerfile" <<-EOF
		FROM $(debian)
		RUN groupadd -g 1000 consul && useradd -r -u 100 -g consul -d /consul consul && \
		    mkdir -p /consul/data /consul/config && chown -R consul:consul /consul
		COPY consul /bin/consul
		COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
		RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
		VOLUME /consul/data
		EXPOSE 8300 8301 8301/udp 8302 8302/udp 8500 8600 8600/udp
		ENTRYPOINT ["docker-entrypoint.sh"]
		CMD ["agent", "-dev", "-client", "0.0.0.0"]
	EOF
	standin "$1" "$ctx/$1"
}

standin_prom() { # prom/prometheus and prom/alertmanager: the binary, as nobody.
	local name=$2 bin=$3 dir=$4 cmd=$5
	mkdir -p "$ctx/$1"
	cp "$bin" "$ctx/$1/$name"
	cat >"$ctx/$1/Dockerfile" <<-EOF
		FROM $(debian)
		COPY $name /bin/$name
		RUN mkdir -p $dir && chown -R nobody:nogroup $dir
		USER nobody
		WORKDIR $dir
		VOLUME ["$dir"]
		ENTRYPOINT ["/bin/$name"]
		CMD $cmd
	EOF
	standin "$1" "$ctx/$1"
}

standin_jaeger() { # jaegertracing/jaeger 2.x: /cmd/jaeger/jaeger-linux as uid 10001.
	mkdir -p "$ctx/$1"
	cp "$BACKENDS/jaeger-v1.65.0/jaeger" "$ctx/$1/jaeger-linux"
	cat >"$ctx/$1/Dockerfile" <<-EOF
		FROM $(debian)
		COPY jaeger-linux /cmd/jaeger/jaeger-linux
		EXPOSE 4317 4318 16686 13133
		USER 10001
		ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
	EOF
	standin "$1" "$ctx/$1"
}

standin_mailpit() { # axllent/mailpit: /mailpit as the entrypoint.
	mkdir -p "$ctx/$1"
	cp "$BACKENDS/mailpit-v1.33.1/mailpit" "$ctx/$1/mailpit"
	cat >"$ctx/$1/Dockerfile" <<-EOF
		FROM $(debian)
		COPY mailpit /mailpit
		EXPOSE 1025 8025
		ENTRYPOINT ["/mailpit"]
	EOF
	standin "$1" "$ctx/$1"
}

standin_postgres() { # postgres: Debian's postgresql-15, the official entrypoint's first-start steps.
	mkdir -p "$ctx/$1"
	cat >"$ctx/$1/docker-entrypoint.sh" <<-'EOF'
		#!/bin/bash
		set -euo pipefail
		if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
		if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
			mkdir -p "$PGDATA" /var/run/postgresql
			chown postgres:postgres "$PGDATA" /var/run/postgresql
			chmod 0700 "$PGDATA"
			exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
		fi
		if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
			: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
			user=${POSTGRES_USER:-postgres}
			initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
			echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
			echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
			db=${POSTGRES_DB:-$user}
			if [ "$db" != postgres ]; then
				pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
				psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres -c "CREATE DATABASE \"$db\"" >/dev/null
				pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
			fi
			echo "PostgreSQL init process complete; ready for start up."
		fi
		exec "$@"
	EOF
	cat >"$ctx/$1/Dockerfile" <<-EOF
		FROM $(base postgres postgresql-15)
		COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
		# The upstream image's user postgres is 999:999, which Kubernetes
		# manifests name (runAsUser); Debian's package made another one.
		RUN chmod 755 /usr/local/bin/docker-entrypoint.sh && \\
			groupmod -g 999 postgres && usermod -u 999 -g 999 postgres && \\
			chown -R postgres:postgres /etc/postgresql /var/lib/postgresql /var/run/postgresql && \\
			chgrp postgres /var/log/postgresql
		ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
		VOLUME /var/lib/postgresql/data
		STOPSIGNAL SIGINT
		EXPOSE 5432
		ENTRYPOINT ["docker-entrypoint.sh"]
		CMD ["postgres"]
	EOF
	standin "$1" "$ctx/$1"
}

# golden:local: the Dockerfile's build line on the host, then its runtime
# stage (from the last FROM) with the binary copied in.
golden() {
	local runtime line
	runtime=$(sed -n 's/^FROM \([^ ]*\)$/\1/p' Dockerfile | tail -1)
	usable "$runtime" || standin_distroless "$runtime"
	line=$(sed -n 's/^RUN \(CGO_ENABLED=0 go build .*\) -o \/out\/golden \(.*\)$/\1 -o OUT \2/p' Dockerfile)
	[ -n "$line" ] || { log "no go build line in Dockerfile"; exit 1; }
	mkdir -p "$ctx/golden"
	log "building golden:local"
	(eval "${line/OUT/$ctx/golden/golden}")
	awk '/^FROM /{n=NR} {l[NR]=$0} END{for(i=n;i<=NR;i++) print l[i]}' Dockerfile |
		sed 's|^COPY --from=builder /out/golden /golden$|COPY golden /golden|' >"$ctx/golden/Dockerfile"
	grep -q '^COPY golden /golden$' "$ctx/golden/Dockerfile" || { log "Dockerfile's runtime stage does not copy /out/golden"; exit 1; }
	build golden:local "$ctx/golden"
}

golden
for svc in volume-init postgres consul prometheus alertmanager jaeger mailpit grafana graylog mongo opensearch; do
	img=$(image "$svc")
	[ -n "$img" ] || { log "no image for $svc in docker-compose.yml"; exit 1; }
	usable "$img" && continue
	case "$img" in
	busybox:*) standin_busybox "$img" ;;
	postgres:*) standin_postgres "$img" ;;
	hashicorp/consul:*) standin_consul "$img" ;;
	prom/prometheus:*)
		standin_prom "$img" prometheus "$BACKENDS/prometheus-v0.307.3/prometheus" /prometheus \
			'["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
		;;
	prom/alertmanager:*)
		standin_prom "$img" alertmanager "$BACKENDS/alertmanager-v0.28.1/alertmanager" /alertmanager \
			'["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]'
		;;
	jaegertracing/jaeger:*) standin_jaeger "$img" ;;
	axllent/mailpit:*) standin_mailpit "$img" ;;
	*) echo "$svc" ;;
	esac
done
