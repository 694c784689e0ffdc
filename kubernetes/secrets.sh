#!/usr/bin/env bash
# The Secrets of the golden stack on Kubernetes, made outside the cluster so
# that the CA's private key never enters it:
#
#   kubernetes/secrets.sh [--apply] [--force] [--only NAME,...] [--pki DIR]
#                         [--namespace NS] [--alertmanager-secrets DIR] [--offline]
#
# It prints the Secrets as YAML on stdout (kubectl create secret generic
# ... --dry-run=client -o yaml), or with --apply applies them with kubectl
# (first creating the namespace when it is missing). Either way it first
# asks the cluster which Secrets exist and keeps those: only missing ones
# are made, so running it again changes nothing. --force makes and replaces
# all of them (or those named by --only); see "Replacing" below. --offline
# prints every Secret without asking the cluster (to store or apply them
# some other way).
#
#   certs-auth     ca.crt auth.crt auth.key token-signing.pub token-signing.key
#   certs-user     ca.crt user.crt user.key token-signing.pub
#   certs-gateway  ca.crt gateway.crt gateway.key token-signing.pub
#                  (`golden certs ensure --export`: each service's own files)
#   consul-acl     management-token (UUID): Consul's initial management token
#   consul-tokens  auth user gateway prometheus canary-guard operator (UUIDs):
#                  the secrets of golden's Consul tokens, chosen here and
#                  given to Consul by the consul-setup Job
#   postgres       password
#   web-passwords  prometheus alertmanager jaeger grafana mailpit (user admin)
#   canary-guard   webhook-token: Alertmanager's secret for the canary guard
#   alertmanager-secrets  with --alertmanager-secrets DIR only: every file of
#                  DIR (webhook_url, smtp_password: alertmanager/README.md)
#
# The root CA, every certificate and key, and the token signing key pair are
# kept in --pki DIR (default $XDG_DATA_HOME/golden/kubernetes-pki, or
# ~/.local/share/golden/kubernetes-pki), on this machine only, and renewed
# there by `golden certs ensure` (certificates live 90 days and are renewed
# within 30 days of their end). The prometheus and admin client
# certificates stay there too. A renewal reaches the cluster with
#   kubernetes/secrets.sh --apply --force --only certs-auth,certs-user,certs-gateway
# and the services pick the new files up without a restart.
#
# Replacing: Consul keeps the management token and PostgreSQL the password
# they were first started with, so replacing consul-acl or postgres (--force)
# needs fresh volumes for them. Replaced consul-tokens take effect when the
# consul-setup Job runs again (delete it and apply again). Grafana keeps the
# admin password it was first started with.
#
# Environment: GOLDEN, the golden binary (default: golden on PATH, else one
# built from this repository with go build); KUBECTL, the kubectl command
# (default kubectl; it may carry options, such as --kubeconfig FILE), and
# KUBECONFIG as kubectl reads it. Values are random from /dev/urandom:
# passwords 32 hex digits (URL-safe: GOLDEN_DB_URL embeds the PostgreSQL
# password), tokens UUIDs. Nothing secret is printed on stderr.
set -euo pipefail

# usage CODE: the comment above, then exit CODE.
usage() {
	sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit "$1"
}

log() { echo "secrets.sh: $*" >&2; }
die() { log "$*"; exit 1; }

apply=0
force=0
offline=0
only=""
namespace=golden
pki="${XDG_DATA_HOME:-$HOME/.local/share}/golden/kubernetes-pki"
alertmanager_dir=""
while [ $# -gt 0 ]; do
	case "$1" in
	--apply) apply=1 ;;
	--force) force=1 ;;
	--offline) offline=1 ;;
	--only) [ $# -ge 2 ] || usage 2; only="$2"; shift ;;
	--only=*) only="${1#*=}" ;;
	--pki) [ $# -ge 2 ] || usage 2; pki="$2"; shift ;;
	--pki=*) pki="${1#*=}" ;;
	--namespace | -n) [ $# -ge 2 ] || usage 2; namespace="$2"; shift ;;
	--namespace=*) namespace="${1#*=}" ;;
	--alertmanager-secrets) [ $# -ge 2 ] || usage 2; alertmanager_dir="$2"; shift ;;
	--alertmanager-secrets=*) alertmanager_dir="${1#*=}" ;;
	-h | --help) usage 0 ;;
	*) log "unknown argument $1"; usage 2 ;;
	esac
	shift
done
if [ "$apply" -eq 1 ] && [ "$offline" -eq 1 ]; then
	die "--apply needs the cluster: drop --offline"
fi
if [ -n "$alertmanager_dir" ] && [ ! -d "$alertmanager_dir" ]; then
	die "--alertmanager-secrets $alertmanager_dir: not a folder"
fi

read -r -a kubectl <<<"${KUBECTL:-kubectl}"
command -v "${kubectl[0]}" >/dev/null 2>&1 || die "${kubectl[0]} not found (set KUBECTL)"

repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 700 "$tmp"

