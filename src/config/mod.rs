//! Every setting of a node ([`Config`]) and where it comes from: defaults, then a
//! redis.conf-style config file ([`file`]), then command-line flags ([`flags`]); later sources
//! win. The table of settings ([`settings::SETTINGS`]) gives each one its config-file key,
//! its flag and its help line. `main.rs` calls [`load`] and gets a ready [`Config`].

pub mod file;
pub mod flags;
pub mod output_limits;
pub mod reported;
pub mod settings;

pub use file::{FileError, LineError};
pub use flags::{load, load_file, Startup};
pub use output_limits::{ClassLimit, OutputLimits};
pub use settings::{Setting, SETTINGS};

use std::path::PathBuf;

/// Default of [`Config::io_threads`]. One, as in Redis: measured on a 2-core machine with a
/// 50-client durable-SET benchmark sharing it (docs/PERFORMANCE.md), a second runtime thread
/// added cross-thread wake-ups (context switches per write 0.52 against 0.35) and no
/// throughput.
pub const DEFAULT_IO_THREADS: usize = 1;

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
    /// ACL SAVE / ACL LOAD's file ("": none).
    pub aclfile: String,
    /// Maximum simultaneous client connections.
    pub maxclients: usize,
    /// Close a client idle for this many seconds (0 = never).
    pub timeout_secs: u64,
    /// Number of databases outside cluster mode.
    pub databases: usize,
    /// Threads of the async runtime that serve clients and Raft (Redis's `io-threads`). The
    /// log flusher has a thread of its own besides. With one (the default) the runtime is
    /// single-threaded and, while the node is alone in its group, syncs the log itself when idle
    /// (`crate::rt::on_runtime_idle`).
    pub io_threads: usize,
    /// Largest bulk string a client may send.
    pub proto_max_bulk_len: i64,
    /// Redis's `client-query-buffer-limit`: a client whose unparsed input (an incomplete
    /// command) grows past this many bytes is disconnected.
    pub client_query_buffer_limit: u64,
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
    /// Redis's `maxmemory` in bytes (0 = none): past it, writes that grow memory are refused
    /// with `-OOM` or make the leader evict keys, per `maxmemory_policy`.
    pub maxmemory: u64,
    /// Redis's `maxmemory-policy`: `noeviction` or one of the seven eviction policies.
    pub maxmemory_policy: String,
    /// Redis's `maxmemory-samples`: keys sampled per victim by the LRU, LFU and TTL policies.
    pub maxmemory_samples: usize,
    /// Redis's `client-output-buffer-limit`; the normal and pubsub classes are enforced.
    pub output_limits: OutputLimits,
    /// Redis's `notify-keyspace-events` as flags (`store::notify`; 0: off).
    pub notify_keyspace_events: u32,
    /// Redis's `loglevel`: sets the log level at start (see [`tracing_filter`]) unless
    /// `--log-level` is given. Changing it at run time is reported only.
    pub loglevel: String,
    /// Where the log file goes (`<log_dir>/raftis-node<id>.log`); `None` = standard error.
    pub log_dir: Option<PathBuf>,
    /// Redis's `logfile`: the log file itself (appended); empty = `log_dir`, else standard
    /// error. Wins over `log_dir`.
    pub logfile: String,
    /// This node's Raft id (unique in its cluster).
    pub node_id: u64,
    /// Where the internal Raft RPC listens (`host:port`); empty means the client host with
    /// a free port, which suits a single node (peers need a fixed address).
    pub raft_addr: String,
    /// The client address (`host:port`) other nodes learn for this node (redirects, CLUSTER
    /// replies); empty means the address the client listener got.
    pub raft_resp_addr: String,
    /// An extra address serving only the HTTP admin API (`host:port`); empty: none. The API
    /// always answers on `raft_addr` too.
    pub admin_addr: String,
    /// With an empty log, initialize a one-member cluster of this node; `None` means "yes
    /// unless `cluster_enabled`" (see [`Config::is_bootstrap`]).
    pub is_bootstrap: Option<bool>,
    /// Interval of the leader's heartbeats, in ms.
    pub raft_heartbeat_ms: u64,
    /// Shortest wait without hearing from a leader before calling an election, in ms.
    pub raft_election_timeout_min_ms: u64,
    /// Longest such wait, in ms (each node draws its timeout between the two).
    pub raft_election_timeout_max_ms: u64,
    /// A Raft group idle this long stops its heartbeats and election timers, watched by a
    /// node-level failure detector instead (`raft::quiesce`); 0: never. Default 2000.
    pub raft_quiesce_ms: u64,
    /// Build a snapshot, and purge the log it covers, every this many applied entries.
    pub snapshot_logs: u64,
    /// How long a client request waits for a leader to be elected before `-CLUSTERDOWN`, in ms.
    pub raft_leader_wait_ms: u64,
    /// Deadline of a write (proposal, or forwarding to the leader) before `-TRYAGAIN`, in ms.
    pub raft_write_timeout_ms: u64,
    /// Deadline of a linearizable read barrier before `-CLUSTERDOWN`, in ms.
    pub raft_read_timeout_ms: u64,
    /// Data Raft groups of a cluster (`cluster_enabled` only): MetaRaft (group 0) plus this many
    /// data groups sharing the 16384 slots. 0 keeps the single-group cluster (group 0 holds
    /// the data and every slot), as before multi-raft.
    pub num_groups: u32,
    /// Voters of each data group (capped by the number of nodes).
    pub group_replicas: u32,
    /// Redis parameters accepted and reported without effect ([`reported`]).
    pub reported: reported::ReportedValues,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            data_dir: PathBuf::from("./data"),
            requirepass: String::new(),
            aclfile: String::new(),
            maxclients: 10000,
            timeout_secs: 0,
            databases: crate::store::DEFAULT_DATABASES,
            io_threads: DEFAULT_IO_THREADS,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1 << 30,
            cluster_enabled: false,
            seed: 0,
            save: String::new(),
            appendonly: false,
            appendfsync: "everysec".into(),
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            maxmemory_samples: 5,
            output_limits: OutputLimits::default(),
            notify_keyspace_events: 0,
            loglevel: "notice".into(),
            log_dir: None,
            logfile: String::new(),
            node_id: 1,
            raft_addr: String::new(),
            raft_resp_addr: String::new(),
            admin_addr: String::new(),
            is_bootstrap: None,
            raft_heartbeat_ms: 50,
            raft_quiesce_ms: 2000,
            raft_election_timeout_min_ms: 300,
            raft_election_timeout_max_ms: 600,
            snapshot_logs: 10_000,
            raft_leader_wait_ms: 5_000,
            raft_write_timeout_ms: 10_000,
            raft_read_timeout_ms: 5_000,
            num_groups: 4,
            group_replicas: 3,
            reported: reported::ReportedValues::default(),
        }
    }
}

