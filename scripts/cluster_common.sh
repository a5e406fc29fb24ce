# Shared settings of the cluster scripts (sourced, not run). Every value can be overridden
# from the environment, which the end-to-end test uses to run a cluster in a scratch
# directory on ports of its own:
#   RAFTIS_CLUSTER_DIR   where configs, data and logs go (default: the repository root)
#   RAFTIS_BIN           the raftis binary (default: target/release/raftis)
#   RAFTIS_BASE_PORT     client port of node 1 (default 7379; node i uses base+i-1)
#   RAFTIS_BASE_RAFT_PORT raft/HTTP port of node 1 (default 8001)
#   RAFTIS_HOST          address every node binds (default 127.0.0.1)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CLUSTER_DIR="${RAFTIS_CLUSTER_DIR:-$REPO_ROOT}"
RAFTIS_BIN="${RAFTIS_BIN:-$REPO_ROOT/target/release/raftis}"
BASE_PORT="${RAFTIS_BASE_PORT:-7379}"
BASE_RAFT_PORT="${RAFTIS_BASE_RAFT_PORT:-8001}"
HOST="${RAFTIS_HOST:-127.0.0.1}"
LOG_DIR="$CLUSTER_DIR/cluster_logs"

client_port() { echo $((BASE_PORT + $1 - 1)); }
raft_port() { echo $((BASE_RAFT_PORT + $1 - 1)); }
conf_file() { echo "$CLUSTER_DIR/cluster_node$1.conf"; }
pid_file() { echo "$LOG_DIR/node$1.pid"; }

# The node numbers that have a config file, in order.
configured_nodes() {
    local f
    for f in "$CLUSTER_DIR"/cluster_node*.conf; do
        [ -e "$f" ] || continue
        f="${f##*/cluster_node}"
        echo "${f%.conf}"
    done | sort -n
}

# The pid of node $1 if it is running, else nothing (exit 1).
running_pid() {
    local pf pid
    pf="$(pid_file "$1")"
    [ -f "$pf" ] || return 1
    pid="$(cat "$pf")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A killed node whose parent (the shell that started it is gone, so whatever adopted it)
    # has not reaped it yet is a zombie: kill -0 still succeeds, but it is not running.
    if [ -r "/proc/$pid/stat" ]; then
        local state
        state="$(sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$pid/stat")"
        [ "$state" != Z ] || return 1
    fi
    echo "$pid"
}

# HTTP GET/POST against node $1's admin API (on its raft port). Prints the body.
http_get() { curl -sS --max-time 5 "http://$HOST:$(raft_port "$1")$2"; }
http_post() {
    curl -sS --max-time 30 -X POST -H 'Content-Type: application/json' --data "$3" \
        "http://$HOST:$(raft_port "$1")$2"
}

# The value of a top-level number field in a flat JSON text: json_num "$json" field.
json_num() { printf '%s' "$1" | sed -n "s/.*\"$2\":[[:space:]]*\([0-9][0-9]*\).*/\1/p" | head -n1; }
# The value of a top-level string field: json_str "$json" field.
json_str() { printf '%s' "$1" | sed -n "s/.*\"$2\":[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n1; }

# The id of the leader as node $1 sees it (empty if none or unreachable).
leader_seen_by() { json_num "$(http_get "$1" /raft/leader 2>/dev/null)" leader_id; }

# The leader's id as a running node sees it, if that leader is running too.
find_leader() {
    local i id
    for i in $(configured_nodes); do
        running_pid "$i" >/dev/null || continue
        id="$(leader_seen_by "$i")"
        if [ -n "$id" ] && running_pid "$id" >/dev/null; then
            echo "$id"
            return 0
        fi
    done
    return 1
}

# find_leader, retried for up to $1 seconds (an election after a failure takes a moment).
wait_for_leader() {
    local deadline=$((SECONDS + $1))
    until find_leader; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

cli() { redis-cli -h "$HOST" -p "$(client_port "$1")" "${@:2}"; }

# report_mismatch WHO EXPECTED GOT COUNT: says on stderr that WHO's values (one per line)
# differ from the expected ones, how many of COUNT are missing or different, and the first
# differences.
report_mismatch() {
    local who="$1" expected="$2" got="$3" count="$4" missing
    missing="$(diff <(printf '%s\n' "$expected") <(printf '%s\n' "$got") | grep -c '^<' || true)"
    echo "$who: MISMATCH ($missing of $count values missing or different)" >&2
    diff <(printf '%s\n' "$expected") <(printf '%s\n' "$got") | head -n 6 >&2
}
