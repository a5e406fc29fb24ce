//! The Rust API of seed 000: [`ClusterNode`] starts a real raftis node ([`crate::node::start`])
//! from a [`ClusterConfig`] and manages the membership of its MetaRaft group (group 0) with
//! `add_meta_learner`, `promote_meta_voter`, `change_meta_membership` and `remove_meta_node`,
//! from any member (a follower hands changes to the leader).
//!
//! Multi-raft (`num_groups` > 0, cluster mode): a node runs MetaRaft (group 0) and the data
//! groups 1..=num_groups over one Raft port. [`map`]: the cluster map MetaRaft replicates
//! (nodes, groups and their voters, slot table, config epoch); [`groups`]: the groups of a node
//! and routing (slot -> group -> leader: `-MOVED`, `-CROSSSLOT`, `-CLUSTERDOWN`);
//! [`controller`]: placement (the map follows MetaRaft's voters, each group follows the map,
//! each group's log records the slots it owns; [`placement`] decides where replicas go,
//! [`replicas`] moves a group's membership there, [`decommission`] is `CLUSTER METARAFT
//! REMOVE`: the replicas move before the node leaves); [`migration`], [`mover`], [`migrate_cmd`]:
//! slot migration between data groups (the record in the map, its steps, its CLUSTER
//! commands); [`setslot`]: Redis Cluster's own migration protocol (`CLUSTER SETSLOT`, for
//! `redis-cli --cluster reshard`). With `num_groups` 0 the one group of a node is MetaRaft and also holds the data
//! and every slot, as before multi-raft.
//!
//! Layers: `server` asks this module where a command goes; this module drives `raft`; `cmd`
//! knows nothing of groups.

pub mod balance;
pub mod controller;
pub mod decommission;
pub mod face;
pub mod groups;
pub mod map;
pub mod migrate_cmd;
pub mod migration;
pub mod mover;
pub mod placement;
pub mod replicas;
pub mod setslot;

pub use groups::Groups;
pub use map::ClusterMap;

use crate::config::Config;
use crate::node::{NodeHandle, StartError};
use crate::raft::membership::{MembershipError, RaftStatus, CATCH_UP_TIMEOUT};
use crate::raft::{NodeId, NodeInfo};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How to start a cluster node (the fields of seed 000).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's id, unique in the cluster.
    pub node_id: NodeId,
    /// Where the node keeps its log and snapshots.
    pub data_dir: PathBuf,
    /// Client (RESP) address, `host:port`; port 0 picks a free one.
    pub bind_address: String,
    /// Internal Raft RPC address, `host:port`; port 0 picks a free one.
    pub raft_address: String,
    /// Number of data Raft groups besides MetaRaft (0: group 0 holds the data and every slot).
    pub num_groups: u32,
    /// Whether this node forms the cluster (with `initial_members`) when its log is empty.
    pub is_bootstrap: bool,
    /// The first members `(id, raft address)`, this node included; used only by a bootstrap
    /// node with an empty log. Seed 000's advice holds: bootstrap with this node alone and add
    /// the others as learners.
    pub initial_members: Vec<(NodeId, String)>,
}

/// Why a [`ClusterNode`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error("the node is not running: call initialize() first")]
    NotStarted,
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// A cluster node: its configuration, and once [`initialize`](Self::initialize)d, the running
/// node.
pub struct ClusterNode {
    config: ClusterConfig,
    handle: Option<NodeHandle>,
}

impl ClusterNode {
    /// A node that will run with `config` (nothing starts before `initialize`).
    pub fn new(config: ClusterConfig) -> ClusterNode {
        ClusterNode { config, handle: None }
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Starts the node. A bootstrap node with an empty log forms the cluster of
    /// `initial_members` (learning each other member's client address from the member itself);
    /// any other node waits to be added (`add_meta_learner` on a member). A restarted node
    /// keeps the membership in its log.
    pub async fn initialize(&mut self) -> Result<(), ClusterError> {
        if self.handle.is_some() {
            return Err(MembershipError::AlreadyInitialized.into());
        }
        let c = &self.config;
        let (bind, port) = c
            .bind_address
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| ClusterError::Config(format!("bind_address {:?} is not host:port", c.bind_address)))?;
        let others: Vec<&(NodeId, String)> = c.initial_members.iter().filter(|(id, _)| *id != c.node_id).collect();
        let config = Config {
            node_id: c.node_id,
            bind,
            port,
            data_dir: c.data_dir.clone(),
            raft_addr: c.raft_address.clone(),
            cluster_enabled: true,
            num_groups: c.num_groups,
            // With other initial members the cluster is formed below, with all of them.
            is_bootstrap: Some(c.is_bootstrap && others.is_empty()),
            ..Config::default()
        };
        let handle = crate::node::start(config).await?;
        if c.is_bootstrap && !others.is_empty() {
            let replica = handle.replica();
            let mut members = BTreeMap::from([(c.node_id, replica.info().clone())]);
            for (id, raft_addr) in others {
                let client_addr = match replica.probe_node(raft_addr).await {
                    Ok((_, info)) => info.client_addr,
                    Err(_) => String::new(),
                };
                members.insert(*id, NodeInfo { raft_addr: raft_addr.clone(), client_addr });
            }
            match replica.initialize(members).await {
                Ok(()) | Err(MembershipError::AlreadyInitialized) => {}
                Err(e) => {
                    handle.shutdown().await;
                    return Err(e.into());
                }
            }
        }
        self.handle = Some(handle);
        Ok(())
    }

