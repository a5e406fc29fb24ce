//! Snapshots on disk: the directory that holds them ([`SnapshotDir`]), writing one from a
//! keyspace view and loading one back, both streamed (see [`format`]).
//!
//! Layout of the directory:
//! - `snap-<position>`: a complete snapshot, `<position>` being its last log index + 1 (0 for
//!   none) in 20 digits, so names sort by age. Publishing one removes the older ones.
//! - `build-<position>.tmp`: a snapshot being built; `recv-<n>.tmp`: one being received from
//!   the leader. Temp files never count as snapshots and are removed at start.
//!
//! A snapshot becomes current crash-safely: its file is synced, renamed to its final name and
//! the directory synced; only then are older snapshots removed. A crash at any point leaves
//! either the old or the new snapshot as the newest complete one.

mod codec;
pub mod format;
#[cfg(test)]
mod tests;

pub use codec::Record;

/// The snapshot record decoder for the fuzz targets, without making the codec public.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::codec::{decode_record, encode_record};
    use crate::store::Db;

    /// Decodes `buf` as one record (never panicking, whatever it holds); what decodes must
    /// encode to bytes that decode and encode again to the same bytes. Returns whether `buf`
    /// decoded.
    pub fn record_round_trip(buf: &[u8]) -> bool {
        let Ok(record) = decode_record(buf) else { return false };
        let first = encode(record);
        let again = decode_record(&first).expect("an encoded record decodes");
        assert_eq!(encode(again), first, "re-encoding is a fixed point");
        true
    }

    fn encode(record: super::Record) -> Vec<u8> {
        let mut db = Db::default();
        db.insert(record.key.clone(), record.value, record.expire_at, record.version);
        let entry = db.entry(&record.key).expect("just inserted");
        let mut out = Vec::new();
        encode_record(&mut out, record.db, &record.key, entry);
        out
    }
}
pub use format::{FormatError, Header, SnapshotReader, SnapshotWriter, WriteStats, FORMAT_VERSION};

use super::control::ControlState;
use super::snapshot_file::SnapshotFile;
use super::TypeConfig;
use crate::disk::{join, Disk};
use crate::store::Keyspace;
use openraft::alias::{LogIdOf, SnapshotMetaOf};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const SNAP_PREFIX: &str = "snap-";
const TMP_SUFFIX: &str = ".tmp";

/// A snapshot problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("snapshot {path} refused: {source}")]
    Bad { path: String, source: FormatError },
    #[error("snapshot {path} holds log id {found:?} (or another membership), expected {expected:?}")]
    Mismatch { path: String, found: Option<LogIdOf<TypeConfig>>, expected: Option<LogIdOf<TypeConfig>> },
}

impl SnapshotError {
    fn bad(path: &str, source: FormatError) -> Self {
        match source {
            FormatError::Io(e) if e.kind() != io::ErrorKind::NotFound => SnapshotError::Io(e),
            source => SnapshotError::Bad { path: path.to_string(), source },
        }
    }
}

impl From<SnapshotError> for io::Error {
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// The snapshot directory. Clones share the disk and the counter of receive slots, so the
/// network side can take one to receive snapshots while the state machine owns another.
#[derive(Clone)]
pub struct SnapshotDir {
    disk: Arc<dyn Disk>,
    dir: String,
    next_recv: Arc<AtomicU64>,
}

impl std::fmt::Debug for SnapshotDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotDir").field("dir", &self.dir).finish()
    }
}

/// The file name of the snapshot ending at `last`.
pub fn file_name(last: Option<&LogIdOf<TypeConfig>>) -> String {
    format!("{SNAP_PREFIX}{:020}", last.map_or(0, |l| l.index + 1))
}

/// The position in a snapshot file name, if `name` is one.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SNAP_PREFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

impl SnapshotDir {
    /// Opens (creating) the snapshot directory `dir` on `disk`.
    pub fn new(disk: Arc<dyn Disk>, dir: &str) -> io::Result<Self> {
        disk.create_dir_all(dir)?;
        Ok(SnapshotDir { disk, dir: dir.to_string(), next_recv: Arc::new(AtomicU64::new(0)) })
    }

    /// The disk the snapshots live on.
    pub fn disk(&self) -> &Arc<dyn Disk> {
        &self.disk
    }

    /// The path of `name` in this directory.
    pub fn path(&self, name: &str) -> String {
        join(&self.dir, name)
    }

    fn file(&self, path: String) -> SnapshotFile {
        SnapshotFile { disk: self.disk.clone(), path }
    }

