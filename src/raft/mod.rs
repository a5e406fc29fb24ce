//! Raft replication. So far: the openraft type configuration ([`types`]), the write-ahead log
//! ([`wal`]) on the disk seam and openraft's log storage over it ([`log_store`]), the state
//! machine ([`state_machine`]) and its streamed snapshots ([`snapshot`]). The internal RPC and
//! the wiring into `node::start` arrive with the replicated node.

pub mod log_store;
pub mod snapshot;
pub mod snapshot_file;
pub mod state_machine;
pub mod types;
pub mod wal;

pub use types::{NodeId, NodeInfo, Request, TypeConfig};
