//! Gathers the writes of many connections into few Raft proposals (log entries).
//!
//! Every write a replica proposes goes through one [`Proposer`]. A write that finds nothing in
//! flight is proposed at once from its own task (a lone client's write costs no extra hop).
//! Otherwise it queues, and a task takes the first waiting write, lets the runtime run once
//! more (so that the other connections woken at the same moment can queue theirs), then
//! drains whatever is waiting, up to a size bound, and proposes it as ONE entry:
//! [`Request::Write`] for a single write, [`Request::Group`] for several. One entry costs
//! openraft one message, one append, one replication slot and one apply call, however many
//! clients it serves; the WAL's group commit already shares the fsync, this shares the rest.
//!
//! Pacing: the task forms the next group as soon as the log store has taken the previous one
//! (its [`Appends`] count moved) or that proposal ended without reaching it (refused), up to
//! [`MAX_IN_FLIGHT`] proposals at once. So the writes that arrive while an entry travels
//! from the proposer to the log share the next entry, and no group waits for earlier ones to
//! be committed and applied: the flusher always has the next group to sync when a round ends.
//! (Pacing on commits instead, with 2 slots, left the flusher idle ~40% of the time at 50
//! clients: both entries in flight landed in one fsync, then nothing was appended until one
//! was applied.) Each waiter gets the outcome of the proposal it was part of: its own reply
//! (from the group's array of replies, one per write, in order), or the proposal's error,
//! which it handles as if it had proposed alone (retry while no leader, forward, or report an
//! unknown outcome).
//!
//! Deadlines: each write comes with one. A write still queued at its deadline is never
//! proposed; a group's proposal is given up at the earliest deadline of its writes unless it
//! is committed by then, and they all time out (their outcome unknown). A committed entry is
//! waited for until applied, however long that takes (a long script): it will be applied, so
//! "unknown" would only make clients retry it. One timer per proposal, not one per write.

use super::log_store::Appends;
use super::{Request, TypeConfig};
use crate::protocol::Frame;
use crate::store::WriteBatch;
use openraft::error::{ClientWriteError, Fatal, RaftError};
use openraft::impls::ProgressResponder;
use openraft::raft::ClientWriteResult;
use openraft::Raft;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use super::state_machine::StateMachine;

/// At most this many writes share one entry.
pub const MAX_GROUP_WRITES: usize = 512;
/// A group stops growing once its commands' arguments reach this many bytes (entries are
/// replicated whole; a huge one would stall the followers' pipeline).
pub const MAX_GROUP_BYTES: usize = 1 << 20;
/// At most this many proposals are in flight at once (proposed, not yet applied); beyond that
/// writes wait and join the next group. The pacing on appends sets the batch; this only bounds
/// the work queued in Raft when the log is slow.
pub const MAX_IN_FLIGHT: usize = 8;

/// What proposing a write gave: its reply once applied, or why Raft refused or lost it.
pub type Proposed = Result<Frame, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>;

/// Where proposals go: Raft itself, or a stand-in in tests.
pub trait Propose: Clone + Send + Sync + 'static {
    /// Proposes one entry and waits until it is applied (its reply) or refused, giving up at
    /// `deadline` unless the entry is committed by then: a committed entry will be applied, so
    /// its outcome is waited for however long the apply takes (a client told "timed out, may
    /// or may not have been applied" would retry, and a script would run twice).
    fn propose(&self, request: Request, deadline: Instant) -> impl Future<Output = Result<Proposed, NoOutcome>> + Send;
}

impl Propose for Raft<TypeConfig, StateMachine> {
    async fn propose(&self, request: Request, deadline: Instant) -> Result<Proposed, NoOutcome> {
        let (responder, committed, applied) = ProgressResponder::new();
        if let Err(fatal) = self.client_write_ff(request, Some(responder)).await {
            return Ok(Err(RaftError::Fatal(fatal)));
        }
        let outcome = |got: Result<ClientWriteResult<TypeConfig>, _>| match got {
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(refused)) => Err(RaftError::APIError(refused)),
            // The responder was dropped unanswered: Raft stopped.
            Err(_) => Err(RaftError::Fatal(Fatal::Stopped)),
        };
        tokio::pin!(applied);
        tokio::select! {
            biased;
            got = &mut applied => Ok(outcome(got)),
            // Committed (or answered without a commit: then the outcome is there already).
            _ = committed => Ok(outcome(applied.await)),
            () = tokio::time::sleep_until(deadline) => Err(NoOutcome::TimedOut),
        }
    }
}

