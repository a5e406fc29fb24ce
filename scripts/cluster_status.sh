#!/usr/bin/env bash
# Shows each configured node: running or not, its Raft state, term, leader, last log index,
# commit and applied index (from GET /raft/metrics), then the leader and how to reach it.
# In a sharded cluster (start_cluster.sh --groups N) that first table is MetaRaft (group 0),
# and a second one shows every data group on every running node: state, term, leader,
# applied index and lag (entries behind the highest last log index of the group among the
# running nodes). Exits 1 if no node is running.
#
#   cluster_status.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

running=0
printf '%-6s %-8s %-8s %-10s %-6s %-7s %-9s %-7s %-8s\n' node pid running state term leader last_log commit applied
for i in $(configured_nodes); do
    if pid="$(running_pid "$i")"; then
        running=$((running + 1))
        m="$(http_get "$i" /raft/metrics 2>/dev/null || true)"
        printf '%-6s %-8s %-8s %-10s %-6s %-7s %-9s %-7s %-8s\n' "$i" "$pid" yes \
            "$(json_str "$m" state)" "$(json_num "$m" current_term)" "$(json_num "$m" current_leader)" \
            "$(json_num "$m" last_log_index)" "$(json_num "$m" committed_index)" \
            "$(json_num "$m" last_applied_index)"
    else
        printf '%-6s %-8s %-8s\n' "$i" - no
    fi
done
[ "$running" -gt 0 ] || { echo "no node is running (scripts/start_cluster.sh)"; exit 1; }

# Data groups, as the first running node's cluster map has them (none without multi-raft).
groups=0
for i in $(configured_nodes); do
    running_pid "$i" >/dev/null || continue
    groups="$(http_get "$i" /cluster/groups 2>/dev/null | grep -o '"group":' | wc -l)"
    break
done
if [ "$groups" -gt 0 ]; then
    echo
    printf '%-6s %-6s %-10s %-6s %-7s %-8s %-6s\n' group node state term leader applied lag
    for g in $(seq 1 "$groups"); do
        rows=()
        top=0
        for i in $(configured_nodes); do
            running_pid "$i" >/dev/null || continue
            m="$(http_get "$i" "/raft/metrics?group=$g" 2>/dev/null || true)"
            last="$(json_num "$m" last_log_index)"
            [ -n "$last" ] && [ "$last" -gt "$top" ] && top="$last"
            rows+=("$i|$(json_str "$m" state)|$(json_num "$m" current_term)|$(json_num "$m" current_leader)|$(json_num "$m" last_applied_index)")
        done
        for row in "${rows[@]}"; do
            IFS='|' read -r i state term leader applied <<<"$row"
            lag=-
            [ -n "$applied" ] && lag=$((top - applied))
            printf '%-6s %-6s %-10s %-6s %-7s %-8s %-6s\n' "$g" "$i" "$state" "$term" "$leader" "$applied" "$lag"
        done
    done
fi
if leader="$(find_leader)"; then
    echo
    echo "leader: node $leader   redis-cli -p $(client_port "$leader")   curl http://$HOST:$(raft_port "$leader")/raft/metrics"
else
    echo
    echo "no leader (not initialized yet? run scripts/init_cluster.sh)"
fi
