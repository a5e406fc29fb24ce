//! The table of settings: for each, its config-file key (and aliases), its flag, its help
//! line, how to show its value and how to set it from text. The file loader and the flags
//! both go through [`Setting::set`], so a value means the same wherever it is written.

use super::file::{parse_bool, parse_size};
use super::Config;
use std::path::PathBuf;

/// How many arguments a key takes in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly one.
    One,
    /// Exactly one `yes`/`no` in the file; the flag may omit it (`--cluster-enabled` = yes).
    Bool,
    /// One or more, joined with spaces (`save 900 1 300 10`).
    Rest,
}

/// One setting of a node.
pub struct Setting {
    /// The config-file key (lower case).
    pub key: &'static str,
    /// Other config-file keys for the same setting (Redis's name, seed 003's name).
    pub aliases: &'static [&'static str],
    /// The long flag, without `--`.
    pub flag: &'static str,
    /// What the value looks like, for `--help`.
    pub value_name: &'static str,
    /// One line for `--help` and the docs.
    pub help: &'static str,
    pub arity: Arity,
    /// The default in words, where the value itself says too little (empty means "automatic").
    pub default_text: Option<&'static str>,
    /// The value as text.
    pub get: fn(&Config) -> String,
    /// Sets the value from text; `Err` says why the text is not a valid value.
    pub set: fn(&mut Config, &str) -> Result<(), String>,
}

impl Setting {
    /// Whether `key` (lower case) names this setting.
    pub fn is_named(&self, key: &str) -> bool {
        self.key == key || self.aliases.contains(&key)
    }

    /// The default as shown in `--help` and the docs.
    pub fn default_shown(&self) -> String {
        if let Some(text) = self.default_text {
            return text.to_string();
        }
        match (self.get)(&Config::default()) {
            v if v.is_empty() => "none".to_string(),
            v => v,
        }
    }
}

/// The setting a config-file key names.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.is_named(key))
}

fn int<T: std::str::FromStr + PartialOrd + std::fmt::Display>(v: &str, min: T, max: T) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("must be an integer between {min} and {max}")),
    }
}

/// Stores a parsed value (keeps the table's setters on one line each).
fn put<T>(slot: &mut T, value: Result<T, String>) -> Result<(), String> {
    *slot = value?;
    Ok(())
}

fn one_of(v: &str, allowed: &[&str]) -> Result<String, String> {
    let lower = v.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        return Ok(lower);
    }
    Err(format!("must be one of: {}", allowed.join(", ")))
}

/// `notify-keyspace-events` letters, with Redis's error.
pub fn notify_flags(v: &str) -> Result<u32, String> {
    crate::store::notify::parse_flags(v).ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// `HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address. Returns the host and the port.
pub fn split_bind(v: &str) -> Result<(String, Option<u16>), String> {
    if v.is_empty() {
        return Err("must be a host or host:port".into());
    }
    if let Some(rest) = v.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or("must be [ipv6]:port")?;
        return Ok((host.to_string(), Some(int(port, 0, u16::MAX)?)));
    }
    match v.split_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((_, rest)) if rest.contains(':') => Ok((v.to_string(), None)),
        Some((host, port)) if !host.is_empty() => Ok((host.to_string(), Some(int(port, 0, u16::MAX)?))),
        Some(_) => Err("must be a host or host:port".into()),
        None => Ok((v.to_string(), None)),
    }
}

/// An address peers dial: `host:port` with a port, or empty for "automatic".
fn host_port(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Ok(String::new());
    }
    match split_bind(v)? {
        (_, Some(_)) => Ok(v.to_string()),
        (_, None) => Err("must be host:port".into()),
    }
}

/// `save`: "" or pairs of "<seconds> <changes>".
fn save(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len().is_multiple_of(2) && parts.iter().all(|p| p.parse::<u64>().is_ok()) {
        return Ok(parts.join(" "));
    }
    Err("must be \"\" or pairs of <seconds> <changes>".into())
}

const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Redis's log levels, mapped onto tracing levels by [`super::tracing_filter`].
pub const LOG_LEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];

