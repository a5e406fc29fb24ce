//! Where blocking work (disk I/O: the Disk API is synchronous and `RealDisk` blocks on fsync)
//! runs. On real tokio it goes to the blocking thread pool so that a slow fsync never stalls a
//! runtime worker; under madsim there are no OS threads and simulated disks never block, so it
//! runs inline. This function is the only place where the two differ.

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
        Ok(f())
    }
}
