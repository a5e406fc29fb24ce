//! The madsim suite: real node code (`node::start`) on simulated hosts, clients on other
//! simulated hosts speaking RESP over simulated TCP. See docs/SIMULATION.md.
//!
//! Built without `cfg(madsim)` (plain `cargo test --features sim`) this file holds one test
//! that re-runs cargo on this target with `--cfg madsim` and fails when the simulation fails.

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
mod rpc;
#[cfg(madsim)]
mod rt;
#[cfg(madsim)]
mod scenarios;

#[cfg(not(madsim))]
#[test]
fn madsim_suite() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    // A target dir of its own: the madsim build must not overwrite target/debug/raftis, which
    // the real-process tests start (all its dependencies are rebuilt with `cfg(madsim)` anyway).
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/madsim");
    let status = std::process::Command::new(cargo)
        .args(["test", "--features", "sim", "--test", "sim", "--target-dir"])
        .arg(&target)
        .env("RUSTFLAGS", format!("{flags} --cfg madsim").trim())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("failed to run cargo for the madsim suite");
    assert!(status.success(), "the madsim simulation suite failed (output above); reproduce with `cargo sim`");
}
