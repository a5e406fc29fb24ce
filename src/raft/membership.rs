//! Cluster membership and status of a [`Replica`]: initialize a cluster, add a learner,
//! change the voters (joint consensus), promote learners, remove a node, and a plain snapshot
//! of the Raft figures ([`RaftStatus`]) that INFO, `CLUSTER METARAFT MEMBERS`, the HTTP admin
//! API and `/metrics` all report.
//!
//! These are the operations the operator surfaces (Redis commands, HTTP, the Rust
//! `ClusterNode`) are built on; they take typed arguments and return [`MembershipError`]s
//! whose text is fit to show an operator. They can be called on any member: a node that is
//! not the leader hands the operation ([`MembershipOp`]) to the leader over the internal RPC,
//! and the leader checks and runs it ([`run_on_leader`]) against the membership it knows.
//! New voters must first catch up with the leader's log (bounded wait), so that a lagging or
//! dead learner is refused instead of stalling the cluster in a joint configuration.

use super::node::Replica;
use super::rpc::RpcError;
use super::state_machine::StateMachine;
use super::{NodeId, NodeInfo, TypeConfig};
use openraft::alias::LogIdOf;
use openraft::error::{ClientWriteError, InitializeError, PreconditionFailed, RaftError};
use openraft::raft::Precondition;
use openraft::rt::watch::WatchReceiver;
use openraft::{ChangeMembers, Raft, RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long new voters may take to catch up with the leader's log before the change is
/// refused (used by the Redis commands and by [`Replica::change_membership`]).
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest catch-up wait honoured (an operation from a peer may ask for any).
const MAX_CATCH_UP: Duration = Duration::from_secs(600);
/// Deadline of one proposed membership change; past it the outcome is unknown.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an operation waits for a leader to be elected.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// Deadline of asking a node for its addresses ([`Replica::probe_node`]).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times the leader checks and proposes an operation that a concurrent membership
/// change got ahead of (nothing was written; it is checked again against the new membership).
const ATTEMPTS: u32 = 3;

/// Why a membership operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// `initialize` on a node that already belongs to a cluster.
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    /// The request itself is wrong (unknown node, a voter left out, empty voter set ...).
    #[error("{0}")]
    Invalid(String),
    /// This node is not the leader and the operation could not be handed to one.
    #[error("not the leader{}", leader_hint(.0))]
    NotLeader(Option<NodeId>),
    /// A new voter did not catch up with the leader's log in time; nothing was changed.
    #[error("{0}")]
    NotCaughtUp(String),
    /// The change was proposed (or handed to the leader) but its outcome is not known.
    #[error("{0}")]
    Timeout(String),
    /// Handing the operation to the leader failed; nothing was changed.
    #[error("{0}")]
    Forward(String),
    /// Raft refused or failed the change.
    #[error("raft: {0}")]
    Raft(String),
}

fn leader_hint(leader: &Option<NodeId>) -> String {
    match leader {
        Some(id) => format!("; the leader is node {id}"),
        None => "; no leader elected".into(),
    }
}

/// A membership operation, as a follower hands it to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipOp {
    /// Add node `id` at `node` as a learner.
    AddLearner { id: NodeId, node: NodeInfo },
    /// Make exactly `voters` the voters (low level: may remove voters).
    ChangeMembership { voters: BTreeSet<NodeId>, retain_learners: bool, catch_up_ms: u64 },
    /// Make `voters` the voters, which must include every current voter.
    Promote { voters: BTreeSet<NodeId>, catch_up_ms: u64 },
    /// Remove node `id` (voter or learner) from the cluster.
    Remove { id: NodeId },
}

/// A catch-up wait in ms, capped at [`MAX_CATCH_UP`].
fn catch_up(ms: u64) -> Duration {
    Duration::from_millis(ms).min(MAX_CATCH_UP)
}

fn to_ms(d: Duration) -> u64 {
    d.min(MAX_CATCH_UP).as_millis() as u64
}

