//! Raft replication. So far: the openraft type configuration ([`types`]), the
//! write-ahead log ([`wal`]) on the disk seam, the state machine ([`state_machine`]) and its
//! streamed snapshots ([`snapshot`]); RPC arrives with the replicated node.

pub mod snapshot;
pub mod snapshot_file;
pub mod state_machine;
pub mod types;
pub mod wal;

pub use types::{NodeId, NodeInfo, Request, TypeConfig};
