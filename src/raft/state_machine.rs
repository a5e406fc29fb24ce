//! openraft's state machine for raftis: applies committed writes to the [`Keyspace`], builds
//! and installs snapshots (streamed files, see [`super::snapshot`]).
//!
//! The keyspace, the last applied log id and the last membership live together in one
//! [`SmState`] behind a shared mutex ([`SharedState`]): apply changes all three under one lock,
//! so a reader (the server's read path takes the same handle) or a snapshot never sees data
//! from one log position with the log id of another. The lock is never held across an await.
//!
//! Durability comes from the log and the snapshots, not from the state machine: on start,
//! [`StateMachine::open`] loads the newest snapshot and openraft replays the log after it.

use super::control::ControlState;
use super::notify::Notifier;
use super::snapshot::{self, Header, SnapshotDir, SnapshotError, WriteStats};
use super::snapshot_file::SnapshotFile;
use super::waiters::Waiters;
use super::{Request, TypeConfig};
use crate::disk::Disk;
use crate::protocol::Frame;
use crate::store::running::Running;
use crate::store::Keyspace;
use bytes::Bytes;
use futures_util::StreamExt;
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::rt::AsyncRuntime;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine, SnapshotMeta};
use openraft::{EntryPayload, OptionalSend, StoredMembership};
use std::io;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Everything the state machine holds, changed together.
#[derive(Debug, Clone, Default)]
pub struct SmState {
    pub keyspace: Keyspace,
    /// The last log entry applied.
    pub last_applied: Option<LogIdOf<TypeConfig>>,
    /// The last membership applied.
    pub membership: StoredMembershipOf<TypeConfig>,
    /// Cluster control (multi-raft): the cluster map of MetaRaft, a data group's slots.
    pub control: ControlState,
}

/// The state machine's data, shared with the read path. Never held across an await. Readers
/// share it (a long read holds it on a blocking-pool thread, `crate::rt::run_long`); the
/// state machine's changes take it exclusively with [`write_when_free`], which waits for such
/// a read without blocking the runtime thread Raft's heartbeats run on.
pub type SharedState = Arc<RwLock<SmState>>;

fn poisoned() -> io::Error {
    io::Error::other("state machine lock poisoned by a panic")
}

/// Reads `state`; a poisoned lock (a panic mid-apply) means the data may be half-changed, so it
/// is an error rather than something to read through.
pub fn lock(state: &SharedState) -> io::Result<RwLockReadGuard<'_, SmState>> {
    state.read().map_err(|_| poisoned())
}

/// Changes `state` from a thread that may block (tests, tools).
pub fn lock_mut(state: &SharedState) -> io::Result<RwLockWriteGuard<'_, SmState>> {
    state.write().map_err(|_| poisoned())
}

/// Changes `state` from the runtime: waits for a long read to finish without blocking it.
pub async fn write_when_free(state: &SharedState) -> io::Result<RwLockWriteGuard<'_, SmState>> {
    crate::rt::write_when_free(state).await.ok_or_else(poisoned)
}

/// How long the state machine applies entries before it lets the runtime's other tasks run.
/// Under madsim virtual time does not pass during an apply, so it never yields there and the
/// simulation's schedules do not depend on it.
const APPLY_SLICE: std::time::Duration = std::time::Duration::from_millis(5);

/// raftis's `RaftStateMachine`.
pub struct StateMachine {
    state: SharedState,
    snapshots: SnapshotDir,
    /// This node's blocked clients of the group: applied outcomes are delivered here.
    waiters: Arc<Waiters>,
    /// A data group of a multi-raft cluster: refuse writes to slots it does not own.
    fenced: bool,
    /// Keyspace notifications of applied entries go to this node's subscribers here.
    notifier: Arc<Notifier>,
    /// This node's registry of the group's running scripts: kept in every keyspace this
    /// state machine holds (a snapshot's keyspace gets it when installed).
    running: Arc<Running>,
}