impl MembershipOp {
    /// How long the leader may take to answer this operation.
    fn deadline(&self) -> Duration {
        let wait = match self {
            MembershipOp::ChangeMembership { catch_up_ms, .. } | MembershipOp::Promote { catch_up_ms, .. } => {
                catch_up(*catch_up_ms)
            }
            _ => Duration::ZERO,
        };
        // Each attempt may wait for a leader, for the last change to commit and for a removed
        // leader to hand over (`leader_status`), then for the proposal.
        wait + (LEADER_WAIT * 3 + CHANGE_TIMEOUT) * ATTEMPTS + Duration::from_secs(2)
    }
}
/// The role of a member in the current membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Voter,
    Learner,
}

impl Role {
    /// The word `CLUSTER METARAFT MEMBERS` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Voter => "voter",
            Role::Learner => "learner",
        }
    }
}

/// One member of the cluster as this node currently sees the membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: NodeId,
    pub role: Role,
    pub raft_addr: String,
    pub client_addr: String,
}

/// Raft figures of this node at one moment (from openraft's metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RaftStatus {
    pub id: NodeId,
    /// "leader", "follower", "candidate", "learner" or "shutdown".
    pub state: String,
    pub current_term: u64,
    pub current_leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    /// Highest index this node knows committed.
    pub committed_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Members, ordered by id.
    pub members: Vec<Member>,
    /// On the leader: the last index each other member has acknowledged (None: nothing yet).
    pub replication: Option<BTreeMap<NodeId, Option<u64>>>,
    /// Raft stopped on a fatal error (failed fsync, storage error).
    pub failed: bool,
}

impl RaftStatus {
    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.current_leader == Some(self.id) && self.state == "leader"
    }
}

fn raft_error<E: std::fmt::Display>(e: RaftError<TypeConfig, E>) -> MembershipError {
    MembershipError::Raft(e.to_string())
}

fn write_error(e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> MembershipError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => MembershipError::NotLeader(f.leader_id),
        other => raft_error(other),
    }
}

/// The figures of `m` as a [`RaftStatus`].
pub(crate) fn status_from(m: &RaftMetrics<TypeConfig>) -> RaftStatus {
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            role: if voters.contains(id) { Role::Voter } else { Role::Learner },
            raft_addr: node.raft_addr.clone(),
            client_addr: node.client_addr.clone(),
        })
        .collect();
    RaftStatus {
        id: m.id,
        state: format!("{:?}", m.state).to_lowercase(),
        current_term: m.current_term,
        current_leader: m.current_leader,
        last_log_index: m.last_log_index,
        committed_index: m.local_committed.map(|l| l.index),
        last_applied_index: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        members,
        replication: m.replication.clone().map(|r| r.into_iter().map(|(id, l)| (id, l.map(|l| l.index))).collect()),
        failed: m.running_state.is_err(),
    }
}

fn status_of(raft: &Raft<TypeConfig, StateMachine>) -> RaftStatus {
    status_from(&raft.metrics().borrow_watched())
}

impl RaftStatus {
    /// The member `id`, if it is one.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The ids of the voters.
    pub fn voter_ids(&self) -> BTreeSet<NodeId> {
        self.members.iter().filter(|m| m.role == Role::Voter).map(|m| m.id).collect()
    }

    /// How many entries a follower that acknowledged index `matched` is behind this node's
    /// log. The one definition of replication lag, so INFO replication and `/metrics` agree.
    pub fn lag_behind(&self, matched: u64) -> u64 {
        self.last_log_index.unwrap_or(0).saturating_sub(matched)
    }
}

impl Replica {
    /// The current Raft figures of this node.
    pub fn status(&self) -> RaftStatus {
        status_of(self.raft())
    }

    /// Members of the current membership, ordered by id.
    pub fn members(&self) -> Vec<Member> {
        self.status().members
    }

