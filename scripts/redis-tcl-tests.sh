#!/usr/bin/env bash
# Runs units of Redis 7.0.15's own TCL test suite, in its external-server mode, against
# raftis and against redis-server, one fresh server per unit, and prints the pass/fail
# counts of each unit for both side by side.
#
#   scripts/redis-tcl-tests.sh                      # the default units (below)
#   scripts/redis-tcl-tests.sh unit/pubsub unit/multi
#   TCL_SERVERS=raftis scripts/redis-tcl-tests.sh   # only raftis (or only "redis")
#
# The suite is NOT vendored: Redis 7.0.15's source is downloaded at run time, from Debian's
# source package (apt-get source, with the machine's own Debian sources turned into deb-src
# entries in a private apt state) or, failing that, from download.redis.io. Both carry the
# same tests/. Cached under $TCL_CACHE (default target/redis-tcl).
#
# Servers: raftis from $RAFTIS_BIN (default target/debug/raftis; build it first), redis-server
# from $REDIS_SERVER (default: the one on PATH, which must be 7.0.x for the counts to mean
# anything). Ports $TCL_PORT (default 27100) and the next one; the harness's own ports (its
# test server and clients) from $TCL_BASEPORT - 32 (default 21111, runtest's: give another
# to run beside someone else's run). The tests flush the servers:
# both are throwaway processes started and stopped here.
#
# Profile: what Redis's own CI runs against an external server (`--tags -slow`, and the
# framework skips `external:skip` by itself), minus what needs a local server's internals
# that raftis does not expose (DEBUG, replication, SAVE, maxmemory, RESET of stats...).
# Logs per unit and server: $TCL_CACHE/logs/<server>-<unit>.log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${TCL_CACHE:-$root/target/redis-tcl}
version=7.0.15
raftis_bin=${RAFTIS_BIN:-$root/target/debug/raftis}
redis_bin=${REDIS_SERVER:-$(command -v redis-server || true)}
port=${TCL_PORT:-27100}
baseport=${TCL_BASEPORT:-21111}
servers=${TCL_SERVERS:-"raftis redis"}
unit_timeout=${TCL_UNIT_TIMEOUT:-900}

default_units=(unit/type/list unit/type/list-2 unit/type/list-3 unit/type/stream
    unit/type/stream-cgroups unit/pubsub unit/pubsubshard unit/scripting unit/functions
    unit/multi unit/keyspace)
if [[ $# -gt 0 ]]; then units=("$@"); else units=("${default_units[@]}"); fi

command -v tclsh >/dev/null || { echo "needs tclsh (apt-get install tcl)" >&2; exit 2; }

# --- the suite's source --------------------------------------------------------------------
src=$cache/redis-$version
fetch_debian() {
    local s=$cache/apt
    mkdir -p "$s/lists/partial" "$s/parts"
    : >"$s/parts/src.sources"
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -e $f ]] || continue
        sed 's/^Types: deb$/Types: deb-src/' "$f" >>"$s/parts/src.sources"
        echo >>"$s/parts/src.sources"
    done
    local o=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$s/parts"
        -o "Dir::State::Lists=$s/lists")
    apt-get "${o[@]}" update >/dev/null 2>&1 &&
        (cd "$cache" && apt-get "${o[@]}" source --download-only redis >/dev/null 2>&1) &&
        [[ -f $cache/redis_$version.orig.tar.gz ]] &&
        tar -xzf "$cache/redis_$version.orig.tar.gz" -C "$cache"
}
fetch_upstream() {
    curl -fsSL "https://download.redis.io/releases/redis-$version.tar.gz" -o "$cache/redis-$version.tar.gz" &&
        tar -xzf "$cache/redis-$version.tar.gz" -C "$cache"
}
if [[ ! -x $src/runtest ]]; then
    mkdir -p "$cache"
    fetch_debian || fetch_upstream || { echo "could not download Redis $version's source" >&2; exit 1; }
