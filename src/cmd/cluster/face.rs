//! The Redis Cluster face of today's single Raft group: every one of the 16384 slots belongs
//! to the group, whose leader is the master and whose other voters are its replicas (learners
//! appear in `CLUSTER NODES` as replicas flagged `nofailover`: they hold the data but never
//! lead). Node names are [`node_name`]s; the config epoch is the Raft term; the cluster bus
//! port shown is the node's raft port.

use super::slot::SLOTS;
use crate::protocol::Frame;
use crate::raft::membership::{Member, RaftStatus, Role};
use crate::raft::NodeId;
use bytes::Bytes;
use std::fmt::Write;

/// The 40-hex-digit Redis Cluster node name of node `id`: the id in hex, zero-padded (stable,
/// and the id can be read back from it).
pub fn node_name(id: NodeId) -> String {
    format!("{id:040x}")
}

/// `host` and `port` of a `host:port` address (`[v6]:port` unbracketed); ("", 0) if unknown.
fn split_addr(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            (host, port.parse().unwrap_or(0))
        }
        None => ("", 0),
    }
}

/// Whether the leader sees `m` as reachable (it has acknowledged something); members other
/// than the leader count as connected when this node is not the leader (it cannot tell).
fn connected(st: &RaftStatus, m: &Member) -> bool {
    match &st.replication {
        Some(repl) if m.id != st.id => repl.get(&m.id).is_some_and(|l| l.is_some()),
        _ => true,
    }
}

/// The replication offset shown for `m`: its applied index (this node) or matched index (on
/// the leader), else 0.
fn offset(st: &RaftStatus, m: &Member) -> u64 {
    if m.id == st.id {
        return st.last_applied_index.unwrap_or(0);
    }
    st.replication.as_ref().and_then(|r| r.get(&m.id).copied().flatten()).unwrap_or(0)
}

/// The voters other than the leader, then nothing else: the replicas of CLUSTER SLOTS/SHARDS.
fn replicas(st: &RaftStatus) -> impl Iterator<Item = &Member> {
    st.members.iter().filter(move |m| m.role == Role::Voter && Some(m.id) != st.current_leader)
}

fn leader(st: &RaftStatus) -> Option<&Member> {
    st.current_leader.and_then(|id| st.member(id))
}

/// CLUSTER INFO
pub fn info(st: &RaftStatus) -> Frame {
    let ok = leader(st).is_some();
    let slots_ok = if ok { SLOTS } else { 0 };
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    line("cluster_state", if ok { "ok" } else { "fail" }.into());
    line("cluster_slots_assigned", SLOTS.to_string());
    line("cluster_slots_ok", slots_ok.to_string());
    line("cluster_slots_pfail", "0".into());
    line("cluster_slots_fail", (SLOTS - slots_ok).to_string());
    line("cluster_known_nodes", st.members.len().to_string());
    line("cluster_size", u8::from(ok).to_string());
    line("cluster_current_epoch", st.current_term.to_string());
    line("cluster_my_epoch", st.current_term.to_string());
    line("cluster_stats_messages_sent", "0".into());
    line("cluster_stats_messages_received", "0".into());
    line("total_cluster_links_buffer_limit_exceeded", "0".into());
    Frame::Verbatim(*b"txt", Bytes::from(out))
}

/// CLUSTER NODES: one line per member, ordered by id.
pub fn nodes(st: &RaftStatus, now_ms: u64) -> Frame {
    let master = leader(st).map(|m| m.id);
    let mut out = String::new();
    for m in &st.members {
        let (host, port) = split_addr(&m.client_addr);
        let (_, bus) = split_addr(&m.raft_addr);
        let mut flags = String::new();
        if m.id == st.id {
            flags.push_str("myself,");
        }
        let is_master = master == Some(m.id) || (master.is_none() && m.role == Role::Voter);
        flags.push_str(if is_master { "master" } else { "slave" });
        if m.role == Role::Learner {
            flags.push_str(",nofailover");
        }
        let of = match (is_master, master) {
            (false, Some(id)) => node_name(id),
            _ => "-".into(),
        };
        let pong = if m.id == st.id { 0 } else { now_ms };
        let link = if connected(st, m) { "connected" } else { "disconnected" };
        let _ = write!(out, "{} {host}:{port}@{bus} {flags} {of} 0 {pong} {} {link}", node_name(m.id), st.current_term);
        if master == Some(m.id) {
            let _ = write!(out, " 0-{}", SLOTS - 1);
        }
        out.push('\n');
    }
    Frame::Verbatim(*b"txt", Bytes::from(out))
}

/// One node of a CLUSTER SLOTS range: ip, port, name, and an (empty) map of other endpoints.
fn slots_node(m: &Member) -> Frame {
    let (host, port) = split_addr(&m.client_addr);
    Frame::Array(vec![
        Frame::bulk(host.to_string()),
        Frame::Integer(port as i64),
        Frame::bulk(node_name(m.id)),
        Frame::Map(vec![]),
    ])
}

/// CLUSTER SLOTS: one range, 0-16383, served by the leader and its replicas; empty while no
/// leader is known.
pub fn slots(st: &RaftStatus) -> Frame {
    let Some(master) = leader(st) else { return Frame::Array(vec![]) };
    let mut range = vec![Frame::Integer(0), Frame::Integer(SLOTS as i64 - 1), slots_node(master)];
    range.extend(replicas(st).map(slots_node));
    Frame::Array(vec![Frame::Array(range)])
}