    /// The running node.
    pub fn handle(&self) -> Result<&NodeHandle, ClusterError> {
        self.handle.as_ref().ok_or(ClusterError::NotStarted)
    }

    /// Where clients connect (once running).
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.handle.as_ref().map(|h| h.client_addr)
    }

    /// The Raft address the node listens on (once running; the real port if 0 was asked).
    pub fn raft_addr(&self) -> Option<String> {
        self.handle.as_ref().map(|h| h.replica().info().raft_addr.clone())
    }

    /// Adds node `node_id`, reachable for Raft at `addr`, as a learner of the MetaRaft group.
    pub async fn add_meta_learner(&self, node_id: NodeId, addr: String) -> Result<(), ClusterError> {
        self.handle()?.replica().add_learner_at(node_id, &addr).await?;
        Ok(())
    }

    /// Makes `voters` the voters; the list must include every current voter (removal is
    /// [`remove_meta_node`](Self::remove_meta_node)). New voters must catch up with the
    /// leader's log within 10 s, or nothing changes.
    pub async fn promote_meta_voter(&self, voters: Vec<NodeId>) -> Result<(), ClusterError> {
        let voters: BTreeSet<NodeId> = voters.into_iter().collect();
        self.handle()?.replica().promote_voters(voters, CATCH_UP_TIMEOUT).await?;
        Ok(())
    }

    /// Low level: makes exactly `voters` the voters (voters left out stay as learners with
    /// `retain_learners`, else leave the cluster).
    pub async fn change_meta_membership(&self, voters: Vec<NodeId>, retain_learners: bool) -> Result<(), ClusterError> {
        let voters: BTreeSet<NodeId> = voters.into_iter().collect();
        self.handle()?.replica().change_membership(voters, retain_learners).await?;
        Ok(())
    }

    /// Removes node `node_id` (voter or learner) from the MetaRaft group; with data groups,
    /// after its data-group replicas have moved to other nodes ([`decommission`]).
    pub async fn remove_meta_node(&self, node_id: NodeId) -> Result<(), ClusterError> {
        let handle = self.handle()?;
        match &handle.shared.cluster {
            Some(groups) => decommission::remove(groups, node_id, decommission::REMOVE_WAIT)
                .await
                .map_err(|e| MembershipError::Invalid(e).into()),
            None => Ok(handle.replica().remove_node(node_id).await?),
        }
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.handle.as_ref().and_then(|h| h.replica().status().current_leader)
    }

    /// The Raft figures of this node (state "stopped" and nothing else before `initialize`).
    pub fn metrics(&self) -> RaftStatus {
        match &self.handle {
            Some(h) => h.replica().status(),
            None => RaftStatus {
                id: self.config.node_id,
                state: "stopped".into(),
                current_term: 0,
                current_leader: None,
                last_log_index: None,
                committed_index: None,
                last_applied_index: None,
                snapshot_index: None,
                purged_index: None,
                members: Vec::new(),
                replication: None,
                failed: false,
            },
        }
    }

    /// Waits until `cond` holds for this node's [`metrics`](Self::metrics), for at most
    /// `timeout` (woken by every change of the figures, not by polling).
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&RaftStatus) -> bool + Send + Sync,
    ) -> Result<RaftStatus, ClusterError> {
        let replica = self.handle()?.replica();
        match replica.raft().wait(Some(timeout)).metrics(|m| cond(&crate::raft::membership::status_from(m)), what).await
        {
            Ok(_) => Ok(replica.status()),
            Err(_) => Err(ClusterError::Timeout(timeout, what.to_string())),
        }
    }

    /// Stops the node (a no-op if it is not running).
    pub async fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}