    /// Removes temp files left by an interrupted build or receive, then makes the directory's
    /// names durable (call at start only): a snapshot renamed into place just before a process
    /// crash, without the directory sync that follows, is found by the restarted node, which
    /// then relies on it (and purges its log), so its name must survive a later power cut.
    pub fn remove_temp_files(&self) -> io::Result<()> {
        for name in self.disk.list(&self.dir)? {
            if name.ends_with(TMP_SUFFIX) {
                self.disk.remove(&self.path(&name))?;
            }
        }
        self.disk.sync_dir(&self.dir)
    }

    /// The newest complete snapshot's path, if any (by name; its content is checked on load).
    pub fn newest(&self) -> io::Result<Option<String>> {
        let newest = self.disk.list(&self.dir)?.into_iter().filter_map(|n| parse_name(&n).map(|p| (p, n))).max();
        Ok(newest.map(|(_, name)| self.path(&name)))
    }

    /// The newest snapshot and its header, if any.
    pub fn current(&self) -> Result<Option<(SnapshotFile, Header)>, SnapshotError> {
        let Some(path) = self.newest()? else { return Ok(None) };
        let reader = SnapshotReader::open(self.disk.as_ref(), &path).map_err(|e| SnapshotError::bad(&path, e))?;
        let header = reader.header().clone();
        Ok(Some((self.file(path), header)))
    }

    /// A fresh, empty temp file for receiving a snapshot from the leader in chunks (append
    /// through [`SnapshotFile::writer`], then install it).
    pub fn begin_receiving(&self) -> io::Result<SnapshotFile> {
        let n = self.next_recv.fetch_add(1, Ordering::Relaxed);
        let path = self.path(&format!("recv-{n}{TMP_SUFFIX}"));
        if self.disk.exists(&path) {
            self.disk.remove(&path)?;
        }
        drop(self.disk.open(&path)?);
        Ok(self.file(path))
    }

    /// Removes `file` if it is a temp file of this directory (a refused download); best effort,
    /// as start-up removes temp files anyway.
    pub fn discard_temp(&self, file: &SnapshotFile) {
        let ours = file.path.strip_prefix(&self.path("")).is_some_and(|name| name.ends_with(TMP_SUFFIX));
        if ours && self.disk.exists(&file.path) && self.disk.remove(&file.path).is_err() {
            tracing::warn!(path = %file.path, "could not remove a refused snapshot download");
        }
    }

    /// Writes a snapshot of `ks` (with `header`) to a temp file, streamed and synced. It is not
    /// a snapshot until [`SnapshotDir::publish`]ed.
    pub fn write_temp(&self, header: &Header, ks: &Keyspace) -> Result<(SnapshotFile, WriteStats), SnapshotError> {
        self.write_temp_with(header, ks, &ControlState::default())
    }

    /// [`write_temp`](Self::write_temp) with the group's cluster-control state (a frame of its
    /// own, written only when there is some).
    pub fn write_temp_with(
        &self,
        header: &Header,
        ks: &Keyspace,
        control: &ControlState,
    ) -> Result<(SnapshotFile, WriteStats), SnapshotError> {
        let name = format!("build-{}{TMP_SUFFIX}", file_name(header.last_applied.as_ref()));
        let path = self.path(&name);
        if self.disk.exists(&path) {
            self.disk.remove(&path)?;
        }
        let bad = |e| SnapshotError::bad(&path, e);
        let mut w = SnapshotWriter::new(self.disk.open(&path)?, header).map_err(bad)?;
        // Also when the queue is empty: its next arrival number is replicated state, and a node
        // loading the snapshot would otherwise number its next waiters from 0.
        if !ks.blocked.is_fresh() {
            w.blocked(&ks.blocked.image()).map_err(bad)?;
        }
        if !ks.scripts.is_default() {
            w.scripts(&ks.scripts.image()).map_err(bad)?;
        }
        if !ks.functions.is_empty() {
            w.functions(&ks.functions.image()).map_err(bad)?;
        }
        if !ks.settings.is_default() {
            w.settings(&ks.settings).map_err(bad)?;
        }
        if !ks.acl.is_fresh() {
            w.acl(&ks.acl.image()).map_err(bad)?;
        }
        if !control.is_empty() {
            w.control(control).map_err(bad)?;
        }
        for (i, db) in ks.dbs().iter().enumerate() {
            for (key, entry) in db.iter() {
                w.record(i as u32, key, entry).map_err(bad)?;
            }
        }
        let stats = w.finish().map_err(bad)?;
        Ok((self.file(path), stats))
    }

