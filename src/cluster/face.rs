//! The Redis Cluster face of a multi-raft cluster: `CLUSTER SLOTS / SHARDS / NODES / INFO /
//! MYID / MYSHARDID / LINKS / KEYSLOT / COUNTKEYSINSLOT / GETKEYSINSLOT` describe the real
//! groups. Each data
//! group is a shard: its leader is the master, its other voters the replicas. In `CLUSTER
//! NODES` a node is a master with the slots of the groups it leads; a node that leads none is
//! shown as a replica of the leader of its first group. Epochs are the map's config epoch.
//! `CLUSTER METARAFT` is not here: it acts on group 0 as before (`cmd::cluster::metaraft`).

use super::groups::Groups;
use super::map::ClusterMap;
use crate::cmd::cluster::face::{links, node_name, shard_name};
use crate::cmd::cluster::slot::{self, SLOTS};
use crate::protocol::Frame;
use crate::raft::{NodeId, NodeInfo};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// One data group as this node sees it.
struct Shard {
    ranges: Vec<(u16, u16)>,
    leader: Option<NodeId>,
    voters: BTreeSet<NodeId>,
}

/// The shards of `map`, with the leaders and voters this node's replicas know.
fn shards_of(groups: &Groups, map: &ClusterMap) -> BTreeMap<u64, Shard> {
    map.groups
        .iter()
        .map(|(g, placement)| {
            let replica = groups.group(*g);
            let leader = groups.leader_of(*g).map(|(id, _)| id);
            // A node moved out of a group may never learn the membership that left it out:
            // its copy speaks for the group only while the map names it there or a move runs.
            let current = placement.voters.contains(&groups.id) || map.moves.contains_key(g);
            let voters = match replica.filter(|r| current && r.is_member()) {
                Some(r) => r.membership_ids().0,
                None => placement.voters.clone(),
            };
            (*g, Shard { ranges: map.ranges_of(*g), leader, voters })
        })
        .collect()
}

/// `host` and `port` of a `host:port` address; ("", 0) if unknown.
fn split_addr(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            (host, port.parse().unwrap_or(0))
        }
        None => ("", 0),
    }
}

fn node_of(map: &ClusterMap, id: NodeId) -> NodeInfo {
    map.nodes.get(&id).cloned().unwrap_or_default()
}

/// Runs a Redis Cluster subcommand (`argv[1]`) on a multi-raft node; `None` for a subcommand
/// this face does not answer (the caller's own handling applies).
pub fn command(groups: &Groups, argv: &[Bytes], now_ms: u64) -> Option<Frame> {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "info" | "myid" | "myshardid" | "links" | "nodes" | "slots" | "shards" => 2,
        "countkeysinslot" => 3,
        "getkeysinslot" => 4,
        _ => return None,
    };
    if argv.len() != arity {
        return Some(Frame::error(format!("ERR wrong number of arguments for 'cluster|{sub}' command")));
    }
    let map = groups.map();
    Some(match (sub.as_str(), map) {
        ("myid", _) => Frame::bulk(node_name(groups.id)),
        ("myshardid", map) => Frame::bulk(shard_name(my_shard(groups, map.as_deref()))),
        ("links", map) => {
            let peers: Vec<NodeId> = map.map(|m| m.nodes.keys().copied().collect()).unwrap_or_default();
            links(groups.id, &peers)
        }
        ("countkeysinslot", map) => {
            in_slot_group(groups, map.as_deref(), &argv[2], |ks| slot::countkeysinslot(ks, now_ms, argv))
        }
        ("getkeysinslot", map) => {
            in_slot_group(groups, map.as_deref(), &argv[2], |ks| slot::getkeysinslot(ks, now_ms, argv))
        }
        ("info", map) => info(groups, map.as_deref()),
        (_, None) => match sub.as_str() {
            "nodes" => Frame::Verbatim(*b"txt", Bytes::new()),
            _ => Frame::Array(vec![]),
        },
        ("slots", Some(map)) => slots(&map, &shards_of(groups, &map)),
        ("shards", Some(map)) => shards(&map, &shards_of(groups, &map)),
        (_, Some(map)) => nodes(groups.id, &map, &shards_of(groups, &map), now_ms),
    })
}

