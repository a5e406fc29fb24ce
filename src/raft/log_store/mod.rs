//! openraft's log storage for raftis ([`LogStore`], and [`LogReader`] for replication): log
//! entries in the write-ahead log ([`crate::raft::wal`]) as postcard payloads, and the vote,
//! the last purged log id and the committed log id as small crash-safe files
//! ([`crate::disk::write_atomic`]) next to it.
//!
//! Writes are GROUP COMMITTED. `append` puts entries into the WAL's in-memory copy and buffer
//! and queues its `IOFlushed` callback; a flusher task ([`flusher`]) drains the queue, makes
//! everything buffered so far durable with ONE fsync, then fires the drained callbacks in
//! order. So many appends share one sync, and no callback fires before its entries are on disk.
//!
//! All write I/O is serialized through that one queue, as openraft requires: `save_vote` and
//! `purge` enqueue a barrier and return once the flusher has synced every earlier append and
//! then written their file. The flusher is the only part touching the disk after open: a
//! thread of its own in production, a task under madsim ([`crate::rt::spawn_worker`]).
//!
//! A failed fsync (or any failed write) stops the node: the error goes to openraft (which then
//! shuts Raft down), the WAL poisons itself, and every later call fails. Nothing is retried.

mod appends;
mod flusher;
mod meta;
mod recent;

pub use appends::Appends;

use crate::disk::{join, Disk};
use crate::raft::wal::{Wal, WalError, WalOptions};
use crate::raft::TypeConfig;
use bytes::Bytes;
use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use recent::Recent;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// A log entry of raftis.
pub type Entry = EntryOf<TypeConfig>;
/// A log id (leader id + index).
pub type LogId = LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = VoteOf<TypeConfig>;

/// Why the log store cannot open.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("log store I/O error on {file}: {source}")]
    Io { file: String, source: io::Error },
    #[error("corrupt log store file {file}: {reason}; refusing to start (restore this node from a peer)")]
    Corrupt { file: String, reason: String },
    #[error("the log store's recovery could not run: {0}")]
    Recovery(io::Error),
}

/// Tuning of the log store.
#[derive(Debug, Clone, Copy)]
pub struct LogStoreOptions {
    /// Sizing of the WAL.
    pub wal: WalOptions,
    /// The committed log id is persisted lazily (openraft allows that): once it is this many
    /// entries ahead of the persisted one, and at shutdown. 0 persists it after every
    /// flush that changed it. It is never persisted ahead of the durable log.
    pub committed_every: u64,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        LogStoreOptions { wal: WalOptions::default(), committed_every: 1024 }
    }
}

/// A write waiting for the flusher, in call order.
enum Op {
    /// Entries already in the WAL buffer; fire the callback once they are durable.
    Flushed(IOFlushed<TypeConfig>),
    /// A non-WAL write, done after every earlier append is durable; the caller awaits `done`.
    Barrier(Barrier, oneshot::Sender<io::Result<()>>),
}

enum Barrier {
    Vote(Vote),
    Purge(LogId),
}

/// State shared by the store, its readers and the flusher.
struct State {
    wal: Wal,
    /// The newest entries of `wal`, decoded; kept in step with it.
    recent: Recent,
    vote: Option<Vote>,
    /// Last committed log id given to `save_committed` (maybe not yet persisted).
    committed: Option<LogId>,
    /// Last purged log id (durable: set only after its file was written).
    purged: Option<LogId>,
    queue: Vec<Op>,
    /// Set by the first failed write: the node must stop, every later call fails.
    failed: Option<String>,
    /// The store was dropped: the flusher finishes the queue and exits.
    closed: bool,
    /// Tests only: the flusher leaves the queue alone (a power cut that must hit queued work).
    #[cfg(test)]
    held: bool,
}