    /// Forms a cluster of `members` (which must include this node) on a node that has never
    /// been part of one. A second call answers [`MembershipError::AlreadyInitialized`].
    pub async fn initialize(&self, members: BTreeMap<NodeId, NodeInfo>) -> Result<(), MembershipError> {
        if !members.contains_key(&self.id()) {
            return Err(MembershipError::Invalid(format!("the members must include this node ({})", self.id())));
        }
        match self.raft().initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Err(MembershipError::AlreadyInitialized),
            Err(e) => Err(raft_error(e)),
        }
    }

    /// Adds node `id` at `node` as a learner (it receives the log but does not vote) and
    /// waits until the change is committed. Adding a learner again at the same address does
    /// nothing, except record a client address it lacked; a voter, or a learner at another
    /// address, is refused.
    pub async fn add_learner(&self, id: NodeId, node: NodeInfo) -> Result<(), MembershipError> {
        self.membership(MembershipOp::AddLearner { id, node }).await
    }

    /// Adds node `id` as a learner knowing only its raft address: its client address is asked
    /// from the node itself ([`Replica::probe_node`]), which must report id `id`. If the node
    /// cannot be reached within [`PROBE_TIMEOUT`], it is added with an empty client address
    /// (documented in docs/OPERATIONS.md). Returns the addresses recorded.
    pub async fn add_learner_at(&self, id: NodeId, raft_addr: &str) -> Result<NodeInfo, MembershipError> {
        let client_addr = match self.probe_node(raft_addr).await {
            Ok((got, _)) if got != id => {
                return Err(MembershipError::Invalid(format!("the node at {raft_addr} is node {got}, not node {id}")))
            }
            Ok((_, info)) => {
                self.check_joiner_groups(raft_addr).await?;
                info.client_addr
            }
            Err(e) => {
                tracing::warn!(
                    id,
                    raft_addr,
                    "cannot ask the new node for its client address ({e}); adding it without one"
                );
                String::new()
            }
        };
        let node = NodeInfo { raft_addr: raft_addr.to_string(), client_addr };
        self.add_learner(id, node.clone()).await?;
        Ok(node)
    }

    /// A multi-raft cluster's MetaRaft refuses a node that runs another number of data groups
    /// (it could not serve the groups it lacks): the node must answer for group `n` and not for
    /// group `n + 1`, `n` being [`Replica::joiner_groups`].
    async fn check_joiner_groups(&self, raft_addr: &str) -> Result<(), MembershipError> {
        let n = self.joiner_groups();
        if n == 0 {
            return Ok(());
        }
        let pool = self.pool();
        let runs = |g| {
            let client = pool.get(raft_addr);
            async move { client.node_info(g, PROBE_TIMEOUT).await }
        };
        let refuse = |what: &str| {
            MembershipError::Invalid(format!(
                "the node at {raft_addr} was started with {what} data groups than this cluster's {n}: restart it \
                 with --num-groups {n} (and an empty data directory)"
            ))
        };
        match runs(n).await {
            Err(RpcError::Failed { .. }) => return Err(refuse("fewer")),
            Err(e) => return Err(MembershipError::Invalid(format!("cannot ask the node at {raft_addr}: {e}"))),
            Ok(_) => {}
        }
        match runs(n + 1).await {
            Ok(_) => Err(refuse("more")),
            Err(_) => Ok(()),
        }
    }

    /// Asks the node at `raft_addr` for its id and addresses (deadline [`PROBE_TIMEOUT`]).
    pub async fn probe_node(&self, raft_addr: &str) -> Result<(NodeId, NodeInfo), RpcError> {
        self.pool().get(raft_addr).node_info(self.group(), PROBE_TIMEOUT).await
    }

    /// Makes exactly `voters` the voting members (joint consensus), after waiting (up to
    /// [`CATCH_UP_TIMEOUT`]) for new voters to catch up. Voters left out stay as learners
    /// with `retain_learners`, otherwise they leave the cluster; existing learners are not
    /// affected. Every voter must already be a member.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        retain_learners: bool,
    ) -> Result<(), MembershipError> {
        let catch_up_ms = to_ms(CATCH_UP_TIMEOUT);
        self.membership(MembershipOp::ChangeMembership { voters, retain_learners, catch_up_ms }).await
    }

    /// Makes `voters` the voting members, refusing a list that leaves out a current voter
    /// (removal is [`Replica::remove_node`]'s job). New voters must be learners and catch up
    /// with the leader's log within `catch_up` (at most 10 minutes), or nothing changes.
    pub async fn promote_voters(&self, voters: BTreeSet<NodeId>, catch_up: Duration) -> Result<(), MembershipError> {
        self.membership(MembershipOp::Promote { voters, catch_up_ms: to_ms(catch_up) }).await
    }

    /// Removes node `id` from the cluster (voter or learner). The last voter cannot leave.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), MembershipError> {
        self.membership(MembershipOp::Remove { id }).await
    }

    /// Runs `op` here if this node leads, else hands it to the leader.
    async fn membership(&self, op: MembershipOp) -> Result<(), MembershipError> {
        self.touch().await;
        match run_on_leader(self.raft(), &op).await {
            Err(MembershipError::NotLeader(Some(leader))) if leader != self.id() => {
                self.forward_membership(leader, op).await
            }
            other => other,
        }
    }

    async fn forward_membership(&self, leader: NodeId, op: MembershipOp) -> Result<(), MembershipError> {
        let Some(addr) = self.status().member(leader).map(|m| m.raft_addr.clone()) else {
            return Err(MembershipError::NotLeader(Some(leader)));
        };
        let deadline = op.deadline();
        match self.pool().get(&addr).membership(self.group(), op, deadline).await {
            Ok(outcome) => outcome,
            Err(e) if e.outcome_unknown() => Err(MembershipError::Timeout(format!(
                "handed to the leader (node {leader}) but no answer came ({e}); the change may or may not take effect"
            ))),
            Err(e) => {
                Err(MembershipError::Forward(format!("handing the change to the leader (node {leader}) failed: {e}")))
            }
        }
    }
}

