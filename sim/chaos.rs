//! The chaos scenario (docs/SIMULATION.md): five hosts, three voters to start with, six
//! clients, 20 s of virtual time of faults drawn from the seed, then healing and every check.
//! `MADSIM_TEST_SEED`, `MADSIM_TEST_NUM` and `MADSIM_TEST_JOBS` choose the seeds.

use crate::harness::{run, Params};

#[madsim::test]
async fn chaos_run() {
    run_reporting("chaos_run").await
}

/// Seeds of the quick sweep a plain `cargo sim` runs (`SIM_QUICK_SEEDS` overrides; 0 skips).
const QUICK_SEEDS: u64 = 32;

/// A developer's `cargo sim` (no seed chosen) sweeps [`QUICK_SEEDS`] chaos seeds on two
/// threads from a base seed taken from the clock (printed on failure with the command that
/// replays it), so a quick run already meets the common classes of bug and every run explores
/// new seeds. With `MADSIM_TEST_SEED` or `MADSIM_TEST_NUM` set, `chaos_run` runs exactly
/// those seeds and this test does nothing; CI's suite sets `SIM_QUICK_SEEDS=0` (its own sweep
/// covers a fixed range).
#[test]
fn chaos_quick_sweep() {
    if std::env::var_os("MADSIM_TEST_SEED").is_some() || std::env::var_os("MADSIM_TEST_NUM").is_some() {
        return;
    }
    let seeds = std::env::var("SIM_QUICK_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(QUICK_SEEDS);
    if seeds == 0 {
        return;
    }
    let mut builder = madsim::runtime::Builder::from_env();
    builder.count = seeds;
    builder.jobs = builder.jobs.max(2);
    println!("chaos_quick_sweep: seeds {}..{}", builder.seed, builder.seed + seeds);
    builder.run(|| run_reporting("chaos_run"));
}

/// Data groups of the run of `seed`: one seed in [`SHARDED_EVERY`] (those equal to 5 modulo
/// it, so determinism seed 5 is one) runs the sharded cluster, MetaRaft plus
/// [`SHARDED_GROUPS`] data groups of three voters, clients following `-MOVED`, for half the
/// fault time; the others run the one-group cluster. The sweep's seeds are shared, so it
/// costs no extra runs (a sharded seed costs about two one-group seeds: the sweep of 200
/// seeds takes about 6% longer).
/// `SIM_GROUPS=N` makes every seed run with N data groups (0: none).
fn sharded_groups(seed: u64) -> u32 {
    if let Some(n) = std::env::var("SIM_GROUPS").ok().and_then(|n| n.parse().ok()) {
        return n;
    }
    if seed % SHARDED_EVERY == 5 {
        SHARDED_GROUPS
    } else {
        0
    }
}

const SHARDED_EVERY: u64 = 16;
const SHARDED_GROUPS: u32 = 4;

/// One chaos run on the current seed; panics with the failure's report.
async fn run_reporting(test: &'static str) {
    let mut params = Params::chaos(test);
    params.num_groups = sharded_groups(madsim::runtime::Handle::current().seed());
    if params.num_groups > 0 {
        // Five Raft groups cost about four times one group's simulation: half the fault time
        // keeps a sharded seed near two one-group seeds.
        params.fault_time /= 2;
    }
    match run(params).await {
        Ok(s) => {
            println!("chaos_run: {} ops ({} ok) in {:.1} s of virtual time", s.ops, s.ok, s.virtual_secs);
            if std::env::var_os("SIM_VERBOSE").is_some() {
                println!("fault timeline:\n{}", s.timeline);
            }
        }
        Err(failure) => panic!("{failure}"),
    }
}

/// A hand-broken final state: the harness deletes list `l0` behind the history's back just
/// before the final reads, so every acknowledged RPUSH to it is lost; the run must fail on the
/// lost-writes property, with the reproduce command and the lost write in its report.
#[madsim::test]
async fn chaos_reports_lost_writes() {
    let mut params = Params::chaos("chaos_reports_lost_writes");
    params.erase_before_final_reads = Some("l0");
    let failure = match run(params).await {
        Ok(s) => panic!("a run whose list l0 was erased passed ({} ops)", s.ops),
        Err(failure) => failure,
    };
    let report = failure.to_string();
    assert_eq!(failure.violation.property, crate::check::lost_writes::PROPERTY, "{report}");
    assert!(report.contains("reproduce with: MADSIM_TEST_SEED="), "{report}");
    assert!(report.contains("lacks acknowledged RPUSH"), "{report}");
    assert!(failure.violation.ops.iter().any(|op| op.kind.key() == "l0"), "{report}");
}
