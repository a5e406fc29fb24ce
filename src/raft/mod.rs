//! Raft replication. So far: the write-ahead log ([`wal`]) on the disk seam; the openraft
//! type config, state machine glue, snapshots and RPC arrive with the replicated node.

pub mod wal;
