//! Raft replication, built from: the openraft type configuration ([`types`]); the write-ahead
//! log ([`wal`]) on the disk seam and openraft's log storage over it ([`log_store`]); the
//! state machine ([`state_machine`]) with its streamed snapshots ([`snapshot`],
//! [`snapshot_file`]); the internal binary RPC ([`rpc`]) and openraft's network over it
//! ([`network`]); [`node`], which puts them together into one running Raft group (its
//! linearizable reads share confirmation rounds through [`read_batch`], the writes of many
//! clients share log entries through [`proposer`]); [`membership`]: cluster membership
//! changes and the status figures operators see; [`events`]: the log lines for leadership and
//! membership changes; [`waiters`]: this node's clients blocked in a group's replicated queue,
//! and the delivery of their replies; [`broadcast`]: Pub/Sub messages sent to the other
//! nodes over the RPC port (not the log); and [`notify`]: keyspace notifications of applied
//! entries, delivered to this node's subscribers.

pub mod broadcast;
pub mod events;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod node;
pub mod notify;
pub mod proposer;
pub mod quiesce;
pub mod read_batch;
pub mod rpc;
pub mod snapshot;
pub mod snapshot_file;
pub mod state_machine;
pub mod types;
pub mod waiters;
pub mod wal;

pub mod control;

pub use types::{Control, ImportItem, NodeId, NodeInfo, Request, TypeConfig};
