#!/usr/bin/env bash
# Benchmark raftis against redis-server on this machine, in the same run, and print ratios.
#
#   scripts/bench.sh [--runs N] [--requests N] [--no-build]
#
# Each workload runs N times against each server (alternating, to share the machine's noise);
# the median requests/s is reported with the ratio raftis/redis. Only ratios from one run mean
# anything on a shared machine. Needs redis-server and redis-benchmark (redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
REQUESTS=200000
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n 2,9p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark: apt-get install redis-server redis-tools" >&2; exit 2; }
[ "$BUILD" = 1 ] && cargo build --release --quiet

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "server on port $1 did not start" >&2; exit 1
}

REDIS_PORT=26379
RAFTIS_PORT=26380
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
    --dir "$WORK" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
target/release/raftis --port $RAFTIS_PORT --data-dir "$WORK/raftis" --log-level warn >"$WORK/raftis.log" 2>&1 &
PIDS+=($!)
wait_port $REDIS_PORT
wait_port $RAFTIS_PORT

# Median requests/s of one workload against one port.
measure() {
    local port=$1; shift
    local results=()
    for _ in $(seq 1 "$RUNS"); do
        results+=("$(redis-benchmark -p "$port" -n "$REQUESTS" -q "$@" 2>/dev/null \
            | tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ {print $2; exit}')")
    done
    printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

printf '%-34s %14s %14s %8s\n' workload "redis req/s" "raftis req/s" ratio
run() {
    local name=$1; shift
    local r a
    r=$(measure $REDIS_PORT "$@")
    a=$(measure $RAFTIS_PORT "$@")
    printf '%-34s %14s %14s %8s\n' "$name" "$r" "$a" "$(awk -v a="$a" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", a / r; else print "n/a" }')"
}
run "SET, 50 clients"            -t set -c 50
run "GET, 50 clients"            -t get -c 50
run "GET, 50 clients, -P 16"     -t get -c 50 -P 16
run "SET, 1 client"              -t set -c 1 -n $((REQUESTS / 10))
echo "redis-server runs with appendonly yes, appendfsync always."
