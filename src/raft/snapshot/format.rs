//! The snapshot file format, written and read as a stream.
//!
//! ```text
//! file   := magic "RAFTISNP" | format version (u32 LE) | frame(header) | frame(blocked)?
//!           | frame(scripts)? | frame(functions)? | frame(record)* | frame(end)
//! frame  := payload length (u64 LE) | crc32c of kind+payload (u32 LE) | kind (u8) | payload
//! header := postcard(last applied log id, membership, keyspace version, dirty count, databases)
//! blocked:= postcard(the queue of blocked clients, `store::blocked::BlockedImage`); only when
//!           a client was ever blocked (the next arrival number counts even when nobody
//!           waits any more), at most once, anywhere before the end frame
//! scripts:= postcard(the script cache and step budget, `store::scripts::ScriptsImage`); only
//!           when they differ from a fresh keyspace's, at most once, anywhere before the end frame
//! functions := postcard(the Functions libraries, `store::functions::FunctionsImage`); only
//!           when there are libraries, at most once, anywhere before the end frame
//! settings := postcard(the replicated settings, `store::Settings`); only when they differ
//!           from a fresh keyspace's, at most once, anywhere before the end frame
//! acl    := postcard(the ACL users, `store::acl::AclImage`); only when they differ from a
//!           fresh keyspace's, at most once, anywhere before the end frame
//! control:= postcard(the group's cluster-control state, `raft::control::ControlState`); only
//!           when it holds something (multi-raft), at most once, anywhere before the end frame
//! record := one key (see `codec`)
//! end    := record count (u64 LE) | crc32c over every earlier frame's crc (u32 LE)
//! ```
//!
//! Every frame carries its own checksum, and the end frame pins the number of records and the
//! chain of all frame checksums, so a flipped byte, a truncated file or trailing garbage is
//! refused with an error naming the file. The writer appends frames to a buffer that it hands
//! to the disk every [`FLUSH_BYTES`]; the reader pulls the file in chunks of the same size. Only
//! one record (one key) is ever held whole in memory, never the dataset.

use super::codec::{self, Record};
use crate::disk::{Disk, DiskFile};
use crate::raft::control::ControlState;
use crate::raft::TypeConfig;
use crate::store::acl::AclImage;
use crate::store::blocked::BlockedImage;
use crate::store::functions::FunctionsImage;
use crate::store::scripts::ScriptsImage;
use crate::store::Entry;
use crate::store::Settings;
use openraft::alias::{LogIdOf, StoredMembershipOf};
use serde::{Deserialize, Serialize};

/// The file's first bytes.
const MAGIC: &[u8; 8] = b"RAFTISNP";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The writer hands its buffer to the disk once it holds this much; the reader reads this much
/// at a time.
pub const FLUSH_BYTES: usize = 1024 * 1024;

const KIND_HEADER: u8 = 1;
const KIND_RECORD: u8 = 2;
const KIND_END: u8 = 3;
const KIND_BLOCKED: u8 = 4;
const KIND_SCRIPTS: u8 = 5;
const KIND_FUNCTIONS: u8 = 6;
const KIND_CONTROL: u8 = 7;
const KIND_SETTINGS: u8 = 8;
const KIND_ACL: u8 = 9;
/// Length (8) and checksum (4) in front of each frame's kind byte.
const FRAME_PREFIX: usize = 12;

/// What a snapshot says about the state it holds, besides the keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The last log entry the snapshot includes.
    pub last_applied: Option<LogIdOf<TypeConfig>>,
    /// The last membership applied.
    pub membership: StoredMembershipOf<TypeConfig>,
    /// The keyspace's version counter (WATCH versions keep growing after a restore).
    pub keyspace_version: u64,
    /// The keyspace's dirty count.
    pub dirty: u64,
    /// Number of databases.
    pub databases: u32,
}

/// Why a snapshot could not be read. The reader adds the file's path (see `SnapshotError`).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("damaged at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    #[error("format version {0}, this build reads version {FORMAT_VERSION}")]
    Version(u32),
}

/// Figures from writing one snapshot (tests check the writer streams).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Bytes written.
    pub bytes: u64,
    /// Keys written.
    pub records: u64,
    /// Number of appends to the file.
    pub flushes: u64,
    /// Largest the write buffer grew (a flush threshold plus one record at most).
    pub max_buffered: usize,
}

/// Streams a snapshot into a file: header first, then records, then [`SnapshotWriter::finish`].
pub struct SnapshotWriter {
    file: Box<dyn DiskFile>,
    buf: Vec<u8>,
    chain: u32,
    stats: WriteStats,
}

