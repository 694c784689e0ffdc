#!/usr/bin/env bash
# Writes .env, the secrets of the compose stack (docker-compose.yml), with
# fresh random values:
#
#   scripts/gen-env.sh [--force] [FILE]     (FILE defaults to .env at the repo root)
#
# It refuses to replace an existing file unless --force is given. Values are
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

if [ -e "$out" ] && [ "$force" -ne 1 ]; then
	echo "gen-env: $out exists; keeping it (use --force to replace it and its passwords)" >&2
	exit 1
fi

# random_hex N: N random bytes as 2N hex digits.
random_hex() {
	od -An -v -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

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

for v in "$graylog_password_secret" "$graylog_admin_password" "$graylog_root_password_sha2" "$grafana_admin_password" "$postgres_password"; do
	case "$v" in
	'' | *[!0-9a-f]*) echo "gen-env: could not generate random values (od, /dev/urandom, sha256sum or shasum missing?)" >&2; exit 1 ;;
	esac
done

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
