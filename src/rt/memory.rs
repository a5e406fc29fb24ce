//! SEAM: what the process's memory is, for INFO memory, MEMORY STATS and `maxmemory`. The
//! binary runs on jemalloc (as Redis) and says so at start ([`use_jemalloc_stats`]): then the
//! allocator's own figures are reported (allocated, active, resident, ...). The resident size
//! of the whole process comes from `/proc/self/statm` on Linux. Under madsim neither exists
//! (the simulated nodes share one process, one allocator and one RSS): callers fall back to
//! an estimate from the dataset, which is the same on every run of a seed.

/// The allocator's figures, in bytes (jemalloc's `stats.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes the program holds (Redis's `used_memory`).
    pub allocated: u64,
    /// Bytes in the pages those allocations occupy (`allocator_active`).
    pub active: u64,
    /// Bytes of the allocator's pages that are resident (`allocator_resident`).
    pub resident: u64,
    /// Bytes the allocator has mapped.
    pub mapped: u64,
    /// Bytes the allocator keeps mapped after giving them back to the system.
    pub retained: u64,
}

#[cfg(not(madsim))]
mod imp {
    use super::AllocatorStats;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tikv_jemalloc_ctl::{epoch, stats};

    static JEMALLOC: AtomicBool = AtomicBool::new(false);

    pub fn use_jemalloc_stats() {
        JEMALLOC.store(true, Ordering::Relaxed);
    }

    pub fn allocator_stats() -> Option<AllocatorStats> {
        if !JEMALLOC.load(Ordering::Relaxed) {
            return None;
        }
        // jemalloc's figures are a snapshot taken when the epoch advances.
        epoch::advance().ok()?;
        let read = |r: tikv_jemalloc_ctl::Result<usize>| r.ok().map(|n| n as u64);
        Some(AllocatorStats {
            allocated: read(stats::allocated::read())?,
            active: read(stats::active::read())?,
            resident: read(stats::resident::read())?,
            mapped: read(stats::mapped::read())?,
            retained: read(stats::retained::read())?,
        })
    }

    pub fn allocator_name() -> String {
        match JEMALLOC.load(Ordering::Relaxed) {
            true => format!(
                "jemalloc-{}",
                tikv_jemalloc_ctl::version::read().unwrap_or("?").split('-').next().unwrap_or("?")
            ),
            false => "libc".into(),
        }
    }

    pub fn allocator_report() -> Option<String> {
        if !JEMALLOC.load(Ordering::Relaxed) {
            return None;
        }
        let mut out = Vec::new();
        tikv_jemalloc_ctl::stats_print::stats_print(&mut out, Default::default()).ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    pub fn rss() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf reads a constant of the system and has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096))
    }
}

#[cfg(madsim)]
mod imp {
    use super::AllocatorStats;

    pub fn use_jemalloc_stats() {}

    pub fn allocator_stats() -> Option<AllocatorStats> {
        None
    }

    pub fn allocator_name() -> String {
        "libc".into()
    }

    pub fn allocator_report() -> Option<String> {
        None
    }

    pub fn rss() -> Option<u64> {
        None
    }
}

/// Called by the binary, whose global allocator is jemalloc: from then on
/// [`allocator_stats`] reports its figures. (Tests that run node code in their own process
/// keep the system allocator, whose figures raftis cannot read.)
pub fn use_jemalloc_stats() {
    imp::use_jemalloc_stats()
}

/// The allocator's figures, if they can be read (see [`use_jemalloc_stats`]).
pub fn allocator_stats() -> Option<AllocatorStats> {
    imp::allocator_stats()
}

/// INFO's `mem_allocator`: `jemalloc-5.3.0` or `libc`.
pub fn allocator_name() -> String {
    imp::allocator_name()
}

/// The allocator's own report (MEMORY MALLOC-STATS), if it has one.
pub fn allocator_report() -> Option<String> {
    imp::allocator_report()
}

/// The process's resident set size, if the system tells it.
pub fn rss() -> Option<u64> {
    imp::rss()
}
