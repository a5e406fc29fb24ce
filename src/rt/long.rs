//! Long client work off the runtime thread. Raft's heartbeats, votes and replication run as
//! tasks on the runtime thread(s); a read that walks a million keys (KEYS, DEBUG DIGEST, a long
//! read-only script) or `DEBUG SLEEP` would hold that thread past the election timeout and let
//! the followers depose a healthy leader. Such reads run on a blocking-pool thread instead
//! ([`run_long`]) under a shared (read) lock of the state machine, and the state machine takes
//! its exclusive lock without blocking the runtime ([`write_when_free`]): it waits
//! asynchronously while a long read holds the shared one, so the runtime goes on serving Raft.
//!
//! Under madsim there are no OS threads: a long read runs inline (virtual time does not pass
//! during a synchronous call, so it cannot starve simulated timers), and no guard is ever held
//! across an await, so `write_when_free` never waits there and schedules stay as they were.

use std::sync::{RwLock, RwLockWriteGuard, TryLockError};
use std::time::Duration;

/// How often a writer retries while a long read holds the lock: short next to a long read,
/// long enough not to spin.
const WRITER_RETRY: Duration = Duration::from_millis(1);

/// Runs `f` (a long, CPU-bound read) where it cannot stall the runtime's other tasks: a
/// blocking-pool thread on tokio, inline under madsim. Fails only if `f` panicked.
pub async fn run_long<F, T>(f: F) -> std::io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)
    }
    #[cfg(madsim)]
    {
        Ok(f())
    }
}

/// The exclusive lock of `lock`, taken without blocking the thread: while someone (a long read
/// on another thread) holds it, waits asynchronously and retries. `None` if it is poisoned.
pub async fn write_when_free<T>(lock: &RwLock<T>) -> Option<RwLockWriteGuard<'_, T>> {
    loop {
        // The attempt's result is gone before the await (it names a guard type: not Send).
        match lock.try_write() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(_)) => return None,
            Err(TryLockError::WouldBlock) => {}
        }
        tokio::time::sleep(WRITER_RETRY).await;
    }
}

/// Blocks the calling thread for `d` (`DEBUG SLEEP`, which runs through [`run_long`], so on a
/// blocking-pool thread). Under madsim it returns at once: a simulated thread cannot sleep.
pub fn block_thread_for(d: Duration) {
    #[cfg(not(madsim))]
    std::thread::sleep(d);
    #[cfg(madsim)]
    let _ = d;
}
