//! INFO [section ...]: Redis's `# Section` blocks of `field:value` lines (CRLF), with real
//! figures where raftis has them and Redis's neutral values where it has no equivalent.

use super::{secs_since, Session};
use crate::rt::memory::AllocatorStats;
use crate::server::memory::figures;
use crate::server::{Shared, Stats};
use bytes::Bytes;
use std::fmt::Write;

use crate::protocol::Frame;

/// Sections in Redis's order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// What `all` and `everything` add to the default sections (as Redis).
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats"];

/// INFO [section ...]
pub fn info(s: &mut Session, argv: &[Bytes]) -> Frame {
    let mut wanted: Vec<&str> = Vec::new();
    let defaults = SECTIONS.iter().filter(|s| !NOT_DEFAULT.contains(s));
    if argv.len() == 1 {
        wanted.extend(defaults.clone());
    }
    for a in &argv[1..] {
        let name = String::from_utf8_lossy(a).to_ascii_lowercase();
        match name.as_str() {
            "default" => wanted.extend(defaults.clone()),
            "all" | "everything" => wanted.extend(SECTIONS),
            other => {
                if let Some(sec) = SECTIONS.iter().find(|s| **s == other) {
                    wanted.push(sec);
                }
            }
        }
    }
    let mut out = String::new();
    for sec in SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section(&mut out, sec, s.shared);
    }
    Frame::Verbatim(*b"txt", Bytes::from(out))
}

/// Appends one section: its title and `field:value\r\n` lines.
fn section(out: &mut String, name: &str, shared: &Shared) {
    let title = match name {
        "cpu" => "CPU".to_string(),
        "commandstats" => "Commandstats".to_string(),
        other => {
            let mut t = other.to_string();
            t[..1].make_ascii_uppercase();
            t
        }
    };
    let _ = write!(out, "# {title}\r\n");
    let lines: Vec<(String, String)> = match name {
        "server" => own(server(shared)),
        "clients" => own(clients(shared)),
        "memory" => own(memory(shared)),
        "persistence" => own(persistence(shared)),
        "stats" => own(stats(shared)),
        "replication" => replication(shared),
        "cpu" => own(cpu()),
        "cluster" => cluster(shared),
        "keyspace" => keyspace(shared),
        "commandstats" => commandstats(shared),
        "errorstats" => errorstats(shared),
        "latencystats" => latencystats(shared),
        _ => Vec::new(),
    };
    for (k, v) in lines {
        let _ = write!(out, "{k}:{v}\r\n");
    }
}

type Lines = Vec<(&'static str, String)>;

fn own(lines: Lines) -> Vec<(String, String)> {
    lines.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn server(shared: &Shared) -> Lines {
    let uptime = secs_since(shared.started_ms);
    let cluster = shared.config().cluster_enabled;
    vec![
        ("redis_version", crate::REDIS_VERSION.into()),
        ("redis_git_sha1", "00000000".into()),
        ("redis_git_dirty", "0".into()),
        ("redis_mode", if cluster { "cluster" } else { "standalone" }.into()),
        ("os", format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)),
        ("arch_bits", (usize::BITS).to_string()),
        ("multiplexing_api", "tokio".into()),
        ("process_id", std::process::id().to_string()),
        ("run_id", run_id(shared)),
        ("tcp_port", shared.port.to_string()),
        ("server_time_usec", (crate::server::now_ms() * 1000).to_string()),
        ("uptime_in_seconds", uptime.to_string()),
        ("uptime_in_days", (uptime / 86400).to_string()),
        ("hz", "10".into()),
        ("configured_hz", "10".into()),
        ("executable", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()),
        ("config_file", String::new()),
        ("raftis_version", env!("CARGO_PKG_VERSION").into()),
    ]
}

/// A stable 40-hex-digit id for this process (Redis's run_id is random per start).
fn run_id(shared: &Shared) -> String {
    let seed = crate::store::key_hash(format!("{}-{}", std::process::id(), shared.started_ms).as_bytes());
    (0..5u64).map(|i| format!("{:08x}", (seed.rotate_left(i as u32 * 13) ^ i) as u32)).collect()
}

/// Clients blocked on keys, in every group of this node (each group keeps its own).
fn blocked_clients(shared: &Shared) -> usize {
    shared.engine.groups().values().map(|r| r.waiters().blocked_count()).sum()
}

fn clients(shared: &Shared) -> Lines {
    let n = shared.clients().len();
    let max = shared.config().maxclients;
    vec![
        ("connected_clients", n.to_string()),
        ("cluster_connections", "0".into()),
        ("maxclients", max.to_string()),
        ("client_recent_max_input_buffer", "0".into()),
        ("client_recent_max_output_buffer", "0".into()),
        ("blocked_clients", blocked_clients(shared).to_string()),
        ("tracking_clients", shared.tracking.counts().0.to_string()),
        ("clients_in_timeout_table", "0".into()),
    ]
}

/// Redis's `bytesToHuman`.
fn human(n: u64) -> String {
    let f = n as f64;
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.2}K", f / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.2}M", f / 1_048_576.0),
        _ => format!("{:.2}G", f / 1_073_741_824.0),
    }
}

