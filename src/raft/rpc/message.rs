//! The messages of the internal RPC protocol: one request enum, one response enum, both
//! postcard-encoded into frame bodies (see [`wire`](super::wire)).
//!
//! A snapshot travels as `SnapshotBegin`, then `SnapshotChunk`s at increasing offsets, then
//! `SnapshotFinish` carrying the snapshot meta and the leader's vote; the receiver assigns a
//! transfer id at `SnapshotBegin` so that chunks of different transfers cannot mix.

use crate::protocol::Frame;
use crate::raft::membership::{MembershipError, MembershipOp};
use crate::raft::{NodeId, NodeInfo, TypeConfig};
use crate::store::WatchedKey;
use bytes::Bytes;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use serde::{Deserialize, Serialize};

/// What a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// Starts receiving a snapshot; answered with [`RpcResponse::SnapshotBegun`].
    SnapshotBegin,
    /// The bytes of a snapshot at `offset` (which must equal the bytes received so far).
    SnapshotChunk {
        transfer: u64,
        offset: u64,
        data: Bytes,
    },
    /// The end of a snapshot of `size` bytes: the receiver syncs it and installs it.
    SnapshotFinish {
        transfer: u64,
        size: u64,
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
    },
    /// A client command forwarded by a follower to the leader.
    Forward(ForwardRequest),
    /// A membership change handed by a follower to the leader; answered with
    /// [`RpcResponse::Membership`].
    Membership(MembershipOp),
    /// Who are you? Answered with [`RpcResponse::NodeInfo`] (how a node learns a new
    /// member's client address from its raft address).
    NodeInfo,
    /// Several writes (a pipeline's, or a MULTI/EXEC transaction) forwarded to the leader;
    /// answered with [`RpcResponse::Forward`].
    ForwardBatch(ForwardBatch),
    /// A follower's linearizable read: the leader confirms its leadership with a quorum and
    /// answers with [`RpcResponse::ReadIndex`], the log index the follower must have applied
    /// before reading its own copy (Raft's follower read, Ongaro's thesis 6.4).
    ReadIndex,
    /// Pub/Sub messages published on the sending node, in publishing order, for this node's
    /// subscribers; answered with [`RpcResponse::Published`]. Never through the Raft log.
    Publish(Vec<PubMessage>),
    /// Which node leads this group, as the answering node knows; answered with
    /// [`RpcResponse::Leader`] (how a node that is not a member of a data group learns its
    /// leader).
    Leader,
    /// The group's leader asks this member to stop its ticks (`crate::raft::quiesce`);
    /// answered with [`RpcResponse::Quiesced`].
    Quiesce(crate::raft::quiesce::QuiesceRequest),
}

/// One Pub/Sub message carried between nodes (see `crate::raft::broadcast`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubMessage {
    /// SPUBLISH's shard channel rather than PUBLISH's channel.
    pub shard: bool,
    pub channel: Bytes,
    pub payload: Bytes,
}

impl RpcRequest {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            RpcRequest::AppendEntries(_) => "append_entries",
            RpcRequest::Vote(_) => "vote",
            RpcRequest::PreVote(_) => "pre_vote",
            RpcRequest::TransferLeader(_) => "transfer_leader",
            RpcRequest::SnapshotBegin => "snapshot_begin",
            RpcRequest::SnapshotChunk { .. } => "snapshot_chunk",
            RpcRequest::SnapshotFinish { .. } => "snapshot_finish",
            RpcRequest::Forward(_) => "forward",
            RpcRequest::Membership(_) => "membership",
            RpcRequest::NodeInfo => "node_info",
            RpcRequest::ForwardBatch(_) => "forward_batch",
            RpcRequest::ReadIndex => "read_index",
            RpcRequest::Publish(_) => "publish",
            RpcRequest::Leader => "leader",
            RpcRequest::Quiesce(_) => "quiesce",
        }
    }
}

/// What a server answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RpcResponse {
    AppendEntries(AppendEntriesResponse<TypeConfig>),
    /// The answer to both `Vote` and `PreVote`.
    Vote(VoteResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    SnapshotBegun {
        transfer: u64,
    },
    /// A chunk was written; `received` bytes of the transfer are on the receiver's disk.
    SnapshotChunk {
        received: u64,
    },
    SnapshotInstalled(SnapshotResponse<TypeConfig>),
    /// The reply to a forwarded command, to relay to the client as is.
    Forward(Frame),
    /// The outcome of a forwarded membership change.
    Membership(Result<(), MembershipError>),
    /// The answering node's id and addresses.
    NodeInfo {
        id: NodeId,
        info: NodeInfo,
    },
    /// The request was received but could not be served.
    Error(RemoteError),
    /// The read index of a [`RpcRequest::ReadIndex`].
    ReadIndex {
        index: u64,
    },
    /// The messages of a [`RpcRequest::Publish`] were handed to this node's subscribers.
    Published,
    /// The leader a [`RpcRequest::Leader`] asked for (`None`: the answering node knows none).
    Leader(Option<(NodeId, NodeInfo)>),
    /// Whether the member of a [`RpcRequest::Quiesce`] stopped its ticks.
    Quiesced(bool),
}

