#!/usr/bin/env bash
# Deletes the local cluster's files: cluster_node*.conf, raft_data_*, db_node*, cluster_logs/.
# Asks first unless --force; with --stop, stops the cluster before cleaning (a running cluster
# is never cleaned under its feet).
#
#   clean_cluster.sh [--force] [--stop]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

force=0
stop=0
for arg in "$@"; do
    case "$arg" in
        --force|-f) force=1 ;;
        --stop) stop=1 ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$stop" = 1 ]; then
    "$SCRIPT_DIR/stop_cluster.sh"
else
    for i in $(configured_nodes); do
        if running_pid "$i" >/dev/null; then
            echo "node $i is still running: stop the cluster first, or pass --stop" >&2
            exit 1
        fi
    done
fi

shopt -s nullglob
targets=("$CLUSTER_DIR"/cluster_node*.conf "$CLUSTER_DIR"/raft_data_* "$CLUSTER_DIR"/db_node*)
[ -d "$LOG_DIR" ] && targets+=("$LOG_DIR")
if [ ${#targets[@]} -eq 0 ]; then
    echo "nothing to clean"
    exit 0
fi
echo "will delete:"
printf '  %s\n' "${targets[@]}"
if [ "$force" = 0 ]; then
    read -r -p "proceed? [y/N] " answer || answer=""
    case "$answer" in
        y|Y|yes|YES) ;;
        *) echo "nothing deleted"; exit 1 ;;
    esac
fi
rm -rf -- "${targets[@]}"
echo "cleaned"
