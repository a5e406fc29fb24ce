//! openraft's network for raftis: [`RpcNetworkFactory`] and [`RpcNetwork`] carry Raft's
//! AppendEntries, votes, leader transfers and snapshots over the internal RPC protocol
//! ([`rpc`](super::rpc)), on the one pooled connection per peer.
//!
//! Transport errors map to openraft's as follows: [`RpcError::Unreachable`] (nothing was sent)
//! becomes `Unreachable`, on which openraft backs off; `Timeout` becomes `Timeout`; `Lost` and
//! `Failed` (sent but no usable answer) become `Network`, which openraft retries soon.
//! Each RPC's deadline is openraft's `soft_ttl`; a snapshot gets it per chunk, and its final
//! install step gets [`NetworkConfig::snapshot_install_timeout`]. An AppendEntries larger than
//! [`NetworkConfig::max_append_bytes`] is sent in part and answered with `PartialSuccess`.

use super::rpc::{send_snapshot, RpcClient, RpcError, RpcPool, SendSnapshotError};
use super::snapshot_file::SnapshotFile;
use super::{NodeId, NodeInfo, TypeConfig};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{LogIdOf, SnapshotOf, VoteOf};
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
    /// Encoded size above which an AppendEntries is cut to a prefix of its entries (answered
    /// to openraft as `PartialSuccess`, after which it sends the rest). Keeps one big batch
    /// from holding up heartbeats on the shared connection, and keeps every batch of more than
    /// one entry under the frame limit.
    pub max_append_bytes: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig { snapshot_install_timeout: Duration::from_secs(60), max_append_bytes: 8 << 20 }
    }
}

/// Room left in a frame for the header and the request's fields other than its entries.
const FRAME_SLACK: usize = 4096;

/// If the entries of `req` encode to more than `budget` bytes, cuts them to the longest prefix
/// that fits (at least one entry) and returns the last log id kept; `None` if `req` is whole.
fn cut_to_budget(req: &mut AppendEntriesRequest<TypeConfig>, budget: usize) -> Option<LogIdOf<TypeConfig>> {
    fn size<T: serde::Serialize>(v: &T) -> usize {
        postcard::serialize_with_flavor(v, postcard::ser_flavors::Size::default()).unwrap_or(usize::MAX)
    }
    if req.entries.len() < 2 || size(&req.entries) <= budget {
        return None;
    }
    let mut used = 0usize;
    let mut keep = 0;
    for entry in &req.entries {
        let s = size(entry);
        if keep > 0 && used.saturating_add(s) > budget {
            break;
        }
        used = used.saturating_add(s);
        keep += 1;
    }
    req.entries.truncate(keep);
    let last = req.entries.last()?.log_id;
    // The follower must not learn a commit point beyond what it was sent.
    req.leader_commit = req.leader_commit.min(Some(last));
    Some(last)
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
        let mut rpc = rpc;
        let budget = self.config.max_append_bytes.min((self.client.max_frame() as usize).saturating_sub(FRAME_SLACK));
        let cut = cut_to_budget(&mut rpc, budget);
        let result = self.client.append_entries(self.group, rpc, ttl).await;
        match (result, cut) {
            (Ok(AppendEntriesResponse::Success), Some(last)) => Ok(AppendEntriesResponse::PartialSuccess(Some(last))),
            (Ok(resp), _) => Ok(resp),
            (Err(e), _) => Err(self.rpc_error(e, RPCTypes::AppendEntries, ttl)),
        }
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
            // A newer snapshot replaced this one while it was being sent (publishing removes
            // older ones): no storage failure, which would stop Raft. Replication starts over
            // with the current snapshot (found by the chaos simulation, seed 1123).
            Err(SendSnapshotError::Read(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(?signature, "the snapshot was replaced while being sent; replication starts over");
                Err(StreamingError::Network(NetworkError::new(&e)))
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Request;
    use crate::store::WriteBatch;
    use openraft::type_config::alias::LeaderIdOf;
    use openraft::vote::RaftLeaderId;
    use openraft::{Entry, EntryPayload};

    fn log_id(index: u64) -> LogIdOf<TypeConfig> {
        openraft::LogId::new(LeaderIdOf::<TypeConfig>::new(2, 1).to_committed(), index)
    }

    fn request(n: u64, value_bytes: usize) -> AppendEntriesRequest<TypeConfig> {
        let entry = |i| Entry {
            log_id: log_id(i),
            payload: EntryPayload::Normal(Request::Write(
                WriteBatch {
                    db: 0,
                    now_ms: 0,
                    seed: 0,
                    cmds: vec![vec![bytes::Bytes::from_static(b"SET"), bytes::Bytes::from(vec![b'v'; value_bytes])]],
                    transaction: None,
                }
                .into(),
            )),
        };
        AppendEntriesRequest {
            vote: VoteOf::<TypeConfig>::new_committed(2, 1),
            prev_log_id: Some(log_id(0)),
            entries: (1..=n).map(entry).collect(),
            leader_commit: Some(log_id(n)),
        }
    }

    #[test]
    fn big_appends_are_cut_to_a_prefix_that_fits() {
        let mut small = request(10, 100);
        assert_eq!(cut_to_budget(&mut small, 10_000), None);
        assert_eq!(small.entries.len(), 10);

        let mut big = request(10, 3000);
        assert_eq!(cut_to_budget(&mut big, 10_000), Some(log_id(3)));
        assert_eq!(big.entries.len(), 3);
        assert_eq!(big.leader_commit, Some(log_id(3)));
        assert!(postcard::to_allocvec(&big.entries).unwrap().len() <= 10_000);

        // One entry over the budget is still sent alone rather than never.
        let mut huge = request(3, 50_000);
        assert_eq!(cut_to_budget(&mut huge, 10_000), Some(log_id(1)));
        assert_eq!(huge.entries.len(), 1);
    }
}
