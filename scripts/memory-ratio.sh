#!/usr/bin/env bash
# Memory per key: loads the same data into redis-server and into a single-node raftis and
# prints each one's RSS (and its growth over the empty server) with the ratio raftis/redis.
#
#   scripts/memory-ratio.sh [--scale F] [--no-build]
#
# Data sets, each into fresh servers: strings of 16 bytes and of 1 KiB; hashes, lists, sets and
# sorted sets with small members (16 bytes) and with large ones (1 KiB). --scale multiplies
# every count (default 1: 200k small strings, 20k 1 KiB ones, 20k collections of 10 small
# members, 2k of 10 large ones). RSS is read from /proc/<pid>/status after the load is
# acknowledged (raftis: and applied), without load running; raftis is then restarted on its data
# and measured again (restart_x: against redis-server's RSS after loading). Needs redis-server, redis-cli and
# python3. RAFTIS_BIN=path measures another binary (default target/release/raftis, built unless
# --no-build). Ports: RAFTIS_PORT (16381), REDIS_PORT (16382).
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=1
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n 2,15p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v python3 >/dev/null || {
    echo "needs redis-server, redis-cli and python3" >&2; exit 2; }
RAFTIS_BIN=${RAFTIS_BIN:-target/release/raftis}
if [ "$BUILD" = 1 ] && [ "$RAFTIS_BIN" = target/release/raftis ]; then cargo build --release --quiet; fi
RAFTIS_PORT=${RAFTIS_PORT:-16381}
REDIS_PORT=${REDIS_PORT:-16382}

WORK=$(mktemp -d)
PID=""
cleanup() {
    [ -z "$PID" ] || kill "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# gen <set> writes the set's commands as RESP for redis-cli --pipe, and its key count on fd 3.
gen() {
    python3 - "$1" "$SCALE" <<'EOF'
import sys
kind, scale = sys.argv[1], float(sys.argv[2])
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
def member(i, size):
    return (b"m%d:" % i).ljust(size, b"x")
if kind.startswith("string"):
    size, n = (16, 200000) if kind == "string-16" else (1024, 20000)
    for i in range(int(n * scale)):
        cmd(b"SET", b"key:%d" % i, b"v" * size)
else:
    family, size = kind.split("-")
    size = int(size)
    n = int((20000 if size == 16 else 2000) * scale)
    for i in range(n):
        key = b"%s:%d" % (family.encode(), i)
        ms = [member(j, size) for j in range(10)]
        if family == "hash":
            cmd(b"HSET", key, *[x for m in ms for x in (m[:16], m)])
        elif family == "list":
            cmd(b"RPUSH", key, *ms)
        elif family == "set":
            cmd(b"SADD", key, *ms)
        else:
            cmd(b"ZADD", key, *[x for j, m in enumerate(ms) for x in (b"%d" % j, m)])
EOF
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

wait_pong() {
    local deadline=$(( $(date +%s) + 60 ))
    until [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "no PONG on port $1" >&2; exit 1; }
        sleep 0.05
    done
}

# measure <port> <restart> <command...>: starts the server, loads $WORK/data.resp, prints "rss
# growth" in KiB; with restart=1 also stops the server, starts it again on its data and adds the
# RSS it has once it answers PONG (the data loaded from its disk).
measure() {
    local port=$1 restart=$2; shift 2
    "$@" >"$WORK/server.log" 2>&1 & PID=$!
    wait_pong "$port"
    local empty; empty=$(rss_kb "$PID")
    redis-cli -p "$port" --pipe <"$WORK/data.resp" >/dev/null
    redis-cli -p "$port" DBSIZE >/dev/null  # a read after the writes: everything is applied
    local full; full=$(rss_kb "$PID")
    redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    wait "$PID" 2>/dev/null || true
    PID=""
    local again=""
    if [ "$restart" = 1 ]; then
        "$@" >"$WORK/server.log" 2>&1 & PID=$!
        wait_pong "$port"
        redis-cli -p "$port" DBSIZE >/dev/null
        again=$(rss_kb "$PID")
        redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
        wait "$PID" 2>/dev/null || true
        PID=""
    fi
    echo "$full $(( full - empty )) $again"
}

printf '%-12s %12s %12s %12s %12s %8s %8s %14s %10s\n' set redis_rss_kb raftis_rss_kb redis_grew_kb raftis_grew_kb \
    rss_x grew_x restarted_rss_kb restart_x
for set in string-16 string-1024 hash-16 hash-1024 list-16 list-1024 set-16 set-1024 zset-16 zset-1024; do
    gen "$set" >"$WORK/data.resp"
    rm -rf "$WORK/raftis" "$WORK/redis"; mkdir -p "$WORK/redis"
    read -r redis_rss redis_grew < <(measure "$REDIS_PORT" 0 redis-server --port "$REDIS_PORT" --dir "$WORK/redis" \
        --save '' --appendonly no --daemonize no)
    read -r raftis_rss raftis_grew raftis_again < <(measure "$RAFTIS_PORT" 1 "$RAFTIS_BIN" --port "$RAFTIS_PORT" \
        --data-dir "$WORK/raftis" --log-level warn)
    python3 -c "import sys; a=list(map(int, sys.argv[2:])); print('%-12s %12d %12d %12d %12d %8.2f %8.2f %14d %10.2f' % (sys.argv[1], a[0], a[1], a[2], a[3], a[1]/max(a[0],1), a[3]/max(a[2],1), a[4], a[4]/max(a[0],1)))" \
        "$set" "$redis_rss" "$raftis_rss" "$redis_grew" "$raftis_grew" "$raftis_again"
done
