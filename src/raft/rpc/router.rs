//! [`GroupRouter`]: the [`RpcHandler`] of a node that runs several Raft groups (multi-raft).
//! Every request names its group; the router hands it to that group's own handler, so the
//! groups share one RPC port and one connection per peer pair. Requests run in tasks of their
//! own (see `server`), so a group busy installing a snapshot never holds up another group's
//! appends. An unknown group gets a clear error (a peer started with another `num-groups`).

use super::message::{ForwardBatch, ForwardRequest, PubMessage};
use super::server::{HandlerError, RpcHandler, SniffedStream};
use crate::protocol::Frame;
use crate::raft::membership::{MembershipError, MembershipOp};
use crate::raft::snapshot_file::SnapshotFile;
use crate::raft::{NodeId, NodeInfo, TypeConfig};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Routes each request to the handler of its group.
pub struct GroupRouter<H> {
    pub handlers: BTreeMap<u64, Arc<H>>,
}

impl<H: RpcHandler> GroupRouter<H> {
    fn get(&self, group: u64) -> Result<&Arc<H>, HandlerError> {
        self.handlers.get(&group).ok_or_else(|| {
            HandlerError::new(format!(
                "unknown raft group {group}: this node runs groups {:?} (check num-groups)",
                self.handlers.keys().collect::<Vec<_>>()
            ))
        })
    }
}

impl<H: RpcHandler> RpcHandler for GroupRouter<H> {
    async fn append_entries(
        &self,
        group: u64,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<TypeConfig>, HandlerError> {
        self.get(group)?.append_entries(group, req).await
    }

    async fn vote(&self, group: u64, req: VoteRequest<TypeConfig>) -> Result<VoteResponse<TypeConfig>, HandlerError> {
        self.get(group)?.vote(group, req).await
    }

    async fn pre_vote(
        &self,
        group: u64,
        req: VoteRequest<TypeConfig>,
    ) -> Result<VoteResponse<TypeConfig>, HandlerError> {
        self.get(group)?.pre_vote(group, req).await
    }

    async fn transfer_leader(
        &self,
        group: u64,
        req: TransferLeaderRequest<TypeConfig>,
    ) -> Result<TransferLeaderResponse<TypeConfig>, HandlerError> {
        self.get(group)?.transfer_leader(group, req).await
    }

    async fn begin_snapshot(&self, group: u64) -> Result<SnapshotFile, HandlerError> {
        self.get(group)?.begin_snapshot(group).await
    }

    async fn install_snapshot(
        &self,
        group: u64,
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
        file: SnapshotFile,
    ) -> Result<SnapshotResponse<TypeConfig>, HandlerError> {
        self.get(group)?.install_snapshot(group, vote, meta, file).await
    }

    fn abort_snapshot(&self, group: u64, file: SnapshotFile) {
        match self.handlers.get(&group) {
            Some(h) => h.abort_snapshot(group, file),
            None => {
                if file.disk.exists(&file.path) {
                    let _ = file.disk.remove(&file.path);
                }
            }
        }
    }

    async fn forward(&self, group: u64, req: ForwardRequest) -> Result<Frame, HandlerError> {
        self.get(group)?.forward(group, req).await
    }

    async fn membership(&self, group: u64, op: MembershipOp) -> Result<Result<(), MembershipError>, HandlerError> {
        self.get(group)?.membership(group, op).await
    }

    async fn node_info(&self, group: u64) -> Result<(NodeId, NodeInfo), HandlerError> {
        self.get(group)?.node_info(group).await
    }

    async fn forward_batch(&self, group: u64, req: ForwardBatch) -> Result<Frame, HandlerError> {
        self.get(group)?.forward_batch(group, req).await
    }

    async fn read_index(&self, group: u64) -> Result<u64, HandlerError> {
        self.get(group)?.read_index(group).await
    }

    async fn leader(&self, group: u64) -> Result<Option<(NodeId, NodeInfo)>, HandlerError> {
        self.get(group)?.leader(group).await
    }

    async fn quiesce(&self, group: u64, req: crate::raft::quiesce::QuiesceRequest) -> Result<bool, HandlerError> {
        self.get(group)?.quiesce(group, req).await
    }

    fn publish(&self, group: u64, msgs: Vec<PubMessage>) {
        if let Some(h) = self.handlers.get(&group) {
            h.publish(group, msgs);
        }
    }

    async fn serve_http(&self, stream: SniffedStream) {
        // Every group's handler serves the node's one HTTP service.
        match self.handlers.values().next() {
            Some(h) => h.serve_http(stream).await,
            None => drop(stream),
        }
    }
}