/// What applying an entry needs besides the state: cloned into the blocking-pool thread that
/// applies an entry with a script.
#[derive(Clone)]
struct Applier {
    waiters: Arc<Waiters>,
    fenced: bool,
    notifier: Arc<Notifier>,
}

impl StateMachine {
    /// Opens the state machine whose snapshots live in `dir` on `disk`: removes leftover temp
    /// files and loads the newest snapshot, or starts empty with `databases` databases (a
    /// snapshot keeps its own count: it is replicated state). A damaged newest snapshot is an
    /// error: falling back to an older one could skip log entries already purged.
    pub fn open(disk: Arc<dyn Disk>, dir: &str, databases: usize) -> Result<Self, SnapshotError> {
        let snapshots = SnapshotDir::new(disk, dir)?;
        snapshots.remove_temp_files()?;
        let mut state = SmState { keyspace: Keyspace::new(databases), ..SmState::default() };
        if let Some(path) = snapshots.newest()? {
            let file = SnapshotFile { disk: snapshots.disk().clone(), path };
            let (header, keyspace, control) = snapshot::load_with_control(&file, None)?;
            if file.path != snapshots.path(&snapshot::file_name(header.last_applied.as_ref())) {
                let reason = format!("holds log id {:?}, not the one its name says", header.last_applied);
                let source = snapshot::FormatError::Corrupt { offset: 0, reason };
                return Err(SnapshotError::Bad { path: file.path, source });
            }
            // Drops any older snapshot a crash left behind.
            snapshots.publish(&file, header.last_applied.as_ref())?;
            state = SmState { keyspace, last_applied: header.last_applied, membership: header.membership, control };
        }
        // Until a replica attaches its own registry, outcomes go to nobody.
        let waiters = Arc::new(Waiters::new(u64::MAX, 0));
        let notifier = Arc::new(Notifier::new(u64::MAX));
        let running = state.keyspace.running.clone();
        let state = Arc::new(RwLock::new(state));
        Ok(StateMachine { state, snapshots, waiters, notifier, fenced: false, running })
    }

    /// Makes this the state machine of a data group of a multi-raft cluster: a write whose
    /// keys hash to a slot the group does not own (see [`ControlState::refuse`]) is refused at
    /// apply. The fence is part of the group's definition, the same on every replica.
    pub fn fence(&mut self) {
        self.fenced = true;
    }

    /// Delivers the keyspace notifications of applied entries through `notifier`.
    pub fn attach_notifier(&mut self, notifier: Arc<Notifier>) {
        self.notifier = notifier;
    }

    /// Delivers the outcomes of blocked commands to `waiters` (this node's blocked clients).
    pub fn attach_waiters(&mut self, waiters: Arc<Waiters>) {
        self.waiters = waiters;
    }

    /// The shared state (for the read path).
    pub fn shared(&self) -> SharedState {
        self.state.clone()
    }

    /// This node's registry of the group's running scripts (for `BUSY` and the KILLs).
    pub fn running(&self) -> Arc<Running> {
        self.running.clone()
    }

    fn applier(&self) -> Applier {
        Applier { waiters: self.waiters.clone(), fenced: self.fenced, notifier: self.notifier.clone() }
    }

    /// The snapshot directory (the network side keeps a clone to receive snapshots).
    pub fn snapshot_dir(&self) -> SnapshotDir {
        self.snapshots.clone()
    }

    /// An empty temp file to receive a snapshot into; install it with
    /// `Raft::install_full_snapshot`, which ends in [`RaftStateMachine::install_snapshot`].
    pub fn begin_receiving_snapshot(&self) -> io::Result<SnapshotFile> {
        self.snapshots.begin_receiving()
    }

    fn builder(&self) -> SnapshotBuilder {
        SnapshotBuilder { state: self.state.clone(), snapshots: self.snapshots.clone() }
    }

