#!/usr/bin/env bash
# make test-compose: docker-compose.yml as it is, on a real Docker engine
# (integration/compose_engine_test.go). The engine is the running one, or
# one this script starts (scripts/docker-engine.sh) and stops again; the
# images are pulled or stood in for (scripts/standin-images.sh). Services
# whose images cannot be had are left out, and the test says which.
set -euo pipefail
cd "$(dirname "$0")/.."

state="${XDG_CACHE_HOME:-$HOME/.cache}/golden/docker-engine"
scripts/install-backends.sh compose >/dev/null
engine=$(scripts/docker-engine.sh start "$state")
[ "$engine" = started ] && trap 'scripts/docker-engine.sh stop "$state"' EXIT

leave_out=$(scripts/standin-images.sh)
GOLDEN_COMPOSE_ENGINE=1 GOLDEN_COMPOSE_LEAVE_OUT="$(echo $leave_out)" GOLDEN_REQUIRE_BACKENDS=1 \
	${GO:-go} test -race -count=1 -timeout 25m -run '^TestComposeStackOnDockerEngine$' -v ./integration