/// Checks and runs `op` on this node, which must be the leader (a leader is awaited for a
/// bounded time); otherwise answers [`MembershipError::NotLeader`]. Never hands `op` on: the
/// RPC handler calls this for operations a follower forwarded.
pub(crate) async fn run_on_leader(
    raft: &Raft<TypeConfig, StateMachine>,
    op: &MembershipOp,
) -> Result<(), MembershipError> {
    for _ in 0..ATTEMPTS {
        let view = leader_status(raft).await?;
        match run_checked(raft, &view, op).await {
            Err(Refused::Raced) => continue,
            Err(Refused::Error(e)) => return Err(e),
            Ok(()) => return Ok(()),
        }
    }
    Err(MembershipError::Raft(format!(
        "other membership changes got ahead of this one {ATTEMPTS} times; nothing was changed, try again"
    )))
}

/// Why an operation did not run.
enum Refused {
    /// The effective membership changed between the check and the proposal (a concurrent
    /// change): nothing was proposed; check again against the new membership.
    Raced,
    Error(MembershipError),
}

impl From<MembershipError> for Refused {
    fn from(e: MembershipError) -> Self {
        Refused::Error(e)
    }
}

/// Checks `op` against the membership this leader saw and proposes it.
async fn run_checked(
    raft: &Raft<TypeConfig, StateMachine>,
    view: &LeaderView,
    op: &MembershipOp,
) -> Result<(), Refused> {
    let st = &view.status;
    match op {
        MembershipOp::AddLearner { id, node } => add_learner(raft, view, *id, node).await,
        MembershipOp::ChangeMembership { voters, retain_learners, catch_up_ms } => {
            change_voters(raft, view, voters, *retain_learners, catch_up(*catch_up_ms)).await
        }
        MembershipOp::Promote { voters, catch_up_ms } => {
            let missing: Vec<String> = st.voter_ids().difference(voters).map(|id| id.to_string()).collect();
            if !missing.is_empty() {
                return Err(MembershipError::Invalid(format!(
                    "the voter list must include every current voter; missing: {} (to remove a voter, use CLUSTER METARAFT REMOVE)",
                    missing.join(" ")
                ))
                .into());
            }
            change_voters(raft, view, voters, true, catch_up(*catch_up_ms)).await
        }
        MembershipOp::Remove { id } => remove(raft, view, *id).await,
    }
}

