#!/usr/bin/env bash
# Idle CPU of a sharded cluster: starts three raftis nodes in cluster mode with G data groups
# (default 16) on 127.0.0.1, waits until the cluster is formed and every group has a leader,
# lets it settle, then reads the processes' CPU time (user + system, /proc/<pid>/stat) over S
# seconds without any client load and prints the total as a percentage of one core.
#
#   scripts/idle-cpu.sh [--groups G] [--seconds S] [--settle S] [--no-build]
#
# Target (issue 16): a three-node cluster with 16 groups, idle, under 3% of one core in total.
# CPU time, unlike throughput, hardly depends on what else runs on the machine. Ports: client
# 26421-26423, Raft/HTTP 26521-26523. RAFTIS_BIN=path measures another binary.
set -euo pipefail
cd "$(dirname "$0")/.."

GROUPS_N=16
SECONDS_N=30
SETTLE=10
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --groups) GROUPS_N="$2"; shift 2 ;;
        --seconds) SECONDS_N="$2"; shift 2 ;;
        --settle) SETTLE="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n 2,11p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v redis-cli >/dev/null && command -v curl >/dev/null || { echo "needs redis-cli and curl" >&2; exit 2; }
RAFTIS_BIN=${RAFTIS_BIN:-target/release/raftis}
# Quiet groups (docs/ARCHITECTURE.md) are on by default: QUIESCE_MS=0 measures without them,
# QUIESCE_MS=N with another idle time.
RAFTIS_EXTRA="${QUIESCE_MS:+--raft-quiesce-ms $QUIESCE_MS}"
if [ "$BUILD" = 1 ] && [ "$RAFTIS_BIN" = target/release/raftis ]; then cargo build --release --quiet; fi

source scripts/lib/servers.sh
init_work

start_raftis_sharded 26420 26520 "$GROUPS_N"
# Formation done; give leader balancing and first snapshots time to finish before measuring.
sleep "$SETTLE"

# Clock ticks (user + system) used so far by every node process.
ticks() {
    local total=0 p
    for p in "${PIDS[@]}"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$SECONDS_N"
after=$(ticks)
awk -v t=$((after - before)) -v hz="$hz" -v s="$SECONDS_N" -v g="$GROUPS_N" 'BEGIN {
    printf "3 nodes, %d data groups, idle for %d s: %.2f%% of one core in total\n", g, s, 100 * t / hz / s }'