/// A write waiting to be proposed, with its deadline and where its outcome goes.
struct Waiting {
    batch: Arc<WriteBatch>,
    deadline: Instant,
    outcome: oneshot::Sender<Result<Proposed, NoOutcome>>,
}

/// The way into Raft for writes; cheap to clone.
pub struct Proposer<P> {
    raft: P,
    queue: mpsc::UnboundedSender<Waiting>,
    shared: Arc<Shared>,
}

impl<P: Clone> Clone for Proposer<P> {
    fn clone(&self) -> Self {
        Proposer { raft: self.raft.clone(), queue: self.queue.clone(), shared: self.shared.clone() }
    }
}

/// How much grouping happened: writes per proposal is `writes / proposals` (INFO
/// `raft_proposals`, `raft_proposed_writes`; the same in /metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProposalCounts {
    /// Entries proposed for writes since the node started.
    pub proposals: u64,
    /// Writes (single commands, pipelines' batches, transactions) they carried.
    pub writes: u64,
}

/// What the proposing task and the writers share.
struct Shared {
    /// One permit per proposal in flight.
    slots: Arc<Semaphore>,
    /// Writes queued and not yet taken into a group.
    queued: AtomicUsize,
    proposals: AtomicU64,
    writes: AtomicU64,
}

impl Shared {
    fn count(&self, writes: usize) {
        self.proposals.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
    }
}

/// Why a write got no outcome from Raft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoOutcome {
    /// Its deadline passed: before it was proposed, or while its proposal was in flight (then
    /// it may or may not be applied).
    TimedOut,
    /// The proposer task is gone (the replica is shutting down).
    Stopped,
}

impl<P: Propose> Proposer<P> {
    /// Starts the proposing task for `raft`, paced by `appends` (its log store's); it ends when
    /// every `Proposer` clone is dropped.
    pub fn start(raft: P, appends: Appends) -> Proposer<P> {
        let (queue, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            queued: AtomicUsize::new(0),
            proposals: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        });
        tokio::spawn(run(raft.clone(), rx, shared.clone(), appends));
        Proposer { raft, queue, shared }
    }

    /// Proposals and writes so far.
    pub fn counts(&self) -> ProposalCounts {
        ProposalCounts {
            proposals: self.shared.proposals.load(Ordering::Relaxed),
            writes: self.shared.writes.load(Ordering::Relaxed),
        }
    }

    /// Proposes `batch` (alone or with others) and waits for its outcome, until `deadline`.
    pub async fn propose(&self, batch: Arc<WriteBatch>, deadline: Instant) -> Result<Proposed, NoOutcome> {
        // Nothing in flight and nobody waiting: propose from this task, without the hop
        // through the proposing task (a lone client's latency). With anything in flight the
        // write queues, to share the next entry with the others arriving now.
        let idle = self.shared.slots.available_permits() == MAX_IN_FLIGHT;
        if idle && self.shared.queued.load(Ordering::Acquire) == 0 {
            if let Ok(_slot) = self.shared.slots.try_acquire() {
                self.shared.count(1);
                return self.raft.propose(Request::Write(batch), deadline).await;
            }
        }
        let (outcome, rx) = oneshot::channel();
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        if self.queue.send(Waiting { batch, deadline, outcome }).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(NoOutcome::Stopped);
        }
        rx.await.unwrap_or(Err(NoOutcome::Stopped))
    }
}

async fn run(raft: impl Propose, mut rx: mpsc::UnboundedReceiver<Waiting>, shared: Arc<Shared>, appends: Appends) {
    while let Some(first) = rx.recv().await {
        // Taken before draining: while every slot is busy, more writes queue up and join.
        let Ok(slot) = shared.slots.clone().acquire_owned().await else { return };
        tokio::task::yield_now().await;
        let group = drain(first, &mut rx);
        shared.queued.fetch_sub(group.len(), Ordering::AcqRel);
        let Some((group, deadline)) = unexpired(group) else { continue };
        shared.count(group.len());
        let seen = appends.count();
        let raft = raft.clone();
        let mut proposal = tokio::spawn(async move {
            propose_group(&raft, group, deadline).await;
            drop(slot);
        });
        // Writes arriving until the log takes this entry queue for the next one.
        tokio::select! {
            biased;
            _ = appends.past(seen) => {}
            _ = &mut proposal => {}
        }
    }
}

