//! Quiescence of idle Raft groups: a group nobody uses stops its Raft ticks (no heartbeats,
//! no election timers) on every member, and one failure detector per node watches the peers
//! of its quiet groups instead. A node of a sharded cluster runs many groups; each group's
//! heartbeats (and openraft's work around each) cost CPU whether or not anyone writes, while
//! the failure detector costs one ping per peer, however many groups they share.
//!
//! - **Going quiet.** The leader's watch ([`spawn_idle_watch`]) sees the group idle (no write,
//!   read or membership change for `quiesce_ms`) with every member holding the whole log, all
//!   of it committed and applied. It stops its own ticks, then asks each member to stop theirs
//!   (`RpcRequest::Quiesce`: leader, term and last log index; a member agrees only if it
//!   follows that leader in that term and holds exactly that log). A member that refuses or
//!   does not answer makes the leader tick again.
//! - **Waking.** A write, read or membership change on a quiet leader restarts its ticks and
//!   refreshes its lease with one heartbeat round before going on (openraft refuses writes
//!   of a leader whose lease ran out). A vote, pre-vote or leadership transfer received by any
//!   member wakes it, and so does an append carrying entries (the group is in use again, and an
//!   entry may change the membership, e.g. remove the leader), once the member has taken it. A
//!   quiet follower answers heartbeats as usual without waking: only its election timer is
//!   off, and the failure detector stands in for it.
//! - **Failures.** Every half of the shortest election timeout (at least two heartbeats), the
//!   failure detector ([`spawn_failure_detector`]) pings each peer of the node's quiet groups
//!   once; a peer that does not answer within the
//!   minimum election timeout wakes every quiet group it is a member of, whose election
//!   timers then run as usual (a leader that lost touch with a follower heartbeats again, and
//!   learns a newer term if there is one).
//!
//! Safety does not depend on any of this: ticks drive only heartbeats and election timers;
//! votes, appends and commits are Raft's as always.

use super::log_store::LogId;
use super::rpc::RpcPool;
use super::state_machine::StateMachine;
use super::{NodeId, TypeConfig};
use openraft::rt::watch::WatchReceiver;
use openraft::type_config::alias::WatchReceiverOf;
use openraft::{Raft, RaftMetrics, ServerState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One group's quiescence state on this node.
#[derive(Debug, Default)]
pub struct Quiet {
    /// This node's ticks of the group are off.
    quiet: AtomicBool,
    /// Operations of the group (writes, reads, membership changes), to tell an idle group.
    activity: AtomicU64,
    /// How many times this node's ticks of the group stopped (INFO `raft_quiesced`).
    times: AtomicU64,
    /// Notified when the ticks restart: the idle watch sleeps on it while the group is quiet.
    woken: tokio::sync::Notify,
    /// When each member last answered the failure detector's ping while the group was quiet
    /// here (no heartbeats then tell that a member is alive).
    answered: Mutex<BTreeMap<NodeId, tokio::time::Instant>>,
}

impl Quiet {
    /// Counts one operation; whether the group is quiet here (the caller then wakes it if it
    /// leads).
    pub fn count(&self) -> bool {
        self.activity.fetch_add(1, Ordering::Relaxed);
        self.quiet.load(Ordering::Acquire)
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet.load(Ordering::Acquire)
    }

    /// Stops this node's ticks of the group.
    pub fn sleep(&self, raft: &Raft<TypeConfig, StateMachine>) {
        self.times.fetch_add(1, Ordering::Relaxed);
        self.quiet.store(true, Ordering::Release);
        raft.runtime_config().tick(false);
    }

    /// Restarts this node's ticks of the group (nothing when they run).
    pub fn wake(&self, raft: &Raft<TypeConfig, StateMachine>) {
        // A load first: followers call this for every append.
        if self.quiet.load(Ordering::Acquire) && self.quiet.swap(false, Ordering::AcqRel) {
            raft.runtime_config().tick(true);
            self.woken.notify_waiters();
        }
    }

    /// Whether member `id` answered the failure detector within `within` (while the group was
    /// quiet here).
    pub fn answered_within(&self, id: NodeId, within: Duration) -> bool {
        let answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        answered.get(&id).is_some_and(|at| at.elapsed() <= within)
    }

    fn note_answers(&self, members: impl Iterator<Item = NodeId>, at: tokio::time::Instant) {
        let mut answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        for id in members {
            answered.insert(id, at);
        }
    }

    /// How many times this node's ticks of the group stopped.
    pub fn times_quiet(&self) -> u64 {
        self.times.load(Ordering::Relaxed)
    }

    fn activity(&self) -> u64 {
        self.activity.load(Ordering::Relaxed)
    }
}

/// What a quiet group's members must hold, as its leader asks them to go quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuiesceRequest {
    pub leader: NodeId,
    pub term: u64,
    /// The leader's last log index (every member holds, has committed and applied it).
    pub last_index: u64,
}

