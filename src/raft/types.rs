//! The openraft type configuration of raftis: what a log entry carries ([`Request`]), what
//! applying it returns (a RESP [`Frame`]; for a group of writes, an array of their replies),
//! how nodes are identified and addressed ([`NodeInfo`]), and which async runtime drives Raft
//! (`crate::rt::Runtime`: tokio, or madsim in simulation).

use crate::protocol::Frame;
use crate::store::WriteBatch;
use serde::{Deserialize, Serialize};

/// A node's id (as in `--node-id`).
pub type NodeId = u64;

/// How to reach a node: its internal RPC address and its client (RESP) address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub raft_addr: String,
    pub client_addr: String,
}

/// The application payload of a log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// A write (or a MULTI/EXEC transaction) against the keyspace.
    Write(WriteBatch),
    /// The writes of several clients proposed together (`super::proposer`), applied in
    /// order; the entry's reply is an array holding each write's reply, in the same order.
    Group(Vec<WriteBatch>),
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Write(batch) => batch.fmt(f),
            Request::Group(batches) => write!(f, "group of {} writes", batches.len()),
        }
    }
}

openraft::declare_raft_types!(
    /// raftis's Raft types.
    pub TypeConfig:
        D = Request,
        R = Frame,
        NodeId = NodeId,
        Node = NodeInfo,
        AsyncRuntime = crate::rt::Runtime,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_postcard() {
        let req = Request::Write(WriteBatch {
            db: 3,
            now_ms: 1_700_000_000_000,
            seed: 42,
            cmds: vec![vec![bytes::Bytes::from_static(b"SET"), bytes::Bytes::from_static(b"k\0\r\n")]],
            transaction: None,
        });
        let bytes = postcard::to_allocvec(&req).expect("encode");
        assert_eq!(postcard::from_bytes::<Request>(&bytes).expect("decode"), req);
        assert_eq!(req.to_string(), "write(db=3, t=1700000000000, [SET])");
    }
}
