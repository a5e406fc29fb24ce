#!/usr/bin/env bash
# Forms the Raft cluster of nodes 1..N (default: every configured node) by POST /raft/init to
# node 1, then waits until a leader is elected. A cluster is initialized once: a second run
# reports that it already is (clean_cluster.sh and start_cluster.sh start afresh).
#
#   init_cluster.sh [N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

if [ $# -ge 1 ]; then
    nodes="$1"
else
    nodes="$(configured_nodes | wc -l)"
fi
case "$nodes" in
    ''|*[!0-9]*|0) echo "usage: init_cluster.sh [N]  (N >= 1; no configured nodes found?)" >&2; exit 2 ;;
esac

members=""
for i in $(seq 1 "$nodes"); do
    running_pid "$i" >/dev/null || { echo "node $i is not running (start_cluster.sh --nodes $nodes)" >&2; exit 1; }
    members+="${members:+, }[$i, {\"raft_addr\": \"$HOST:$(raft_port "$i")\", \"resp_addr\": \"$HOST:$(client_port "$i")\"}]"
done
body="{\"nodes\": [$members]}"
echo "POST /raft/init to node 1: $body"
response="$(curl -sS --max-time 30 -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data "$body" "http://$HOST:$(raft_port 1)/raft/init")"
code="${response##*$'\n'}"
text="${response%$'\n'*}"
case "$code" in
    200) echo "initialized: $text" ;;
    409) echo "already initialized: $text" ;;
    *) echo "init failed (HTTP $code): $text" >&2; exit 1 ;;
esac

deadline=$((SECONDS + 30))
until leader="$(leader_seen_by 1)" && [ -n "$leader" ]; do
    if [ $SECONDS -ge $deadline ]; then
        echo "no leader elected within 30 s; see cluster_status.sh and $LOG_DIR" >&2
        exit 1
    fi
    sleep 0.2
done
echo "leader: node $leader (client port $(client_port "$leader"))"
