//! Raft replication. So far: the openraft type configuration ([`types`]) and the
//! write-ahead log ([`wal`]) on the disk seam; the openraft
//! type config, state machine glue, snapshots and RPC arrive with the replicated node.

pub mod network;
pub mod rpc;
pub mod snapshot_file;
pub mod types;
pub mod wal;

pub use types::{NodeId, NodeInfo, Request, TypeConfig};
