#!/usr/bin/env bash
# Writes .env, the secrets of the compose stack (docker-compose.yml), with
# fresh random values:
#
#   scripts/gen-env.sh [--force] [FILE]     (FILE defaults to .env at the repo root)
#
# It refuses to replace an existing file unless --force is given; an
# existing file that lacks variables added since it was written (new
# passwords and tokens) gets those appended, and keeps every other value. Values are
# hex from /dev/urandom (no openssl, no python), so they need no quoting in
# .env or in compose interpolation. The file is created mode 0600 and is
# never printed: read the passwords from it.
#
# Regenerating (--force) on a stack that already has data: Graylog takes the
# new admin password at its next start, but values it encrypted in MongoDB
# with the old GRAYLOG_PASSWORD_SECRET become unreadable, and Grafana keeps
# the admin password it stored at its first start (see docker-compose.yml).
set -euo pipefail

usage() { echo "usage: $0 [--force] [FILE]" >&2; exit 2; }

force=0
out=""
for arg in "$@"; do
	case "$arg" in
	--force) force=1 ;;
	-h | --help) usage ;;
	-*) echo "gen-env: unknown option $arg" >&2; usage ;;
	*) [ -z "$out" ] || usage; out="$arg" ;;
	esac
done
if [ -z "$out" ]; then
	out="$(cd "$(dirname "$0")/.." && pwd)/.env"
fi

# random_hex and random_uuid.
. "$(dirname "$0")/random.sh"

# sha256_hex: the SHA-256 of stdin in hex.
sha256_hex() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum | cut -d' ' -f1
	else
		shasum -a 256 | cut -d' ' -f1
	fi
}

graylog_password_secret=$(random_hex 48)   # 96 characters (Graylog wants >= 16, 64+ recommended)
graylog_admin_password=$(random_hex 16)    # 128 bits
graylog_root_password_sha2=$(printf '%s' "$graylog_admin_password" | sha256_hex)
grafana_admin_password=$(random_hex 16)
postgres_password=$(random_hex 16)
mailpit_password=$(random_hex 16)
prometheus_password=$(random_hex 16)
alertmanager_password=$(random_hex 16)
jaeger_password=$(random_hex 16)
canary_guard_token=$(random_hex 32)
consul_management_token=$(random_uuid)
consul_operator_token=$(random_uuid)

for v in "$graylog_password_secret" "$graylog_admin_password" "$graylog_root_password_sha2" "$grafana_admin_password" "$postgres_password" "$mailpit_password" "$prometheus_password" "$alertmanager_password" "$jaeger_password" "$canary_guard_token" "${consul_management_token//-/}" "${consul_operator_token//-/}"; do
	case "$v" in
	'' | *[!0-9a-f]*) echo "gen-env: could not generate random values (od, /dev/urandom, sha256sum or shasum missing?)" >&2; exit 1 ;;
	esac
done

if [ -e "$out" ] && [ "$force" -ne 1 ]; then
	# Values that depend on no other one can be added on their own.
	missing=()
	for pair in "GRAFANA_ADMIN_PASSWORD=$grafana_admin_password" "POSTGRES_PASSWORD=$postgres_password" \
		"MAILPIT_PASSWORD=$mailpit_password" "PROMETHEUS_PASSWORD=$prometheus_password" \
		"ALERTMANAGER_PASSWORD=$alertmanager_password" "JAEGER_PASSWORD=$jaeger_password" \
		"CONSUL_MANAGEMENT_TOKEN=$consul_management_token" \
		"CONSUL_OPERATOR_TOKEN=$consul_operator_token" \
		"CANARY_GUARD_TOKEN=$canary_guard_token"; do
		grep -q "^${pair%%=*}=" "$out" || missing+=("$pair")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "gen-env: $out exists; keeping it (use --force to replace it and its passwords)" >&2
		exit 1
	fi
	{
		printf '\n# Added by scripts/gen-env.sh (%s); see .env.example.\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		printf '%s\n' "${missing[@]}"
	} >>"$out"
	echo "gen-env: $out exists; added $(printf '%s ' "${missing[@]%%=*}")and kept every other value"
	exit 0
fi

umask 077
dir=$(dirname "$out")
tmp=$(mktemp "$dir/.env.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<ENV
# Secrets of the golden compose stack, written by scripts/gen-env.sh
# ($(date -u +%Y-%m-%dT%H:%M:%SZ)). Never commit this file. See .env.example.

# Graylog encrypts and salts with this (at least 16 characters).
GRAYLOG_PASSWORD_SECRET=$graylog_password_secret
# Graylog web interface and API: user "admin", http://localhost:9000
GRAYLOG_ADMIN_PASSWORD=$graylog_admin_password
# SHA-256 of GRAYLOG_ADMIN_PASSWORD: change both together.
GRAYLOG_ROOT_PASSWORD_SHA2=$graylog_root_password_sha2

# Grafana: user "admin", http://localhost:3000
GRAFANA_ADMIN_PASSWORD=$grafana_admin_password

# PostgreSQL: user "golden", database "golden" (accounts, refresh tokens).
POSTGRES_PASSWORD=$postgres_password

# Mailpit (Alertmanager's email): user "admin", http://localhost:8025
MAILPIT_PASSWORD=$mailpit_password

# Prometheus (http://localhost:9090) and Alertmanager (http://localhost:9093):
# user "admin". The web-auth one-shot turns them into the servers' sign-in
# (bcrypt) at every start, so a change here takes effect at the next up.
PROMETHEUS_PASSWORD=$prometheus_password
ALERTMANAGER_PASSWORD=$alertmanager_password
# Jaeger (http://localhost:16686, and golden lookup's --jaeger-password):
# user "admin", checked by jaeger-auth (golden authproxy).
JAEGER_PASSWORD=$jaeger_password
# The secret Alertmanager presents to golden canary guard (the canary-guard
# service), which rolls a failing canary back.
CANARY_GUARD_TOKEN=$canary_guard_token

# Consul's ACL tokens (UUIDs). The management token may do everything:
# consul-setup alone gets it, to bootstrap the ACL system and create the
# other tokens; Consul keeps the first one it was bootstrapped with, so
# changing it later needs a fresh consul-data volume. The operator token
# writes faults and reads the catalog: sign in to http://localhost:8500/ui/
# with it, and give it to golden fault as CONSUL_HTTP_TOKEN.
CONSUL_MANAGEMENT_TOKEN=$consul_management_token
CONSUL_OPERATOR_TOKEN=$consul_operator_token

# Folder with Alertmanager's real secret files (smtp_password, webhook_url),
# outside the repository; unset, the placeholders in
# alertmanager/secrets.example are used.
# ALERTMANAGER_SECRETS_DIR=/etc/golden/alertmanager-secrets
ENV
chmod 600 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT

echo "gen-env: wrote $out (mode 0600)"
echo "gen-env: Grafana (http://localhost:3000): user admin, password in GRAFANA_ADMIN_PASSWORD"
echo "gen-env: Graylog (http://localhost:9000): user admin, password in GRAYLOG_ADMIN_PASSWORD"
echo "gen-env: Mailpit (http://localhost:8025): user admin, password in MAILPIT_PASSWORD"
echo "gen-env: Prometheus (http://localhost:9090): user admin, password in PROMETHEUS_PASSWORD"
echo "gen-env: Alertmanager (http://localhost:9093): user admin, password in ALERTMANAGER_PASSWORD"
echo "gen-env: Jaeger (http://localhost:16686): user admin, password in JAEGER_PASSWORD"
echo "gen-env: Consul (http://localhost:8500/ui/): token in CONSUL_OPERATOR_TOKEN"
