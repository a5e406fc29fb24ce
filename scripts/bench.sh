#!/usr/bin/env bash
# Benchmark raftis against redis-server on this machine, in the same run, and print ratios.
#
#   scripts/bench.sh [--runs N] [--requests N] [--groups G] [--no-build] [--no-cluster]
#
# Each workload runs N times against each server, alternating run by run (redis, raftis,
# redis, ...) so both share the machine's noise; the median requests/s is reported with the
# ratio raftis/redis. Every server first gets the same untimed warm-up (20000 SETs, 50
# clients). Servers: redis-server with appendfsync always, a single-node raftis, and (unless
# --no-cluster) a three-node raftis on 127.0.0.1 formed over the HTTP admin API (POST
# /raft/init), measured on its leader for the durable SET workloads; and (unless --no-cluster)
# a three-node raftis in cluster mode with G data groups (default 4) against a three-master
# Redis Cluster with appendfsync always, both driven by `redis-benchmark --cluster`. Only
# ratios from one run mean anything on a shared machine. Needs redis-server, redis-benchmark (redis-tools) and
# curl. RAFTIS_BIN=path benchmarks another raftis binary (e.g. one built from an older
# commit, for before/after figures). BENCH_PORT_BASE=P moves every port (default 26379: redis
# on P, raftis on P+1, the cluster's client ports P+12..P+14 and Raft ports P+112..P+114).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
REQUESTS=200000
BUILD=1
CLUSTER=1
GROUPS_SHARDED=4
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-cluster) CLUSTER=0; shift ;;
        --groups) GROUPS_SHARDED="$2"; shift 2 ;;
        -h|--help) sed -n 2,17p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark: apt-get install redis-server redis-tools" >&2; exit 2; }
[ "$CLUSTER" = 0 ] || command -v curl >/dev/null || { echo "needs curl (or --no-cluster)" >&2; exit 2; }
RAFTIS_BIN=${RAFTIS_BIN:-target/release/raftis}
if [ "$BUILD" = 1 ] && [ "$RAFTIS_BIN" = target/release/raftis ]; then cargo build --release --quiet; fi

source scripts/lib/servers.sh
init_work

BASE=${BENCH_PORT_BASE:-26379}
REDIS_PORT=$BASE
RAFTIS_PORT=$((BASE + 1))
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
    --dir "$WORK" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
"$RAFTIS_BIN" --port $RAFTIS_PORT --data-dir "$WORK/raftis" --log-level warn >"$WORK/raftis.log" 2>&1 &
PIDS+=($!)
wait_port $REDIS_PORT
wait_port $RAFTIS_PORT

# The three-node cluster: client ports 26391-26393, Raft (and admin HTTP) ports 26491-26493
# (with the default base).
CLUSTER_PORT=
if [ "$CLUSTER" = 1 ]; then
    members=""
    for i in 1 2 3; do
        "$RAFTIS_BIN" --port $((BASE + 11 + i)) --node-id "$i" --raft-addr "127.0.0.1:$((BASE + 111 + i))" \
            --is-bootstrap=no --data-dir "$WORK/node$i" --log-level warn >"$WORK/node$i.log" 2>&1 &
        PIDS+=($!)
        members+="${members:+, }[$i, {\"raft_addr\": \"127.0.0.1:$((BASE + 111 + i))\", \"resp_addr\": \"127.0.0.1:$((BASE + 11 + i))\"}]"
    done
    for i in 1 2 3; do wait_port $((BASE + 11 + i)); done
    curl -sS --max-time 30 -f -X POST -H 'Content-Type: application/json' --data "{\"nodes\": [$members]}" \
        "http://127.0.0.1:$((BASE + 112))/raft/init" >/dev/null || { echo "cluster init failed" >&2; exit 1; }
    for _ in $(seq 1 300); do
        leader=$(curl -sS --max-time 2 "http://127.0.0.1:$((BASE + 112))/raft/leader" 2>/dev/null \
            | sed -n 's/.*"leader_id": *\([0-9][0-9]*\).*/\1/p')
        [ -n "$leader" ] && CLUSTER_PORT=$((BASE + 11 + leader)) && break
        sleep 0.1
    done
    [ -n "$CLUSTER_PORT" ] || { echo "the three-node cluster elected no leader" >&2; exit 1; }
    # Cluster mode: raftis client ports 26411-26413 (Raft 26511-26513), Redis Cluster 26401-26403.
    start_raftis_sharded 26410 26510 "$GROUPS_SHARDED"
    start_redis_cluster 26400