struct Shared {
    disk: Arc<dyn Disk>,
    dir: String,
    opts: LogStoreOptions,
    state: Mutex<State>,
    /// Wakes the flusher when there is something to flush.
    wake: crate::rt::Waker,
    /// Counts `append` calls (for the proposer's pacing).
    appends: Appends,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data; the failure flag covers storage.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn failed_err(msg: &str) -> io::Error {
    io::Error::other(format!("log storage has failed, the node must stop: {msg}"))
}

fn wal_err(e: WalError) -> io::Error {
    io::Error::other(e)
}

/// The log storage handed to openraft.
pub struct LogStore {
    shared: Arc<Shared>,
    flusher: Option<crate::rt::WorkerHandle>,
}

/// Whether the log's flusher rounds may run on the runtime thread in its idle time
/// ([`crate::rt::Waker::run_when_idle`]); for a node alone in its group: nothing then overlaps
/// a sync, and blocking the runtime thread in it, as Redis does, batches more writes per sync
/// at fewer wake-ups.
#[derive(Clone)]
pub struct IdleSync(crate::rt::Waker);

impl IdleSync {
    /// Turns syncing in the runtime's idle time on or off.
    pub fn set(&self, on: bool) {
        self.0.run_when_idle(on);
    }

    /// Rounds the runtime thread ran so far.
    pub fn rounds(&self) -> u64 {
        self.0.rounds_when_idle()
    }
}

/// What the log holds in memory: the WAL's live entries and the decoded recent ones. Like
/// Redis's AOF and replication buffers, `maxmemory` leaves it out (INFO
/// `mem_not_counted_for_evict`): it is freed by snapshots, not by deleting keys.
#[derive(Clone)]
pub struct LogMemory(Arc<Shared>);

impl LogMemory {
    pub fn bytes(&self) -> u64 {
        let st = self.0.lock();
        (st.wal.entry_bytes() + st.recent.bytes()) as u64
    }
}

/// Reads the log for replication (entries come from the WAL's in-memory copy, never the disk).
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogStore {
    /// The count of this store's appends, to wait on.
    pub fn appends(&self) -> Appends {
        self.shared.appends.clone()
    }

    /// The gauge of the log's memory.
    pub fn memory(&self) -> LogMemory {
        LogMemory(self.shared.clone())
    }

    /// The switch for syncing this log in the runtime's idle time.
    pub fn idle_sync(&self) -> IdleSync {
        IdleSync(self.shared.wake.clone())
    }

    /// Opens (recovering) or creates the log store in `dir` with default options.
    pub async fn open(disk: Arc<dyn Disk>, dir: &str) -> Result<LogStore, LogStoreError> {
        Self::open_with(disk, dir, LogStoreOptions::default()).await
    }

    /// Raises the committed log id to the older of the last two membership entries in the log
    /// (in memory; the flusher persists it). openraft takes that entry as committed when it
    /// starts (a membership change is proposed only once the previous one has committed), but
    /// this store persists the committed id lazily, so after a restart it can lag behind that
    /// entry; a follower whose log then conflicts with a snapshot trips openraft's check that
    /// committed logs are never truncated (found by the chaos simulation). Call it before
    /// handing the store to Raft.
    pub fn raise_committed_to_membership(&mut self) -> io::Result<()> {
        let mut st = self.shared.lock();
        let mut memberships = Vec::with_capacity(2);
        for bytes in st.wal.entries().values().rev() {
            let entry = decode(bytes)?;
            if matches!(entry.payload, openraft::EntryPayload::Membership(_)) {
                memberships.push(entry.log_id());
                if memberships.len() == 2 {
                    break;
                }
            }
        }
        if let [_, older] = memberships.as_slice() {
            if st.committed.as_ref() < Some(older) {
                tracing::info!(committed = ?st.committed, raised_to = %older, "committed id raised to a committed membership");
                st.committed = Some(*older);
            }
        }
        Ok(())
    }

    /// Opens (recovering) or creates the log store in `dir`. A corrupt record in the middle of
    /// the log or a corrupt vote/purged/committed file stops start-up with an error naming it.
    /// Starts the flusher: call from inside the runtime.
    pub async fn open_with(disk: Arc<dyn Disk>, dir: &str, opts: LogStoreOptions) -> Result<LogStore, LogStoreError> {
        let recovered = {
            let (disk, dir) = (disk.clone(), dir.to_string());
            crate::rt::run_blocking(move || recover(disk, &dir, opts)).await.map_err(LogStoreError::Recovery)??
        };
        let persisted = recovered.committed;
        let state = Mutex::new(recovered);
        let shared = Arc::new(Shared {
            disk,
            dir: dir.to_string(),
            opts,
            state,
            wake: Default::default(),
            appends: Default::default(),
        });
        let flusher = flusher::spawn(shared.clone(), persisted)
            .map_err(|source| LogStoreError::Io { file: format!("{dir} (starting the log flusher)"), source })?;
        Ok(LogStore { shared, flusher: Some(flusher) })
    }

    /// Stops the flusher after it has flushed everything queued (and persisted the committed
    /// log id); returns once it has exited, so the directory can be reopened.
    pub async fn shutdown(mut self) {
        self.close();
        if let Some(handle) = self.flusher.take() {
            handle.join().await;
        }
    }

    /// A reader of this store's log and vote.
    fn reader(&self) -> LogReader {
        LogReader { shared: self.shared.clone() }
    }

    fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.wake();
    }

