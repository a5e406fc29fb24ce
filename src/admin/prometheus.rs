//! `GET /metrics`: the node's Raft figures and server counters in the Prometheus / OpenMetrics
//! text format, built with `prometheus-client` from one [`RaftStatus`] reading and the server's
//! [`Stats`](crate::server::Stats) at the moment of the scrape.

use crate::raft::membership::RaftStatus;
use crate::server::{Shared, Stats};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the per-follower and per-group figures.
type FollowerLabels = Vec<(String, String)>;

/// Renders every figure of the node as OpenMetrics text.
pub fn render(status: &RaftStatus, shared: &Shared) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("raftis");
    raft_figures(&mut reg, status);
    server_figures(&mut reg, shared);
    let proposed = shared.engine.replica().proposal_counts();
    counter(&mut reg, "raft_proposals", "Log entries this node proposed for writes", proposed.proposals);
    counter(&mut reg, "raft_proposed_writes", "Writes those entries carried (grouped)", proposed.writes);
    let idle_rounds = shared.engine.replica().log_idle_rounds();
    counter(&mut reg, "raft_log_idle_rounds", "Log flusher rounds run by the runtime thread when idle", idle_rounds);
    if shared.cluster.is_some() {
        group_figures(&mut reg, shared);
    }
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}

fn gauge(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    reg.register(name, help, g);
}

fn counter(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    reg.register(name, help, c);
}

fn raft_figures(reg: &mut Registry, st: &RaftStatus) {
    gauge(reg, "raft_node_id", "This node's id", st.id);
    gauge(reg, "raft_is_leader", "1 if this node leads its Raft group", u64::from(st.is_leader()));
    gauge(reg, "raft_leader_id", "Id of the leader this node knows (0: none)", st.current_leader.unwrap_or(0));
    gauge(reg, "raft_term", "Current Raft term", st.current_term);
    gauge(reg, "raft_last_log_index", "Index of the last log entry", st.last_log_index.unwrap_or(0));
    gauge(reg, "raft_committed_index", "Highest index known committed", st.committed_index.unwrap_or(0));
    gauge(reg, "raft_applied_index", "Index of the last applied entry", st.last_applied_index.unwrap_or(0));
    gauge(reg, "raft_snapshot_index", "Last index covered by the snapshot", st.snapshot_index.unwrap_or(0));
    gauge(reg, "raft_purged_index", "Last log index purged after a snapshot", st.purged_index.unwrap_or(0));
    gauge(reg, "raft_members", "Members of the cluster (voters and learners)", st.members.len() as u64);
    gauge(reg, "raft_failed", "1 if Raft stopped on a fatal error", u64::from(st.failed));
    if let Some(replication) = &st.replication {
        let matched = Family::<FollowerLabels, Gauge>::default();
        let lag = Family::<FollowerLabels, Gauge>::default();
        for (id, index) in replication.iter().filter(|(id, _)| **id != st.id) {
            let labels = vec![("follower".to_string(), id.to_string())];
            let index = index.unwrap_or(0);
            matched.get_or_create(&labels).set(i64::try_from(index).unwrap_or(i64::MAX));
            lag.get_or_create(&labels).set(i64::try_from(st.lag_behind(index)).unwrap_or(i64::MAX));
        }
        reg.register("raft_follower_matched_index", "Last index each follower acknowledged (leader only)", matched);
        reg.register("raft_follower_lag", "Entries each follower is behind the leader's log (leader only)", lag);
    }
}

/// Multi-raft: each Raft group's figures, labelled `group` (0 is MetaRaft).
fn group_figures(reg: &mut Registry, shared: &Shared) {
    let family = || Family::<FollowerLabels, Gauge>::default();
    let (leader, term, commit, applied, last, keys) = (family(), family(), family(), family(), family(), family());
    let set = |f: &Family<FollowerLabels, Gauge>, labels: &FollowerLabels, v: u64| {
        f.get_or_create(labels).set(i64::try_from(v).unwrap_or(i64::MAX));
    };
    for (g, replica) in shared.engine.groups() {
        let st = replica.status();
        let labels = vec![("group".to_string(), g.to_string())];
        set(&leader, &labels, u64::from(st.is_leader()));
        set(&term, &labels, st.current_term);
        set(&commit, &labels, st.committed_index.unwrap_or(0));
        set(&applied, &labels, st.last_applied_index.unwrap_or(0));
        set(&last, &labels, st.last_log_index.unwrap_or(0));
        let n: usize = shared.engine.with_keyspace_of(*g, |ks| ks.dbs().iter().map(|db| db.len()).sum());
        set(&keys, &labels, n as u64);
    }
    reg.register("raft_group_is_leader", "1 if this node leads the Raft group", leader);
    reg.register("raft_group_term", "Current term of the Raft group", term);
    reg.register("raft_group_committed_index", "Highest index of the group known committed", commit);
    reg.register("raft_group_applied_index", "Last applied index of the group", applied);
    reg.register("raft_group_last_log_index", "Last log index of the group", last);
    reg.register("raft_group_keys", "Keys in this node's copy of the group", keys);
}

fn server_figures(reg: &mut Registry, shared: &Shared) {
    let s = &shared.stats;
    gauge(reg, "connected_clients", "Client connections open now", shared.clients().len() as u64);
    counter(reg, "connections_received", "Client connections accepted", Stats::get(&s.connections_received));
    counter(reg, "commands_processed", "Commands processed", Stats::get(&s.commands_processed));
    counter(reg, "rejected_connections", "Connections refused (maxclients)", Stats::get(&s.rejected_connections));
    counter(reg, "keyspace_hits", "Reads that found their key", Stats::get(&s.keyspace_hits));
    counter(reg, "keyspace_misses", "Reads that did not find their key", Stats::get(&s.keyspace_misses));
    counter(reg, "expired_keys", "Keys deleted by expiry", Stats::get(&s.expired_keys));
    counter(reg, "net_input_bytes", "Bytes read from clients", Stats::get(&s.net_input_bytes));
    counter(reg, "net_output_bytes", "Bytes written to clients", Stats::get(&s.net_output_bytes));
    let keys = crate::server::memory::key_count(shared);
    gauge(reg, "keys", "Keys in all databases of this node's copies (every group it holds)", keys);
}