    /// Whether `entry` is applied off the runtime thread: it runs a script, or its commands
    /// may walk, build or free so much (`cmd::write_may_run_long`) that applying it here could
    /// hold Raft's heartbeats past an election timeout.
    fn runs_long(&self, entry: &openraft::alias::EntryOf<TypeConfig>) -> bool {
        if runs_script(entry) {
            return true;
        }
        // Apply is the state's only writer, so this never waits; if it could, inline it is.
        let long = |batch: &crate::store::WriteBatch| {
            self.state.try_read().is_ok_and(|st| crate::cmd::write_may_run_long(&st.keyspace, batch))
        };
        match &entry.payload {
            EntryPayload::Normal(Request::Write(batch)) => long(batch),
            EntryPayload::Normal(Request::Group(batches)) => batches.iter().any(|b| long(b)),
            _ => false,
        }
    }

    /// Applies entries that may run long (a script, a big write) on a blocking-pool thread
    /// (`crate::rt::run_long`; inline under madsim), holding the state's exclusive lock there:
    /// the runtime thread goes on with Raft and with this node's clients, whose reads wait
    /// asynchronously and get `BUSY` once a script has run `busy-reply-threshold` (see
    /// `store::running`). What is applied is the same function of the entry wherever it runs.
    ///
    /// `entries` is a run of entries ready together ([`ready_run`]), applied in one trip to
    /// that thread: a trip per entry parked the runtime thread between entries, and each park
    /// ran a log sync in its idle time, so writes were synced a few at a time (EVALSHA of a
    /// write script at 0.1 of Redis).
    async fn apply_off_thread(&self, entries: Vec<openraft::alias::EntryOf<TypeConfig>>) -> io::Result<Vec<Frame>> {
        let (state, applier) = (self.state.clone(), self.applier());
        let applied = crate::rt::run_long(move || {
            let mut st = write_blocking(&state)?;
            Ok::<_, io::Error>(entries.iter().map(|entry| applier.apply_one(&mut st, entry)).collect())
        });
        applied.await?
    }
}

/// The exclusive lock of `state` from a thread that may block: as [`write_when_free`], it
/// never queues behind a long read (so readers on the runtime thread never wait for it) but
/// retries until the read is done.
fn write_blocking(state: &SharedState) -> io::Result<RwLockWriteGuard<'_, SmState>> {
    loop {
        match state.try_write() {
            Ok(guard) => return Ok(guard),
            Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned()),
            Err(std::sync::TryLockError::WouldBlock) => crate::rt::block_thread_for(WRITER_RETRY),
        }
    }
}

/// An entry that may run long (a script, a big write) and the entries ready right behind it
/// (at most [`OFF_THREAD_RUN_MAX`]), to be applied off the runtime thread together; with the error the
/// stream gave instead of a next entry, if it did (returned once the run is applied).
fn ready_run<Strm>(
    first: openraft::alias::EntryOf<TypeConfig>,
    responder: Option<openraft::storage::ApplyResponder<TypeConfig>>,
    entries: &mut Strm,
) -> (Vec<EntryResponder<TypeConfig>>, io::Result<()>)
where
    Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin,
{
    use futures_util::FutureExt;
    let mut run = vec![(first, responder)];
    while run.len() < OFF_THREAD_RUN_MAX {
        // Only what is ready now: waiting for more would hold back the replies of the run.
        match entries.next().now_or_never() {
            Some(Some(Ok(item))) => run.push(item),
            Some(Some(Err(e))) => return (run, Err(e)),
            Some(None) | None => break,
        }
    }
    (run, Ok(()))
}

/// The most entries applied in one trip off the runtime thread: the trip holds the state's
/// write lock (this node's readers wait, or get `BUSY` past `busy-reply-threshold`, as for
/// one long script).
const OFF_THREAD_RUN_MAX: usize = 256;

/// How often [`write_blocking`] retries.
const WRITER_RETRY: std::time::Duration = std::time::Duration::from_millis(1);

