//! Where blocking work (disk I/O: the Disk API is synchronous and `RealDisk` blocks on fsync)
//! runs. On real tokio it goes to the blocking thread pool so that a slow fsync never stalls a
//! runtime worker; under madsim there are no OS threads: it runs inline, after and before a
//! stretch of virtual time drawn from the seed (`madsim_runtime::work_time`), during which other
//! tasks run. This function is the only place where the two differ.

use std::io;

/// Runs `f`, which may block, without blocking the async runtime; resolves to its result.
/// Fails only if `f` panicked or the runtime is shutting down.
pub async fn run_blocking<F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(f).await.map_err(io::Error::other)
    }
    #[cfg(madsim)]
    {
        // Takes virtual time, so that other tasks run while it is in progress, as they would
        // beside a real blocking-pool thread.
        super::madsim_runtime::work_time::pass().await;
        let out = f();
        super::madsim_runtime::work_time::pass().await;
        Ok(out)
    }
}
