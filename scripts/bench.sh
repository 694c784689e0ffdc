#!/usr/bin/env bash
# What golden's instrumentation costs, measured end to end on this machine;
# `make bench` runs it. It prints one Markdown report and writes it to
# bench/RESULTS.md. bench/README.md describes the method.
#
#   1. per-RPC cost: go test -bench BenchmarkUnaryRPC (bare, golden,
#      golden-nogelf, golden-nolog, peer, peer-nolog over mTLS on loopback)
#      and BenchmarkJWTVerify;
#   2. throughput and latency: ghz against the same servers (bench/cmd/benchserver),
#      flat out, then at a fixed rate in BENCH_COUNT interleaved rounds;
#   3. log calls: observability/logging's BenchmarkLogCall and
#      BenchmarkAccessLog;
#   4. memory: VmRSS of user, auth and gateway as separate `golden serve`
#      processes, idle and under load;
#   5. the tracing pipeline: CPU of those processes and of Jaeger per
#      request at a fixed rate, for each way of sampling traces;
#   6. the garbage collector: their CPU and peak RSS per GOGC, with the
#      GOMEMLIMIT they are deployed with.
#
# Everything listens on loopback, every step is bounded in time, and every
# process it starts is stopped on exit, Ctrl-C or SIGTERM. About 12 minutes
# on 2 cores once the backends are built. Knobs (environment):
#
#   BENCH_COUNT=3        rounds of the benchmarks and of the fixed-rate ghz runs
#                        (medians over them)
#   BENCH_TIME=2s        go test -benchtime of BenchmarkUnaryRPC
#   BENCH_GHZ_DURATION=15s  length of each flat-out ghz run (one per server)
#   BENCH_GHZ_FIXED=10s  length of each fixed-rate ghz run (0s: none)
#   BENCH_LOAD_RATE=200  load of the RSS step, requests/s
#   BENCH_LOAD_DURATION=30s
#   BENCH_SAMPLING_RATE=1000  load of the sampling step, requests/s
#   BENCH_SAMPLING_DURATION=20s  its measured load per way of sampling (and
#                        per GOGC in step 6, at the same rate)
set -euo pipefail

cd "$(dirname "$0")/.."
COUNT=${BENCH_COUNT:-3}
BENCHTIME=${BENCH_TIME:-2s}
GHZ_DURATION=${BENCH_GHZ_DURATION:-15s}
GHZ_FIXED=${BENCH_GHZ_FIXED:-10s}
LOAD_RATE=${BENCH_LOAD_RATE:-200}
LOAD_DURATION=${BENCH_LOAD_DURATION:-30s}
SAMPLING_RATE=${BENCH_SAMPLING_RATE:-1000}
SAMPLING_DURATION=${BENCH_SAMPLING_DURATION:-20s}
GO=${GO:-go}

