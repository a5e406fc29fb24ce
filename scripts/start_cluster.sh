#!/usr/bin/env bash
# Starts a local raftis cluster: writes cluster_node<i>.conf for each node (client port
# 7379+i-1, raft/HTTP port 8001+i-1, data in raft_data_<i>, logs in cluster_logs/), builds the
# release binary and starts every node that is not already running, recording pid files.
# The nodes wait to be joined: form the cluster with init_cluster.sh.
#
#   start_cluster.sh [--nodes N] [--groups G] [--no-build] [--clean]
#
# --groups G: G data Raft groups besides MetaRaft (multi-raft; slots split evenly among them).
# The default, 0, is the single-group cluster (one Raft group holds every slot), which
# test_raft_sync.sh checks (it does not follow MOVED yet).
#
# Running it again restarts the nodes that are down (their data is kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

nodes=3
groups=0
build=1
clean=0
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes)
            [ $# -ge 2 ] || { echo "--nodes needs a number" >&2; exit 2; }
            nodes="$2"
            shift 2
            ;;
        --nodes=*) nodes="${1#--nodes=}"; shift ;;
        --groups)
            [ $# -ge 2 ] || { echo "--groups needs a number" >&2; exit 2; }
            groups="$2"
            shift 2
            ;;
        --groups=*) groups="${1#--groups=}"; shift ;;
        --no-build) build=0; shift ;;
        --clean) clean=1; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$nodes" in
    ''|*[!0-9]*) echo "--nodes must be a positive number, got '$nodes'" >&2; exit 2 ;;
esac
[ "$nodes" -ge 1 ] || { echo "--nodes must be at least 1" >&2; exit 2; }
case "$groups" in
    ''|*[!0-9]*) echo "--groups must be a number, got '$groups'" >&2; exit 2 ;;
esac

if [ "$clean" = 1 ]; then
    "$SCRIPT_DIR/clean_cluster.sh" --stop --force
fi
if [ "$build" = 1 ]; then
    echo "building raftis (release)..."
    (cd "$REPO_ROOT" && cargo build --release --quiet)
fi
[ -x "$RAFTIS_BIN" ] || { echo "no raftis binary at $RAFTIS_BIN (build it or drop --no-build)" >&2; exit 1; }

mkdir -p "$CLUSTER_DIR" "$LOG_DIR"

write_conf() {
    local i="$1"
    cat >"$(conf_file "$i")" <<CONF
# raftis cluster node $i (written by scripts/start_cluster.sh)

# Basic server settings
port $(client_port "$i")
binding $HOST

# Data directory (each node needs its own)
db-path ./raft_data_$i

# Raft configuration
raft-node-id $i
raft-addr $HOST:$(raft_port "$i")
raft-resp-addr $HOST:$(client_port "$i")
# Nodes wait to be joined: scripts/init_cluster.sh forms the cluster.
is-bootstrap no
# Cluster mode: READONLY lets test_raft_sync.sh read a follower's own copy.
cluster-enabled yes
# Data Raft groups besides MetaRaft (0: one group holds every slot).
num-groups $groups

# Logging
log-dir ./cluster_logs
CONF
}

start_node() {
    local i="$1" pid
    if pid="$(running_pid "$i")"; then
        echo "node $i already running (pid $pid)"
        return 0
    fi
    (cd "$CLUSTER_DIR" && exec "$RAFTIS_BIN" --config "cluster_node$i.conf" \
        >>"$LOG_DIR/node$i.out" 2>&1) &
    echo $! >"$(pid_file "$i")"
    echo "node $i started (pid $!, client port $(client_port "$i"), raft port $(raft_port "$i"))"
}

# Waits until node $1 answers PING on its client port (or gives up after 30 s).
wait_ready() {
    local i="$1" deadline=$((SECONDS + 30))
    until [ "$(cli "$i" PING 2>/dev/null)" = "PONG" ]; do
        if ! running_pid "$i" >/dev/null; then
            echo "node $i exited; see $LOG_DIR/node$i.out" >&2
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "node $i does not answer on port $(client_port "$i")" >&2
            return 1
        fi
        sleep 0.1
    done
}

for i in $(seq 1 "$nodes"); do
    [ -e "$(conf_file "$i")" ] || write_conf "$i"
    start_node "$i"
done
for i in $(seq 1 "$nodes"); do
    wait_ready "$i"
done
echo "$nodes node(s) up. Next: scripts/init_cluster.sh $nodes (once), scripts/cluster_status.sh"
