#!/usr/bin/env bash
# Runs redis-py's own command tests (tests/test_commands.py from its sdist) against a
# server on 127.0.0.1:PORT, to measure how much of a real client's test suite passes.
#
#   scripts/redis-py-tests.sh PORT [extra pytest args...]
#
# The venv and the unpacked sdist are cached under $REDIS_PY_CACHE (default
# target/redis-py-venv); set REDIS_PY_VERSION to pin a redis-py version (default: latest).
# The server must be empty-able: the tests call FLUSHDB/FLUSHALL between cases.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 PORT [pytest args...]" >&2
    exit 2
fi
port=$1
shift

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${REDIS_PY_CACHE:-$root/target/redis-py-venv}
version=${REDIS_PY_VERSION:-}
spec=redis${version:+==$version}
python=${PYTHON:-python3}

if [[ ! -x $cache/venv/bin/python ]]; then
    mkdir -p "$cache"
    "$python" -m venv "$cache/venv"
    "$cache/venv/bin/pip" install -q --upgrade pip
    "$cache/venv/bin/pip" install -q "$spec" pytest pytest-asyncio pytest-timeout
fi

# The wheel has no tests: take them from the source distribution of the installed version.
installed=$("$cache/venv/bin/python" -c 'import redis; print(redis.__version__)')
src=$cache/redis-$installed
if [[ ! -d $src/tests ]]; then
    dl=$cache/sdist
    mkdir -p "$dl"
    "$cache/venv/bin/pip" download -q --no-deps --no-binary :all: -d "$dl" "redis==$installed"
    tar -xzf "$dl/redis-$installed.tar.gz" -C "$cache"
fi

cd "$src"
exec "$cache/venv/bin/python" -m pytest tests/test_commands.py \
    --redis-url="redis://127.0.0.1:$port" -m "not onlycluster" -q -p no:cacheprovider "$@"
