#!/usr/bin/env bash
# Restart time: from starting the process to its first PONG, for raftis and for redis-server
# loading an AOF of the same data, with the ratio raftis/redis.
#
#   scripts/restart-time.sh [--keys N] [--value-bytes B] [--no-build]
#
# Loads N keys (`key:<i>`, values of B bytes; default 1000000 and 64) into a single-node
# raftis and into redis-server (appendonly yes, appendfsync everysec, no RDB), stops both
# cleanly, starts each again on its data and polls PING until it answers PONG (a node still
# loading answers -LOADING, as Redis does), then checks DBSIZE. Needs redis-server, redis-cli
# and python3. RAFTIS_BIN=path measures another raftis binary (default target/release/raftis,
# built unless --no-build). Ports: RAFTIS_PORT (16379) and REDIS_PORT (16380). Run it on an
# idle machine: only figures from one run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=1000000
VALUE_BYTES=64
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS="$2"; shift 2 ;;
        --value-bytes) VALUE_BYTES="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v python3 >/dev/null || {
    echo "needs redis-server, redis-cli and python3" >&2; exit 2; }
RAFTIS_BIN=${RAFTIS_BIN:-target/release/raftis}
if [ "$BUILD" = 1 ] && [ "$RAFTIS_BIN" = target/release/raftis ]; then cargo build --release --quiet; fi
RAFTIS_PORT=${RAFTIS_PORT:-16379}
REDIS_PORT=${REDIS_PORT:-16380}

WORK=$(mktemp -d)
PID=""
cleanup() {
    [ -z "$PID" ] || kill "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The same SETs for both, as one RESP stream for redis-cli --pipe.
python3 - "$KEYS" "$VALUE_BYTES" >"$WORK/load.resp" <<'EOF'
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
value = b"v" * size
out = sys.stdout.buffer
for i in range(n):
    key = b"key:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, value))
EOF

now_ms() { date +%s%3N; }

# Waits until PING on port $1 answers PONG (at most 10 minutes); prints the ms it took since $2.
wait_pong() {
    local port=$1 since=$2 deadline=$(( $(date +%s) + 600 ))
    until [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "no PONG on port $port" >&2; exit 1; }
        sleep 0.005
    done
    echo $(( $(now_ms) - since ))
}

check_dbsize() {
    local got
    got=$(redis-cli -p "$1" DBSIZE)
    [ "$got" = "$KEYS" ] || { echo "$2: DBSIZE $got after the restart, expected $KEYS" >&2; exit 1; }
}

# Starts "$@" in the background, remembering its pid.
start() { "$@" >"$WORK/server.log" 2>&1 & PID=$!; }

stop() {
    redis-cli -p "$1" SHUTDOWN >/dev/null 2>&1 || true
    wait "$PID" 2>/dev/null || true
    PID=""
}

load() {
    wait_pong "$1" "$(now_ms)" >/dev/null
    redis-cli -p "$1" --pipe <"$WORK/load.resp" >/dev/null
    check_dbsize "$1" "$2 (loaded)"
}

raftis() { start "$RAFTIS_BIN" --port "$RAFTIS_PORT" --data-dir "$WORK/raftis" --log-level warn; }
redis() {
    start redis-server --port "$REDIS_PORT" --dir "$WORK/redis" --appendonly yes --appendfsync everysec \
        --save '' --daemonize no
}
mkdir -p "$WORK/redis"

raftis; load "$RAFTIS_PORT" raftis; stop "$RAFTIS_PORT"
t0=$(now_ms); raftis; raftis_ms=$(wait_pong "$RAFTIS_PORT" "$t0"); check_dbsize "$RAFTIS_PORT" raftis
stop "$RAFTIS_PORT"

redis; load "$REDIS_PORT" redis-server; stop "$REDIS_PORT"
t0=$(now_ms); redis; redis_ms=$(wait_pong "$REDIS_PORT" "$t0"); check_dbsize "$REDIS_PORT" redis-server
stop "$REDIS_PORT"

echo "keys=$KEYS value_bytes=$VALUE_BYTES"
echo "redis-server (AOF) first PONG after ${redis_ms} ms"
echo "raftis             first PONG after ${raftis_ms} ms"
python3 -c "print('ratio raftis/redis: %.2f' % ($raftis_ms / max($redis_ms, 1)))"