/// A failure reported by the remote side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub message: String,
}

/// A client command forwarded from a follower to the leader of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardRequest {
    /// The database selected on the client's connection.
    pub db: u32,
    /// The command and its arguments, as the client sent them.
    pub argv: Vec<Bytes>,
    pub flags: ForwardFlags,
}

/// A write batch forwarded from a follower to the leader of a group: consecutive writes of one
/// client's pipeline, or a MULTI/EXEC transaction with the versions of its WATCHed keys (read
/// on the follower after a read barrier; were one stale it would only make EXEC fail, never
/// succeed wrongly). The leader stamps its own time and seed, as for a write it accepted
/// itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardBatch {
    /// The database selected when the batch starts.
    pub db: u32,
    /// The commands, in order, as the client sent them.
    pub cmds: Vec<Vec<Bytes>>,
    /// Present for MULTI/EXEC (see [`crate::store::WriteBatch::transaction`]).
    pub transaction: Option<Vec<WatchedKey>>,
}

/// How the leader must treat a forwarded command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardFlags(pub u32);

impl ForwardFlags {
    /// A read: served after a linearizable read barrier, not through the log.
    pub const READ: ForwardFlags = ForwardFlags(0);
    /// A write: proposed through the Raft log.
    pub const WRITE: ForwardFlags = ForwardFlags(1);
    /// A cluster-control entry (`argv[0]` its encoding), proposed by the leader as it is.
    pub const CONTROL: ForwardFlags = ForwardFlags(2 | 1);

    /// Whether the command writes.
    pub fn is_write(self) -> bool {
        self.0 & Self::WRITE.0 != 0
    }