impl Applier {
    /// Applies one entry under the lock and returns the reply for its client; the blocked
    /// clients it served (or removed) get their replies through the waiters.
    fn apply_one(&self, st: &mut SmState, entry: &openraft::alias::EntryOf<TypeConfig>) -> Frame {
        st.last_applied = Some(entry.log_id);
        let flags = self.notifier.flags_for(entry.log_id.index);
        st.keyspace.notify.flags = flags;
        let monitoring = self.notifier.monitoring_for(entry.log_id.index);
        st.keyspace.notify.monitoring = monitoring;
        let tracking = self.notifier.tracking();
        st.keyspace.notify.tracking = tracking;
        let fenced = self.fenced;
        // Client-side caching: the keys each batch touched, tagged with its seed.
        let mut touched: Vec<(u64, Vec<Bytes>)> = Vec::new();
        let mut apply = |batch: &crate::store::WriteBatch| {
            let reply = match fenced.then(|| st.control.refuse(batch)).flatten() {
                Some(refusal) => refusal,
                // Redis Cluster's migration states (CLUSTER SETSLOT): each command is checked
                // for -ASK / -TRYAGAIN on the keyspace as the batch's earlier commands left it.
                None if fenced && st.control.has_open_slots() => {
                    let (control, now) = (&st.control, batch.now_ms);
                    crate::cmd::apply_checked(&mut st.keyspace, batch, |ks, db, cmds| {
                        control.ask_check(ks, db, now, cmds)
                    })
                }
                None => crate::cmd::apply(&mut st.keyspace, batch),
            };
            if tracking {
                touched.push((batch.seed, st.keyspace.notify.take_touched()));
            }
            reply
        };
        let reply = match &entry.payload {
            EntryPayload::Normal(Request::Write(batch)) => apply(batch),
            EntryPayload::Normal(Request::Group(batches)) => Frame::Array(batches.iter().map(|b| apply(b)).collect()),
            EntryPayload::Normal(Request::Control(control)) => st.control.apply(&mut st.keyspace, control),
            EntryPayload::Blank => Frame::ok(),
            EntryPayload::Membership(m) => {
                st.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                drop_waiters_of_departed_nodes(&mut st.keyspace, m);
                Frame::ok()
            }
        };
        let outcomes = st.keyspace.blocked.take_outcomes();
        if !outcomes.is_empty() {
            self.waiters.deliver(outcomes);
        }
        if tracking {
            touched.push((0, st.keyspace.notify.take_touched()));
            touched.retain(|(_, keys)| !keys.is_empty());
            let flushed = st.keyspace.notify.take_flushed();
            if !touched.is_empty() || flushed {
                self.notifier.deliver_touched(touched, flushed);
            }
        }
        if flags != 0 {
            let events = st.keyspace.notify.take();
            if !events.is_empty() {
                self.notifier.deliver(events, flags);
            }
        }
        if monitoring {
            let calls = st.keyspace.notify.take_script_calls();
            if !calls.is_empty() {
                self.notifier.deliver_script_calls(calls);
            }
        }
        reply
    }
}

/// Whether `entry` runs a script (EVAL, EVALSHA, FCALL or a read-only form inside a
/// transaction): such an entry is applied off the runtime thread ([`StateMachine::apply`]).
fn runs_script(entry: &openraft::alias::EntryOf<TypeConfig>) -> bool {
    let batch_runs = |b: &crate::store::WriteBatch| {
        b.cmds.iter().any(|argv| crate::cmd::acl::unwrap(argv).first().is_some_and(|n| is_script(n)))
    };
    match &entry.payload {
        EntryPayload::Normal(Request::Write(batch)) => batch_runs(batch),
        EntryPayload::Normal(Request::Group(batches)) => batches.iter().any(|b| batch_runs(b)),
        _ => false,
    }
}