fi
# integration/redis-cli wants src/redis-cli; the units run here do not, but the harness
# checks for some binaries at start.
mkdir -p "$src/src"
for b in redis-cli redis-benchmark redis-server; do
    if [[ ! -e $src/src/$b ]] && command -v "$b" >/dev/null; then ln -sf "$(command -v "$b")" "$src/src/$b"; fi
done

tags="-slow -needs:repl -needs:debug -needs:save -needs:config-maxmemory -needs:pfdebug -needs:config-resetstat -needs:reset"

# --- servers -------------------------------------------------------------------------------
server_pid=
start_server() { # $1 = raftis|redis, $2 = data dir
    case $1 in
    raftis)
        [[ -x $raftis_bin ]] || { echo "no raftis binary at $raftis_bin (cargo build)" >&2; exit 2; }
        "$raftis_bin" --port "$port" --data-dir "$2" >"$2.out" 2>&1 &
        ;;
    redis)
        [[ -n $redis_bin ]] || { echo "no redis-server on PATH" >&2; exit 2; }
        "$redis_bin" --port "$port" --bind 127.0.0.1 --dir "$2" --save '' --appendonly no \
            --enable-debug-command yes >"$2.out" 2>&1 &
        ;;
    esac
    server_pid=$!
    for _ in $(seq 1 200); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then return 0; fi
        sleep 0.1
    done
    echo "$1 did not start on port $port (see $2.out)" >&2
    return 1
}
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT

# --- one unit against one server -----------------------------------------------------------
mkdir -p "$cache/logs" "$cache/data"
declare -A ok err
run_unit() { # $1 server, $2 unit
    local name=${2//\//_} data=$cache/data/$1-${2//\//_}
    local log=$cache/logs/$1-$name.log
    rm -rf "$data" && mkdir -p "$data"
    start_server "$1" "$data" || { ok[$1,$2]=-; err[$1,$2]="0 (no server)"; return; }
    local rc=0
    (cd "$src" && TERM=dumb timeout "$unit_timeout" ./runtest --host 127.0.0.1 --port "$port" --single "$2" \
        --baseport "$baseport" --durable --timeout 120 --ignore-encoding --ignore-digest --tags "$tags" \
        --skiptest "SRANDMEMBER with a dict containing long chain") >"$log" 2>&1 || rc=$?
    stop_server
    sed -i 's/\x1b\[[0-9;]*m//g' "$log" # colours, should the terminal have asked for them
    ok[$1,$2]=$(grep -c '^\[ok\]' "$log" || true)
    local e x
    e=$(grep -c '^\[err\]' "$log" || true)
    x=$(grep -c '^\[exception\]' "$log" || true)
    err[$1,$2]=$((e + x))
    if ((rc == 124)); then err[$1,$2]="${err[$1,$2]} (timed out)"; fi
    if ((x > 0)); then err[$1,$2]="${err[$1,$2]} (exception)"; fi
}

for u in "${units[@]}"; do
    for s in $servers; do
        echo "running $u against $s ..." >&2
        run_unit "$s" "$u"
    done
done

printf '%-26s' unit
for s in $servers; do printf ' %8s-ok %10s-err' "$s" "$s"; done
echo
declare -A tot_ok tot_err
for u in "${units[@]}"; do
    printf '%-26s' "$u"
    for s in $servers; do
        printf ' %11s %14s' "${ok[$s,$u]}" "${err[$s,$u]}"
        tot_ok[$s]=$((${tot_ok[$s]:-0} + ${ok[$s,$u]//-/0}))
        tot_err[$s]=$((${tot_err[$s]:-0} + ${err[$s,$u]%% *}))
    done
    echo
done
printf '%-26s' total
for s in $servers; do printf ' %11s %14s' "${tot_ok[$s]}" "${tot_err[$s]}"; done
echo
echo "logs: $cache/logs/" >&2