impl Config {
    /// Whether a node with an empty log initializes a one-member cluster of itself: as set, or
    /// else yes for a single node and no with `cluster_enabled` (a cluster's other nodes wait
    /// to be joined, e.g. by `POST /raft/init` or `add_learner` on a member).
    pub fn is_bootstrap(&self) -> bool {
        self.is_bootstrap.unwrap_or(!self.cluster_enabled)
    }

    /// The data groups this node runs: `num_groups` in cluster mode, none otherwise.
    pub fn data_groups(&self) -> u32 {
        if self.cluster_enabled {
            self.num_groups
        } else {
            0
        }
    }

    /// Checks what single values cannot: the Raft timers must be ordered as openraft needs.
    pub fn validate(&self) -> Result<(), String> {
        let (hb, min, max) =
            (self.raft_heartbeat_ms, self.raft_election_timeout_min_ms, self.raft_election_timeout_max_ms);
        if min <= hb {
            return Err(format!("raft-election-timeout-min-ms ({min}) must be greater than raft-heartbeat-ms ({hb})"));
        }
        if max <= min {
            return Err(format!(
                "raft-election-timeout-max-ms ({max}) must be greater than raft-election-timeout-min-ms ({min})"
            ));
        }
        Ok(())
    }
}

/// The tracing filter for a Redis `loglevel` word: `debug` is tracing's `trace` (everything),
/// `verbose` its `debug`, `notice` its `info`, `warning` its `warn`. Below `debug`, openraft's
/// own chatter (a line per election step, whole state structs) stays one level quieter than
/// raftis's: at `notice`, the default, only its warnings show, as Redis logs only events.
pub fn tracing_filter(loglevel: &str) -> &'static str {
    match loglevel {
        "debug" => "trace",
        "verbose" => "debug,openraft=info",
        "warning" => "warn",
        _ => "info,openraft=warn",
    }
}

/// Why a node cannot start with the configuration it was given.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags, or `--help` / `--version` (print it with `exit()`).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}
