//! SEAM: durable storage. Everything raftis persists goes through the [`Disk`] trait, which has
//! two twins: [`RealDisk`] (files, `fdatasync`, `rename` + directory `fsync`) and [`SimDisk`]
//! (memory that keeps synced and unsynced bytes apart, so a simulated crash loses exactly
//! what a power cut would, can tear the last write, and can fail a sync). madsim does not
//! simulate disks, so the simulator owns `SimDisk`s and hands them to nodes across restarts.
//!
//! Paths are relative to the disk's root. The API is synchronous: the real twin is called from
//! blocking-safe contexts by its users; the simulated twin never blocks.

#[cfg(test)]
mod conformance;
mod image;
mod real;
mod sim;

pub use real::RealDisk;
pub use sim::{CrashMode, CrashPoint, SimDisk, Unsynced, INJECTED_SYNC_FAILURE};

use std::io;

/// A directory tree of files with explicit durability points.
pub trait Disk: Send + Sync + 'static {
    /// Opens `path` for reading and writing, creating it empty if missing. The new file's
    /// name is durable only after [`Disk::sync_dir`] on its directory.
    fn open(&self, path: &str) -> io::Result<Box<dyn DiskFile>>;
    /// Whole contents of a file.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Names (not paths) of the files directly in `dir`, sorted.
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;
    /// Atomically replaces `to` with `from`; durable after [`Disk::sync_dir`].
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Deletes a file; durable after [`Disk::sync_dir`].
    fn remove(&self, path: &str) -> io::Result<()>;
    /// Creates a directory and its parents (durable at once: directories are set up at start).
    fn create_dir_all(&self, dir: &str) -> io::Result<()>;
    /// Makes creations, renames and removals inside `dir` durable.
    fn sync_dir(&self, dir: &str) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &str) -> bool;
}

/// An open file: appends, positional reads and writes, with explicit sync.
pub trait DiskFile: Send {
    /// Current length, including unsynced bytes.
    fn size(&self) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Appends `data` at the end (not durable until [`DiskFile::sync`]).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Writes `data` at `offset`, growing the file if it ends past the end (not durable
    /// until [`DiskFile::sync`]).
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Grows the file to at least `len` bytes of zeros with their blocks allocated, so that
    /// later writes inside it change no file size and their sync writes no metadata (not
    /// durable until [`DiskFile::sync`]). Never shrinks the file.
    fn allocate(&mut self, len: u64) -> io::Result<()>;
    /// Cuts the file to `len` bytes; never grows it (not durable until [`DiskFile::sync`]).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Makes the contents durable (`fdatasync`). An error means the data may be lost and the
    /// caller must stop: a failed fsync is never retried.
    fn sync(&mut self) -> io::Result<()>;
}

/// The disk a node started by `node::start` keeps its data on: files under `data_dir` in
/// production; under the simulator a fresh [`SimDisk`] (madsim has no file system; a scenario
/// that restarts nodes on their data hands its own `SimDisk` to `node::start_with_disk`).
/// The one place that chooses.
pub fn node_disk(data_dir: &std::path::Path) -> io::Result<std::sync::Arc<dyn Disk>> {
    #[cfg(madsim)]
    {
        let _ = data_dir;
        Ok(std::sync::Arc::new(SimDisk::new()))
    }
    #[cfg(not(madsim))]
    {
        Ok(std::sync::Arc::new(RealDisk::new(data_dir)?))
    }
}

/// Joins a directory and a name with `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{}", dir.trim_end_matches('/'), name)
    }
}

/// Writes a whole file crash-safely: temp file, sync, rename over `path`, sync the directory.
pub fn write_atomic(disk: &dyn Disk, dir: &str, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = join(dir, &format!("{name}.tmp"));
    if disk.exists(&tmp) {
        disk.remove(&tmp)?;
    }
    let mut f = disk.open(&tmp)?;
    f.append(data)?;
    f.sync()?;
    drop(f);
    disk.rename(&tmp, &join(dir, name))?;
    disk.sync_dir(dir)
}