/// Redis's ratios are C floats shown with two decimals.
fn ratio(a: u64, b: u64) -> String {
    format!("{:.2}", a as f32 / b.max(1) as f32)
}

/// Signed difference, as Redis prints its `*_bytes` overheads.
fn diff(a: u64, b: u64) -> String {
    (a as i128 - b as i128).to_string()
}

fn memory(shared: &Shared) -> Lines {
    let m = figures(shared);
    // Without the allocator's figures (tests in one process, the simulator) the estimate
    // stands in for them.
    let a = m.allocator.unwrap_or(AllocatorStats {
        allocated: m.used,
        active: m.used,
        resident: m.rss,
        mapped: m.rss,
        retained: 0,
    });
    let (maxmemory, policy) = {
        let c = shared.config();
        (c.maxmemory, c.maxmemory_policy.clone())
    };
    let net = m.used.saturating_sub(m.startup).max(1);
    vec![
        ("used_memory", m.used.to_string()),
        ("used_memory_human", human(m.used)),
        ("used_memory_rss", m.rss.to_string()),
        ("used_memory_rss_human", human(m.rss)),
        ("used_memory_peak", m.peak.to_string()),
        ("used_memory_peak_human", human(m.peak)),
        ("used_memory_peak_perc", format!("{:.2}%", m.used as f32 * 100.0 / m.peak.max(1) as f32)),
        ("used_memory_overhead", m.startup.to_string()),
        ("used_memory_startup", m.startup.to_string()),
        ("used_memory_dataset", m.dataset().to_string()),
        ("used_memory_dataset_perc", format!("{:.2}%", m.dataset() as f32 * 100.0 / net as f32)),
        ("allocator_allocated", a.allocated.to_string()),
        ("allocator_active", a.active.to_string()),
        ("allocator_resident", a.resident.to_string()),
        ("maxmemory", maxmemory.to_string()),
        ("maxmemory_human", human(maxmemory)),
        ("maxmemory_policy", policy),
        ("allocator_frag_ratio", ratio(a.active, a.allocated)),
        ("allocator_frag_bytes", diff(a.active, a.allocated)),
        ("allocator_rss_ratio", ratio(a.resident, a.active)),
        ("allocator_rss_bytes", diff(a.resident, a.active)),
        ("rss_overhead_ratio", ratio(m.rss, a.resident)),
        ("rss_overhead_bytes", diff(m.rss, a.resident)),
        ("mem_fragmentation_ratio", ratio(m.rss, m.used)),
        ("mem_fragmentation_bytes", diff(m.rss, m.used)),
        ("mem_not_counted_for_evict", m.not_counted.to_string()),
        ("mem_allocator", crate::rt::memory::allocator_name()),
    ]
}

fn persistence(shared: &Shared) -> Lines {
    // Every group holding keys counts its own changes.
    let groups: Vec<u64> = shared.engine.keyspace_groups().map(|r| r.group()).collect();
    let dirty: u64 = groups.iter().map(|g| shared.engine.with_keyspace_of(*g, |ks| ks.dirty)).sum();
    let appendonly = shared.config().appendonly;
    vec![
        ("loading", "0".into()),
        ("async_loading", "0".into()),
        ("rdb_changes_since_last_save", dirty.to_string()),
        ("rdb_bgsave_in_progress", "0".into()),
        ("rdb_last_save_time", (shared.started_ms / 1000).to_string()),
        ("rdb_last_bgsave_status", "ok".into()),
        ("rdb_last_bgsave_time_sec", "-1".into()),
        ("rdb_current_bgsave_time_sec", "-1".into()),
        ("aof_enabled", u8::from(appendonly).to_string()),
        ("aof_rewrite_in_progress", "0".into()),
        ("aof_rewrite_scheduled", "0".into()),
        ("aof_last_bgrewrite_status", "ok".into()),
        ("aof_last_write_status", "ok".into()),
    ]
}

