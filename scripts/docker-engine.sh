#!/usr/bin/env bash
# A Docker engine for `make test-compose`.
#
#   scripts/docker-engine.sh start STATE_DIR   # prints "running" or "started"
#   scripts/docker-engine.sh stop STATE_DIR    # stops it only if start started it
#
# start uses the engine that already answers. Where none does and this runs
# as root with apt-get (as CI does), it installs Debian's docker.io when
# dockerd is missing and starts dockerd with the host's firewall and NAT
# left alone (no iptables rules, no IP masquerading) and fixed bridge
# address pools: containers reach each other and ports published on
# 127.0.0.1, and nothing outside the machine. stop stops only a dockerd
# that start started (its pid is in STATE_DIR).
set -euo pipefail

log() { echo "docker-engine: $*" >&2; }

cmd=${1:?usage: docker-engine.sh start|stop STATE_DIR}
state=${2:?usage: docker-engine.sh start|stop STATE_DIR}
mkdir -p "$state"

answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "$cmd" in
start)
	if answers; then
		echo running
		exit 0
	fi
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		log "no Docker engine answers, and starting one needs root and apt-get: start Docker and run again"
		exit 1
	fi
	if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
		log "installing Debian's docker.io"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
	fi
	# The docker CLI comes with docker.io; compose is built by install-backends.sh.
	cat >"$state/daemon.json" <<-'EOF'
		{
		  "iptables": false,
		  "ip-masq": false,
		  "bip": "10.253.0.1/24",
		  "default-address-pools": [{"base": "10.254.0.0/16", "size": 24}]
		}
	EOF
	dockerd --config-file "$state/daemon.json" >"$state/dockerd.log" 2>&1 &
	echo $! >"$state/dockerd.pid"
	for _ in $(seq 60); do
		if answers; then
			echo started
			exit 0
		fi
		sleep 1
	done
	log "dockerd did not answer within 60 s; its log: $state/dockerd.log"
	tail -20 "$state/dockerd.log" >&2 || true
	exit 1
	;;
stop)
	[ -f "$state/dockerd.pid" ] || exit 0
	pid=$(cat "$state/dockerd.pid")
	rm -f "$state/dockerd.pid"
	kill "$pid" 2>/dev/null || exit 0
	# dockerd stops its containers and containerd first: allow for that.
	for _ in $(seq 60); do
		kill -0 "$pid" 2>/dev/null || exit 0
		sleep 1
	done
	log "dockerd ($pid) still running after 60 s: killing it"
	kill -9 "$pid" 2>/dev/null || true
	;;
*)
	log "unknown command $cmd"
	exit 2
	;;
esac