/// Whether a member whose metrics are `m` may go quiet as `req` asks: it follows that leader
/// in that term and holds exactly the leader's log, all of it committed and applied.
pub fn may_quiesce(m: &RaftMetrics<TypeConfig>, req: &QuiesceRequest) -> bool {
    let index = |l: &Option<LogId>| l.as_ref().map(|l| l.index);
    m.state != ServerState::Leader
        && m.current_leader == Some(req.leader)
        && m.current_term == req.term
        && m.last_log_index == Some(req.last_index)
        && index(&m.local_committed) == Some(req.last_index)
        && index(&m.last_applied) == Some(req.last_index)
}

/// On the leader: the request to send and the members to send it to, when the group may go
/// quiet (this node leads, every member's replication has matched the whole log, committed and
/// applied here). `None` otherwise.
pub fn quiesce_plan(m: &RaftMetrics<TypeConfig>) -> Option<(QuiesceRequest, Vec<(NodeId, String)>)> {
    let last_index = m.last_log_index?;
    let applied = m.last_applied.as_ref().map(|l| l.index);
    let committed = m.local_committed.as_ref().map(|l| l.index);
    if m.state != ServerState::Leader || m.current_leader != Some(m.id) || applied != Some(last_index) {
        return None;
    }
    if committed != Some(last_index) {
        return None;
    }
    let replication = m.replication.as_ref()?;
    let membership = m.membership_config.membership();
    let mut peers = Vec::new();
    for (id, node) in membership.nodes() {
        if *id == m.id {
            continue;
        }
        let matched = replication.get(id)?.as_ref().map(|l| l.index);
        if matched != Some(last_index) {
            return None;
        }
        peers.push((*id, node.raft_addr.clone()));
    }
    Some((QuiesceRequest { leader: m.id, term: m.current_term, last_index }, peers))
}

/// The failure detector's ping interval: half of the shortest election timeout, at least two
/// heartbeats.
pub fn ping_every(heartbeat_ms: u64, election_timeout_min_ms: u64) -> Duration {
    Duration::from_millis((heartbeat_ms * 2).max(election_timeout_min_ms / 2))
}

/// The settings of quiescence.
#[derive(Debug, Clone, Copy)]
pub struct QuiesceConfig {
    /// A group idle this long goes quiet.
    pub after: Duration,
    /// The failure detector's ping interval.
    pub ping_every: Duration,
    /// How long a ping may take before its peer counts as failed.
    pub ping_timeout: Duration,
}

/// A group the failure detector watches.
#[derive(Clone)]
pub struct Watched {
    pub group: u64,
    pub raft: Raft<TypeConfig, StateMachine>,
    pub metrics: WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>,
    pub quiet: Arc<Quiet>,
}

/// The groups of a node, for its failure detector.
pub type Registry = Arc<Mutex<Vec<Watched>>>;

/// The leader's side: every quarter of `after`, checks whether the group has been idle for
/// `after` and may go quiet, and if so quiets it (see the module header). While the group is
/// quiet here it sleeps until the group wakes (an idle node does not wake for it).
pub fn spawn_idle_watch(watched: Watched, pool: RpcPool, config: QuiesceConfig, mut stop: crate::rt::ShutdownSignal) {
    tokio::spawn(async move {
        let period = (config.after / 4).max(Duration::from_millis(10));
        let mut seen = watched.quiet.activity();
        let mut idle_since = tokio::time::Instant::now();
        loop {
            let woken = watched.quiet.woken.notified();
            tokio::pin!(woken);
            // Registered before the check, so a wake in between is not missed.
            woken.as_mut().enable();
            if watched.quiet.is_quiet() {
                tokio::select! {
                    biased;
                    _ = stop.wait() => return,
                    _ = woken => {}
                }
            }
            tokio::select! {
                biased;
                _ = stop.wait() => return,
                _ = tokio::time::sleep(period) => {}
            }
            let now = tokio::time::Instant::now();
            let activity = watched.quiet.activity();
            if activity != seen || watched.quiet.is_quiet() {
                (seen, idle_since) = (activity, now);
                continue;
            }
            if now.duration_since(idle_since) < config.after {
                continue;
            }
            let plan = quiesce_plan(&watched.metrics.borrow_watched());
            if let Some((req, peers)) = plan {
                quiesce(&watched, &pool, req, &peers, config.ping_timeout).await;
            }
            idle_since = tokio::time::Instant::now();
        }
    });
}

/// Stops the leader's ticks, then asks every member to stop theirs; any refusal or failure
/// wakes the leader again.
async fn quiesce(
    watched: &Watched,
    pool: &RpcPool,
    req: QuiesceRequest,
    peers: &[(NodeId, String)],
    timeout: Duration,
) {
    watched.quiet.sleep(&watched.raft);
    for (id, addr) in peers {
        match pool.get(addr).quiesce(watched.group, req, timeout).await {
            Ok(true) => {}
            outcome => {
                tracing::debug!(group = watched.group, peer = id, ?outcome, "quiescence refused");
                watched.quiet.wake(&watched.raft);
                return;
            }
        }
    }
    tracing::debug!(group = watched.group, index = req.last_index, "group quiet");
}