/// `first` and whatever else is waiting, within the group bounds.
fn drain(first: Waiting, rx: &mut mpsc::UnboundedReceiver<Waiting>) -> Vec<Waiting> {
    let mut bytes = batch_bytes(&first.batch);
    let mut group = Vec::with_capacity((rx.len() + 1).min(MAX_GROUP_WRITES));
    group.push(first);
    while group.len() < MAX_GROUP_WRITES && bytes < MAX_GROUP_BYTES {
        let Ok(next) = rx.try_recv() else { break };
        bytes += batch_bytes(&next.batch);
        group.push(next);
    }
    group
}

/// The writes of `group` whose deadline has not passed (the others time out here, never
/// proposed), with the earliest of their deadlines; `None` if none is left.
fn unexpired(mut group: Vec<Waiting>) -> Option<(Vec<Waiting>, Instant)> {
    let now = Instant::now();
    if group.iter().any(|w| w.deadline <= now) {
        let (live, expired): (Vec<_>, Vec<_>) = group.into_iter().partition(|w| w.deadline > now);
        for w in expired {
            let _ = w.outcome.send(Err(NoOutcome::TimedOut));
        }
        group = live;
    }
    let deadline = group.iter().map(|w| w.deadline).min()?;
    Some((group, deadline))
}

fn batch_bytes(batch: &WriteBatch) -> usize {
    batch.cmds.iter().flatten().map(|arg| arg.len()).sum()
}

