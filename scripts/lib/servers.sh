# Shared by scripts/bench.sh and scripts/idle-cpu.sh (sourced, not run): a scratch directory
# whose servers are stopped on exit, and starters for a three-node raftis cluster in cluster
# mode (MetaRaft plus G data groups) and a three-master Redis Cluster on 127.0.0.1, each
# waited for until it reports `cluster_state:ok`. The caller defines RAFTIS_BIN; every process
# started is appended to PIDS.

# Creates WORK (a scratch directory) and PIDS; on exit, stops every process in PIDS, waits
# for them (a node still flushing its log would otherwise race the rm) and removes WORK.
init_work() {
    WORK=$(mktemp -d)
    PIDS=()
    trap cleanup_work EXIT
}
cleanup_work() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# Waits until PING on port $1 answers (at most 10 s).
wait_port() {
    for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "server on port $1 did not start" >&2; exit 1
}

# Waits until every port given reports cluster_state:ok in CLUSTER INFO (at most 60 s each).
wait_cluster_ok() {
    local port deadline
    for port in "$@"; do
        deadline=$((SECONDS + 60))
        until redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; do
            [ $SECONDS -lt $deadline ] || { echo "port $port: cluster_state not ok after 60 s" >&2; exit 1; }
            sleep 0.1
        done
    done
}

# start_raftis_sharded BASE RAFT_BASE GROUPS: nodes 1-3 on client ports BASE+i and Raft/HTTP
# ports RAFT_BASE+i, formed by POST /raft/init to node 1. RAFTIS_EXTRA: more flags for each node.
start_raftis_sharded() {
    local base=$1 raft=$2 groups=$3 members="" i
    for i in 1 2 3; do
        "$RAFTIS_BIN" --port $((base + i)) --node-id "$i" --raft-addr "127.0.0.1:$((raft + i))" \
            --cluster-enabled --is-bootstrap=no --num-groups "$groups" \
            --data-dir "$WORK/sharded$i" --log-level warn ${RAFTIS_EXTRA:-} >"$WORK/sharded$i.log" 2>&1 &
        PIDS+=($!)
        members+="${members:+, }[$i, {\"raft_addr\": \"127.0.0.1:$((raft + i))\", \"resp_addr\": \"127.0.0.1:$((base + i))\"}]"
    done
    for i in 1 2 3; do wait_port $((base + i)); done
    curl -sS --max-time 30 -f -X POST -H 'Content-Type: application/json' --data "{\"nodes\": [$members]}" \
        "http://127.0.0.1:$((raft + 1))/raft/init" >/dev/null || { echo "sharded cluster init failed" >&2; exit 1; }
    wait_cluster_ok $((base + 1)) $((base + 2)) $((base + 3))
}

# start_redis_cluster BASE: three redis-server masters on ports BASE+i with appendfsync always,
# joined by redis-cli --cluster create (no replicas).
start_redis_cluster() {
    local base=$1 addrs=() i
    for i in 1 2 3; do
        mkdir -p "$WORK/redis-cluster$i"
        redis-server --port $((base + i)) --bind 127.0.0.1 --save '' --appendonly yes \
            --appendfsync always --cluster-enabled yes --cluster-config-file "$WORK/redis-cluster$i/nodes.conf" \
            --dir "$WORK/redis-cluster$i" --daemonize no >"$WORK/redis-cluster$i.log" 2>&1 &
        PIDS+=($!)
        addrs+=("127.0.0.1:$((base + i))")
    done
    for i in 1 2 3; do wait_port $((base + i)); done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$WORK/redis-cluster-create.log" 2>&1 \
        || { echo "redis-cli --cluster create failed: see $WORK/redis-cluster-create.log" >&2; exit 1; }
    wait_cluster_ok $((base + 1)) $((base + 2)) $((base + 3))
}
