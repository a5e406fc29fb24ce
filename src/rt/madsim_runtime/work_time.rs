//! How long simulated blocking work takes (compiled only with `--cfg madsim`).
//!
//! On real threads a snapshot build, a log flush round or a recovery runs while other tasks
//! go on: applies continue during a snapshot write, appends pile up during an fsync. In the
//! simulator the same closure would run with the whole world stopped, so those races could
//! never happen there. Every piece of blocking work therefore waits a stretch of virtual time
//! before it starts and another before its caller sees the result; other tasks run meanwhile.
//!
//! How long is drawn per piece of work from the simulation's RNG, within a bound chosen by the
//! seed: some seeds run with instant disks (the old behaviour), others with fast, slow or very
//! slow ones, so every seed replays exactly and a sweep covers all four.

use std::time::Duration;

use madsim::rand::Rng;

/// The longest a piece of work may take, per seed class (microseconds).
const BOUNDS_US: [u64; 4] = [0, 300, 3_000, 30_000];

/// A duration for one stretch of simulated blocking work in the current simulation.
pub fn draw() -> Duration {
    let bound = bound_us(madsim::runtime::Handle::current().seed());
    if bound == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(madsim::rand::thread_rng().gen_range(0..=bound))
}

/// The bound of a seed's class; printed by the chaos harness with the node settings.
pub fn bound_us(seed: u64) -> u64 {
    // Not `seed % 4`: sweeps run consecutive seeds, and the harness already uses the low bits.
    BOUNDS_US[(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 62) as usize]
}

/// Waits one drawn stretch of virtual time (returns at once for instant-disk seeds).
pub async fn pass() {
    let d = draw();
    if !d.is_zero() {
        madsim::time::sleep(d).await;
    }
}