/// Proposes `group` as one entry, given up at `deadline`, and hands each write its outcome.
async fn propose_group(raft: &impl Propose, mut group: Vec<Waiting>, deadline: Instant) {
    if group.len() == 1 {
        let Waiting { batch, outcome, .. } = group.remove(0);
        let _ = outcome.send(raft.propose(Request::Write(batch), deadline).await);
        return;
    }
    let (batches, outcomes): (Vec<_>, Vec<_>) = group.into_iter().map(|w| (w.batch, w.outcome)).unzip();
    let count = batches.len();
    let Ok(proposed) = raft.propose(Request::Group(batches.into()), deadline).await else {
        for outcome in outcomes {
            let _ = outcome.send(Err(NoOutcome::TimedOut));
        }
        return;
    };
    match proposed {
        Ok(reply) => match reply {
            Frame::Array(replies) if replies.len() == count => {
                for (outcome, reply) in outcomes.into_iter().zip(replies) {
                    let _ = outcome.send(Ok(Ok(reply)));
                }
            }
            // Applying a group always yields one reply per write; anything else is a bug in
            // the state machine. The entry was applied, but which reply is whose is unknown.
            other => {
                tracing::error!(count, reply = ?other, "a group entry was applied with a malformed reply");
                let msg = "TRYAGAIN the write's reply was lost; it may or may not have been applied";
                for outcome in outcomes {
                    let _ = outcome.send(Ok(Ok(Frame::error(msg))));
                }
            }
        },
        Err(e) => {
            for outcome in outcomes {
                let _ = outcome.send(Ok(Err(e.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    type OutcomeRx = oneshot::Receiver<Result<Proposed, NoOutcome>>;

    fn waiting(value_bytes: usize) -> (Waiting, OutcomeRx) {
        let cmd = vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from(vec![b'v'; value_bytes])];
        let batch = WriteBatch { db: 0, now_ms: 0, seed: 0, cmds: vec![cmd], transaction: None };
        let (outcome, rx) = oneshot::channel();
        (Waiting { batch: Arc::new(batch), deadline: Instant::now(), outcome }, rx)
    }

    fn queue_of(n: usize, value_bytes: usize) -> (mpsc::UnboundedReceiver<Waiting>, Vec<OutcomeRx>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let outcomes = (0..n)
            .map(|_| {
                let (w, outcome) = waiting(value_bytes);
                tx.send(w).map_err(|_| "queue closed").expect("send");
                outcome
            })
            .collect();
        (rx, outcomes)
    }

    #[test]
    fn a_group_takes_everything_waiting_up_to_the_write_bound() {
        let (mut rx, _outcomes) = queue_of(MAX_GROUP_WRITES + 10, 1);
        let first = rx.try_recv().expect("first");
        assert_eq!(drain(first, &mut rx).len(), MAX_GROUP_WRITES);
        let next = rx.try_recv().expect("the rest stays queued");
        assert_eq!(drain(next, &mut rx).len(), 10);
    }

    #[test]
    fn a_group_stops_growing_at_the_byte_bound() {
        // Each write is SET k <value> with a quarter of the bound (plus 4 bytes of SET and k).
        let (mut rx, _outcomes) = queue_of(10, MAX_GROUP_BYTES / 4);
        let first = rx.try_recv().expect("first");
        assert_eq!(drain(first, &mut rx).len(), 4, "the fourth write crosses the bound and ends the group");
        // A single write larger than the bound is still proposed, alone.
        let (mut rx, _outcomes) = queue_of(2, MAX_GROUP_BYTES * 2);
        let first = rx.try_recv().expect("first");
        assert_eq!(drain(first, &mut rx).len(), 1);
    }

    #[test]
    fn a_lone_write_is_a_group_of_one() {
        let (mut rx, _outcomes) = queue_of(1, 10);
        let first = rx.try_recv().expect("first");
        assert_eq!(drain(first, &mut rx).len(), 1);
    }
}

/// The proposer against a stand-in for Raft whose proposals wait at a gate.
#[cfg(test)]
mod grouping_tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Replies to each write with its seed; records what was proposed; counts an append for
    /// each proposal it receives (unless `silent_log`); holds every proposal until the gate
    /// opens; fails every proposal when `fail` is set.
    #[derive(Clone)]
    struct GatedRaft {
        gate: Arc<Semaphore>,
        proposed: Arc<Mutex<Vec<Request>>>,
        appends: Appends,
        silent_log: bool,
        fail: bool,
    }

    impl GatedRaft {
        fn new(fail: bool) -> GatedRaft {
            let gate = Arc::new(Semaphore::new(0));
            GatedRaft { gate, proposed: Arc::default(), appends: Appends::default(), silent_log: false, fail }
        }

        fn start(&self) -> Proposer<GatedRaft> {
            Proposer::start(self.clone(), self.appends.clone())
        }

        fn proposed(&self) -> Vec<Request> {
            self.proposed.lock().expect("lock").clone()
        }
    }

    impl Propose for GatedRaft {
        async fn propose(&self, request: Request, deadline: Instant) -> Result<Proposed, NoOutcome> {
            tokio::select! {
                biased;
                proposed = self.gated(request) => Ok(proposed),
                () = tokio::time::sleep_until(deadline) => Err(NoOutcome::TimedOut),
            }
        }
    }

    impl GatedRaft {
        async fn gated(&self, request: Request) -> Proposed {
            self.proposed.lock().expect("lock").push(request.clone());
            if !self.silent_log {
                self.appends.bump();
            }
            let _pass = self.gate.acquire().await.expect("gate");
            if self.fail {
                return Err(RaftError::Fatal(Fatal::Stopped));
            }
            let seed = |b: &WriteBatch| Frame::Integer(b.seed as i64);
            Ok(match &request {
                Request::Write(b) => seed(b),
                Request::Group(bs) => Frame::Array(bs.iter().map(|b| seed(b)).collect()),
                Request::Control(_) => Frame::ok(),
            })
        }
    }

    fn write(seed: u64) -> Arc<WriteBatch> {
        let cmd = vec![Bytes::from_static(b"INCR"), Bytes::from_static(b"k")];
        Arc::new(WriteBatch { db: 0, now_ms: 0, seed, cmds: vec![cmd], transaction: None })
    }

    /// Lets the other tasks of this (single-threaded) runtime run until `cond` holds.
    async fn run_others_until(what: &str, cond: impl Fn() -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while !cond() {
                tokio::task::yield_now().await;
            }
        });
        waited.await.unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }

    /// A deadline no test reaches unless it means to.
    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn spawn_writes_until(
        proposer: &Proposer<GatedRaft>,
        seeds: std::ops::Range<u64>,
        deadline: Instant,
    ) -> Vec<tokio::task::JoinHandle<Result<Proposed, NoOutcome>>> {
        seeds
            .map(|seed| {
                let proposer = proposer.clone();
                tokio::spawn(async move { proposer.propose(write(seed), deadline).await })
            })
            .collect()
    }

    fn spawn_writes(
        proposer: &Proposer<GatedRaft>,
        seeds: std::ops::Range<u64>,
    ) -> Vec<tokio::task::JoinHandle<Proposed>> {
        spawn_writes_until(proposer, seeds, far())
            .into_iter()
            .map(|task| tokio::spawn(async move { task.await.expect("task").expect("proposer running") }))
            .collect()
    }

    /// Proposes writes 0, 1, ... one at a time (each alone in its entry) until every slot is
    /// busy at the gate.
    async fn fill_every_slot(
        proposer: &Proposer<GatedRaft>,
        proposed: &Mutex<Vec<Request>>,
    ) -> Vec<tokio::task::JoinHandle<Proposed>> {
        let mut busy = Vec::new();
        for seed in 0..MAX_IN_FLIGHT as u64 {
            busy.extend(spawn_writes(proposer, seed..seed + 1));
            let n = seed as usize + 1;
            run_others_until("a proposal at the gate", || proposed.lock().expect("lock").len() == n).await;
        }
        busy
    }

    #[tokio::test]
    async fn writes_queued_behind_busy_slots_share_one_entry_and_each_get_their_reply() {
        let raft = GatedRaft::new(false);
        let proposer = raft.start();
        let proposed = raft.proposed.clone();
        let busy = fill_every_slot(&proposer, &proposed).await;
        // Every slot is taken: these queue up while the proposals above wait at the gate.
        let queued = spawn_writes(&proposer, 100..120);
        tokio::task::yield_now().await;
        raft.gate.add_permits(1_000);
        for (seed, task) in (0..MAX_IN_FLIGHT as u64).chain(100..120).zip(busy.into_iter().chain(queued)) {
            assert_eq!(task.await.expect("task"), Ok(Frame::Integer(seed as i64)), "write {seed}'s reply");
        }
        let proposed = proposed.lock().expect("lock").clone();
        assert_eq!(proposed.len(), MAX_IN_FLIGHT + 1, "{proposed:?}");
        let Request::Group(group) = &proposed[MAX_IN_FLIGHT] else { panic!("not a group: {proposed:?}") };
        assert_eq!(group.iter().map(|b| b.seed).collect::<Vec<_>>(), (100..120).collect::<Vec<_>>());
        let counts = proposer.counts();
        assert_eq!((counts.proposals, counts.writes), (MAX_IN_FLIGHT as u64 + 1, MAX_IN_FLIGHT as u64 + 20));
    }

    #[tokio::test]
    async fn a_refused_group_refuses_each_of_its_writes() {
        let raft = GatedRaft::new(true);
        let proposer = raft.start();
        let proposed = raft.proposed.clone();
        let busy = fill_every_slot(&proposer, &proposed).await;
        let queued = spawn_writes(&proposer, 100..105);
        tokio::task::yield_now().await;
        raft.gate.add_permits(1_000);
        for task in busy.into_iter().chain(queued) {
            assert_eq!(task.await.expect("task"), Err(RaftError::Fatal(Fatal::Stopped)));
        }
        assert!(matches!(proposed.lock().expect("lock").last(), Some(Request::Group(g)) if g.len() == 5));
    }

    fn seeds(request: &Request) -> Vec<u64> {
        match request {
            Request::Write(b) => vec![b.seed],
            Request::Group(bs) => bs.iter().map(|b| b.seed).collect(),
            Request::Control(_) => vec![],
        }
    }

    #[tokio::test]
    async fn the_next_group_forms_only_once_the_log_has_taken_the_previous_one() {
        let raft = GatedRaft { silent_log: true, ..GatedRaft::new(false) };
        let proposer = raft.start();
        // Write 0 finds nothing in flight and goes at once; write 1 queues behind it and is
        // proposed by the proposing task, which then waits for the log to take it.
        let mut tasks = spawn_writes(&proposer, 0..1);
        run_others_until("write 0 proposed", || raft.proposed().len() == 1).await;
        tasks.extend(spawn_writes(&proposer, 1..2));
        run_others_until("write 1 proposed", || raft.proposed().len() == 2).await;
        // Free slots, but the log has not taken write 1: these wait, together.
        tasks.extend(spawn_writes(&proposer, 2..6));
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(raft.proposed().len(), 2, "proposed before the log took the previous entry");
        raft.appends.bump();
        run_others_until("the next group proposed", || raft.proposed().len() == 3).await;
        let proposed = raft.proposed();
        assert_eq!(proposed.iter().map(seeds).collect::<Vec<_>>(), vec![vec![0], vec![1], vec![2, 3, 4, 5]]);
        raft.gate.add_permits(1_000);
        for (seed, task) in (0..6).zip(tasks) {
            assert_eq!(task.await.expect("task"), Ok(Frame::Integer(seed)), "write {seed}'s reply");
        }
    }

    #[tokio::test]
    async fn a_proposal_refused_before_the_log_does_not_hold_up_the_next() {
        // Refused proposals never reach the log: the count never moves, yet writes go on.
        let raft = GatedRaft { silent_log: true, ..GatedRaft::new(true) };
        raft.gate.add_permits(1_000);
        let proposer = raft.start();
        let all = async {
            for seed in 0..5 {
                let outcome = proposer.propose(write(seed), far()).await.expect("proposer running");
                assert_eq!(outcome, Err(RaftError::Fatal(Fatal::Stopped)));
            }
            for task in spawn_writes(&proposer, 10..30) {
                assert_eq!(task.await.expect("task"), Err(RaftError::Fatal(Fatal::Stopped)));
            }
        };
        tokio::time::timeout(Duration::from_secs(10), all).await.expect("every write refused, none stuck");
        assert_eq!(proposer.counts().writes, 25);
    }

    #[tokio::test(start_paused = true)]
    async fn a_proposal_in_flight_at_its_deadline_times_out_each_of_its_writes() {
        let raft = GatedRaft::new(false);
        let proposer = raft.start();
        let deadline = Instant::now() + Duration::from_secs(5);
        // Write 0 goes alone (nothing in flight); 1..4 queue behind it and share an entry.
        let mut tasks = spawn_writes_until(&proposer, 0..1, deadline);
        run_others_until("write 0 proposed", || raft.proposed().len() == 1).await;
        tasks.extend(spawn_writes_until(&proposer, 1..4, deadline));
        run_others_until("the group proposed", || raft.proposed().len() == 2).await;
        // The gate never opens: (paused) time runs on to the deadline.
        let outcomes = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(tasks));
        for outcome in outcomes.await.expect("every write's outcome by its deadline") {
            assert_eq!(outcome.expect("task"), Err(NoOutcome::TimedOut));
        }
        assert!(Instant::now() >= deadline);
        assert_eq!(raft.proposed().iter().map(seeds).collect::<Vec<_>>(), vec![vec![0], vec![1, 2, 3]]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_still_queued_at_its_deadline_is_never_proposed() {
        let raft = GatedRaft::new(false);
        let proposer = raft.start();
        let busy = fill_every_slot(&proposer, &raft.proposed).await;
        let soon = Instant::now() + Duration::from_secs(1);
        let late = spawn_writes_until(&proposer, 100..101, soon);
        let on_time = spawn_writes(&proposer, 200..201);
        tokio::time::sleep_until(soon + Duration::from_millis(1)).await;
        raft.gate.add_permits(1_000);
        assert_eq!(late.into_iter().next().expect("task").await.expect("task"), Err(NoOutcome::TimedOut));
        for task in busy.into_iter().chain(on_time) {
            assert!(task.await.expect("task").is_ok());
        }
        let proposed: Vec<u64> = raft.proposed().iter().flat_map(seeds).collect();
        assert!(!proposed.contains(&100), "the expired write was proposed: {proposed:?}");
        assert!(proposed.contains(&200), "{proposed:?}");
    }
}
