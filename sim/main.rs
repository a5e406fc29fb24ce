//! The madsim suite: real node code (`node::start`) on simulated hosts, clients on other
//! simulated hosts speaking RESP over simulated TCP. See docs/SIMULATION.md.
//!
//! Built without `cfg(madsim)` (plain `cargo test --features sim`) this file holds one test
//! that re-runs cargo on this target with `--cfg madsim` (the whole suite, a sweep of the chaos
//! scenario, determinism checks) and fails when the simulation fails.

#[cfg(madsim)]
mod bugs;
#[cfg(madsim)]
mod chaos;
#[allow(dead_code)] // called by the harness
mod check;
#[cfg(madsim)]
mod client;
#[cfg(madsim)]
mod cluster;
#[cfg(madsim)]
mod harness;
#[allow(dead_code)] // the workload and the checkers use it; filled in by the harness
mod history;
#[cfg(madsim)]
mod membership;
#[cfg(madsim)]
mod rpc;
#[cfg(madsim)]
mod rt;
#[cfg(madsim)]
mod scenarios;
#[cfg(madsim)]
mod sharded;

/// Seeds of the chaos sweep `cargo test --features sim` runs (`SIM_SWEEP_SEEDS` overrides).
#[cfg(not(madsim))]
const SWEEP_SEEDS: u64 = 200;
/// Search steps per key of the sweep's linearizability checks (the default is 1 000 000).
#[cfg(not(madsim))]
const SWEEP_LIN_BUDGET: u64 = 200_000;
/// Seeds whose chaos run is replayed under `MADSIM_TEST_CHECK_DETERMINISM=1`.
#[cfg(not(madsim))]
const DETERMINISM_SEEDS: std::ops::RangeInclusive<u64> = 1..=5;

/// Runs `cargo test` on this target under `--cfg madsim` with `env` (other `MADSIM_TEST_*`
/// variables removed) and libtest `args`; panics with `what` if it fails.
#[cfg(not(madsim))]
fn run_madsim(what: &str, env: &[(&str, String)], args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    // A target dir of its own: the madsim build must not overwrite target/debug/raftis, which
    // the real-process tests start (all its dependencies are rebuilt with `cfg(madsim)` anyway).
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/madsim");
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["test", "--profile", "sim", "--features", "sim", "--test", "sim", "--target-dir"])
        .arg(&target)
        .arg("--")
        .args(args)
        .env("RUSTFLAGS", format!("{flags} --cfg madsim").trim())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for var in ["MADSIM_TEST_SEED", "MADSIM_TEST_NUM", "MADSIM_TEST_JOBS", "MADSIM_TEST_CHECK_DETERMINISM"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let started = std::time::Instant::now();
    let status = cmd.status().expect("failed to run cargo for the madsim suite");
    eprintln!("madsim suite: {what}: {:.0} s", started.elapsed().as_secs_f64());
    assert!(status.success(), "the madsim simulation suite failed: {what} (output above)");
}

/// The madsim suite as part of `cargo test --features sim`: every simulation test once (the
/// planted-bug sweeps included), the chaos scenario over [`SWEEP_SEEDS`] seeds on two
/// threads, and its determinism on [`DETERMINISM_SEEDS`].
#[cfg(not(madsim))]
#[test]
fn madsim_suite() {
    // The quick sweep is for developers' `cargo sim`; the fixed-range sweep below replaces it.
    run_madsim("every simulation test", &[("SIM_QUICK_SEEDS", "0".to_string())], &[]);
    let seeds = std::env::var("SIM_SWEEP_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SWEEP_SEEDS);
    let sweep = [
        ("MADSIM_TEST_SEED", "1000".to_string()),
        ("MADSIM_TEST_NUM", seeds.to_string()),
        ("MADSIM_TEST_JOBS", "2".to_string()),
        // A key whose linearizability search needs more is reported undecided, not judged.
        ("SIM_LIN_BUDGET", SWEEP_LIN_BUDGET.to_string()),
    ];
    run_madsim(&format!("chaos sweep of {seeds} seeds from 1000"), &sweep, &["chaos_run"]);
    for seed in DETERMINISM_SEEDS {
        let env = [("MADSIM_TEST_SEED", seed.to_string()), ("MADSIM_TEST_CHECK_DETERMINISM", "1".to_string())];
        run_madsim(&format!("determinism of chaos seed {seed}"), &env, &["chaos_run"]);
    }
}
