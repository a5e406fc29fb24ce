//! Planted bugs for the simulator: switches that break one guarantee each, so the simulation
//! suite can show that it catches such a bug (docs/SIMULATION.md, "Planted bugs"). They exist
//! only in simulation builds: without `cfg(madsim)` [`enabled`] is a `const fn` returning
//! false, so production code compiles the checks away.
//!
//! Under madsim the switches are per thread: one simulation runs on one thread, so parallel
//! simulations (`MADSIM_TEST_JOBS`, libtest's threads) each have their own set.

/// One planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// A node that believes it leads serves linearizable reads from its own copy without the
    /// ReadIndex round (a deposed leader answers stale reads).
    SkipReadIndex,
    /// The log store acknowledges appended entries before they are synced (a crash loses
    /// entries the leader counted as replicated).
    AckBeforeSync,
    /// A write whose outcome is unknown (proposal dropped by a leader change, deadline passed,
    /// forwarded write without reply) is answered `+OK`.
    OkOnDroppedWrite,
    /// A write whose outcome is unknown is answered `-CLUSTERDOWN` (which promises "not
    /// applied") instead of `-TRYAGAIN`.
    ClusterdownOnUnknownWrite,
    /// The leader reads once leadership is confirmed without waiting for its state machine to
    /// apply up to the read index (a new leader serves reads before its own-term entry and
    /// the entries before it are applied).
    ReadBeforeApply,
}

impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 5] = [
        Bug::SkipReadIndex,
        Bug::AckBeforeSync,
        Bug::OkOnDroppedWrite,
        Bug::ClusterdownOnUnknownWrite,
        Bug::ReadBeforeApply,
    ];

    #[cfg(madsim)]
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

#[cfg(madsim)]
thread_local! {
    static ENABLED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether `bug` is switched on in this simulation.
#[cfg(madsim)]
pub fn enabled(bug: Bug) -> bool {
    ENABLED.with(|e| e.get() & bug.bit() != 0)
}

/// Whether `bug` is switched on: never, outside the simulator.
#[cfg(not(madsim))]
#[inline(always)]
pub const fn enabled(_bug: Bug) -> bool {
    false
}

/// Switches exactly `bugs` on for the simulation running on this thread.
#[cfg(madsim)]
pub fn set(bugs: &[Bug]) {
    ENABLED.with(|e| e.set(bugs.iter().fold(0, |acc, b| acc | b.bit())));
}