# Every Secret, in the order they are made.
names=(certs-auth certs-user certs-gateway consul-acl consul-tokens postgres web-passwords canary-guard)
[ -z "$alertmanager_dir" ] || names+=(alertmanager-secrets)

if [ -n "$only" ]; then
	IFS=, read -r -a wanted <<<"$only"
	for w in "${wanted[@]}"; do
		case " ${names[*]} " in
		*" $w "*) ;;
		*) die "--only $w: not one of ${names[*]}" ;;
		esac
	done
else
	wanted=("${names[@]}")
fi

# What the cluster already has.
namespace_exists=0
existing=""
if [ "$offline" -eq 0 ]; then
	if "${kubectl[@]}" get namespace "$namespace" -o name >/dev/null 2>"$tmp/err"; then
		namespace_exists=1
		existing="$("${kubectl[@]}" get secrets -n "$namespace" -o name 2>"$tmp/err")" ||
			die "cannot list the Secrets of namespace $namespace: $(cat "$tmp/err")"
	elif ! grep -q NotFound "$tmp/err"; then
		die "cannot reach the cluster ($(cat "$tmp/err")); give kubectl a kubeconfig, or print every Secret without checking with --offline"
	fi
fi

todo=()
for name in "${wanted[@]}"; do
	if [ "$force" -eq 0 ] && grep -qx "secret/$name" <<<"$existing"; then
		log "kept $name (it exists; --force replaces it)"
	else
		todo+=("$name")
	fi
done
if [ ${#todo[@]} -eq 0 ]; then
	log "nothing to do in namespace $namespace"
	exit 0
fi

# random_hex and random_uuid.
. "$repo/scripts/random.sh"

# value DIR KEY VALUE: KEY's value as the file DIR/KEY, without a newline
# (a Secret's key holds the file's bytes, and environment variables from it
# would carry the newline).
value() {
	mkdir -p "$1"
	printf '%s' "$3" >"$1/$2"
	case "$3" in
	'' | *[!0-9a-f-]*) die "could not generate random values (od or /dev/urandom missing?)" ;;
	esac
}

# secret NAME DIR: the Secret NAME with one key per file of DIR, as YAML.
secret() {
	echo "---"
	"${kubectl[@]}" create secret generic "$1" --namespace "$namespace" --from-file="$2" --dry-run=client -o yaml |
		"${kubectl[@]}" label --local -f - app.kubernetes.io/part-of=golden -o yaml
}

# The certificates: golden certs ensure creates or renews what is missing
# or expiring in the PKI folder and exports each service's own files.
need_certs=0
for name in "${todo[@]}"; do
	case "$name" in certs-*) need_certs=1 ;; esac
done
if [ "$need_certs" -eq 1 ]; then
	if [ -n "${GOLDEN:-}" ]; then
		golden="$GOLDEN"
	elif command -v golden >/dev/null 2>&1; then
		golden=golden
	else
		command -v go >/dev/null 2>&1 || die "neither golden nor go found: set GOLDEN to the golden binary"
		log "building golden from $repo"
		(cd "$repo" && go build -o "$tmp/golden" ./cmd/golden)
		golden="$tmp/golden"
	fi
	mkdir -p "$pki"
	chmod 700 "$pki"
	log "certificates in $pki (the CA key stays there)"
	"$golden" certs ensure --dir "$pki" --services auth,user,gateway --clients prometheus,admin \
		--export "$tmp/export" >&2
fi

out="$tmp/secrets.yaml"
: >"$out"
if [ "$namespace_exists" -eq 0 ]; then
	# Labelled as kubernetes/base/namespace.yaml labels it.
	cat >>"$out" <<-EOF
	---
	apiVersion: v1
	kind: Namespace
	metadata:
	  name: $namespace
	  labels:
	    app.kubernetes.io/part-of: golden
	    pod-security.kubernetes.io/enforce: restricted
	    pod-security.kubernetes.io/warn: restricted
	EOF
fi
for name in "${todo[@]}"; do
	dir="$tmp/values/$name"
	case "$name" in
	certs-auth | certs-user | certs-gateway)
		dir="$tmp/export/${name#certs-}"
		;;
	consul-acl)
		value "$dir" management-token "$(random_uuid)"
		;;
	consul-tokens)
		for key in auth user gateway prometheus canary-guard operator; do
			value "$dir" "$key" "$(random_uuid)"
		done
		;;
	postgres)
		value "$dir" password "$(random_hex 16)"
		;;
	web-passwords)
		for key in prometheus alertmanager jaeger grafana mailpit; do
			value "$dir" "$key" "$(random_hex 16)"
		done
		;;
	canary-guard)
		value "$dir" webhook-token "$(random_hex 32)"
		;;
	alertmanager-secrets)
		dir="$alertmanager_dir"
		;;
	esac
	secret "$name" "$dir" >>"$out"
	log "made $name"
done

if [ "$apply" -eq 1 ]; then
	"${kubectl[@]}" apply -f "$out" >&2
else
	[ ! -t 1 ] || log "printing Secrets to a terminal: pipe them to kubectl apply -f - instead"
	cat "$out"
fi