impl SnapshotWriter {
    /// Starts a snapshot in `file` (which must be empty) with `header`.
    pub fn new(file: Box<dyn DiskFile>, header: &Header) -> Result<Self, FormatError> {
        let mut w =
            SnapshotWriter { file, buf: Vec::with_capacity(FLUSH_BYTES), chain: 0, stats: WriteStats::default() };
        w.buf.extend_from_slice(MAGIC);
        w.buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let start = w.begin_frame(KIND_HEADER);
        let payload = postcard::to_allocvec(header)
            .map_err(|e| FormatError::Io(std::io::Error::other(format!("encoding the snapshot header: {e}"))))?;
        w.buf.extend_from_slice(&payload);
        w.end_frame(start)?;
        Ok(w)
    }

    /// Appends the record of one key.
    pub fn record(&mut self, db: u32, key: &[u8], entry: &Entry) -> Result<(), FormatError> {
        let start = self.begin_frame(KIND_RECORD);
        codec::encode_record(&mut self.buf, db, key, entry);
        self.stats.records += 1;
        self.end_frame(start)
    }

    /// Appends the queue of blocked clients (call once, before the records; skip it when the
    /// queue is a fresh keyspace's, so such snapshots read as they always did).
    pub fn blocked(&mut self, image: &BlockedImage) -> Result<(), FormatError> {
        let start = self.begin_frame(KIND_BLOCKED);
        let payload = postcard::to_allocvec(image)
            .map_err(|e| FormatError::Io(std::io::Error::other(format!("encoding the blocked clients: {e}"))))?;
        self.buf.extend_from_slice(&payload);
        self.end_frame(start)
    }

    /// Appends the script cache (call once, before the records; skip it when it is a fresh
    /// keyspace's, so such snapshots read as they always did).
    pub fn scripts(&mut self, image: &ScriptsImage) -> Result<(), FormatError> {
        let start = self.begin_frame(KIND_SCRIPTS);
        let payload = postcard::to_allocvec(image)
            .map_err(|e| FormatError::Io(std::io::Error::other(format!("encoding the script cache: {e}"))))?;
        self.buf.extend_from_slice(&payload);
        self.end_frame(start)
    }

    /// Appends the Functions libraries (call once, before the records; skip it when there are
    /// none).
    pub fn functions(&mut self, image: &FunctionsImage) -> Result<(), FormatError> {
        let start = self.begin_frame(KIND_FUNCTIONS);
        let payload = postcard::to_allocvec(image)
            .map_err(|e| FormatError::Io(std::io::Error::other(format!("encoding the function libraries: {e}"))))?;
        self.buf.extend_from_slice(&payload);
        self.end_frame(start)
    }

    /// Appends the replicated settings (call once, before the records; skip them when they are
    /// a fresh keyspace's, so such snapshots read as they always did).
    pub fn settings(&mut self, settings: &Settings) -> Result<(), FormatError> {
        let start = self.begin_frame(KIND_SETTINGS);
        let payload = postcard::to_allocvec(settings)
            .map_err(|e| FormatError::Io(std::io::Error::other(format!("encoding the settings: {e}"))))?;
        self.buf.extend_from_slice(&payload);
        self.end_frame(start)
    }

    /// Appends the ACL users (call once, before the records; skip them when they are a fresh
    /// keyspace's, so such snapshots read as they always did).
    pub fn acl(&mut self, image: &AclImage) -> Result<(), FormatError> {
        let start = self.begin_frame(KIND_ACL);
        let payload = postcard::to_allocvec(image)
            .map_err(|e| FormatError::Io(std::io::Error::other(format!("encoding the ACL users: {e}"))))?;
        self.buf.extend_from_slice(&payload);
        self.end_frame(start)
    }

    /// Appends the group's cluster-control state (call once, before the records; skip it when
    /// it is empty, so such snapshots read as they always did).
    pub fn control(&mut self, state: &ControlState) -> Result<(), FormatError> {
        let start = self.begin_frame(KIND_CONTROL);
        let payload = postcard::to_allocvec(state)
            .map_err(|e| FormatError::Io(std::io::Error::other(format!("encoding the control state: {e}"))))?;
        self.buf.extend_from_slice(&payload);
        self.end_frame(start)
    }

    /// Writes the end frame, flushes and syncs the file.
    pub fn finish(mut self) -> Result<WriteStats, FormatError> {
        let start = self.begin_frame(KIND_END);
        let (records, chain) = (self.stats.records, self.chain);
        self.buf.extend_from_slice(&records.to_le_bytes());
        self.buf.extend_from_slice(&chain.to_le_bytes());
        self.end_frame(start)?;
        self.flush()?;
        self.file.sync()?;
        Ok(self.stats)
    }