fi

# Requests/s of one run of a workload against one port.
once() {
    local port=$1; shift
    # The figure before "requests per second" (a custom command's line starts with its words).
    redis-benchmark -p "$port" -n "$REQUESTS" -q "$@" 2>/dev/null | tr '\r' '\n' \
        | awk '/requests per second/ {for (i = 2; i <= NF; i++) if ($i == "requests") {print $(i - 1); exit}}'
}

median() {
    printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# The same warm-up for every server (first connections, the log's first segment, allocator).
for port in $REDIS_PORT $RAFTIS_PORT $CLUSTER_PORT; do
    redis-benchmark -p "$port" -n 20000 -c 50 -q -t set >/dev/null 2>&1
done
if [ -n "$CLUSTER_PORT" ]; then
    for port in 26401 26411; do redis-benchmark --cluster -p "$port" -n 20000 -c 50 -q -t set >/dev/null 2>&1; done
fi

# The small write script of the EVALSHA rows, loaded on every server (the SHA is the same).
SCRIPT="return redis.call('set', KEYS[1], ARGV[1])"
for port in $REDIS_PORT $RAFTIS_PORT $CLUSTER_PORT; do
    SHA=$(redis-cli -p "$port" SCRIPT LOAD "$SCRIPT")
done

printf '%-44s %14s %14s %8s\n' workload "redis req/s" "raftis req/s" ratio
# run NAME RAFTIS_PORT ARGS...: one line, redis against the raftis on that port.
run() {
    local name=$1 port=$2; shift 2
    run_pair "$name" $REDIS_PORT "$port" "$@"
}
# run_pair NAME REDIS_PORT RAFTIS_PORT ARGS...: one line, the redis on one port against the
# raftis on the other.
run_pair() {
    local name=$1 redis_port=$2 port=$3; shift 3
    local redis=() raftis=() r a
    for _ in $(seq 1 "$RUNS"); do
        redis+=("$(once "$redis_port" "$@")")
        raftis+=("$(once "$port" "$@")")
    done
    r=$(median "${redis[@]}")
    a=$(median "${raftis[@]}")
    printf '%-44s %14s %14s %8s\n' "$name" "$r" "$a" "$(awk -v a="$a" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", a / r; else print "n/a" }')"
}
run "SET, 50 clients"            $RAFTIS_PORT -t set -c 50
run "GET, 50 clients"            $RAFTIS_PORT -t get -c 50
run "GET, 50 clients, -P 16"     $RAFTIS_PORT -t get -c 50 -P 16
run "SET, 50 clients, -P 16"     $RAFTIS_PORT -t set -c 50 -P 16
run "SET, 1 client"              $RAFTIS_PORT -t set -c 1 -n $((REQUESTS / 10))
run "EVALSHA of a small write script, 50 clients" $RAFTIS_PORT -c 50 -r 100000 EVALSHA "$SHA" 1 key:__rand_int__ v
run "XADD, 50 clients"           $RAFTIS_PORT -c 50 XADD bench:stream '*' f v
if [ -n "$CLUSTER_PORT" ]; then
    run "3 nodes: SET, 50 clients"   "$CLUSTER_PORT" -t set -c 50
    run "3 nodes: SET, 1 client"     "$CLUSTER_PORT" -t set -c 1 -n $((REQUESTS / 10))
    run_pair "cluster, $GROUPS_SHARDED groups: SET, 50 clients" 26401 26411 --cluster -t set -c 50
fi
echo "redis-server runs with appendonly yes, appendfsync always; every raftis write is fsynced on a majority."
[ -z "$CLUSTER_PORT" ] || echo "cluster rows: Redis Cluster of 3 masters (1 copy of each key) against raftis's 3 copies."

