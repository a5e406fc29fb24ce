//! Teeth: each planted bug (`raftis::rt::bugs`) switched on in turn, the chaos harness must
//! find a violation within 100 seeds (or the simulation must panic on an invariant that
//! openraft or raftis asserts: debug assertions stay on in the `sim` profile). A sweep starts at `MADSIM_TEST_SEED` (default 1) and
//! stops at the first failing seed, whose report is printed; so the printed reproduce
//! command (`MADSIM_TEST_SEED=N cargo sim catches_...`) replays the catching run first.

use crate::harness::faults::Rates;
use crate::harness::{run, Params};
use raftis::rt::bugs::Bug;

/// Most seeds a sweep may take to catch a bug.
const MAX_SEEDS: u64 = 100;

fn catches(bug: Bug, test: &'static str, rates: Option<Rates>) {
    let first: u64 = std::env::var("MADSIM_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    for seed in first..first + MAX_SEEDS {
        let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        let mut params = Params::chaos(test);
        params.bugs = vec![bug];
        params.rates = rates.clone();
        // A panic inside the simulation (an invariant openraft or raftis asserts) is a catch too.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(run(params)))) {
            Ok(Ok(_)) => {}
            Ok(Err(failure)) => {
                println!("{bug:?} caught on seed {seed} ({} seeds):\n{failure}", seed - first + 1);
                return;
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("{bug:?} caught on seed {seed} ({} seeds): the simulation panicked: {msg}", seed - first + 1);
                println!("reproduce with: MADSIM_TEST_SEED={seed} cargo sim {test}");
                return;
            }
        }
    }
    panic!("planted bug {bug:?} not caught in {MAX_SEEDS} seeds from {first}");
}

#[test]
fn catches_skip_read_index() {
    catches(Bug::SkipReadIndex, "catches_skip_read_index", None);
}

#[test]
fn catches_ack_before_sync() {
    catches(Bug::AckBeforeSync, "catches_ack_before_sync", None);
}

#[test]
fn catches_ok_on_dropped_write() {
    catches(Bug::OkOnDroppedWrite, "catches_ok_on_dropped_write", None);
}

#[test]
fn catches_clusterdown_on_unknown_write() {
    catches(Bug::ClusterdownOnUnknownWrite, "catches_clusterdown_on_unknown_write", None);
}

#[test]
fn catches_read_before_apply() {
    catches(Bug::ReadBeforeApply, "catches_read_before_apply", None);
}