    /// Whether it is a control entry.
    pub fn is_control(self) -> bool {
        self.0 & 2 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::type_config::alias::{LeaderIdOf, LogIdOf};
    use openraft::vote::RaftLeaderId;
    use openraft::{Entry, EntryPayload, Membership, StoredMembership};
    use std::collections::{BTreeMap, BTreeSet};

    fn round_trip_req(req: RpcRequest) -> RpcRequest {
        let bytes = postcard::to_allocvec(&req).expect("encode");
        postcard::from_bytes(&bytes).expect("decode")
    }

    fn round_trip_resp(resp: RpcResponse) -> RpcResponse {
        let bytes = postcard::to_allocvec(&resp).expect("encode");
        postcard::from_bytes(&bytes).expect("decode")
    }

    fn log_id(term: u64, index: u64) -> LogIdOf<TypeConfig> {
        openraft::LogId::new(LeaderIdOf::<TypeConfig>::new(term, 1).to_committed(), index)
    }

    /// openraft's messages carry fields with serde defaults and hand-written impls; postcard is
    /// positional, so each message type must survive a round trip unchanged.
    #[test]
    fn openraft_messages_survive_postcard() {
        let vote = VoteOf::<TypeConfig>::new_committed(3, 1);
        let nodes = BTreeMap::from([(1, NodeInfo { raft_addr: "a:1".into(), client_addr: "a:2".into() })]);
        let membership = Membership::new(vec![BTreeSet::from([1])], nodes).expect("membership");
        let entries = vec![
            Entry { log_id: log_id(3, 5), payload: EntryPayload::Blank },
            Entry { log_id: log_id(3, 6), payload: EntryPayload::Membership(membership.clone()) },
        ];
        let append = AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: Some(log_id(2, 4)),
            entries,
            leader_commit: Some(log_id(3, 5)),
        };
        match round_trip_req(RpcRequest::AppendEntries(append.clone())) {
            RpcRequest::AppendEntries(got) => assert_eq!(format!("{got:?}"), format!("{append:?}")),
            other => panic!("{other:?}"),
        }
        let vote_req = VoteRequest::<TypeConfig> { vote, last_log_id: Some(log_id(3, 6)), leadership_transfer: true };
        match round_trip_req(RpcRequest::PreVote(vote_req.clone())) {
            RpcRequest::PreVote(got) => assert_eq!(got, vote_req),
            other => panic!("{other:?}"),
        }
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(log_id(3, 6)),
            last_membership: StoredMembership::new(Some(log_id(3, 6)), membership),
        };
        let finish = RpcRequest::SnapshotFinish { transfer: 9, size: 10, vote, meta: meta.clone() };
        match round_trip_req(finish) {
            RpcRequest::SnapshotFinish { transfer: 9, size: 10, vote: v, meta: m } => {
                assert_eq!((v, m), (vote, meta));
            }
            other => panic!("{other:?}"),
        }
        let resp = AppendEntriesResponse::<TypeConfig>::HigherVote(vote);
        match round_trip_resp(RpcResponse::AppendEntries(resp.clone())) {
            RpcResponse::AppendEntries(got) => assert_eq!(got, resp),
            other => panic!("{other:?}"),
        }
        let installed = SnapshotResponse::<TypeConfig>::new(vote);
        match round_trip_resp(RpcResponse::SnapshotInstalled(installed.clone())) {
            RpcResponse::SnapshotInstalled(got) => assert_eq!(got, installed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forwards_and_replies_survive_postcard() {
        let fwd = ForwardRequest {
            db: 2,
            argv: vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k\r\n\0")],
            flags: ForwardFlags::WRITE,
        };
        assert!(fwd.flags.is_write() && !ForwardFlags::READ.is_write());
        match round_trip_req(RpcRequest::Forward(fwd.clone())) {
            RpcRequest::Forward(got) => assert_eq!(got, fwd),
            other => panic!("{other:?}"),
        }
        let op = MembershipOp::Promote { voters: std::collections::BTreeSet::from([1, 2]), catch_up_ms: 500 };
        match round_trip_req(RpcRequest::Membership(op.clone())) {
            RpcRequest::Membership(got) => assert_eq!(got, op),
            other => panic!("{other:?}"),
        }
        let refused = Err(MembershipError::Invalid("node 9 is not a member".into()));
        match round_trip_resp(RpcResponse::Membership(refused.clone())) {
            RpcResponse::Membership(got) => assert_eq!(got, refused),
            other => panic!("{other:?}"),
        }
        let info = NodeInfo { raft_addr: "a:1".into(), client_addr: "a:2".into() };
        match round_trip_resp(RpcResponse::NodeInfo { id: 7, info: info.clone() }) {
            RpcResponse::NodeInfo { id: 7, info: got } => assert_eq!(got, info),
            other => panic!("{other:?}"),
        }
        assert!(matches!(round_trip_req(RpcRequest::ReadIndex), RpcRequest::ReadIndex));
        assert!(matches!(round_trip_resp(RpcResponse::ReadIndex { index: 42 }), RpcResponse::ReadIndex { index: 42 }));
        let batch = ForwardBatch {
            db: 1,
            cmds: vec![vec![Bytes::from_static(b"INCR"), Bytes::from_static(b"n")]],
            transaction: Some(vec![WatchedKey { db: 1, key: Bytes::from_static(b"w"), version: 9 }]),
        };
        match round_trip_req(RpcRequest::ForwardBatch(batch.clone())) {
            RpcRequest::ForwardBatch(got) => assert_eq!(got, batch),
            other => panic!("{other:?}"),
        }
        let msgs =
            vec![PubMessage { shard: true, channel: Bytes::from_static(b"c"), payload: Bytes::from_static(b"\0m") }];
        match round_trip_req(RpcRequest::Publish(msgs.clone())) {
            RpcRequest::Publish(got) => assert_eq!(got, msgs),
            other => panic!("{other:?}"),
        }
        assert!(matches!(round_trip_resp(RpcResponse::Published), RpcResponse::Published));
        assert!(matches!(round_trip_req(RpcRequest::Leader), RpcRequest::Leader));
        let leader = Some((3, NodeInfo { raft_addr: "a:1".into(), client_addr: "a:2".into() }));
        match round_trip_resp(RpcResponse::Leader(leader.clone())) {
            RpcResponse::Leader(got) => assert_eq!(got, leader),
            other => panic!("{other:?}"),
        }
        let reply = Frame::Array(vec![Frame::Double(1.5), Frame::Null, Frame::Error("ERR x".into())]);
        match round_trip_resp(RpcResponse::Forward(reply.clone())) {
            RpcResponse::Forward(got) => assert_eq!(got, reply),
            other => panic!("{other:?}"),
        }
    }
}