/// What the leader knows when it checks an operation: its status and the log id of the
/// effective membership that status shows (one metrics snapshot), which the proposal then
/// requires to be still effective.
struct LeaderView {
    status: RaftStatus,
    membership_log_id: Option<LogIdOf<TypeConfig>>,
}

/// This node's status if it is the leader (waiting a while for an election if none is known).
async fn leader_status(raft: &Raft<TypeConfig, StateMachine>) -> Result<LeaderView, MembershipError> {
    let mut st = status_of(raft);
    // Empty metrics right after bootstrap are not "no cluster": ask Raft itself.
    if st.members.is_empty() && !raft.is_initialized().await.unwrap_or(true) {
        return Err(MembershipError::Invalid(format!(
            "node {} is not part of a cluster yet: bootstrap one (--is-bootstrap) or add this node from a member",
            st.id
        )));
    }
    if st.current_leader.is_none() {
        let _ = raft.wait(Some(LEADER_WAIT)).metrics(|m| m.current_leader.is_some(), "a leader").await;
        st = status_of(raft);
    }
    if st.failed {
        return Err(MembershipError::Raft("raft has stopped on this node".into()));
    }
    if !st.is_leader() {
        return Err(MembershipError::NotLeader(st.current_leader));
    }
    // Raft takes one membership change at a time: a new leader's last membership entry (the
    // initial one, right after bootstrap) or a change still in flight must commit first.
    let settled = |m: &RaftMetrics<TypeConfig>| {
        m.committed_membership_config.log_id() == m.membership_config.log_id() || m.replication.is_none()
    };
    let _ = raft.wait(Some(LEADER_WAIT)).metrics(settled, "the last membership change to commit").await;
    let m = raft.metrics().borrow_watched().clone();
    let status = status_from(&m);
    if !status.is_leader() {
        return Err(MembershipError::NotLeader(status.current_leader));
    }
    if status.member(status.id).is_none() {
        return Err(MembershipError::NotLeader(removed_leader_hands_over(raft, status.id).await));
    }
    Ok(LeaderView { status, membership_log_id: *m.membership_config.log_id() })
}

/// A leader that has removed itself from the cluster goes on leading for a moment: openraft
/// keeps it leader until the removal commits and then for `removed_leader_step_down` (150 ms),
/// before it hands leadership to a voter. Asked for another membership change meanwhile,
/// openraft accepts it although the node is no longer leader by its own state, and trips its
/// debug assertion "Only leader is allowed to call update_effective_membership()" (found by
/// the chaos simulation, seed 1150). So such a node refuses as "not the leader"; it waits a
/// while for the hand-over first, to name the new leader if it learns it, so that the caller
/// can go there. (A leader that is still a learner of the membership may lead: openraft never
/// steps it down, and it may change the membership.)
async fn removed_leader_hands_over(raft: &Raft<TypeConfig, StateMachine>, id: NodeId) -> Option<NodeId> {
    let handed_over = |m: &RaftMetrics<TypeConfig>| m.state != ServerState::Leader || m.current_leader != Some(id);
    let _ = raft.wait(Some(LEADER_WAIT)).metrics(handed_over, "a removed leader to step down").await;
    status_of(raft).current_leader.filter(|leader| *leader != id)
}

