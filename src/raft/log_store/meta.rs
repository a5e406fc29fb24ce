//! The log store's small state files (vote, last purged log id, committed log id): one
//! postcard value behind a CRC32C, replaced crash-safely with [`write_atomic`] (temp file,
//! sync, rename, directory sync), so a reader sees either the old or the new value.

use super::LogStoreError;
use crate::disk::{join, write_atomic, Disk};
use serde::{de::DeserializeOwned, Serialize};
use std::io;

pub const VOTE: &str = "vote";
pub const PURGED: &str = "purged";
pub const COMMITTED: &str = "committed";

/// Writes `value` to `dir/name`; durable when this returns. Blocks on the disk.
pub fn write<T: Serialize>(disk: &dyn Disk, dir: &str, name: &str, value: &T) -> io::Result<()> {
    let body = postcard::to_allocvec(value).map_err(io::Error::other)?;
    let mut data = crc32c::crc32c(&body).to_le_bytes().to_vec();
    data.extend_from_slice(&body);
    write_atomic(disk, dir, name, &data)
}

/// Reads `dir/name`: `None` if it was never written.
pub fn read<T: DeserializeOwned>(disk: &dyn Disk, dir: &str, name: &str) -> Result<Option<T>, LogStoreError> {
    let path = join(dir, name);
    if !disk.exists(&path) {
        return Ok(None);
    }
    let data = disk.read(&path).map_err(|source| LogStoreError::Io { file: path.clone(), source })?;
    let corrupt = |reason: String| LogStoreError::Corrupt { file: path.clone(), reason };
    let (crc, body) = data.split_at_checked(4).ok_or_else(|| corrupt("too short".into()))?;
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    postcard::from_bytes(body).map(Some).map_err(|e| corrupt(e.to_string()))
}
