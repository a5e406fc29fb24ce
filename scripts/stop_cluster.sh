#!/usr/bin/env bash
# Stops every node of the local cluster: SIGTERM by pid file, then SIGKILL for any node still
# running after 10 s. Without pid files it looks for raftis processes started with a
# cluster_node<i>.conf of this cluster directory.
#
#   stop_cluster.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

pids=()
for i in $(configured_nodes); do
    if pid="$(running_pid "$i")"; then
        pids+=("$pid")
    fi
done
if [ ${#pids[@]} -eq 0 ] && command -v pgrep >/dev/null; then
    # No pid files: processes whose command line names a config of this cluster. They run with
    # the cluster directory as working directory.
    for pid in $(pgrep -f -- "--config cluster_node[0-9]+\.conf" || true); do
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(cd "$CLUSTER_DIR" && pwd -P)" ] && pids+=("$pid")
    done
fi
if [ ${#pids[@]} -eq 0 ]; then
    echo "no node running"
    exit 0
fi
echo "stopping ${#pids[@]} node(s): ${pids[*]}"
kill -TERM "${pids[@]}" 2>/dev/null || true
deadline=$((SECONDS + 10))
for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "pid $pid still running after 10 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
done
rm -f "$LOG_DIR"/node*.pid
echo "stopped"
