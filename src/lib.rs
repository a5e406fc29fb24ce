//! raftis: a Redis-compatible key-value server whose writes are replicated with Raft.
//!
//! Map of the modules:
//! - [`protocol`]: RESP2/RESP3 frames, incremental parser, encoder (no I/O).
//! - [`store`]: the keyspace as a pure, deterministic state machine.
//! - [`cmd`]: the command table and one module per command family.
//! - [`script`]: the Lua engine of EVAL (Redis 7.0's environment; no keyspace, no I/O).
//! - [`server`]: listener, connections, pipelining, client state, the engine seam.
//! - [`config`]: every setting (default, config-file key, flag); the config file; the merge.
//! - [`disk`]: the storage seam (real files and a simulated twin with crash semantics).
//! - [`raft`]: replication: log store, state machine, snapshots, RPC, membership and status.
//! - [`cluster`]: the Rust `ClusterNode` API of seed 000 (MetaRaft membership).
//! - [`cnum`]: C's number parsing (`strtod`, `string2d`) where replies depend on it.
//! - [`rt`]: the runtime seam (what differs between tokio and madsim).
//! - [`admin`]: the HTTP admin API and `/metrics`, served on the Raft port.
//! - [`node`]: `start()`, the one entry point used by `main` and by the simulator.

pub mod acl;
pub mod admin;
pub mod cluster;
pub mod cmd;
pub mod cnum;
pub mod config;
pub mod disk;
pub mod node;
pub mod protocol;
pub mod raft;
pub mod rt;
pub mod script;
pub mod server;
pub mod store;

/// The Redis version raftis reports (clients gate features on it; replies follow 7.0).
pub const REDIS_VERSION: &str = "7.0.15";
