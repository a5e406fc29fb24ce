//! `SnapshotFile`: a snapshot as a file on the disk seam, the state machine's `SnapshotData`.
//! Snapshots are never held in one buffer: the builder writes them to a file, the network
//! streams that file in chunks, and the receiver writes the chunks to a file of its own before
//! installing it.

use crate::disk::{Disk, DiskFile};
use std::sync::Arc;

/// Bytes sent per snapshot chunk.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// A snapshot stored at `path` on `disk`.
#[derive(Clone)]
pub struct SnapshotFile {
    pub disk: Arc<dyn Disk>,
    pub path: String,
}

impl std::fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFile").field("path", &self.path).finish()
    }
}

impl SnapshotFile {
    /// Opens the existing file for reading. `Disk::open` creates missing files, which would
    /// turn a snapshot replaced under a sender into an empty stream; reading must not.
    fn open_existing(&self) -> std::io::Result<Box<dyn DiskFile>> {
        if !self.disk.exists(&self.path) {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{}: no such snapshot", self.path)));
        }
        self.disk.open(&self.path)
    }

    /// Total size in bytes.
    pub fn size(&self) -> std::io::Result<u64> {
        self.open_existing()?.size()
    }

    /// Up to `CHUNK_BYTES` bytes starting at `offset` (empty at the end).
    pub fn read_chunk(&self, offset: u64) -> std::io::Result<Vec<u8>> {
        let file = self.open_existing()?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let n = file.read_at(offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Opens the file for appending chunks (the receiving side).
    pub fn writer(&self) -> std::io::Result<Box<dyn DiskFile>> {
        self.disk.open(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::SimDisk;

    #[test]
    fn chunks_cover_the_file() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let file = SnapshotFile { disk, path: "snap".into() };
        let data: Vec<u8> = (0..(CHUNK_BYTES * 2 + 10)).map(|i| i as u8).collect();
        let mut w = file.writer().unwrap();
        w.append(&data).unwrap();
        w.sync().unwrap();
        let mut read = Vec::new();
        loop {
            let chunk = file.read_chunk(read.len() as u64).unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= CHUNK_BYTES);
            read.extend(chunk);
        }
        assert_eq!(read, data);
        assert_eq!(file.size().unwrap(), data.len() as u64);
    }

    #[test]
    fn a_missing_snapshot_is_an_error_not_an_empty_file() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let file = SnapshotFile { disk: disk.clone(), path: "gone".into() };
        assert_eq!(file.read_chunk(0).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        assert_eq!(file.size().unwrap_err().kind(), std::io::ErrorKind::NotFound);
        assert!(!disk.exists("gone"), "reading created nothing");
    }
}
