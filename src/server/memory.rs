//! The node's memory figures as Redis reports them (INFO memory, MEMORY STATS / DOCTOR) and
//! as `maxmemory` compares them: the allocator's own numbers when the binary runs on jemalloc
//! (`crate::rt::memory`), else an estimate from the dataset (tests in one process, and the
//! simulator, where the estimate is also what keeps eviction deterministic per seed).

use super::shared::Shared;
use crate::rt::memory::{self as rt_memory, AllocatorStats};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the estimate counts for a node before any data (Redis's `used_memory_startup` is of
/// that order).
const STARTUP_ESTIMATE: u64 = 1024 * 1024;

/// Memory figures kept across calls: the figure at start, the peak, and what eviction freed
/// that the allocator has not seen go yet.
#[derive(Default)]
pub struct MemoryTracker {
    startup: AtomicU64,
    peak: AtomicU64,
    /// Estimated bytes of keys evicted since the log last shrank: their values stay shared
    /// with the log's entries (and a snapshot being built) until the log is compacted, so
    /// the allocator gives them back only then (Redis counts lazily freed memory alike).
    evicted_pending: AtomicU64,
    /// The log's memory when `evicted_pending` last grew: once the log is smaller, it was
    /// compacted and the pending bytes were freed.
    log_mark: AtomicU64,
}

impl MemoryTracker {
    /// Notes `bytes` of keys evicted while the log held `log_bytes`.
    pub fn evicted(&self, bytes: u64, log_bytes: u64) {
        self.evicted_pending.fetch_add(bytes, Ordering::Relaxed);
        self.log_mark.store(log_bytes, Ordering::Relaxed);
    }

    /// Evicted bytes not yet freed, given the log's memory now.
    fn pending(&self, log_bytes: u64) -> u64 {
        if log_bytes < self.log_mark.load(Ordering::Relaxed) {
            self.evicted_pending.store(0, Ordering::Relaxed);
            self.log_mark.store(log_bytes, Ordering::Relaxed);
        }
        self.evicted_pending.load(Ordering::Relaxed)
    }
}

impl MemoryTracker {
    /// Records the memory in use when the node starts serving.
    pub fn new() -> Self {
        let startup = rt_memory::allocator_stats().map_or(STARTUP_ESTIMATE, |s| s.allocated);
        MemoryTracker { startup: AtomicU64::new(startup), peak: AtomicU64::new(startup), ..Default::default() }
    }
}

/// One reading of the node's memory.
#[derive(Debug, Clone, Copy)]
pub struct MemoryFigures {
    /// Redis's `used_memory`: bytes allocated (or the estimate).
    pub used: u64,
    /// The process's resident size (`used` when the system does not tell).
    pub rss: u64,
    pub peak: u64,
    pub startup: u64,
    /// The allocator's figures, when they can be read.
    pub allocator: Option<AllocatorStats>,
    /// Keys in every database.
    pub keys: u64,
    /// What `maxmemory` leaves out (the Raft log's memory).
    pub not_counted: u64,
}

impl MemoryFigures {
    /// Redis's `used_memory_dataset`: what is not overhead (here: not there at start).
    pub fn dataset(&self) -> u64 {
        self.used.saturating_sub(self.startup)
    }

    /// Redis's `mem_fragmentation_ratio`: resident over used.
    pub fn fragmentation(&self) -> f64 {
        self.rss as f64 / self.used.max(1) as f64
    }
}

/// Bytes in use now as `maxmemory` counts them: allocated, less what the Raft log holds in
/// memory (as Redis leaves out its AOF and replication buffers: deleting keys cannot free it,
/// a snapshot does) and less what evicted keys will free once the log is compacted. Also
/// moves the peak.
pub fn used_memory(shared: &Shared) -> u64 {
    let used = match rt_memory::allocator_stats() {
        Some(stats) => stats.allocated,
        None => return STARTUP_ESTIMATE + dataset_estimate(shared),
    };
    shared.memory.peak.fetch_max(used, Ordering::Relaxed);
    let log = log_memory(shared);
    used.saturating_sub(log).saturating_sub(shared.memory.pending(log))
}

/// Notes keys worth `bytes` evicted (see [`MemoryTracker::evicted`]).
pub fn note_evicted(shared: &Shared, bytes: u64) {
    if rt_memory::allocator_stats().is_some() {
        shared.memory.evicted(bytes, log_memory(shared));
    }
}

/// A full reading (INFO memory, MEMORY STATS).
pub fn figures(shared: &Shared) -> MemoryFigures {
    let allocator = rt_memory::allocator_stats();
    let used = allocator.map_or_else(|| STARTUP_ESTIMATE + dataset_estimate(shared), |s| s.allocated);
    let peak = shared.memory.peak.fetch_max(used, Ordering::Relaxed).max(used);
    let keys = key_count(shared);
    MemoryFigures {
        used,
        rss: rt_memory::rss().unwrap_or(used),
        peak,
        startup: shared.memory.startup.load(Ordering::Relaxed),
        allocator,
        keys,
        not_counted: allocator.map_or(0, |_| log_memory(shared)),
    }
}

/// What the Raft logs of every group of this node hold in memory.
fn log_memory(shared: &Shared) -> u64 {
    shared.engine.groups().values().map(|r| r.log_memory_bytes()).sum()
}

/// Keys in every database of every group of this node that holds keys (its copies of the
/// data groups in a multi-raft cluster).
pub fn key_count(shared: &Shared) -> u64 {
    let groups = shared.engine.keyspace_groups().map(|r| r.group());
    groups.map(|g| shared.engine.with_keyspace_of(g, |ks| ks.dbs().iter().map(|db| db.len() as u64).sum::<u64>())).sum()
}

/// Bytes held by keys and values, estimated (a walk over every keyspace of this node).
pub fn dataset_estimate(shared: &Shared) -> u64 {
    let footprint = |ks: &crate::store::Keyspace| -> u64 {
        ks.dbs().iter().flat_map(|db| db.iter()).map(|(k, e)| e.value.footprint(k) as u64).sum()
    };
    shared.engine.keyspace_groups().map(|r| shared.engine.with_keyspace_of(r.group(), footprint)).sum()
}
