#!/usr/bin/env bash
# Runs redis-py's own command tests (tests/test_commands.py from its sdist) against a
# server on 127.0.0.1:PORT, to measure how much of a real client's test suite passes.
#
#   scripts/redis-py-tests.sh PORT [extra pytest args...]
#   REDIS_PY_TESTS="test_pubsub.py test_scripting.py" scripts/redis-py-tests.sh PORT
#
# REDIS_PY_TESTS names the test files of redis-py's tests/ to run (default test_commands.py).
# The venv and the unpacked sdist are cached under $REDIS_PY_CACHE (default
# target/redis-py-venv). REDIS_PY_VERSION picks the redis-py release (default 8.1.0, the one
# the figures in docs/COMPATIBILITY.md were measured with). Needs network access once.
# The tests FLUSHDB/FLUSHALL the server: never point this at a server holding real data.
# Each test is stopped after 60 s (pass --timeout=N to change that).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 PORT [pytest args...]" >&2
    exit 2
fi
port=$1
shift

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${REDIS_PY_CACHE:-$root/target/redis-py-venv}
version=${REDIS_PY_VERSION:-8.1.0}
python=${PYTHON:-python3}
venv=$cache/venv-$version

if [[ ! -x $venv/bin/python ]]; then
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "redis==$version" pytest pytest-asyncio pytest-timeout
fi

# The wheel has no tests: take them from the source distribution of the same version.
src=$cache/redis-$version
if [[ ! -d $src/tests ]]; then
    dl=$cache/sdist
    mkdir -p "$dl"
    "$venv/bin/python" -m pip download -q --no-deps --no-binary :all: -d "$dl" "redis==$version"
    tar -xzf "$dl/redis-$version.tar.gz" -C "$cache"
fi

cd "$src"
# --tb=line: with a hundred failures pytest's full tracebacks of this 6000-line file take
# minutes to format, long enough to trip pytest-timeout inside the reporting itself.
files=()
for f in ${REDIS_PY_TESTS:-test_commands.py}; do files+=("tests/$f"); done
exec "$venv/bin/python" -m pytest "${files[@]}" \
    --redis-url="redis://127.0.0.1:$port" -m "not onlycluster" -q -p no:cacheprovider --timeout=60 --tb=line "$@"