log() { echo "bench: $*" >&2; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/golden-bench.XXXXXX")
# Everything temporary (test TempDirs, Jaeger's Badger folder) goes under
# TMP, which the trap removes even after a step was killed mid-way.
export TMPDIR="$TMP"
# Every long step runs as a job in its own process group (set -m), so that
# the trap can stop it with everything it started (Jaeger, ghz, services),
# and so that `wait` lets the trap run at once on a signal.
set -m
CHILD=""
WATCHDOG=""
SERVER=""

stop_group() { # stop_group PID SECONDS: SIGTERM to the group, SIGKILL after SECONDS
	local pid=$1 secs=$2 i
	[ -n "$pid" ] || return 0
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for ((i = 0; i < secs * 5; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	log "process group $pid still running after ${secs}s: SIGKILL"
	kill -KILL -- "-$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -z "$WATCHDOG" ] || kill -TERM -- "-$WATCHDOG" 2>/dev/null || true
	stop_group "$CHILD" 20
	stop_group "$SERVER" 30
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# step NAME SECONDS CMD...: runs CMD as a job bounded to SECONDS.
step() {
	local name=$1 secs=$2 rc=0
	shift 2
	log "$name"
	"$@" &
	CHILD=$!
	# The watchdog is its own job too; it only ever signals CHILD's group.
	(sleep "$secs" && log "$name: over ${secs}s, stopping it" && kill -TERM -- "-$CHILD" 2>/dev/null) &
	WATCHDOG=$!
	wait "$CHILD" || rc=$?
	kill -TERM -- "-$WATCHDOG" 2>/dev/null || true
	wait "$WATCHDOG" 2>/dev/null || true
	CHILD="" WATCHDOG=""
	[ "$rc" -eq 0 ] || { log "$name failed (exit $rc)"; return "$rc"; }
}

# 0. Backends and binaries (cached after the first run).
step "installing ghz and jaeger (first run only: minutes)" 900 \
	scripts/install-backends.sh ghz jaeger >/dev/null
step "building" 600 bash -c "
	CGO_ENABLED=0 $GO build -trimpath -o '$TMP/golden' ./cmd/golden &&
	$GO build -o '$TMP/benchserver' ./bench/cmd/benchserver &&
	$GO build -o '$TMP/benchtool' ./bench/cmd/benchtool &&
	$GO test -c -o '$TMP/bench.test' ./bench &&
	$GO test -c -o '$TMP/logging.test' ./observability/logging"

# 1. Per-RPC cost. Test binaries run in their package folder, where the
# benchmarks find ../jaeger/config.yaml. COUNT rounds of -count 1 rather
# than one -count COUNT, which would run each server's rounds back to back:
# interleaved, a slow minute of the machine weighs on every server alike.
step "per-RPC benchmarks (BenchmarkUnaryRPC, BenchmarkJWTVerify; $COUNT rounds)" 600 bash -c "
	cd bench && for i in \$(seq '$COUNT'); do
		'$TMP/bench.test' -test.run '^\$' -test.bench 'BenchmarkUnaryRPC|BenchmarkJWTVerify' \
			-test.benchtime '$BENCHTIME' -test.count 1 -test.timeout 3m -test.v >>'$TMP/rpc.txt' 2>&1 || exit
	done"
SPAN_SINK=$(sed -n 's/.*spans go to \([^;]*\);.*/\1/p' "$TMP/rpc.txt" | head -1)

# 3 before 2: the log benchmarks are in-process and short.
step "log-call benchmarks (observability/logging BenchmarkLogCall, BenchmarkAccessLog; -count $COUNT)" 300 bash -c "
	cd observability/logging && '$TMP/logging.test' -test.run '^\$' -test.bench 'BenchmarkLogCall|BenchmarkAccessLog' \
		-test.benchtime 1s -test.count '$COUNT' -test.timeout 4m >'$TMP/log.txt' 2>&1"

# 2. ghz and 4. RSS against servers in another process.
log "starting bench/cmd/benchserver"
"$TMP/benchserver" --env "$TMP/env.json" --dir "$TMP/server" >/dev/null 2>"$TMP/benchserver.log" &
SERVER=$!
for ((i = 0; i < 450; i++)); do
	[ -s "$TMP/env.json" ] && break
	kill -0 "$SERVER" 2>/dev/null || { cat "$TMP/benchserver.log" >&2; log "benchserver exited"; exit 1; }
	sleep 0.2
done
[ -s "$TMP/env.json" ] || { log "benchserver not ready after 90s"; exit 1; }

step "ghz (flat out ${GHZ_DURATION}, then ${COUNT} rounds at a fixed rate ${GHZ_FIXED}, per server)" 720 bash -c "
	'$TMP/benchtool' ghz --env '$TMP/env.json' --duration '$GHZ_DURATION' \
		--fixed-duration '$GHZ_FIXED' --fixed-rounds '$COUNT' >'$TMP/ghz.md'"
step "RSS idle and under ${LOAD_RATE}/s for ${LOAD_DURATION}" 240 bash -c "
	'$TMP/benchtool' rss --env '$TMP/env.json' --golden '$TMP/golden' --idle 10s \
		--load '$LOAD_DURATION' --rate '$LOAD_RATE' >'$TMP/rss.md'"

log "stopping benchserver"
stop_group "$SERVER" 30
SERVER=""

# 5. After benchserver: each way of sampling gets a Jaeger of its own.
step "tracing pipeline at ${SAMPLING_RATE}/s for ${SAMPLING_DURATION} per way of sampling" 600 bash -c "
	'$TMP/benchtool' sampling --golden '$TMP/golden' --rate '$SAMPLING_RATE' --load '$SAMPLING_DURATION' >'$TMP/sampling.md'"
step "garbage collector: GOGC 100, 200, 400 at ${SAMPLING_RATE}/s" 400 bash -c "
	'$TMP/benchtool' gc --golden '$TMP/golden' --rate '$SAMPLING_RATE' --load '$SAMPLING_DURATION' >'$TMP/gc.md'"

step "tables" 60 bash -c "
	'$TMP/benchtool' rpc-table '$TMP/rpc.txt' >'$TMP/rpc.md' &&
	'$TMP/benchtool' logcall-table '$TMP/log.txt' >'$TMP/log.md'"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then COMMIT="$COMMIT (with local changes)"; fi
bench_lines() { grep -E '^Benchmark[^[:space:]]+[[:space:]]+[0-9]+[[:space:]]' "$1" || true; }

{
	cat <<EOF
# What the instrumentation costs

Written by \`make bench\` (scripts/bench.sh) at $STARTED, commit $COMMIT.
Method and how to read the tables: [README.md](README.md).

| machine | |
|---|---|
| CPU | $CPU |
| cores | $(nproc) (GOMAXPROCS $(nproc)) |
| memory | $MEM |
| kernel | $(uname -sr) |
| Go | $($GO env GOVERSION) |
| load average (1, 5, 15 min) at start | $LOAD_START |
| load average at end | $LOAD_END |
| span sink | ${SPAN_SINK:-unknown} (go test); $(sed -n 's/.*"otlp_kind": "\([a-z]*\)".*/\1/p' "$TMP/env.json" 2>/dev/null || true) (ghz, RSS) |

Load generators, servers, Jaeger and the GELF listener all share these
cores. The run itself keeps them busy from the ghz step on, so the load
average at end is about the core count by itself; a load average at start
well below the core count means nobody else was competing when it began.

## 1. Per-RPC cost (go test -bench)

GetUser over mTLS (TLS 1.3, client certificate) on loopback, 32 calls in
flight over 4 connections (\`b.RunParallel\`),
median of $COUNT interleaved rounds of -benchtime $BENCHTIME, client and server in one
process. \`cpu-ns/op\` is the process's CPU time per call.

EOF
	cat "$TMP/rpc.md"
	cat <<EOF

## 2. Throughput and latency (ghz)

The same servers in one \`bench/cmd/benchserver\` process, ghz v0.93.0 in
another, one server at a time.

EOF
	cat "$TMP/ghz.md"
	cat <<EOF

## 3. Log calls (observability/logging BenchmarkLogCall, BenchmarkAccessLog)

One \`log.WithContext(ctx).WithField(...).Info(...)\` per op from one
goroutine, stdout discarded, median of $COUNT runs of -benchtime 1s.
\`dropped/call\` is the share of entries the GELF sink shed
(\`golden_log_messages_dropped_total\`) instead of making the caller wait.

EOF
	cat "$TMP/log.md"
	cat <<EOF

## 4. Memory (VmRSS)

EOF
	cat "$TMP/rss.md"
	cat <<EOF

## 5. The tracing pipeline: what sampling costs and saves

EOF
	cat "$TMP/sampling.md"
	cat <<EOF

## 6. The garbage collector (GOGC)

EOF
	cat "$TMP/gc.md"
	cat <<EOF

<details><summary>Raw benchmark lines</summary>

\`\`\`
$(bench_lines "$TMP/rpc.txt")
$(bench_lines "$TMP/log.txt")
\`\`\`

</details>
EOF
} >"$TMP/RESULTS.md"

cp "$TMP/RESULTS.md" bench/RESULTS.md
cat "$TMP/RESULTS.md"
log "written to bench/RESULTS.md"