    /// Makes `file` (a complete snapshot ending at `last`) durable under its final name: sync,
    /// rename into place, sync the directory, then remove every older snapshot. Returns the
    /// snapshot under its final name.
    ///
    /// Only older snapshots go: openraft builds snapshots in a spawned task, so a build that
    /// cloned the state at index 100 can finish after a snapshot at index 500 was installed;
    /// the newer one must survive (and stays the current one, as [`SnapshotDir::newest`] goes by
    /// position).
    pub fn publish(&self, file: &SnapshotFile, last: Option<&LogIdOf<TypeConfig>>) -> io::Result<SnapshotFile> {
        let copied;
        let file = if self.owns(file) {
            file
        } else {
            copied = self.copy_in(file)?;
            &copied
        };
        let name = file_name(last);
        let path = self.path(&name);
        if file.path != path {
            // The receiver may not have synced its chunks.
            self.disk.open(&file.path)?.sync()?;
            self.disk.rename(&file.path, &path)?;
            self.disk.sync_dir(&self.dir)?;
        }
        let position = last.map_or(0, |l| l.index + 1);
        let mut removed = false;
        for other in self.disk.list(&self.dir)? {
            if parse_name(&other).is_some_and(|p| p < position) {
                self.disk.remove(&self.path(&other))?;
                removed = true;
            }
        }
        if removed {
            self.disk.sync_dir(&self.dir)?;
        }
        Ok(self.file(path))
    }
}

impl SnapshotDir {
    /// Whether `file` lives on this directory's disk (a snapshot handed over in-process, as
    /// openraft's storage suite does, may live on another node's disk).
    fn owns(&self, file: &SnapshotFile) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&file.disk), Arc::as_ptr(&self.disk))
    }

    /// Streams a snapshot from another disk into a receiving file of ours, chunk by chunk.
    fn copy_in(&self, from: &SnapshotFile) -> io::Result<SnapshotFile> {
        let to = self.begin_receiving()?;
        let mut writer = to.writer()?;
        let mut offset = 0u64;
        loop {
            let chunk = from.read_chunk(offset)?;
            if chunk.is_empty() {
                break;
            }
            writer.append(&chunk)?;
            offset += chunk.len() as u64;
        }
        writer.sync()?;
        Ok(to)
    }
}

/// Loads a snapshot record by record into a fresh keyspace, verifying it throughout. When
/// `expected` is given (the leader's description of what it sent), the file must match it.
pub fn load(
    file: &SnapshotFile,
    expected: Option<&SnapshotMetaOf<TypeConfig>>,
) -> Result<(Header, Keyspace), SnapshotError> {
    load_with_control(file, expected).map(|(header, ks, _)| (header, ks))
}

/// [`load`], also returning the group's cluster-control state (empty when the file has none).
pub fn load_with_control(
    file: &SnapshotFile,
    expected: Option<&SnapshotMetaOf<TypeConfig>>,
) -> Result<(Header, Keyspace, ControlState), SnapshotError> {
    let path = file.path.as_str();
    let bad = |e| SnapshotError::bad(path, e);
    let mut reader = SnapshotReader::open(file.disk.as_ref(), path).map_err(bad)?;
    let header = reader.header().clone();
    if let Some(meta) = expected {
        if header.last_applied != meta.last_log_id || header.membership != meta.last_membership {
            return Err(SnapshotError::Mismatch {
                path: path.to_string(),
                found: header.last_applied,
                expected: meta.last_log_id,
            });
        }
    }
    let databases = header.databases as usize;
    if databases == 0 || databases > u16::MAX as usize {
        return Err(bad(FormatError::Corrupt { offset: 0, reason: format!("{databases} databases") }));
    }
    let mut ks = Keyspace::new(databases);
    while let Some(rec) = reader.next_record().map_err(bad)? {
        if rec.db as usize >= databases {
            let reason = format!("key in database {} of {databases}", rec.db);
            return Err(bad(FormatError::Corrupt { offset: 0, reason }));
        }
        ks.db_mut(rec.db as usize).insert(rec.key, rec.value, rec.expire_at, rec.version);
    }
    let blocked = reader.take_blocked();
    ks.blocked =
        crate::store::Blocked::from_image(blocked).map_err(|reason| bad(FormatError::Corrupt { offset: 0, reason }))?;
    if let Some(image) = reader.take_scripts() {
        ks.scripts = crate::store::Scripts::from_image(image)
            .map_err(|reason| bad(FormatError::Corrupt { offset: 0, reason }))?;
    }
    ks.functions = crate::store::Functions::from_image(reader.take_functions())
        .map_err(|reason| bad(FormatError::Corrupt { offset: 0, reason }))?;
    ks.settings = reader.take_settings();
    if let Some(image) = reader.take_acl() {
        ks.acl = crate::store::acl::AclStore::from_image(image)
            .map_err(|reason| bad(FormatError::Corrupt { offset: 0, reason }))?;
    }
    ks.set_version(header.keyspace_version);
    ks.dirty = header.dirty;
    let control = reader.take_control();
    Ok((header, ks, control))
}
