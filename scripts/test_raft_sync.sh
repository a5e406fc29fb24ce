#!/usr/bin/env bash
# Checks replication end to end: writes N keys (default 10) through the leader, then reads
# them back from every running node's OWN copy (READONLY, so a follower answers from its
# replica instead of asking the leader), waiting up to 15 s for followers to catch up.
# Exits 1 on any missing or different value, or if there is no leader.
#
# On a multi-group cluster (start_cluster.sh --groups G, CLUSTER SHARDS lists several shards)
# the writes are routed by slot (redis-cli -c follows -MOVED to the leader of each key's
# group), and each key is read back from every replica of its own group (the nodes CLUSTER
# SHARDS lists for the shard holding its slot), not from every node.
#
#   test_raft_sync.sh [N]
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

count="${1:-10}"
case "$count" in
    ''|*[!0-9]*|0) echo "usage: test_raft_sync.sh [N]  (N >= 1)" >&2; exit 2 ;;
esac

leader="$(wait_for_leader 15)" || { echo "FAIL: no leader (is the cluster initialized?)" >&2; exit 1; }
run="$(date +%s)_$$"

# One line per shard as node $1 sees it: "<first slot> <last slot> <client port>...".
shard_lines() {
    cli "$1" CLUSTER SHARDS 2>/dev/null | awk '
        $0 == "slots" { getline a; getline b; if (line != "") print line; line = a " " b }
        $0 == "port" { getline p; line = line " " p }
        END { if (line != "") print line }'
}

shards="$(shard_lines "$leader")"
if [ "$(printf '%s\n' "$shards" | grep -c .)" -gt 1 ]; then
    source "$SCRIPT_DIR/lib/sync_by_slot.sh"
    exit $?
fi
echo "leader is node $leader; writing $count keys through it"
commands=""
expected=""
for i in $(seq 1 "$count"); do
    commands+="SET raft_sync:${run}:$i value_${run}_$i"$'\n'
    expected+="value_${run}_$i"$'\n'
done
written="$(printf '%s' "$commands" | cli "$leader" 2>&1)"
ok_count="$(printf '%s\n' "$written" | grep -c '^OK$' || true)"
if [ "$ok_count" != "$count" ]; then
    echo "FAIL: only $ok_count of $count writes acknowledged by the leader:" >&2
    printf '%s\n' "$written" | grep -v '^OK$' | head -n 5 >&2
    exit 1
fi

reads="READONLY"$'\n'
for i in $(seq 1 "$count"); do
    reads+="GET raft_sync:${run}:$i"$'\n'
done

# Prints the values node $1 holds in its own copy (one per line).
local_values() { printf '%s' "$reads" | cli "$1" 2>&1 | tail -n +2; }

failed=0
checked=0
for node in $(configured_nodes); do
    if ! running_pid "$node" >/dev/null; then
        echo "node $node: not running, skipped"
        continue
    fi
    deadline=$((SECONDS + 15))
    while :; do
        got="$(local_values "$node")"$'\n'
        [ "$got" = "$expected" ] && break
        [ $SECONDS -ge $deadline ] && break
        sleep 0.2
    done
    checked=$((checked + 1))
    if [ "$got" = "$expected" ]; then
        echo "node $node: all $count keys match"
    else
        report_mismatch "node $node" "$expected" "$got" "$count"
        echo "node $node answered (first lines):" >&2
        printf '%s' "$got" | head -n 3 >&2
        failed=1
    fi
done
if [ "$failed" = 1 ]; then
    echo "FAIL: replicas differ" >&2
    exit 1
fi
echo "PASS: $count keys replicated to $checked running node(s)"
