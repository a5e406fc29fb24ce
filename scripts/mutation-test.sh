#!/usr/bin/env bash
# Mutation test of the simulation (docs/SIMULATION.md, "Mutation test"): applies each planted
# bug of sim/mutants/*.patch on its own to a scratch worktree of HEAD, runs the chaos sweep CI
# runs (seeds 1000.., two jobs, SIM_LIN_BUDGET=200000) and reports per bug whether the sweep
# caught it, with the seed and the check (property or panic) that did.
#
#   scripts/mutation-test.sh                 # every mutant, CI's 200 seeds
#   SEEDS=50 scripts/mutation-test.sh 03 12  # mutants whose file name contains 03 or 12
#
# A caught mutant stops at its first failing seed; a survivor runs every seed. The mutants are
# built in `cargo sim`'s target directory (MUTANT_TARGET_DIR, default target/madsim), so the
# dependencies are shared. The scratch copy of raftis gets the same artifact names as the tree's
# own (cargo's hash of a path package leaves out where it lies): each mutant replaces the tree's
# raftis build there, and a `cargo sim` of the tree meanwhile would rebuild it, or, its sources
# being older than the mutant's outputs, take those for fresh and run a mutant. So do not run
# `cargo sim` while this runs; at the end the script touches the tree's crate roots so that the
# next build of the tree is its own. Results go to stdout and to target/mutation-report.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
seeds=${SEEDS:-200}
base=${SEED_BASE:-1000}
target=${MUTANT_TARGET_DIR:-$repo/target/madsim}
mkdir -p "$target"
report="$repo/target/mutation-report.txt"

work=$(mktemp -d /tmp/raftis-mutants.XXXXXX)
cleanup() {
    git -C "$repo" worktree remove --force "$work/tree" >/dev/null 2>&1 || true
    rm -rf "$work"
    # Newer than the last mutant's outputs: the tree's next build recompiles its own raftis.
    touch "$repo/src/lib.rs" "$repo/sim/main.rs"
}
trap cleanup EXIT
git worktree add --detach -q "$work/tree" HEAD

patches=()
for p in sim/mutants/*.patch; do
    if [ $# -eq 0 ]; then
        patches+=("$p")
    else
        for want in "$@"; do
            case "$p" in *"$want"*) patches+=("$p") ;; esac
        done
    fi
done

printf 'mutation test of %s, %d seeds from %d\n' "$(git rev-parse --short HEAD)" "$seeds" "$base" | tee "$report"
caught=0
total=0
for p in "${patches[@]}"; do
    name=$(basename "$p" .patch)
    total=$((total + 1))
    git -C "$work/tree" checkout -q -- .
    if ! git -C "$work/tree" apply "$repo/$p" 2>/dev/null; then
        # The code moved under the patch: it must be redone against HEAD, not skipped silently.
        printf '%-40s %s\n' "$name" "DOES NOT APPLY (redo the patch)" | tee -a "$report"
        continue
    fi
    log="$work/$name.log"
    started=$(date +%s)
    set +e
    (cd "$work/tree" && MADSIM_TEST_SEED=$base MADSIM_TEST_NUM=$seeds MADSIM_TEST_JOBS=2 SIM_LIN_BUDGET=200000 \
        cargo test --profile sim --features sim --test sim --target-dir "$target" \
        --config "build.rustflags=['--cfg','madsim']" -- chaos_run) >"$log" 2>&1
    status=$?
    set -e
    secs=$(($(date +%s) - started))
    if grep -q "could not compile\|error\[E" "$log"; then
        verdict="DID NOT BUILD"
    elif [ $status -eq 0 ]; then
        verdict="survived"
    else
        caught=$((caught + 1))
        # `|| true`: under pipefail a report without one of these lines must not end the run.
        seed=$(grep -o 'MADSIM_TEST_SEED=[0-9]*' "$log" | head -1 | cut -d= -f2 || true)
        why=$(grep -o 'property violated: [^:]*' "$log" | head -1 | sed 's/property violated: //' || true)
        if [ -z "$why" ]; then
            why="panic: $(grep -m1 -A1 "panicked at" "$log" | tail -1 | cut -c1-100 || true)"
        fi
        settings=$(grep -m1 '^node settings:' "$log" | cut -c16-200 || true)
        verdict="caught on seed ${seed:-?} by ${why}${settings:+ (settings: $settings)}"
    fi
    printf '%-40s %s [%ss]\n' "$name" "$verdict" "$secs" | tee -a "$report"
done
printf 'caught %d of %d\n' "$caught" "$total" | tee -a "$report"