/// Runs `f` on the keyspace of the group that owns the slot argument `arg` (the group's
/// state on this node; an empty keyspace answers for a slot of a group this node lacks).
fn in_slot_group(
    groups: &Groups,
    map: Option<&ClusterMap>,
    arg: &[u8],
    f: impl FnOnce(&crate::store::Keyspace) -> Frame,
) -> Frame {
    let slot = crate::cmd::args::int(arg).ok().filter(|n| (0..i64::from(SLOTS)).contains(n));
    let group = slot.and_then(|s| map?.group_of(s as u16)).and_then(|g| groups.group(g));
    match group {
        Some(replica) => {
            let st = replica.state().read().unwrap_or_else(|p| p.into_inner());
            f(&st.keyspace)
        }
        // Out of range or not an integer: the slot functions give the error reply.
        None => f(&crate::store::Keyspace::new(1)),
    }
}

/// The shard CLUSTER MYSHARDID names: the first data group this node leads, else the first
/// whose voters include it, else group 1 (a node that serves no group yet).
fn my_shard(groups: &Groups, map: Option<&ClusterMap>) -> u64 {
    let voter_of = || map?.groups.iter().find(|(_, p)| p.voters.contains(&groups.id)).map(|(g, _)| *g);
    groups.led_groups().first().copied().or_else(voter_of).unwrap_or(1)
}

/// CLUSTER INFO
fn info(groups: &Groups, map: Option<&ClusterMap>) -> Frame {
    let (assigned, ok_slots, known, size, epoch) = match map {
        Some(map) => {
            let shards = shards_of(groups, map);
            let ok: u32 = shards
                .values()
                .filter(|s| s.leader.is_some())
                .flat_map(|s| s.ranges.iter())
                .map(|(a, b)| u32::from(b - a) + 1)
                .sum();
            (u32::from(SLOTS), ok, map.nodes.len(), map.groups.len(), map.epoch)
        }
        None => (0, 0, 1, 0, 0),
    };
    let state_ok = map.is_some() && ok_slots == u32::from(SLOTS);
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    line("cluster_state", if state_ok { "ok" } else { "fail" }.into());
    line("cluster_slots_assigned", assigned.to_string());
    line("cluster_slots_ok", ok_slots.to_string());
    line("cluster_slots_pfail", "0".into());
    line("cluster_slots_fail", (assigned - ok_slots).to_string());
    line("cluster_known_nodes", known.to_string());
    line("cluster_size", size.to_string());
    line("cluster_current_epoch", epoch.to_string());
    line("cluster_my_epoch", epoch.to_string());
    line("cluster_stats_messages_sent", "0".into());
    line("cluster_stats_messages_received", "0".into());
    line("total_cluster_links_buffer_limit_exceeded", "0".into());
    Frame::Verbatim(*b"txt", Bytes::from(out))
}

fn slots_node(map: &ClusterMap, id: NodeId) -> Frame {
    let info = node_of(map, id);
    let (host, port) = split_addr(&info.client_addr);
    Frame::Array(vec![
        Frame::bulk(host.to_string()),
        Frame::Integer(i64::from(port)),
        Frame::bulk(node_name(id)),
        Frame::Map(vec![]),
    ])
}

