//! openraft's network for raftis: [`RpcNetworkFactory`] and [`RpcNetwork`] carry Raft's
//! AppendEntries, votes, leader transfers and snapshots over the internal RPC protocol
//! ([`rpc`](super::rpc)), on the one pooled connection per peer.
//!
//! Transport errors map to openraft's as follows: [`RpcError::Unreachable`] (nothing was sent)
//! becomes `Unreachable`, on which openraft backs off; `Timeout` becomes `Timeout`; `Lost` and
//! `Failed` (sent but no usable answer) become `Network`, which openraft retries soon.
//! Each RPC's deadline is openraft's `soft_ttl`; a snapshot gets it per chunk, and its final
//! install step gets [`NetworkConfig::snapshot_install_timeout`].

use super::rpc::{send_snapshot, RpcClient, RpcError, RpcPool, SendSnapshotError};
use super::snapshot_file::SnapshotFile;
use super::{NodeId, NodeInfo, TypeConfig};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{ErrorSubject, ErrorVerb, StorageError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the Raft network beyond what openraft passes per call.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Deadline of a snapshot's last step, in which the receiver installs it (replacing its
    /// whole state machine, which takes time proportional to the data set).
    pub snapshot_install_timeout: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig { snapshot_install_timeout: Duration::from_secs(60) }
    }
}

/// Builds a network client per target node for one Raft group.
#[derive(Debug, Clone)]
pub struct RpcNetworkFactory {
    id: NodeId,
    group: u64,
    pool: RpcPool,
    config: NetworkConfig,
}

impl RpcNetworkFactory {
    /// The factory of node `id` for Raft group `group`, using the connections of `pool`.
    pub fn new(id: NodeId, group: u64, pool: RpcPool, config: NetworkConfig) -> RpcNetworkFactory {
        RpcNetworkFactory { id, group, pool, config }
    }
}

impl RaftNetworkFactory<TypeConfig> for RpcNetworkFactory {
    type Network = RpcNetwork;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> RpcNetwork {
        RpcNetwork {
            id: self.id,
            target,
            group: self.group,
            client: self.pool.get(&node.raft_addr),
            config: self.config.clone(),
        }
    }
}

/// The network client from this node to one target node.
#[derive(Debug)]
pub struct RpcNetwork {
    id: NodeId,
    target: NodeId,
    group: u64,
    client: Arc<RpcClient>,
    config: NetworkConfig,
}

impl RpcNetwork {
    fn rpc_error(&self, e: RpcError, action: RPCTypes, ttl: Duration) -> RPCError<TypeConfig> {
        match e {
            RpcError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            RpcError::Timeout { .. } => {
                RPCError::Timeout(Timeout { action, id: self.id, target: self.target, timeout: ttl })
            }
            RpcError::Lost { .. } | RpcError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for RpcNetwork {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let ttl = option.soft_ttl();
        let result = self.client.append_entries(self.group, rpc, ttl).await;
        result.map_err(|e| self.rpc_error(e, RPCTypes::AppendEntries, ttl))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let ttl = option.soft_ttl();
        let result = self.client.vote(self.group, rpc, ttl).await;
        result.map_err(|e| self.rpc_error(e, RPCTypes::Vote, ttl))
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let ttl = option.soft_ttl();
        let result = self.client.pre_vote(self.group, rpc, ttl).await;
        result.map_err(|e| self.rpc_error(e, RPCTypes::Vote, ttl))
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let ttl = option.soft_ttl();
        let result = self.client.transfer_leader(self.group, req, ttl).await;
        result.map_err(|e| self.rpc_error(e, RPCTypes::TransferLeader, ttl))
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let ttl = option.soft_ttl();
        let signature = snapshot.meta.signature();
        let send = send_snapshot(
            &self.client,
            self.group,
            vote,
            snapshot.meta,
            &snapshot.snapshot,
            ttl,
            self.config.snapshot_install_timeout.max(ttl),
        );
        // Dropping `send` half-way is safe: each RPC is cancel-safe, and the receiver discards
        // the partial file when the transfer is abandoned or superseded.
        let result = tokio::select! {
            biased;
            closed = cancel => return Err(StreamingError::Closed(closed)),
            result = send => result,
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(SendSnapshotError::Read(e)) => Err(StreamingError::StorageError(StorageError::from_io_error(
                ErrorSubject::Snapshot(Some(signature)),
                ErrorVerb::Read,
                e,
            ))),
            Err(SendSnapshotError::Rpc(e)) => Err(match self.rpc_error(e, RPCTypes::InstallSnapshot, ttl) {
                RPCError::Unreachable(e) => StreamingError::Unreachable(e),
                RPCError::Timeout(e) => StreamingError::Timeout(e),
                RPCError::Network(e) => StreamingError::Network(e),
                RPCError::RemoteError(e) => match e.source {},
            }),
        }
    }
}