    /// Queues a barrier and waits until the flusher has done it.
    async fn barrier(&self, barrier: Barrier) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if let Some(msg) = &st.failed {
                return Err(failed_err(msg));
            }
            st.queue.push(Op::Barrier(barrier, tx));
        }
        self.shared.wake.wake();
        rx.await.map_err(|_| io::Error::other("log store flusher has stopped"))?
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn recover(disk: Arc<dyn Disk>, dir: &str, opts: LogStoreOptions) -> Result<State, LogStoreError> {
    disk.create_dir_all(dir).map_err(|source| LogStoreError::Io { file: dir.to_string(), source })?;
    let vote: Option<Vote> = meta::read(disk.as_ref(), dir, meta::VOTE)?;
    let committed: Option<LogId> = meta::read(disk.as_ref(), dir, meta::COMMITTED)?;
    let purged: Option<LogId> = meta::read(disk.as_ref(), dir, meta::PURGED)?;
    // A state file renamed into place just before a process crash, without the directory sync
    // that follows, reads back here but would not survive a power cut: make the names read
    // durable before they are relied on (a vote taken back after a restart could vote twice).
    disk.sync_dir(dir).map_err(|source| LogStoreError::Io { file: dir.to_string(), source })?;
    let mut wal = Wal::open(disk.clone(), &join(dir, "wal"), opts.wal)?;
    match (purged.as_ref(), wal.purged_up_to()) {
        // The purged id is written before the WAL is purged: finish an interrupted purge.
        (Some(p), w) if w.is_none_or(|w| w < p.index) => wal.purge_up_to(p.index)?,
        (None, Some(w)) => {
            return Err(LogStoreError::Corrupt {
                file: join(dir, meta::PURGED),
                reason: format!("missing although the log was purged up to {w}"),
            })
        }
        _ => {}
    }
    // Every live entry must decode: a payload that passed its checksum but not postcard is
    // corruption (or a format change), which must not surface later as a replication error.
    // And the log must be one: consecutive indexes whose leader ids never go down (Raft's log
    // matching). A log that breaks this lost a truncation or a record; serving or campaigning
    // on it could bring back entries the cluster overwrote.
    let corrupt = |reason: String| LogStoreError::Corrupt { file: join(dir, "wal"), reason };
    let mut previous: Option<LogId> = None;
    for (index, bytes) in wal.entries() {
        let entry = decode(bytes).map_err(|e| corrupt(format!("entry {index}: {e}")))?;
        if entry.index() != *index {
            return Err(corrupt(format!("record {index} holds entry {}", entry.index())));
        }
        let id = entry.log_id();
        if let Some(p) = previous {
            if *index != p.index + 1 || id.leader_id < p.leader_id {
                return Err(corrupt(format!("entry {id} follows entry {p} out of order")));
            }
        }
        previous = Some(id);
    }
    Ok(State {
        wal,
        recent: Recent::default(),
        vote,
        committed,
        purged,
        queue: Vec::new(),
        failed: None,
        closed: false,
        #[cfg(test)]
        held: false,
    })
}

