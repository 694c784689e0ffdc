#!/usr/bin/env bash
# Checks and tests the Prometheus and Alertmanager configuration of the stack
# with the promtool and amtool that scripts/install-backends.sh builds:
#
#   - promtool check config, check rules and test rules (prometheus/tests/);
#   - amtool check-config, on a copy of alertmanager.yml whose secret files
#     point at alertmanager/secrets.example/;
#   - amtool routing tests (alertmanager/tests/routes.txt), and the email
#     templates rendered against alertmanager/tests/notification.json and
#     compared with the expected files beside it;
#   - the inhibition rules against a real Alertmanager on loopback
#     (alertmanager/tests/inhibition.txt), when one is installed.
#
#   scripts/check-configs.sh        (from anywhere; it works in the repository)
#
# It runs every check, then exits 1 if any failed, naming them. Binaries are
# looked up as internal/testbackend does: $GOLDEN_BACKENDS_DIR, or
# ${XDG_CACHE_HOME:-$HOME/.cache}/golden/backends, then <name>-<version>/<name>.
# A missing Alertmanager skips the inhibition test, unless
# GOLDEN_REQUIRE_BACKENDS is set.
set -uo pipefail

PROMETHEUS_VERSION=v0.307.3 # Prometheus 3.7.3; as in scripts/install-backends.sh
ALERTMANAGER_VERSION=v0.28.1

cd "$(dirname "$0")/.." || exit 2
DIR="${GOLDEN_BACKENDS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/golden/backends}"
PROMTOOL="$DIR/promtool-$PROMETHEUS_VERSION/promtool"
AMTOOL="$DIR/amtool-$ALERTMANAGER_VERSION/amtool"
ALERTMANAGER="$DIR/alertmanager-$ALERTMANAGER_VERSION/alertmanager"

failed=()
fail() { failed+=("$1"); echo "FAIL: $1" >&2; }
pass() { echo "ok:   $1"; }

# check NAME CMD...: runs CMD and records the result, showing CMD's output
# when it fails (or always, with VERBOSE=1).
check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ -n "$out" ] && { [ $rc -ne 0 ] || [ -n "${VERBOSE:-}" ]; }; then
		printf '%s\n' "$out" | sed 's/^/      /'
	fi
	if [ $rc -eq 0 ]; then pass "$name"; else fail "$name (exit $rc)"; fi
}

for bin in "$PROMTOOL" "$AMTOOL"; do
	if [ ! -x "$bin" ]; then
		echo "check-configs: $bin is not installed: run scripts/install-backends.sh prometheus alertmanager" >&2
		exit 2
	fi
done