/// Every setting, in `--help` order.
pub static SETTINGS: &[Setting] = &[
    Setting {
        key: "bind",
        aliases: &["binding"],
        flag: "bind",
        value_name: "HOST[:PORT]",
        help: "address clients connect to (a port here sets port too)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.bind.clone(),
        set: |c, v| {
            let (host, port) = split_bind(v)?;
            c.bind = host;
            if let Some(port) = port {
                c.port = port;
            }
            Ok(())
        },
    },
    Setting {
        key: "port",
        aliases: &[],
        flag: "port",
        value_name: "PORT",
        help: "port clients connect to (0 picks a free one)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.port.to_string(),
        set: |c, v| put(&mut c.port, int(v, 0, u16::MAX)),
    },
    Setting {
        key: "raft-data-dir",
        aliases: &["db-path", "dir"],
        flag: "data-dir",
        value_name: "DIR",
        help: "the node's data directory (Raft log and snapshots)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.data_dir.display().to_string(),
        set: |c, v| match v {
            "" => Err("must not be empty".into()),
            _ => put(&mut c.data_dir, Ok(PathBuf::from(v))),
        },
    },
    Setting {
        key: "raft-node-id",
        aliases: &["node-id"],
        flag: "node-id",
        value_name: "N",
        help: "this node's Raft id, unique in its cluster",
        arity: Arity::One,
        default_text: None,
        get: |c| c.node_id.to_string(),
        set: |c, v| put(&mut c.node_id, int(v, 0, u64::MAX)),
    },
    Setting {
        key: "raft-addr",
        aliases: &[],
        flag: "raft-addr",
        value_name: "HOST:PORT",
        help: "where the internal Raft RPC listens (peers need a fixed one)",
        arity: Arity::One,
        default_text: Some("client host, a free port"),
        get: |c| c.raft_addr.clone(),
        set: |c, v| put(&mut c.raft_addr, host_port(v)),
    },
    Setting {
        key: "raft-resp-addr",
        aliases: &[],
        flag: "raft-resp-addr",
        value_name: "HOST:PORT",
        help: "client address advertised to peers",
        arity: Arity::One,
        default_text: Some("the listening client address"),
        get: |c| c.raft_resp_addr.clone(),
        set: |c, v| put(&mut c.raft_resp_addr, host_port(v)),
    },
    Setting {
        key: "admin-addr",
        aliases: &[],
        flag: "admin-addr",
        value_name: "HOST:PORT",
        help: "also serve the HTTP admin API here (it always answers on raft-addr)",
        arity: Arity::One,
        default_text: Some("none"),
        get: |c| c.admin_addr.clone(),
        set: |c, v| put(&mut c.admin_addr, host_port(v)),
    },
    Setting {
        key: "cluster-enabled",
        aliases: &[],
        flag: "cluster-enabled",
        value_name: "yes|no",
        help: "Redis Cluster face: DB 0 only, CLUSTER commands",
        arity: Arity::Bool,
        default_text: None,
        get: |c| yes_no(c.cluster_enabled),
        set: |c, v| put(&mut c.cluster_enabled, parse_bool(v)),
    },
    Setting {
        key: "is-bootstrap",
        aliases: &[],
        flag: "is-bootstrap",
        value_name: "yes|no",
        help: "with an empty log, become a one-member cluster (no: wait to be joined)",
        arity: Arity::Bool,
        default_text: Some("yes; no if cluster-enabled"),
        get: |c| yes_no(c.is_bootstrap()),
        set: |c, v| put(&mut c.is_bootstrap, parse_bool(v).map(Some)),
    },
    Setting {
        key: "raft-heartbeat-ms",
        aliases: &[],
        flag: "raft-heartbeat-ms",
        value_name: "MS",
        help: "interval of the leader's heartbeats",
        arity: Arity::One,
        default_text: None,
        get: |c| c.raft_heartbeat_ms.to_string(),
        set: |c, v| put(&mut c.raft_heartbeat_ms, int(v, 1, 3_600_000)),
    },
    Setting {
        key: "raft-quiesce-ms",
        aliases: &[],
        flag: "raft-quiesce-ms",
        value_name: "MS",
        help: "a Raft group idle this long stops its heartbeats and election timers (0: never)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.raft_quiesce_ms.to_string(),
        set: |c, v| put(&mut c.raft_quiesce_ms, int(v, 0, 3_600_000)),
    },
    Setting {
        key: "raft-election-timeout-min-ms",
        aliases: &[],
        flag: "raft-election-timeout-min-ms",
        value_name: "MS",
        help: "least wait for a leader before an election (> heartbeat)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.raft_election_timeout_min_ms.to_string(),
        set: |c, v| put(&mut c.raft_election_timeout_min_ms, int(v, 1, 3_600_000)),
    },
    Setting {
        key: "raft-election-timeout-max-ms",
        aliases: &[],
        flag: "raft-election-timeout-max-ms",
        value_name: "MS",
        help: "most wait for a leader before an election (> the min)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.raft_election_timeout_max_ms.to_string(),
        set: |c, v| put(&mut c.raft_election_timeout_max_ms, int(v, 1, 3_600_000)),
    },
    Setting {
        key: "raft-leader-wait-ms",
        aliases: &[],
        flag: "raft-leader-wait-ms",
        value_name: "MS",
        help: "how long a request waits for a leader to be elected before -CLUSTERDOWN",
        arity: Arity::One,
        default_text: None,
        get: |c| c.raft_leader_wait_ms.to_string(),
        set: |c, v| put(&mut c.raft_leader_wait_ms, int(v, 1, 3_600_000)),
    },
    Setting {
        key: "raft-write-timeout-ms",
        aliases: &[],
        flag: "raft-write-timeout-ms",
        value_name: "MS",
        help: "deadline of a write (or its forwarding to the leader) before -TRYAGAIN",
        arity: Arity::One,
        default_text: None,
        get: |c| c.raft_write_timeout_ms.to_string(),
        set: |c, v| put(&mut c.raft_write_timeout_ms, int(v, 1, 3_600_000)),
    },
    Setting {
        key: "raft-read-timeout-ms",
        aliases: &[],
        flag: "raft-read-timeout-ms",
        value_name: "MS",
        help: "deadline of a linearizable read's leadership confirmation before -CLUSTERDOWN",
        arity: Arity::One,
        default_text: None,
        get: |c| c.raft_read_timeout_ms.to_string(),
        set: |c, v| put(&mut c.raft_read_timeout_ms, int(v, 1, 3_600_000)),
    },
    Setting {
        key: "snapshot-logs",
        aliases: &[],
        flag: "snapshot-logs",
        value_name: "N",
        help: "snapshot and purge the log every N applied entries",
        arity: Arity::One,
        default_text: None,
        get: |c| c.snapshot_logs.to_string(),
        set: |c, v| put(&mut c.snapshot_logs, int(v, 1, u64::MAX)),
    },
    Setting {
        key: "num-groups",
        aliases: &[],
        flag: "num-groups",
        value_name: "N",
        help: "data Raft groups of a cluster besides MetaRaft (cluster mode; 0: one group holds everything)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.num_groups.to_string(),
        set: |c, v| put(&mut c.num_groups, int(v, 0, 1024)),
    },
    Setting {
        key: "group-replicas",
        aliases: &[],
        flag: "group-replicas",
        value_name: "N",
        help: "voters of each data group (capped by the number of nodes)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.group_replicas.to_string(),
        set: |c, v| put(&mut c.group_replicas, int(v, 1, 16)),
    },
    Setting {
        key: "requirepass",
        aliases: &[],
        flag: "requirepass",
        value_name: "PASS",
        help: "password clients must give with AUTH",
        arity: Arity::One,
        default_text: None,
        get: |c| c.requirepass.clone(),
        set: |c, v| put(&mut c.requirepass, Ok(v.to_string())),
    },
    Setting {
        key: "aclfile",
        aliases: &[],
        flag: "aclfile",
        value_name: "FILE",
        help: "file of ACL users for ACL SAVE and ACL LOAD (ACL LOAD replicates what it read)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.aclfile.clone(),
        set: |c, v| put(&mut c.aclfile, Ok(v.to_string())),
    },
    Setting {
        key: "maxclients",
        aliases: &[],
        flag: "maxclients",
        value_name: "N",
        help: "maximum simultaneous client connections",
        arity: Arity::One,
        default_text: None,
        get: |c| c.maxclients.to_string(),
        set: |c, v| put(&mut c.maxclients, int(v, 1, u32::MAX as usize)),
    },
    Setting {
        key: "timeout",
        aliases: &[],
        flag: "timeout",
        value_name: "SECS",
        help: "close clients idle this long (0 = never)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.timeout_secs.to_string(),
        set: |c, v| put(&mut c.timeout_secs, int(v, 0, i32::MAX as u64)),
    },
    Setting {
        key: "databases",
        aliases: &[],
        flag: "databases",
        value_name: "N",
        help: "number of databases outside cluster mode",
        arity: Arity::One,
        default_text: None,
        get: |c| c.databases.to_string(),
        set: |c, v| put(&mut c.databases, int(v, 1, 65_536)),
    },
    Setting {
        key: "io-threads",
        aliases: &[],
        flag: "io-threads",
        value_name: "N",
        help: "threads serving clients and Raft (the log flusher has its own besides)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.io_threads.to_string(),
        set: |c, v| put(&mut c.io_threads, int(v, 1, 128)),
    },
    Setting {
        key: "proto-max-bulk-len",
        aliases: &[],
        flag: "proto-max-bulk-len",
        value_name: "SIZE",
        help: "largest bulk string a client may send",
        arity: Arity::One,
        default_text: Some("512mb"),
        get: |c| c.proto_max_bulk_len.to_string(),
        set: |c, v| match parse_size(v)? {
            n if n < 1024 * 1024 || n > i64::MAX as u64 => Err("must be at least 1mb".into()),
            n => put(&mut c.proto_max_bulk_len, Ok(n as i64)),
        },
    },
    Setting {
        key: "client-query-buffer-limit",
        aliases: &[],
        flag: "client-query-buffer-limit",
        value_name: "SIZE",
        help: "a client whose incomplete command grows past SIZE is disconnected",
        arity: Arity::One,
        default_text: Some("1gb"),
        get: |c| c.client_query_buffer_limit.to_string(),
        set: |c, v| match parse_size(v)? {
            n if n < 1024 * 1024 || n > i64::MAX as u64 => Err("must be at least 1mb".into()),
            n => put(&mut c.client_query_buffer_limit, Ok(n)),
        },
    },
    Setting {
        key: "maxmemory",
        aliases: &["memory"],
        flag: "maxmemory",
        value_name: "SIZE",
        help: "memory limit, 0 = none: past it writes get -OOM or the leader evicts keys (maxmemory-policy)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.maxmemory.to_string(),
        set: |c, v| put(&mut c.maxmemory, parse_size(v)),
    },
    Setting {
        key: "maxmemory-policy",
        aliases: &[],
        flag: "maxmemory-policy",
        value_name: "POLICY",
        help: "what to do past maxmemory: noeviction (-OOM) or evict (allkeys-/volatile- lru, lfu, random; volatile-ttl)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.maxmemory_policy.clone(),
        set: |c, v| put(&mut c.maxmemory_policy, one_of(v, POLICIES)),
    },
    Setting {
        key: "maxmemory-samples",
        aliases: &[],
        flag: "maxmemory-samples",
        value_name: "N",
        help: "keys sampled per eviction victim",
        arity: Arity::One,
        default_text: None,
        get: |c| c.maxmemory_samples.to_string(),
        set: |c, v| put(&mut c.maxmemory_samples, int(v, 1, i32::MAX as usize)),
    },
    Setting {
        key: "client-output-buffer-limit",
        aliases: &[],
        flag: "client-output-buffer-limit",
        value_name: "\"CLASS HARD SOFT SECS ...\"",
        help: "output limits per client class (normal, replica, pubsub); the pubsub class is enforced: a subscriber past its hard limit, or past its soft limit for longer than SECS, is disconnected. Each line or group sets one class",
        arity: Arity::Rest,
        default_text: None,
        get: |c| c.output_limits.to_string(),
        set: |c, v| c.output_limits.set(v),
    },
    Setting {
        key: "notify-keyspace-events",
        aliases: &[],
        flag: "notify-keyspace-events",
        value_name: "CLASSES",
        help: "keyspace notifications, Redis's letters (K E g $ l s h z x e t m d n A); empty = off",
        arity: Arity::One,
        default_text: Some("\"\""),
        get: |c| crate::store::notify::flags_to_string(c.notify_keyspace_events),
        set: |c, v| put(&mut c.notify_keyspace_events, notify_flags(v)),
    },
    Setting {
        key: "save",
        aliases: &[],
        flag: "save",
        value_name: "\"SECS CHANGES ...\"",
        help: "Redis's RDB schedule (reported only)",
        arity: Arity::Rest,
        default_text: Some("\"\""),
        get: |c| c.save.clone(),
        set: |c, v| put(&mut c.save, save(v)),
    },
    Setting {
        key: "appendonly",
        aliases: &[],
        flag: "appendonly",
        value_name: "yes|no",
        help: "Redis's AOF switch (reported only)",
        arity: Arity::Bool,
        default_text: None,
        get: |c| yes_no(c.appendonly),
        set: |c, v| put(&mut c.appendonly, parse_bool(v)),
    },
    Setting {
        key: "appendfsync",
        aliases: &[],
        flag: "appendfsync",
        value_name: "POLICY",
        help: "Redis's AOF fsync policy (reported only; raftis always syncs)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.appendfsync.clone(),
        set: |c, v| put(&mut c.appendfsync, one_of(v, &["everysec", "always", "no"])),
    },
    Setting {
        key: "loglevel",
        aliases: &[],
        flag: "loglevel",
        value_name: "LEVEL",
        help: "debug, verbose, notice or warning (--log-level wins)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.loglevel.clone(),
        set: |c, v| put(&mut c.loglevel, one_of(v, LOG_LEVELS)),
    },
    Setting {
        key: "log-dir",
        aliases: &[],
        flag: "log-dir",
        value_name: "DIR",
        help: "log to DIR/raftis-node<id>.log (appended), not stderr",
        arity: Arity::One,
        default_text: Some("none"),
        get: |c| c.log_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
        set: |c, v| match v {
            "" => Err("must not be empty".into()),
            _ => put(&mut c.log_dir, Ok(Some(PathBuf::from(v)))),
        },
    },
    Setting {
        key: "logfile",
        aliases: &[],
        flag: "logfile",
        value_name: "FILE",
        help: "append logs to FILE (wins over log-dir); empty: stderr",
        arity: Arity::One,
        default_text: Some("\"\""),
        get: |c| c.logfile.clone(),
        set: |c, v| put(&mut c.logfile, Ok(v.to_string())),
    },
    Setting {
        key: "seed",
        aliases: &[],
        flag: "seed",
        value_name: "N",
        help: "seed of the node's random source (0 = draw one at start)",
        arity: Arity::One,
        default_text: None,
        get: |c| c.seed.to_string(),
        set: |c, v| put(&mut c.seed, int(v, 0, u64::MAX)),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_aliases_and_flags_are_unique() {
        let mut names: Vec<&str> =
            SETTINGS.iter().flat_map(|s| std::iter::once(s.key).chain(s.aliases.iter().copied())).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a config key is used twice");
        let mut flags: Vec<&str> = SETTINGS.iter().map(|s| s.flag).collect();
        flags.sort_unstable();
        flags.dedup();
        assert_eq!(flags.len(), SETTINGS.len(), "a flag is used twice");
    }

    #[test]
    fn every_default_reads_back() {
        // Setting a setting to its shown value must succeed (docs and --help show real values).
        for s in SETTINGS {
            let mut c = Config::default();
            let v = (s.get)(&c);
            if !v.is_empty() {
                assert_eq!((s.set)(&mut c, &v), Ok(()), "{}", s.key);
                assert_eq!((s.get)(&c), v, "{}", s.key);
            }
        }
    }

    #[test]
    fn bind_takes_host_or_host_port() {
        assert_eq!(split_bind("127.0.0.1"), Ok(("127.0.0.1".into(), None)));
        assert_eq!(split_bind("127.0.0.1:6379"), Ok(("127.0.0.1".into(), Some(6379))));
        assert_eq!(split_bind("::1"), Ok(("::1".into(), None)));
        assert_eq!(split_bind("[::1]:7000"), Ok(("::1".into(), Some(7000))));
        assert!(split_bind("host:notaport").is_err());
        assert!(split_bind("host:70000").is_err());
        assert!(split_bind(":6379").is_err());
        assert!(split_bind("").is_err());
    }

    #[test]
    fn values_are_validated() {
        let set = |key: &str, v: &str| (find(key).unwrap().set)(&mut Config::default(), v);
        assert!(set("port", "65536").is_err());
        assert!(set("port", "-1").is_err());
        assert!(set("maxclients", "0").is_err());
        assert!(set("io-threads", "0").is_err());
        assert!(set("io-threads", "many").is_err());
        assert!(set("raft-addr", "127.0.0.1").is_err());
        assert!(set("raft-addr", "").is_ok());
        assert!(set("appendfsync", "sometimes").is_err());
        assert!(set("save", "900").is_err());
        assert!(set("proto-max-bulk-len", "1k").is_err());
        assert!(set("client-query-buffer-limit", "1k").is_err());
        assert!(set("client-query-buffer-limit", "2mb").is_ok());
        assert!(set("loglevel", "loud").is_err());
        assert!(set("dir", "").is_err());
        let mut c = Config::default();
        (find("memory").unwrap().set)(&mut c, "1GB").unwrap();
        assert_eq!(c.maxmemory, 1 << 30);
        (find("binding").unwrap().set)(&mut c, "0.0.0.0:7000").unwrap();
        assert_eq!((c.bind.as_str(), c.port), ("0.0.0.0", 7000));
    }
}