fn shard_node(st: &RaftStatus, m: &Member, role: &str) -> Frame {
    let (host, port) = split_addr(&m.client_addr);
    let b = |s: &str| Frame::bulk(s.to_string());
    Frame::Map(vec![
        (b("id"), b(&node_name(m.id))),
        (b("port"), Frame::Integer(port as i64)),
        (b("ip"), b(host)),
        (b("endpoint"), b(host)),
        (b("role"), b(role)),
        (b("replication-offset"), Frame::Integer(offset(st, m) as i64)),
        (b("health"), b(if connected(st, m) { "online" } else { "failed" })),
    ])
}

/// CLUSTER SHARDS: one shard with every slot, the leader as master and the other voters as
/// replicas; without a leader, no slots and every voter a replica.
pub fn shards(st: &RaftStatus) -> Frame {
    let master = leader(st);
    let slots = match master {
        Some(_) => vec![Frame::Integer(0), Frame::Integer(SLOTS as i64 - 1)],
        None => vec![],
    };
    let mut nodes: Vec<Frame> = master.map(|m| shard_node(st, m, "master")).into_iter().collect();
    nodes.extend(replicas(st).map(|m| shard_node(st, m, "replica")));
    Frame::Array(vec![Frame::Map(vec![
        (Frame::bulk("slots"), Frame::Array(slots)),
        (Frame::bulk("nodes"), Frame::Array(nodes)),
    ])])
}

/// Group `group`'s shard id (CLUSTER MYSHARDID): 40 hex digits, the same on every node.
pub fn shard_name(group: u64) -> String {
    crate::store::scripts::sha1_hex(format!("raftis data group {group}").as_bytes())
}

/// CLUSTER LINKS: a link to and one from every node of `peers` but `me`. raftis multiplexes
/// every group over one connection per peer pair and does not record when it opened
/// (`create-time` 0) nor measure its buffers (0).
pub fn links(me: NodeId, peers: &[NodeId]) -> Frame {
    let b = |s: &str| Frame::bulk(s.to_string());
    let link = |id: NodeId, direction: &str, events: &str| {
        Frame::Map(vec![
            (b("direction"), b(direction)),
            (b("node"), b(&node_name(id))),
            (b("create-time"), Frame::Integer(0)),
            (b("events"), b(events)),
            (b("send-buffer-allocated"), Frame::Integer(0)),
            (b("send-buffer-used"), Frame::Integer(0)),
        ])
    };
    let peers = peers.iter().filter(|id| **id != me);
    Frame::Array(peers.flat_map(|id| [link(*id, "to", "rw"), link(*id, "from", "r")]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn member(id: NodeId, role: Role) -> Member {
        Member {
            id,
            role,
            raft_addr: format!("127.0.0.1:{}", 8000 + id),
            client_addr: format!("127.0.0.1:{}", 7000 + id),
        }
    }

    fn status(me: NodeId, leader: Option<NodeId>) -> RaftStatus {
        RaftStatus {
            id: me,
            state: if leader == Some(me) { "leader" } else { "follower" }.into(),
            current_term: 4,
            current_leader: leader,
            last_log_index: Some(10),
            committed_index: Some(10),
            last_applied_index: Some(9),
            snapshot_index: None,
            purged_index: None,
            members: vec![member(1, Role::Voter), member(2, Role::Voter), member(3, Role::Learner)],
            replication: (leader == Some(me)).then(|| BTreeMap::from([(1, Some(10)), (2, Some(8)), (3, None)])),
            failed: false,
        }
    }

    fn text(f: Frame) -> String {
        match f {
            Frame::Verbatim(_, b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_are_40_hex_digits() {
        assert_eq!(node_name(1), format!("{}1", "0".repeat(39)));
        assert_eq!(node_name(u64::MAX).len(), 40);
    }

    #[test]
    fn nodes_lines_follow_redis() {
        let out = text(nodes(&status(1, Some(1)), 5));
        let lines: Vec<&str> = out.lines().collect();
        let n1 = node_name(1);
        assert_eq!(lines[0], format!("{n1} 127.0.0.1:7001@8001 myself,master - 0 0 4 connected 0-16383"));
        assert_eq!(lines[1], format!("{} 127.0.0.1:7002@8002 slave {n1} 0 5 4 connected", node_name(2)));
        assert_eq!(lines[2], format!("{} 127.0.0.1:7003@8003 slave,nofailover {n1} 0 5 4 disconnected", node_name(3)));
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn info_slots_and_shards_describe_one_group() {
        let st = status(2, Some(1));
        let info_text = text(info(&st));
        assert!(info_text.starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n"));
        assert!(info_text.contains("cluster_known_nodes:3\r\ncluster_size:1\r\ncluster_current_epoch:4\r\n"));
        let Frame::Array(ranges) = slots(&st) else { panic!() };
        let Frame::Array(range) = &ranges[0] else { panic!() };
        assert_eq!(range.len(), 4, "the range, the master and one replica (learners are not replicas)");
        assert_eq!(range[..2], [Frame::Integer(0), Frame::Integer(16383)]);
        assert_eq!(
            range[2],
            Frame::Array(vec![
                Frame::bulk("127.0.0.1"),
                Frame::Integer(7001),
                Frame::bulk(node_name(1)),
                Frame::Map(vec![])
            ])
        );
        let Frame::Array(shards) = shards(&st) else { panic!() };
        let Frame::Map(shard) = &shards[0] else { panic!() };
        assert_eq!(shard[0].1, Frame::Array(vec![Frame::Integer(0), Frame::Integer(16383)]));
        let Frame::Array(nodes) = &shard[1].1 else { panic!() };
        assert_eq!(nodes.len(), 2);
        let no_leader = status(2, None);
        assert!(text(info(&no_leader)).starts_with("cluster_state:fail\r\n"));
        assert_eq!(slots(&no_leader), Frame::Array(vec![]));
    }
}