tmp=$(mktemp -d)
am_pid=
cleanup() {
	if [ -n "$am_pid" ]; then
		kill "$am_pid" 2>/dev/null
		wait "$am_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== Prometheus (promtool $PROMETHEUS_VERSION)"
# prometheus.yml reads tokens and passwords from files that exist only in the
# compose stack's volumes; promtool insists that they exist. The check runs
# on a copy whose every credentials_file and password_file points at a
# placeholder file.
cp -r prometheus "$tmp/prometheus"
PROM_CONFIG="$tmp/prometheus/prometheus.yml"
for f in $(sed -n 's/^[[:space:]]*\(credentials_file\|password_file\):[[:space:]]*\([^[:space:]#]*\).*/\2/p' prometheus/prometheus.yml | sort -u); do
	mkdir -p "$tmp/files$(dirname "$f")"
	echo placeholder >"$tmp/files$f"
	sed -i "s#: *$f\$#: $tmp/files$f#" "$PROM_CONFIG"
done
check "promtool check config prometheus/prometheus.yml" \
	"$PROMTOOL" check config "$PROM_CONFIG"
check "promtool check rules prometheus/rules/*.yml" \
	"$PROMTOOL" check rules prometheus/rules/*.yml
check "promtool test rules prometheus/tests/*.yml" \
	"$PROMTOOL" test rules prometheus/tests/*.yml

echo "== Alertmanager (amtool $ALERTMANAGER_VERSION)"
# alertmanager.yml reads its secrets from /etc/alertmanager/secrets/, as the
# compose stack mounts them. The checks run on a copy that reads the
# placeholder files of alertmanager/secrets.example/ instead, which must hold
# every secret file the configuration names.
cp -r alertmanager "$tmp/alertmanager"
AM_CONFIG="$tmp/alertmanager/alertmanager.yml"
sed -i "s#/etc/alertmanager/secrets/#$tmp/alertmanager/secrets.example/#g" "$AM_CONFIG"
missing=()
for f in $(grep -o '/etc/alertmanager/secrets/[A-Za-z0-9._-]\+' alertmanager/alertmanager.yml | sort -u); do
	[ -f "alertmanager/secrets.example/${f##*/}" ] || missing+=("alertmanager/secrets.example/${f##*/}")
done
if [ ${#missing[@]} -eq 0 ]; then
	pass "every secret file of alertmanager.yml has an example in alertmanager/secrets.example/"
else
	fail "alertmanager.yml names secret files without an example: ${missing[*]}"
fi
check "amtool check-config alertmanager/alertmanager.yml" "$AMTOOL" check-config "$AM_CONFIG"

# Routing: one case a line of tests/routes.txt, "receiver[,receiver] label=value...".
n=0
while read -r receivers rest; do
	case "$receivers" in '' | '#'*) continue ;; esac
	read -ra labels <<<"$rest"
	n=$((n + 1))
	check "route ${labels[*]} -> $receivers" \
		"$AMTOOL" config routes test --config.file="$AM_CONFIG" --verify.receivers="$receivers" "${labels[@]}"
done <alertmanager/tests/routes.txt
[ $n -gt 0 ] || fail "alertmanager/tests/routes.txt holds no routing case"

# Templates: render each email part and compare it with the expected file.
# render_test TYPE TEMPLATE-NAME EXPECTED-FILE
render_test() {
	local text="{{ template \"$2\" . }}" got diff_out
	if ! got=$("$AMTOOL" template render --template.glob='alertmanager/templates/*.tmpl' \
		--template.data=alertmanager/tests/notification.json \
		--template.type="$1" --template.text="$text" 2>&1); then
		printf '%s\n' "$got" | sed 's/^/      /'
		fail "template $2 does not render"
	elif ! diff_out=$(diff -u "$3" <(printf '%s\n' "$got")); then
		printf '%s\n' "$diff_out" | sed 's/^/      /'
		fail "template $2 renders other than $3"
	else
		pass "template $2 renders as $3"
	fi
}
render_test text golden.email.subject alertmanager/tests/email-subject.txt
render_test text golden.email.text alertmanager/tests/email.txt
render_test html golden.email.html alertmanager/tests/email.html

# Inhibition, against a real Alertmanager: send every alert of
# tests/inhibition.txt, then expect each to be inhibited or active.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
inhibition_test() {
	local port url try i line state rest out
	local -a labels
	for try in 1 2 3; do
		port=$((20000 + RANDOM % 40000))
		port_free "$port" || continue
		mkdir -p "$tmp/am-data"
		"$ALERTMANAGER" --config.file="$AM_CONFIG" --storage.path="$tmp/am-data" \
			--web.listen-address="127.0.0.1:$port" --cluster.listen-address= \
			--log.level=warn >"$tmp/alertmanager.log" 2>&1 &
		am_pid=$!
		url="http://127.0.0.1:$port"
		for i in $(seq 1 100); do
			curl -fsS "$url/-/ready" >/dev/null 2>&1 && break 2
			kill -0 "$am_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$am_pid" 2>/dev/null
		wait "$am_pid" 2>/dev/null
		am_pid=
	done
	if [ -z "$am_pid" ]; then
		sed 's/^/      /' "$tmp/alertmanager.log" 2>/dev/null
		fail "Alertmanager did not start on loopback"
		return
	fi

	local -a expect=()
	while read -r state rest; do
		case "$state" in '' | '#'*) continue ;; esac
		read -ra labels <<<"$rest"
		if ! out=$("$AMTOOL" --alertmanager.url="$url" alert add "${labels[@]}" 2>&1); then
			printf '%s\n' "$out" | sed 's/^/      /'
			fail "sending alert ${labels[*]}"
			return
		fi
		expect+=("$state $rest")
	done <alertmanager/tests/inhibition.txt

	# The inhibitor learns of new alerts asynchronously: poll, at most 10s.
	local -a wrong
	for i in $(seq 1 50); do
		wrong=()
		for line in "${expect[@]}"; do
			read -r state rest <<<"$line"
			read -ra labels <<<"$rest"
			out=$("$AMTOOL" --alertmanager.url="$url" -o json alert query "--$state" "${labels[@]}" 2>&1)
			case "$out" in *'"labels"'*) ;; *) wrong+=("$line") ;; esac
		done
		[ ${#wrong[@]} -eq 0 ] && break
		sleep 0.2
	done
	if [ ${#wrong[@]} -eq 0 ]; then
		pass "inhibition: ${#expect[@]} alerts of alertmanager/tests/inhibition.txt inhibited or active as expected"
	else
		for line in "${wrong[@]}"; do echo "      not ${line%% *}: ${line#* }"; done
		fail "inhibition: ${#wrong[@]} alerts not in their expected state"
	fi
}
if [ -x "$ALERTMANAGER" ]; then
	inhibition_test
elif [ -n "${GOLDEN_REQUIRE_BACKENDS:-}" ]; then
	fail "$ALERTMANAGER is not installed (GOLDEN_REQUIRE_BACKENDS is set): run scripts/install-backends.sh alertmanager"
else
	echo "skip: inhibition test: $ALERTMANAGER is not installed (scripts/install-backends.sh alertmanager)"
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "check-configs: ${#failed[@]} check(s) failed:" >&2
	printf '  - %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "check-configs: all checks passed"