fn is_script(name: &[u8]) -> bool {
    const SCRIPTS: [&[u8]; 6] = [b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro"];
    matches!(name.first(), Some(b'e' | b'E' | b'f' | b'F')) && SCRIPTS.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// A node that left the group will never deliver to (or cancel) its blocked clients: their
/// waiters go with it, deterministically, when the membership without it is applied.
fn drop_waiters_of_departed_nodes(
    ks: &mut crate::store::Keyspace,
    m: &openraft::Membership<super::NodeId, super::NodeInfo>,
) {
    if ks.blocked.is_empty() {
        return;
    }
    let members: std::collections::BTreeSet<u64> = m.nodes().map(|(id, _)| *id).collect();
    for id in ks.blocked.retain_holders(|node| members.contains(&node)) {
        ks.blocked.push_outcome(id, Frame::error("UNBLOCKED this node left the cluster"));
    }
}

/// Runs blocking disk work (a whole snapshot) through the runtime's `spawn_blocking`: its own
/// OS thread on tokio (openraft's default), an ordinary task under madsim (`crate::rt`).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SnapshotError> + Send + 'static,
) -> Result<T, SnapshotError> {
    <crate::rt::Runtime as AsyncRuntime>::spawn_blocking(f).await?
}

/// Builds snapshots from a consistent view of the state.
pub struct SnapshotBuilder {
    state: SharedState,
    snapshots: SnapshotDir,
}

impl SnapshotBuilder {
    /// Builds and publishes a snapshot, returning it with the writer's figures.
    pub fn build(&self) -> Result<(SnapshotOf<TypeConfig, SnapshotFile>, WriteStats), SnapshotError> {
        let view = self.view()?;
        self.write(view)
    }

    /// The state as applied now, cloned under the lock (values hold `Bytes`, so the clone
    /// shares their payloads): what the snapshot will hold, whatever is applied later.
    fn view(&self) -> Result<SmState, SnapshotError> {
        Ok(lock(&self.state)?.clone())
    }

    /// Writes `view` out and publishes it: long disk work, done after the lock is released so
    /// applies continue meanwhile. Everything the snapshot claims comes from `view`.
    fn write(&self, view: SmState) -> Result<(SnapshotOf<TypeConfig, SnapshotFile>, WriteStats), SnapshotError> {
        let header = Header {
            last_applied: view.last_applied,
            membership: view.membership.clone(),
            keyspace_version: view.keyspace.version(),
            dirty: view.keyspace.dirty,
            databases: view.keyspace.db_count() as u32,
        };
        let (tmp, stats) = self.snapshots.write_temp_with(&header, &view.keyspace, &view.control)?;
        drop(view);
        let file = self.snapshots.publish(&tmp, header.last_applied.as_ref())?;
        tracing::info!(path = %file.path, records = stats.records, bytes = stats.bytes, "snapshot built");
        let meta = SnapshotMeta { last_log_id: header.last_applied, last_membership: header.membership };
        Ok((SnapshotOf::<TypeConfig, SnapshotFile> { meta, snapshot: file }, stats))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, SnapshotFile>, io::Error> {
        // The view is taken here, when openraft asks, so the snapshot holds exactly what had
        // been applied then; writing a whole dataset is long blocking disk work, off the async
        // workers, while applies go on (in the simulation too: blocking work takes virtual
        // time, so applies interleave with the writer as they do with a real thread).
        let view = self.view()?;
        let this = SnapshotBuilder { state: self.state.clone(), snapshots: self.snapshots.clone() };
        Ok(blocking(move || this.write(view)).await?.0)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let st = lock(&self.state)?;
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        // Committed entries come in runs (a follower catching up, a burst of big writes) whose
        // stream is ready at once: without a yield the whole run would hold the runtime thread,
        // and with it Raft's heartbeats and votes, for as long as it takes.
        let mut slice_start = tokio::time::Instant::now();
        while let Some(item) = entries.next().await {
            if slice_start.elapsed() >= APPLY_SLICE {
                tokio::task::yield_now().await;
                slice_start = tokio::time::Instant::now();
            }
            let (entry, responder) = item?;
            if self.runs_long(&entry) {
                let (run, broken) = ready_run(entry, responder, &mut entries);
                let (entries_of_run, responders): (Vec<_>, Vec<_>) = run.into_iter().unzip();
                let replies = self.apply_off_thread(entries_of_run).await?;
                for (responder, reply) in responders.into_iter().zip(replies) {
                    if let Some(responder) = responder {
                        responder.send(reply);
                    }
                }
                broken?;
                continue;
            }
            let reply = {
                let mut st = write_when_free(&self.state).await?;
                self.applier().apply_one(&mut st, &entry)
            };
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.builder()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let (file, expected, dir) = (snapshot.clone(), meta.clone(), self.snapshots.clone());
        let loaded = blocking(move || {
            let (header, keyspace, control) = snapshot::load_with_control(&file, Some(&expected))?;
            // Durable before the state changes: openraft purges the log once this returns.
            dir.publish(&file, header.last_applied.as_ref())?;
            Ok((header, keyspace, control))
        })
        .await;
        let (header, keyspace, control) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                // A refused download is garbage; the current snapshot is never removed here.
                self.snapshots.discard_temp(&snapshot);
                return Err(e.into());
            }
        };
        tracing::info!(path = %snapshot.path, last = ?header.last_applied, "snapshot installed");
        let mut new = SmState { keyspace, last_applied: header.last_applied, membership: header.membership, control };
        new.keyspace.running = self.running.clone();
        let old = {
            let mut st = write_when_free(&self.state).await?;
            // The node's server reads this group's users: it gets the installed ones.
            new.keyspace.acl.view = st.keyspace.acl.view.clone();
            new.keyspace.acl.publish();
            self.waiters.after_snapshot(&new.keyspace.blocked);
            // Every key may have changed: tracking clients drop their whole cache, as a Redis
            // replica's loading an RDB flushes them (`emptyData`).
            if self.notifier.tracking() {
                self.notifier.deliver_touched(Vec::new(), true);
            }
            std::mem::replace(&mut *st, new)
        };
        // Freed after the lock is released.
        drop(old);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<TypeConfig, SnapshotFile>>, io::Error> {
        Ok(self.snapshots.current()?.map(|(file, header)| SnapshotOf::<TypeConfig, SnapshotFile> {
            meta: SnapshotMeta { last_log_id: header.last_applied, last_membership: header.membership },
            snapshot: file,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::SimDisk;
    use crate::store::WriteBatch;
    use bytes::Bytes;
    use openraft::alias::{CommittedLeaderIdOf, EntryOf};

    fn batch(cmds: &[&[&str]], transaction: bool) -> WriteBatch {
        let cmds = cmds.iter().map(|c| c.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()).collect();
        WriteBatch { db: 0, now_ms: 1_000, seed: 1, cmds, transaction: transaction.then(Vec::new) }
    }

    #[test]
    fn a_group_applies_its_writes_in_order_and_replies_to_each() {
        let sm = StateMachine::open(Arc::new(SimDisk::new()), "sm", 16).expect("open");
        let writes = [
            batch(&[&["SET", "a", "1"]], false),
            batch(&[&["INCR", "a"]], false),
            batch(&[&["INCR", "a"], &["GET", "a"]], true),
            batch(&[&["INCR", "a"], &["RPUSH", "l", "x"]], false),
        ];
        let group = Request::Group(writes.into_iter().map(Arc::new).collect());
        let log_id = LogIdOf::<TypeConfig>::new(CommittedLeaderIdOf::<TypeConfig> { term: 1, node_id: 1 }, 7);
        let entry = EntryOf::<TypeConfig> { log_id, payload: EntryPayload::Normal(group) };
        let reply = sm.applier().apply_one(&mut lock_mut(&sm.state).expect("lock"), &entry);
        let expected = Frame::Array(vec![
            Frame::ok(),
            Frame::Integer(2),
            Frame::Array(vec![Frame::Integer(3), Frame::Bulk(Bytes::from_static(b"3"))]),
            Frame::Array(vec![Frame::Integer(4), Frame::Integer(1)]),
        ]);
        assert_eq!(reply, expected);
        assert_eq!(lock(&sm.state).expect("lock").last_applied, Some(log_id));
    }
}