/// CLUSTER SLOTS: one entry per slot range whose group has a known leader: the range, the
/// leader, then the group's other voters that lead no group.
///
/// Why not every voter: a Redis Cluster node is a master or a replica, never both, and
/// clients keep one role per address. redis-py takes the role a node has in the last range
/// that lists it, so a node leading one group but listed as a replica in a later range would
/// be taken for a replica, and the commands it sends to every master (FLUSHALL, DBSIZE, KEYS,
/// SCAN) would miss the groups that node leads. Listing only non-leaders as replicas agrees
/// with CLUSTER NODES (a node that leads a group is a master there); CLUSTER SHARDS keeps
/// every voter of each group.
fn slots(map: &ClusterMap, shards: &BTreeMap<u64, Shard>) -> Frame {
    let leaders: BTreeSet<NodeId> = shards.values().filter_map(|s| s.leader).collect();
    let mut out = Vec::new();
    for r in &map.slots {
        let Some(shard) = shards.get(&r.group) else { continue };
        let Some(leader) = shard.leader else { continue };
        let mut entry = vec![Frame::Integer(i64::from(r.start)), Frame::Integer(i64::from(r.end))];
        entry.push(slots_node(map, leader));
        entry.extend(shard.voters.iter().filter(|v| !leaders.contains(v)).map(|v| slots_node(map, *v)));
        out.push(Frame::Array(entry));
    }
    Frame::Array(out)
}

fn shard_node(map: &ClusterMap, id: NodeId, role: &str) -> Frame {
    let info = node_of(map, id);
    let (host, port) = split_addr(&info.client_addr);
    let b = |s: &str| Frame::bulk(s.to_string());
    Frame::Map(vec![
        (b("id"), b(&node_name(id))),
        (b("port"), Frame::Integer(i64::from(port))),
        (b("ip"), b(host)),
        (b("endpoint"), b(host)),
        (b("role"), b(role)),
        (b("replication-offset"), Frame::Integer(0)),
        (b("health"), b("online")),
    ])
}

/// CLUSTER SHARDS: one shard per data group, its slots and its voters (leader as master).
fn shards(map: &ClusterMap, shards: &BTreeMap<u64, Shard>) -> Frame {
    let out = shards
        .values()
        .map(|s| {
            let slots =
                s.ranges.iter().flat_map(|(a, b)| [Frame::Integer(i64::from(*a)), Frame::Integer(i64::from(*b))]);
            let mut nodes: Vec<Frame> = s.leader.map(|l| shard_node(map, l, "master")).into_iter().collect();
            nodes.extend(s.voters.iter().filter(|v| Some(**v) != s.leader).map(|v| shard_node(map, *v, "replica")));
            Frame::Map(vec![
                (Frame::bulk("slots"), Frame::Array(slots.collect())),
                (Frame::bulk("nodes"), Frame::Array(nodes)),
            ])
        })
        .collect();
    Frame::Array(out)
}

/// CLUSTER NODES: one line per node of the map.
fn nodes(me: NodeId, map: &ClusterMap, shards: &BTreeMap<u64, Shard>, now_ms: u64) -> Frame {
    let mut out = String::new();
    for (id, info) in &map.nodes {
        let (host, port) = split_addr(&info.client_addr);
        let (_, bus) = split_addr(&info.raft_addr);
        let led: Vec<&Shard> = shards.values().filter(|s| s.leader == Some(*id)).collect();
        let mut flags = if *id == me { "myself,".to_string() } else { String::new() };
        let master_of = match led.is_empty() {
            false => "-".to_string(),
            true => shards
                .values()
                .find(|s| s.voters.contains(id))
                .and_then(|s| s.leader)
                .map_or_else(|| "-".to_string(), node_name),
        };
        flags.push_str(if led.is_empty() && master_of != "-" { "slave" } else { "master" });
        let pong = if *id == me { 0 } else { now_ms };
        let _ =
            write!(out, "{} {host}:{port}@{bus} {flags} {master_of} 0 {pong} {} connected", node_name(*id), map.epoch);
        let mut ranges: Vec<(u16, u16)> = led.iter().flat_map(|s| s.ranges.iter().copied()).collect();
        ranges.sort();
        for (a, b) in ranges {
            if a == b {
                let _ = write!(out, " {a}");
            } else {
                let _ = write!(out, " {a}-{b}");
            }
        }
        if *id == me {
            // Open slots (CLUSTER SETSLOT), on the node's own line as Redis shows them.
            let leader = |g: u64| shards.get(&g).and_then(|s| s.leader);
            out.push_str(&super::setslot::nodes_marks(map, &leader, me));
        }
        out.push('\n');
    }
    Frame::Verbatim(*b"txt", Bytes::from(out))
}
