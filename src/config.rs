//! Every setting of a node: its default and the name `CONFIG GET/SET` knows it by.
//! (Command-line flags and the config file arrive with the operations issue; `main.rs`
//! maps the flags that exist today onto this struct.)

use std::path::PathBuf;

/// A node's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address clients connect to (host part).
    pub bind: String,
    /// Port clients connect to; 0 picks a free port (tests).
    pub port: u16,
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// Password required by AUTH; empty means none.
    pub requirepass: String,
    /// Maximum simultaneous client connections.
    pub maxclients: usize,
    /// Close a client idle for this many seconds (0 = never).
    pub timeout_secs: u64,
    /// Number of databases outside cluster mode.
    pub databases: usize,
    /// Largest bulk string a client may send.
    pub proto_max_bulk_len: i64,
    /// Redis Cluster face: DB 0 only, CLUSTER commands, `cluster_enabled:1`.
    pub cluster_enabled: bool,
    /// Seed of the node's random source (0 = draw one at start).
    pub seed: u64,
    /// Redis's `save` schedule. Stored and reported only: raftis persists through its log.
    pub save: String,
    /// Redis's `appendonly`. Stored and reported only.
    pub appendonly: bool,
    /// Redis's `appendfsync`. Stored and reported only.
    pub appendfsync: String,
    /// Redis's `maxmemory` in bytes (0 = none). Stored and reported only: no eviction yet.
    pub maxmemory: u64,
    /// Redis's `maxmemory-policy`. Stored and reported only.
    pub maxmemory_policy: String,
    /// Redis's `loglevel`. Stored and reported only (logging is set by `--log-level`).
    pub loglevel: String,
    /// This node's Raft id (unique in its cluster).
    pub node_id: u64,
    /// Where the internal Raft RPC listens (`host:port`); empty means the client host with
    /// a free port, which suits a single node (peers need a fixed address).
    pub raft_addr: String,
    /// Build a snapshot, and purge the log it covers, every this many applied entries.
    pub snapshot_logs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            data_dir: PathBuf::from("./data"),
            requirepass: String::new(),
            maxclients: 10000,
            timeout_secs: 0,
            databases: crate::store::DEFAULT_DATABASES,
            proto_max_bulk_len: 512 * 1024 * 1024,
            cluster_enabled: false,
            seed: 0,
            save: String::new(),
            appendonly: false,
            appendfsync: "everysec".into(),
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            loglevel: "notice".into(),
            node_id: 1,
            raft_addr: String::new(),
            snapshot_logs: 10_000,
        }
    }
}