fn stats(shared: &Shared) -> Lines {
    let s = &shared.stats;
    let g = |c| Stats::get(c).to_string();
    let tracking = shared.tracking.counts();
    vec![
        ("total_connections_received", g(&s.connections_received)),
        ("total_commands_processed", g(&s.commands_processed)),
        ("instantaneous_ops_per_sec", "0".into()),
        ("total_net_input_bytes", g(&s.net_input_bytes)),
        ("total_net_output_bytes", g(&s.net_output_bytes)),
        ("rejected_connections", g(&s.rejected_connections)),
        ("expired_keys", g(&s.expired_keys)),
        ("evicted_keys", g(&s.evicted_keys)),
        ("keyspace_hits", g(&s.keyspace_hits)),
        ("keyspace_misses", g(&s.keyspace_misses)),
        ("pubsub_channels", shared.pubsub.channel_count().to_string()),
        ("pubsub_patterns", shared.pubsub.pattern_count().to_string()),
        ("pubsub_messages_dropped", shared.engine.replica().publish_dropped().to_string()),
        ("latest_fork_usec", "0".into()),
        ("total_forks", "0".into()),
        ("tracking_total_keys", tracking.1.to_string()),
        ("tracking_total_items", tracking.2.to_string()),
        ("tracking_total_prefixes", tracking.3.to_string()),
        ("unexpected_error_replies", "0".into()),
        ("total_error_replies", shared.latency.error_replies().to_string()),
    ]
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..` for
/// every command run or refused on this node since the last CONFIG RESETSTAT.
fn commandstats(shared: &Shared) -> Vec<(String, String)> {
    let stats = shared.latency.command_stats();
    stats
        .into_iter()
        .map(|(name, s)| {
            let per_call = if s.calls == 0 { 0.0 } else { s.usec as f64 / s.calls as f64 };
            let value = format!(
                "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                s.calls, s.usec, s.rejected, s.failed
            );
            (format!("cmdstat_{name}"), value)
        })
        .collect()
}

/// `errorstat_<CODE>:count=N` for each error code replied since the last CONFIG RESETSTAT.
fn errorstats(shared: &Shared) -> Vec<(String, String)> {
    let codes = shared.latency.error_codes();
    codes.into_iter().map(|(code, n)| (format!("errorstat_{code}"), format!("count={n}"))).collect()
}

/// `latency_percentiles_usec_<name>:p50=..,p99=..` at `latency-tracking-info-percentiles`.
/// Each value is the upper bound of the histogram bucket holding that percentile (the buckets
/// LATENCY HISTOGRAM prints, doubling): coarser than Redis's two significant digits.
fn latencystats(shared: &Shared) -> Vec<(String, String)> {
    let wanted = crate::config::reported::find(b"latency-tracking-info-percentiles")
        .map(|r| shared.config().reported.get(r))
        .unwrap_or_default();
    // Kept as Redis shows them (`%f`, trailing zeros trimmed).
    let percentiles: Vec<(&str, f64)> = wanted.split(' ').filter_map(|p| p.parse().ok().map(|v| (p, v))).collect();
    let histograms = shared.latency.histograms(|_| true);
    histograms
        .into_iter()
        .map(|(name, h)| {
            let values: Vec<String> =
                percentiles.iter().map(|(text, p)| format!("p{text}={:.3}", h.value_at_percentile(*p))).collect();
            (format!("latency_percentiles_usec_{name}"), values.join(","))
        })
        .collect()
}

/// ROLE, from the node's Raft role in its (first) group: the leader is Redis's master, with
/// each other member as a replica at the log index it holds (`ip`, `port`, offset); a follower
/// is a replica of the leader (`connected` while it knows one), at its applied index.
pub fn role(shared: &Shared) -> Frame {
    let st = shared.engine.replica().status();
    let bulk = |s: String| Frame::Bulk(Bytes::from(s));
    if st.is_leader() {
        let replicas = replicas(&st)
            .into_iter()
            .map(|(host, port, matched)| {
                Frame::Array(vec![bulk(host), bulk(port), bulk(matched.unwrap_or(0).to_string())])
            })
            .collect();
        let offset = st.last_log_index.unwrap_or(0) as i64;
        return Frame::Array(vec![bulk("master".into()), Frame::Integer(offset), Frame::Array(replicas)]);
    }
    let leader = st.current_leader.and_then(|id| st.member(id));
    let (host, port) = leader.map(|m| host_port(&m.client_addr)).unwrap_or_default();
    let state = if leader.is_some() { "connected" } else { "connect" };
    Frame::Array(vec![
        bulk("slave".into()),
        bulk(host),
        Frame::Integer(port.parse().unwrap_or(0)),
        bulk(state.into()),
        Frame::Integer(st.last_applied_index.unwrap_or(0) as i64),
    ])
}

/// On the leader: each other member as a replica, its client host and port and the log index
/// it holds (`None` until it has answered), for INFO replication and ROLE.
fn replicas(st: &crate::raft::membership::RaftStatus) -> Vec<(String, String, Option<u64>)> {
    let members = st.members.iter().filter(|m| m.id != st.id);
    members
        .map(|m| {
            let (host, port) = host_port(&m.client_addr);
            let matched = st.replication.as_ref().and_then(|r| r.get(&m.id).copied().flatten());
            (host, port, matched)
        })
        .collect()
}

/// Host and port of a `host:port` address (empty and 0 if unknown).
fn host_port(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']').to_string(), p.to_string()),
        None => (String::new(), "0".into()),
    }
}

/// Redis's replication fields from the Raft group: the leader is the master, every other
/// node a replica of it. `master_repl_offset` and the offsets are Raft log indexes; a
/// replica line's `lag` is in log entries behind the leader (Redis counts seconds there).
/// The `raft_*` lines give the Raft figures themselves (`raft_proposed_writes` over
/// `raft_proposals` is how many clients' writes shared a log entry, on average;
/// `raft_log_idle_rounds` counts the log syncs the runtime thread ran in its idle time).
fn replication(shared: &Shared) -> Vec<(String, String)> {
    let st = shared.engine.replica().status();
    let idx = |i: Option<u64>| i.unwrap_or(0).to_string();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_string(), v));
    let leader = st.current_leader.and_then(|id| st.member(id));
    if st.is_leader() {
        put("role", "master".into());
        let followers = replicas(&st);
        put("connected_slaves", followers.len().to_string());
        for (i, (host, port, matched)) in followers.into_iter().enumerate() {
            let state = if matched.is_some() { "online" } else { "wait_bgsave" };
            let offset = matched.unwrap_or(0);
            let lag = st.lag_behind(offset);
            put(&format!("slave{i}"), format!("ip={host},port={port},state={state},offset={offset},lag={lag}"));
        }
    } else {
        put("role", "slave".into());
        let (host, port) = leader.map(|m| host_port(&m.client_addr)).unwrap_or_default();
        put("master_host", host);
        put("master_port", if port.is_empty() { "0".into() } else { port });
        put("master_link_status", if leader.is_some() { "up" } else { "down" }.into());
        put("master_last_io_seconds_ago", if leader.is_some() { "0" } else { "-1" }.into());
        put("master_sync_in_progress", "0".into());
        put("slave_read_repl_offset", idx(st.last_log_index));
        put("slave_repl_offset", idx(st.last_applied_index));
        put("slave_priority", "100".into());
        put("slave_read_only", "1".into());
        put("replica_announced", "1".into());
        put("connected_slaves", "0".into());
    }
    put("master_failover_state", "no-failover".into());
    put("master_replid", format!("{:040x}", st.current_leader.unwrap_or(0)));
    put("master_replid2", "0".repeat(40));
    put("master_repl_offset", idx(st.last_log_index));
    put("second_repl_offset", "-1".into());
    put("repl_backlog_active", "0".into());
    put("repl_backlog_size", "1048576".into());
    put("repl_backlog_first_byte_offset", "0".into());
    put("repl_backlog_histlen", "0".into());
    put("raft_node_id", st.id.to_string());
    put("raft_state", st.state.clone());
    put("raft_leader_id", st.current_leader.map_or("-".into(), |id| id.to_string()));
    put("raft_term", st.current_term.to_string());
    put("raft_commit_index", idx(st.committed_index));
    put("raft_applied_index", idx(st.last_applied_index));
    put("raft_last_log_index", idx(st.last_log_index));
    put("raft_snapshot_index", idx(st.snapshot_index));
    put("raft_voters", st.voter_ids().len().to_string());
    put("raft_members", st.members.len().to_string());
    let proposed = shared.engine.replica().proposal_counts();
    put("raft_proposals", proposed.proposals.to_string());
    put("raft_proposed_writes", proposed.writes.to_string());
    put("raft_log_idle_rounds", shared.engine.replica().log_idle_rounds().to_string());
    // Quiet groups (`raft::quiesce`): this node's groups quiet now, and how many times any of
    // them went quiet.
    let groups = shared.engine.groups().values();
    put("raft_quiet_groups", groups.clone().filter(|r| r.is_quiet()).count().to_string());
    put("raft_quiesced", groups.map(|r| r.times_quiet()).sum::<u64>().to_string());
    if let Some(repl) = &st.replication {
        for (id, matched) in repl.iter().filter(|(id, _)| **id != st.id) {
            let lag = matched.map_or("-".into(), |m| st.lag_behind(m).to_string());
            put(&format!("raft_follower_{id}"), format!("matched={},lag={lag}", idx(*matched)));
        }
    }
    out
}

/// `cluster_enabled`, then on a multi-raft node one line per Raft group of the node:
/// `raft_group_<g>:state=..,leader=..,term=..,commit=..,applied=..,last_log=..,voters=..,
/// owned_epoch=..,keys=..,quiet=..` (group 0 is MetaRaft; `owned_epoch` is the config epoch under
/// which a data group's log last recorded its slots, 0 before that; `keys` counts this node's
/// copy; `quiet` is 1 while this node's ticks of the group are off, `raft::quiesce`).
fn cluster(shared: &Shared) -> Vec<(String, String)> {
    let mut out = vec![("cluster_enabled".to_string(), u8::from(shared.config().cluster_enabled).to_string())];
    if shared.cluster.is_none() {
        return out;
    }
    for (g, replica) in shared.engine.groups() {
        let st = replica.status();
        let idx = |i: Option<u64>| i.unwrap_or(0);
        let leader = st.current_leader.map_or("-".into(), |id| id.to_string());
        let epoch = replica.control().owned.map_or(0, |o| o.epoch);
        let keys: usize = shared.engine.with_keyspace_of(*g, |ks| ks.dbs().iter().map(|db| db.len()).sum());
        out.push((
            format!("raft_group_{g}"),
            format!(
                "state={},leader={leader},term={},commit={},applied={},last_log={},voters={},owned_epoch={epoch},keys={keys},quiet={}",
                st.state,
                st.current_term,
                idx(st.committed_index),
                idx(st.last_applied_index),
                idx(st.last_log_index),
                st.voter_ids().len(),
                u8::from(replica.is_quiet()),
            ),
        ));
    }
    out
}

/// CPU seconds from /proc/self/stat (utime, stime in clock ticks, assumed 100 per second).
fn cpu() -> Lines {
    let (user, sys) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? / 100.0, f.get(12)?.parse::<f64>().ok()? / 100.0))
        })
        .unwrap_or((0.0, 0.0));
    vec![
        ("used_cpu_sys", format!("{sys:.6}")),
        ("used_cpu_user", format!("{user:.6}")),
        ("used_cpu_sys_children", "0.000000".into()),
        ("used_cpu_user_children", "0.000000".into()),
    ]
}

/// `db<i>:keys=..`: of this node's keyspace; in a multi-raft cluster, summed over the data
/// groups this node leads, as a Redis Cluster master answers for its own slots (DB 0 only),
/// like DBSIZE.
fn keyspace(shared: &Shared) -> Vec<(String, String)> {
    let line = |keys: usize, expires: usize| format!("keys={keys},expires={expires},avg_ttl=0");
    if let Some(cluster) = &shared.cluster {
        let (mut keys, mut expires) = (0, 0);
        for group in cluster.led_groups() {
            shared.engine.with_keyspace_of(group, |ks| {
                if let Some(db) = ks.dbs().first() {
                    keys += db.len();
                    expires += db.expires_count();
                }
            });
        }
        return if keys == 0 { vec![] } else { vec![("db0".into(), line(keys, expires))] };
    }
    shared.engine.with_keyspace(|ks| {
        ks.dbs()
            .iter()
            .enumerate()
            .filter(|(_, db)| !db.is_empty())
            .map(|(i, db)| (format!("db{i}"), line(db.len(), db.expires_count())))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_follow_redis() {
        assert_eq!(human(512), "512B");
        assert_eq!(human(1536), "1.50K");
        assert_eq!(human(3 * 1_048_576), "3.00M");
    }
}