fn decode(bytes: &[u8]) -> io::Result<Entry> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("log entry: {e}")))
}

/// The entries with index in `range`: the recent ones cloned, the others decoded outside the
/// lock.
fn read_entries<RB: RangeBounds<u64>>(shared: &Shared, range: RB) -> io::Result<Vec<Entry>> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => match s.checked_add(1) {
            Some(s) => s,
            None => return Ok(Vec::new()),
        },
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    if end.is_some_and(|e| e <= start) {
        return Ok(Vec::new());
    }
    let found: Vec<Result<Entry, Bytes>> = {
        let st = shared.lock();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let in_wal = st.wal.entries().range((Bound::Included(start), upper));
        in_wal.map(|(&index, bytes)| st.recent.get(index).cloned().ok_or_else(|| bytes.clone())).collect()
    };
    found.into_iter().map(|e| e.or_else(|bytes| decode(&bytes))).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        read_entries(&self.shared, range)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.lock().vote)
    }
}

/// The store reads as its readers do: through a [`LogReader`] over the same state (an `Arc`
/// clone per call, nothing next to decoding the entries).
impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.reader().try_get_log_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.reader().read_vote().await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let (purged, last) = {
            let st = self.shared.lock();
            (st.purged, st.wal.entries().last_key_value().map(|(_, b)| b.clone()))
        };
        let last_log_id = match last {
            Some(bytes) => Some(decode(&bytes)?.log_id()),
            None => purged,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.barrier(Barrier::Vote(*vote)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Persisted lazily by the flusher, and only after the log holding it is durable.
        self.shared.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.shared.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let encoded = entries
            .iter()
            .map(|e| Ok((e.index(), Bytes::from(postcard::to_allocvec(e).map_err(io::Error::other)?))))
            .collect::<io::Result<Vec<_>>>()?;
        let sizes: Vec<usize> = encoded.iter().map(|(_, bytes)| bytes.len()).collect();
        // A planted bug (simulation only) acknowledges the entries before they are synced.
        let early = crate::rt::bugs::enabled(crate::rt::bugs::Bug::AckBeforeSync);
        // Dropped after the lock is released.
        let mut evicted = Vec::new();
        {
            let mut st = self.shared.lock();
            if let Some(msg) = &st.failed {
                return Err(failed_err(msg));
            }
            st.wal.append(encoded).map_err(wal_err)?;
            for (entry, size) in entries.into_iter().zip(sizes) {
                st.recent.push(entry, size, &mut evicted);
            }
            if !early {
                st.queue.push(Op::Flushed(callback));
                drop(st);
                self.shared.wake.wake();
                self.shared.appends.bump();
                return Ok(());
            }
        }
        self.shared.appends.bump();
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        // A buffered record, ordered before every later append in the same file: it becomes
        // durable with the next flush, and a crash before that only brings back a log that was
        // durable before (the later appends are lost with it, and their callbacks never fired).
        let from = last_log_id.map_or(0, |l| l.index + 1);
        let mut st = self.shared.lock();
        if let Some(msg) = &st.failed {
            return Err(failed_err(msg));
        }
        st.recent.truncate_from(from);
        st.wal.truncate_from(from).map_err(wal_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.barrier(Barrier::Purge(log_id)).await
    }
}

#[cfg(test)]
mod suite;
#[cfg(test)]
mod tests;