    fn begin_frame(&mut self, kind: u8) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; FRAME_PREFIX]);
        self.buf.push(kind);
        start
    }

    /// Fills in the frame's length and checksum, and flushes when the buffer is full.
    fn end_frame(&mut self, start: usize) -> Result<(), FormatError> {
        let body = &self.buf[start + FRAME_PREFIX..];
        let len = (body.len() - 1) as u64;
        let crc = crc32c::crc32c(body);
        self.buf[start..start + 8].copy_from_slice(&len.to_le_bytes());
        self.buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
        self.chain = crc32c::crc32c_append(self.chain, &crc.to_le_bytes());
        self.stats.max_buffered = self.stats.max_buffered.max(self.buf.len());
        if self.buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FormatError> {
        if !self.buf.is_empty() {
            self.file.append(&self.buf)?;
            self.stats.bytes += self.buf.len() as u64;
            self.stats.flushes += 1;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Reads a snapshot record by record, verifying every checksum on the way.
pub struct SnapshotReader {
    file: Box<dyn DiskFile>,
    size: u64,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    buf: Vec<u8>,
    pos: usize,
    header: Header,
    /// The queue of blocked clients, once its frame has been read.
    blocked: Option<BlockedImage>,
    /// The script cache, once its frame has been read.
    scripts: Option<ScriptsImage>,
    /// The Functions libraries, once their frame has been read.
    functions: Option<FunctionsImage>,
    /// The cluster-control state, once its frame has been read.
    control: Option<ControlState>,
    /// The replicated settings, once their frame has been read.
    settings: Option<Settings>,
    /// The ACL users, once their frame has been read.
    acl: Option<AclImage>,
    records: u64,
    chain: u32,
    /// `chain` before the last frame read (the end frame records the chain up to itself).
    chain_before_end: u32,
    done: bool,
}

impl SnapshotReader {
    /// Opens `path` and reads its header.
    pub fn open(disk: &dyn Disk, path: &str) -> Result<Self, FormatError> {
        if !disk.exists(path) {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{path}: no such file")).into());
        }
        let file = disk.open(path)?;
        let size = file.size()?;
        let mut r = SnapshotReader {
            file,
            size,
            buf_offset: 0,
            buf: Vec::new(),
            pos: 0,
            header: Header {
                last_applied: None,
                membership: Default::default(),
                keyspace_version: 0,
                dirty: 0,
                databases: 0,
            },
            blocked: None,
            scripts: None,
            functions: None,
            control: None,
            settings: None,
            acl: None,
            records: 0,
            chain: 0,
            chain_before_end: 0,
            done: false,
        };
        if r.read(MAGIC.len())? != MAGIC {
            return Err(r.corrupt("not a raftis snapshot (bad magic)"));
        }
        let version = u32::from_le_bytes(r.array()?);
        if version != FORMAT_VERSION {
            return Err(FormatError::Version(version));
        }
        let (kind, payload) = r.frame()?;
        if kind != KIND_HEADER {
            return Err(r.corrupt("the first frame is not the header"));
        }
        r.header = postcard::from_bytes(&payload).map_err(|e| r.corrupt(&format!("bad header: {e}")))?;
        Ok(r)
    }

    /// The snapshot's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The queue of blocked clients the snapshot holds (empty when it has no such frame); read
    /// it after [`next_record`](Self::next_record) returned `None`.
    pub fn take_blocked(&mut self) -> BlockedImage {
        self.blocked.take().unwrap_or_default()
    }

    /// The script cache the snapshot holds (`None` when it has no such frame: a fresh
    /// keyspace's); read it after [`next_record`](Self::next_record) returned `None`.
    pub fn take_scripts(&mut self) -> Option<ScriptsImage> {
        self.scripts.take()
    }

    /// The Functions libraries the snapshot holds (empty when it has no such frame); read them
    /// after [`next_record`](Self::next_record) returned `None`.
    pub fn take_functions(&mut self) -> FunctionsImage {
        self.functions.take().unwrap_or_default()
    }

    /// The replicated settings the snapshot holds (a fresh keyspace's when it has no such
    /// frame); read them after [`next_record`](Self::next_record) returned `None`.
    pub fn take_settings(&mut self) -> Settings {
        self.settings.take().unwrap_or_default()
    }

    /// The cluster-control state the snapshot holds (empty when it has no such frame); read it
    /// after [`next_record`](Self::next_record) returned `None`.
    /// The ACL users the snapshot holds, if it has them.
    pub fn take_acl(&mut self) -> Option<AclImage> {
        self.acl.take()
    }

    pub fn take_control(&mut self) -> ControlState {
        self.control.take().unwrap_or_default()
    }

    /// The next key, or `None` after the end frame has been verified.
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.done {
            return Ok(None);
        }
        let at = self.offset();
        let (kind, payload) = self.frame()?;
        match kind {
            KIND_BLOCKED if self.blocked.is_none() => {
                let image = postcard::from_bytes(&payload)
                    .map_err(|e| corrupt_at(at, &format!("bad blocked-clients frame: {e}")))?;
                self.blocked = Some(image);
                self.next_record()
            }
            KIND_SCRIPTS if self.scripts.is_none() => {
                let image = postcard::from_bytes(&payload)
                    .map_err(|e| corrupt_at(at, &format!("bad script cache frame: {e}")))?;
                self.scripts = Some(image);
                self.next_record()
            }
            KIND_FUNCTIONS if self.functions.is_none() => {
                let image = postcard::from_bytes(&payload)
                    .map_err(|e| corrupt_at(at, &format!("bad function libraries frame: {e}")))?;
                self.functions = Some(image);
                self.next_record()
            }
            KIND_CONTROL if self.control.is_none() => {
                let state = ControlState::decode(&payload)
                    .map_err(|e| corrupt_at(at, &format!("bad control-state frame: {e}")))?;
                self.control = Some(state);
                self.next_record()
            }
            KIND_ACL if self.acl.is_none() => {
                let image: AclImage =
                    postcard::from_bytes(&payload).map_err(|e| corrupt_at(at, &format!("bad ACL frame: {e}")))?;
                self.acl = Some(image);
                self.next_record()
            }
            KIND_SETTINGS if self.settings.is_none() => {
                let settings: Settings =
                    postcard::from_bytes(&payload).map_err(|e| corrupt_at(at, &format!("bad settings frame: {e}")))?;
                self.settings = Some(settings);
                self.next_record()
            }
            KIND_RECORD => {
                self.records += 1;
                let rec = codec::decode_record(&payload).map_err(|r| corrupt_at(at, r))?;
                Ok(Some(rec))
            }
            KIND_END => {
                // The chain includes the end frame's own crc: compare against the value before it.
                let (records, chain) = match <[u8; 12]>::try_from(payload.as_slice()) {
                    Ok(p) => (
                        u64::from_le_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]),
                        u32::from_le_bytes([p[8], p[9], p[10], p[11]]),
                    ),
                    Err(_) => return Err(corrupt_at(at, "bad end frame")),
                };
                if records != self.records {
                    return Err(corrupt_at(at, &format!("{} records, the end frame says {records}", self.records)));
                }
                if chain != self.chain_before_end {
                    return Err(corrupt_at(at, "frame checksum chain mismatch"));
                }
                if self.offset() != self.size {
                    return Err(self.corrupt("bytes after the end frame"));
                }
                self.done = true;
                Ok(None)
            }
            _ => Err(corrupt_at(at, "unknown frame kind")),
        }
    }

    fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    fn corrupt(&self, reason: &str) -> FormatError {
        corrupt_at(self.offset(), reason)
    }

    /// One frame, checksum verified: its kind and payload.
    fn frame(&mut self) -> Result<(u8, Vec<u8>), FormatError> {
        let at = self.offset();
        if at == self.size {
            return Err(self.corrupt("the file ends before the end frame (truncated)"));
        }
        let len = u64::from_le_bytes(self.array()?);
        let crc = u32::from_le_bytes(self.array()?);
        // Checked against the file size before allocating: a damaged length is an error, not a
        // huge allocation.
        let body_len = len
            .checked_add(1)
            .filter(|n| *n <= self.size - self.offset())
            .ok_or_else(|| corrupt_at(at, "frame length beyond the end of the file"))?;
        let mut body = self.read(body_len as usize)?;
        if crc32c::crc32c(&body) != crc {
            return Err(corrupt_at(at, "frame checksum mismatch"));
        }
        self.chain_before_end = self.chain;
        self.chain = crc32c::crc32c_append(self.chain, &crc.to_le_bytes());
        let kind = body.remove(0);
        Ok((kind, body))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let v = self.read(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        Ok(a)
    }

    /// Exactly `n` bytes from the current position, pulling chunks of the file as needed.
    fn read(&mut self, n: usize) -> Result<Vec<u8>, FormatError> {
        if n as u64 > self.size - self.offset() {
            return Err(self.corrupt("the file ends early (truncated)"));
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.pos == self.buf.len() {
                self.buf_offset += self.buf.len() as u64;
                self.pos = 0;
                self.buf.resize(FLUSH_BYTES, 0);
                let got = self.file.read_at(self.buf_offset, &mut self.buf)?;
                self.buf.truncate(got);
                if got == 0 {
                    return Err(self.corrupt("the file ends early (truncated)"));
                }
            }
            let take = (n - out.len()).min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
        }
        Ok(out)
    }
}

fn corrupt_at(offset: u64, reason: &str) -> FormatError {
    FormatError::Corrupt { offset, reason: reason.to_string() }
}