/// Proposes `change` with [`CHANGE_TIMEOUT`], provided the effective membership is still the
/// one `view` was taken from. Raft checks that itself, so the membership the operation was
/// checked against (in which this node is a member, see [`removed_leader_hands_over`]) is the
/// one it changes; otherwise nothing is proposed and the caller checks again.
async fn propose(
    raft: &Raft<TypeConfig, StateMachine>,
    view: &LeaderView,
    change: impl Into<ChangeMembers<NodeId, NodeInfo>>,
    retain: bool,
) -> Result<(), Refused> {
    let expected = view.membership_log_id;
    let pre = Precondition::LastMembershipLogId { last_membership_log_id: expected };
    match tokio::time::timeout(CHANGE_TIMEOUT, raft.change_membership_if(change, retain, [pre])).await {
        Ok(Ok(resp)) => {
            // The reply can come before Raft's metrics show the change: the caller's next
            // operation (PROMOTE right after ADDLEARNER) checks against the metrics, which
            // must hold it by then.
            let shown = |m: &RaftMetrics<TypeConfig>| m.membership_config.log_id().as_ref() >= Some(&resp.log_id);
            let _ = raft.wait(Some(LEADER_WAIT)).metrics(shown, "the membership change in the metrics").await;
            Ok(())
        }
        // Only a mismatch with the id passed here is the first step's: when the second step
        // of a joint change is refused, the joint entry has changed the membership (openraft
        // then names that entry's id), which is a failure to report, not to retry.
        Ok(Err(RaftError::APIError(ClientWriteError::PreconditionFailed(
            PreconditionFailed::LastMembershipLogIdMismatch { expected: e, .. },
        )))) if e == expected => Err(Refused::Raced),
        Ok(Err(e)) => Err(write_error(e).into()),
        Err(_) => Err(MembershipError::Timeout(format!(
            "the membership change did not commit within {CHANGE_TIMEOUT:?}; it may or may not take effect"
        ))
        .into()),
    }
}

async fn add_learner(
    raft: &Raft<TypeConfig, StateMachine>,
    view: &LeaderView,
    id: NodeId,
    node: &NodeInfo,
) -> Result<(), Refused> {
    let st = &view.status;
    if let Some(m) = st.member(id) {
        return match m.role {
            Role::Voter => Err(MembershipError::Invalid(format!("node {id} is already a voter")).into()),
            // Again at the same address: fills in a client address learned since (the node was
            // unreachable when first added); the raft address stays, so this is safe.
            Role::Learner if m.raft_addr == node.raft_addr => {
                if node.client_addr.is_empty() || node.client_addr == m.client_addr {
                    return Ok(());
                }
                let change = ChangeMembers::SetNodes(BTreeMap::from([(id, node.clone())]));
                propose(raft, view, change, true).await
            }
            Role::Learner => Err(MembershipError::Invalid(format!(
                "node {id} is already a learner at {}; remove it first to change its address",
                m.raft_addr
            ))
            .into()),
        };
    }
    if let Some(m) = st.members.iter().find(|m| m.raft_addr == node.raft_addr) {
        return Err(
            MembershipError::Invalid(format!("{} is already the address of node {}", node.raft_addr, m.id)).into()
        );
    }
    // What `Raft::add_learner(.., blocking: false)` proposes, with the precondition.
    propose(raft, view, ChangeMembers::AddNodes(BTreeMap::from([(id, node.clone())])), true).await
}

async fn change_voters(
    raft: &Raft<TypeConfig, StateMachine>,
    view: &LeaderView,
    voters: &BTreeSet<NodeId>,
    retain_learners: bool,
    catch_up: Duration,
) -> Result<(), Refused> {
    let st = &view.status;
    if voters.is_empty() {
        return Err(MembershipError::Invalid("the voter set cannot be empty".into()).into());
    }
    if let Some(id) = voters.iter().find(|id| st.member(**id).is_none()) {
        return Err(MembershipError::Invalid(format!(
            "node {id} is not a member; add it as a learner first (CLUSTER METARAFT ADDLEARNER)"
        ))
        .into());
    }
    let new: BTreeSet<NodeId> = voters.difference(&st.voter_ids()).copied().collect();
    if !new.is_empty() {
        wait_caught_up(raft, st, &new, catch_up).await?;
    }
    propose(raft, view, voters.clone(), retain_learners).await
}