/// The node's failure detector (see the module header).
pub fn spawn_failure_detector(
    id: NodeId,
    registry: Registry,
    pool: RpcPool,
    config: QuiesceConfig,
    mut stop: crate::rt::ShutdownSignal,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = stop.wait() => return,
                _ = tokio::time::sleep(config.ping_every) => {}
            }
            let quiet: Vec<Watched> = {
                let groups = registry.lock().unwrap_or_else(|p| p.into_inner());
                groups.iter().filter(|w| w.quiet.is_quiet()).cloned().collect()
            };
            if quiet.is_empty() {
                continue;
            }
            let peers = peers_of(id, &quiet);
            let failed = failed_peers(&pool, &peers, config.ping_timeout).await;
            let now = tokio::time::Instant::now();
            for w in &quiet {
                let members: Vec<NodeId> =
                    w.metrics.borrow_watched().membership_config.membership().nodes().map(|(id, _)| *id).collect();
                w.quiet.note_answers(members.into_iter().filter(|m| *m != id && !failed.contains(m)), now);
                if let Some(peer) = wakes_for(id, &w.metrics.borrow_watched(), &failed) {
                    tracing::info!(group = w.group, peer, "a peer of a quiet group does not answer: waking the group");
                    w.quiet.wake(&w.raft);
                }
            }
        }
    });
}

/// The failed peer for which this node wakes a quiet group, if any: its leader, for a follower
/// (whose woken election timer then elects another; a failed fellow follower changes nothing
/// for it); any member, for the leader (which heartbeats again, and so learns of a newer term
/// if it was cut off).
fn wakes_for(me: NodeId, m: &RaftMetrics<TypeConfig>, failed: &BTreeSet<NodeId>) -> Option<NodeId> {
    match m.current_leader {
        Some(leader) if leader == me => {
            m.membership_config.membership().nodes().map(|(id, _)| *id).find(|id| failed.contains(id))
        }
        Some(leader) => failed.contains(&leader).then_some(leader),
        None => Some(me),
    }
}

/// Every member of the groups `quiet` but this node, with a group to address the ping to
/// (one both run) and its address.
fn peers_of(me: NodeId, quiet: &[Watched]) -> BTreeMap<NodeId, (u64, String)> {
    let mut peers = BTreeMap::new();
    for w in quiet {
        let m = w.metrics.borrow_watched();
        for (id, node) in m.membership_config.membership().nodes() {
            if *id != me {
                peers.entry(*id).or_insert_with(|| (w.group, node.raft_addr.clone()));
            }
        }
    }
    peers
}

/// The peers that did not answer a ping (asked all at once) within `timeout`.
async fn failed_peers(pool: &RpcPool, peers: &BTreeMap<NodeId, (u64, String)>, timeout: Duration) -> BTreeSet<NodeId> {
    let pings = peers.iter().map(|(id, (group, addr))| {
        let client = pool.get(addr);
        async move { (*id, client.node_info(*group, timeout).await.is_ok()) }
    });
    let answers = futures_util::future::join_all(pings).await;
    answers.into_iter().filter(|(_, ok)| !ok).map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_reports_quiet_only_while_asleep() {
        let q = Quiet::default();
        assert!(!q.count());
        q.quiet.store(true, Ordering::Release);
        assert!(q.count());
        assert_eq!(q.activity(), 2);
    }

    #[test]
    fn a_follower_wakes_for_its_leader_failing_only() {
        let mut m = RaftMetrics::<TypeConfig>::new_initial(2);
        let failed = |ids: &[NodeId]| ids.iter().copied().collect::<BTreeSet<_>>();
        m.current_leader = Some(1);
        assert_eq!(wakes_for(2, &m, &failed(&[3])), None, "a fellow follower failed");
        assert_eq!(wakes_for(2, &m, &failed(&[1, 3])), Some(1));
        m.current_leader = None;
        assert_eq!(wakes_for(2, &m, &failed(&[])), Some(2), "no leader known: elect");
        m.current_leader = Some(2);
        assert_eq!(wakes_for(2, &m, &failed(&[3])), None, "a leader wakes for its members only");
    }

    #[test]
    fn a_member_refuses_quiescence_for_another_leader_term_or_log() {
        let mut m = RaftMetrics::<TypeConfig>::new_initial(2);
        use openraft::alias::LeaderIdOf;
        use openraft::vote::RaftLeaderIdExt;
        let log = |index| Some(LogId::new(LeaderIdOf::<TypeConfig>::new_committed(3, 1), index));
        m.current_leader = Some(1);
        m.current_term = 3;
        m.last_log_index = Some(7);
        m.local_committed = log(7);
        m.last_applied = log(7);
        let req = QuiesceRequest { leader: 1, term: 3, last_index: 7 };
        assert!(may_quiesce(&m, &req));
        assert!(!may_quiesce(&m, &QuiesceRequest { leader: 3, ..req }));
        assert!(!may_quiesce(&m, &QuiesceRequest { term: 4, ..req }));
        assert!(!may_quiesce(&m, &QuiesceRequest { last_index: 8, ..req }));
        m.last_applied = log(6);
        assert!(!may_quiesce(&m, &req), "applied behind the log");
    }
}
