//! Cluster membership and status of a [`Replica`]: initialize a cluster, add a learner,
//! change the voters (joint consensus), remove a node, and a plain snapshot of the Raft
//! figures ([`RaftStatus`]) that INFO, `CLUSTER METARAFT MEMBERS`, the HTTP admin API and
//! `/metrics` all report.
//!
//! These are the operations the operator surfaces (Redis commands, HTTP, the Rust
//! `ClusterNode`) are built on; they take typed arguments and return [`MembershipError`]s
//! whose text is fit to show an operator.

use super::node::Replica;
use super::{NodeId, NodeInfo};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::rt::watch::WatchReceiver;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Why a membership operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

fn raft_error<E: std::fmt::Display>(e: RaftError<super::TypeConfig, E>) -> MembershipError {
    MembershipError::Raft(e.to_string())
}

fn write_error(e: RaftError<super::TypeConfig, ClientWriteError<super::TypeConfig>>) -> MembershipError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => MembershipError::NotLeader(f.leader_id),
        other => raft_error(other),
    }
}

impl Replica {
    /// The current Raft figures of this node.
    pub fn status(&self) -> RaftStatus {
        let m = self.raft().metrics().borrow_watched().clone();
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
            replication: m.replication.map(|r| r.into_iter().map(|(id, l)| (id, l.map(|l| l.index))).collect()),
            failed: m.running_state.is_err(),
        }
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
    /// waits until the change is committed.
    pub async fn add_learner(&self, id: NodeId, node: NodeInfo) -> Result<(), MembershipError> {
        self.raft().add_learner(id, node, false).await.map(|_| ()).map_err(write_error)
    }

    /// Makes exactly `voters` the voting members (joint consensus); other members stay as
    /// learners with `retain_learners`, otherwise they leave.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        retain_learners: bool,
    ) -> Result<(), MembershipError> {
        if voters.is_empty() {
            return Err(MembershipError::Invalid("the voter set cannot be empty".into()));
        }
        self.raft().change_membership(voters, retain_learners).await.map(|_| ()).map_err(write_error)
    }

    /// Removes node `id` from the cluster (voter or learner).
    pub async fn remove_node(&self, id: NodeId) -> Result<(), MembershipError> {
        let status = self.status();
        let Some(member) = status.members.iter().find(|m| m.id == id) else {
            return Err(MembershipError::Invalid(format!("node {id} is not a member")));
        };
        let voters: BTreeSet<NodeId> =
            status.members.iter().filter(|m| m.role == Role::Voter && m.id != id).map(|m| m.id).collect();
        match member.role {
            Role::Voter => self.change_membership(voters, true).await?,
            Role::Learner => {}
        }
        let change = openraft::ChangeMembers::RemoveNodes(BTreeSet::from([id]));
        self.raft().change_membership(change, true).await.map(|_| ()).map_err(write_error)
    }
}