/// The last log index node `id` is known to hold, on the leader.
fn matched(m: &RaftMetrics<TypeConfig>, id: NodeId) -> Option<u64> {
    m.replication.as_ref()?.get(&id)?.as_ref().map(|l| l.index)
}

/// Waits until every node of `new` holds the leader's log up to its last index as of now.
async fn wait_caught_up(
    raft: &Raft<TypeConfig, StateMachine>,
    st: &RaftStatus,
    new: &BTreeSet<NodeId>,
    timeout: Duration,
) -> Result<(), MembershipError> {
    let target = st.last_log_index;
    let caught_up = |m: &RaftMetrics<TypeConfig>| new.iter().all(|id| matched(m, *id) >= target);
    let waited =
        raft.wait(Some(timeout)).metrics(|m| m.replication.is_none() || caught_up(m), "new voters to catch up").await;
    let m = raft.metrics().borrow_watched().clone();
    if m.replication.is_none() {
        return Err(MembershipError::NotLeader(m.current_leader));
    }
    if waited.is_ok() && caught_up(&m) {
        return Ok(());
    }
    let lagging: Vec<String> = new
        .iter()
        .filter(|id| matched(&m, **id) < target)
        .map(|id| {
            let addr = st.member(*id).map_or("?", |m| m.raft_addr.as_str());
            let has = matched(&m, *id).map_or("no entries".to_string(), |i| format!("up to index {i}"));
            format!("node {id} at {addr} has {has}")
        })
        .collect();
    Err(MembershipError::NotCaughtUp(format!(
        "new voters did not catch up with the leader's log (index {}) within {timeout:?}: {}; is it running and reachable? Nothing was changed",
        target.unwrap_or(0),
        lagging.join(", ")
    )))
}

async fn remove(raft: &Raft<TypeConfig, StateMachine>, view: &LeaderView, id: NodeId) -> Result<(), Refused> {
    let st = &view.status;
    let Some(member) = st.member(id) else {
        return Err(MembershipError::Invalid(format!("node {id} is not a member")).into());
    };
    match member.role {
        Role::Voter => {
            let mut voters = st.voter_ids();
            voters.remove(&id);
            if voters.is_empty() {
                return Err(
                    MembershipError::Invalid(format!("node {id} is the last voter; it cannot be removed")).into()
                );
            }
            // retain = false: the voter left out leaves the cluster; learners are not affected.
            propose(raft, view, voters, false).await
        }
        Role::Learner => propose(raft, view, ChangeMembers::RemoveNodes(BTreeSet::from([id])), true).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_waits_from_peers_are_capped() {
        assert_eq!(catch_up(u64::MAX), MAX_CATCH_UP);
        assert_eq!(catch_up(500), Duration::from_millis(500));
        assert_eq!(to_ms(Duration::MAX), MAX_CATCH_UP.as_millis() as u64);
        let op = MembershipOp::Promote { voters: BTreeSet::from([1]), catch_up_ms: u64::MAX };
        assert!(op.deadline() <= MAX_CATCH_UP + Duration::from_secs(180));
    }

    #[test]
    fn lag_is_entries_behind_the_last_log_index() {
        let mut st = RaftStatus {
            id: 1,
            state: "leader".into(),
            current_term: 1,
            current_leader: Some(1),
            last_log_index: Some(10),
            committed_index: Some(10),
            last_applied_index: Some(10),
            snapshot_index: None,
            purged_index: None,
            members: Vec::new(),
            replication: None,
            failed: false,
        };
        assert_eq!((st.lag_behind(0), st.lag_behind(7), st.lag_behind(10)), (10, 3, 0));
        // Never negative, whatever the two figures say.
        assert_eq!(st.lag_behind(12), 0);
        st.last_log_index = None;
        assert_eq!(st.lag_behind(0), 0);
    }
}
