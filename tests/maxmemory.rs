//! `maxmemory` on real processes: under `noeviction` a write past the limit gets Redis's
//! `-OOM` (reads and deletes still run, a transaction with such a write is aborted); with an
//! eviction policy on a three-node cluster the leader evicts keys through the log and every
//! replica ends with the same data (DEBUG DIGEST-EXACT equal on the three); in a sharded
//! cluster each node evicts from the data groups it leads.

mod common;

use common::cluster::ThreeNodes;
use common::sharded::{text, Sharded};
use common::{wait_until, Conn, Server};
use raftis::protocol::Frame;
use std::collections::BTreeMap;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn ok() -> Frame {
    Frame::Simple("OK".into())
}

fn used_memory(c: &mut Conn) -> u64 {
    c.info_field("memory", "used_memory").parse().expect("a number")
}

#[test]
fn noeviction_refuses_writes_past_the_limit_with_redis_oom() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    let limit = used_memory(&mut c) + (16 << 20);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]), ok());
    let value = "v".repeat(1 << 20);
    let mut refused = None;
    for i in 0..200 {
        match c.cmd(&["SET", &format!("k{i}"), &value]) {
            Frame::Simple(_) => {}
            Frame::Error(e) => {
                refused = Some((i, e));
                break;
            }
            other => panic!("SET: {other:?}"),
        }
    }
    let (stored, error) = refused.expect("a write past the limit is refused");
    assert_eq!(error, OOM);
    assert!(stored > 0, "writes under the limit succeed");
    assert!(used_memory(&mut c) > limit, "refused only past the limit");
    // Reads, deletes and other commands that free memory still run.
    assert_eq!(c.cmd(&["STRLEN", "k0"]), Frame::Integer(1 << 20));
    assert_eq!(c.cmd(&["SET", "more", "x"]), Frame::Error(OOM.into()));
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["INCR", "n"]), Frame::Error(OOM.into()));
    let abort = "EXECABORT Transaction discarded because of previous errors.";
    assert_eq!(c.cmd(&["EXEC"]), Frame::Error(abort.into()));
    let keys: Vec<String> = (0..stored).map(|i| format!("k{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    assert_eq!(c.cmd(&del), Frame::Integer(stored as i64));
    // Without a limit, writes run again.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
    assert_eq!(c.cmd(&["SET", "more", "x"]), ok());
    let policy = c.cmd(&["CONFIG", "GET", "maxmemory-policy"]);
    let bulk = |s: &str| Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()));
    assert_eq!(policy, Frame::Array(vec![bulk("maxmemory-policy"), bulk("noeviction")]));
}

/// Three processes formed into one cluster; dropped, they are killed.
#[test]
fn eviction_by_the_leader_keeps_every_replica_identical() {
    // The log's entries share their values with the keyspace until a snapshot compacts the
    // log: frequent snapshots let evictions free memory promptly.
    let cluster = ThreeNodes::start("maxmem", &["--snapshot-logs", "64"]);
    let leader = cluster.leader().expect("a leader");
    let mut c = cluster.conn(leader);
    let limit = used_memory(&mut c) + (32 << 20);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]), ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), ok());
    // 80 MiB written into a 32 MiB budget: the leader evicts to make room, and the writes
    // succeed.
    let value = vec![b'v'; 32 << 10];
    const KEYS: usize = 2560;
    let mut refused = 0;
    for batch in 0..KEYS / 64 {
        let keys: Vec<String> = (batch * 64..(batch + 1) * 64).map(|i| format!("k{i}")).collect();
        let pipeline: Vec<u8> = keys.iter().flat_map(|k| Conn::encode(&[b"SET", k.as_bytes(), &value])).collect();
        c.send_raw(&pipeline);
        for k in &keys {
            match c.read_frame() {
                Some(Frame::Simple(s)) if s == "OK" => {}
                Some(Frame::Error(e)) if e == OOM => refused += 1,
                other => panic!("SET {k}: {other:?}"),
            }
        }
    }
    assert_eq!(refused, 0, "writes refused with -OOM");
    // The leader may go on evicting in the background after the last write (the log still
    // shares values until its next snapshot): judge the counts once two readings agree.
    let mut last = (0, 0);
    wait_until("each key to be either there or evicted", 30, || {
        let reading = |c: &mut Conn| {
            let evicted: u64 = c.info_field("stats", "evicted_keys").parse().expect("evicted_keys");
            let Frame::Integer(left) = c.cmd(&["DBSIZE"]) else { panic!("DBSIZE") };
            (evicted, left as u64)
        };
        let (first, second) = (reading(&mut c), reading(&mut c));
        last = second;
        first == second && second.0 + second.1 == KEYS as u64
    });
    let (evicted, left) = last;
    assert!(evicted > 0 && (left as usize) < KEYS, "{evicted} evicted, {left} left");
    let newest = format!("k{}", KEYS - 1);
    assert_eq!(c.cmd(&["EXISTS", &newest]), Frame::Integer(1), "the newest key stays");
    // Every replica applies the same evictions: equal digests and key counts on all nodes.
    let views = || -> Vec<(Frame, Frame)> {
        let nodes = cluster.servers.iter().flatten().map(|s| s.conn());
        nodes.map(|mut c| (c.cmd(&["DEBUG", "DIGEST-EXACT"]), c.cmd(&["DBSIZE"]))).collect()
    };
    wait_until("the replicas to apply the evictions", 30, || {
        let v = views();
        v.iter().all(|x| *x == v[0])
    });
}

/// The keys of each data group on one node, from `INFO cluster` (`raft_group_<g>:...,keys=N`).
fn group_keys(c: &mut Conn) -> BTreeMap<u64, u64> {
    let info = text(&c.cmd(&["INFO", "cluster"]));
    let line = |l: &str| {
        let (g, fields) = l.strip_prefix("raft_group_")?.split_once(':')?;
        let keys = fields.split(',').find_map(|f| f.strip_prefix("keys="))?;
        Some((g.parse().ok()?, keys.parse().ok()?))
    };
    info.lines().filter_map(line).filter(|(g, _)| *g > 0).collect()
}

#[test]
fn a_sharded_cluster_evicts_from_the_data_groups_each_node_leads() {
    // Keys live in the data groups, not in MetaRaft's group 0 (which eviction used to search,
    // finding nothing, so every write past the limit got -OOM).
    let cluster = Sharded::start_with_flags("maxmemsh", 3, &["--snapshot-logs", "64"]);
    for i in 0..3 {
        let mut c = cluster.conn(i);
        let limit = used_memory(&mut c) + (24 << 20);
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]), ok());
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]), ok());
    }
    // 64 MiB written into 24 MiB per node (every node holds every group).
    let value = "v".repeat(32 << 10);
    const KEYS: usize = 2048;
    for i in 0..KEYS {
        let (reply, _) = cluster.routed(i % 3, &["SET", &format!("k{i}"), &value]);
        assert_eq!(reply, ok(), "SET k{i}");
    }
    // Every key is either still there (DBSIZE answers for the groups a node leads) or was
    // evicted by one of the leaders; judge once two readings agree.
    let reading = || {
        let (mut evicted, mut left) = (0, 0);
        for i in 0..3 {
            let mut c = cluster.conn(i);
            evicted += c.info_field("stats", "evicted_keys").parse::<u64>().expect("evicted_keys");
            let Frame::Integer(n) = c.cmd(&["DBSIZE"]) else { panic!("DBSIZE") };
            left += n as u64;
        }
        (evicted, left)
    };
    let mut last = (0, 0);
    wait_until("each key to be either there or evicted", 30, || {
        let (first, second) = (reading(), reading());
        last = second;
        first == second && second.0 + second.1 == KEYS as u64
    });
    let (evicted, left) = last;
    assert!(evicted > 0 && (left as usize) < KEYS, "{evicted} evicted, {left} left");
    // Evictions go through each group's log: every node's copy of a group has the same keys.
    wait_until("every copy of each group to hold the same keys", 30, || {
        let views: Vec<BTreeMap<u64, u64>> = (0..3).map(|i| group_keys(&mut cluster.conn(i))).collect();
        views[0].len() == 4 && views.iter().all(|v| *v == views[0])
    });
    // MEMORY STATS counts the data groups' keys (it counted group 0's, always none).
    let mut c = cluster.conn(0);
    let Frame::Array(stats) = c.cmd(&["MEMORY", "STATS"]) else { panic!("MEMORY STATS") };
    let count = stats.chunks(2).find(|p| text(&p[0]) == "keys.count").map(|p| p[1].clone());
    let held: u64 = group_keys(&mut c).values().sum();
    assert_eq!(count, Some(Frame::Integer(held as i64)));
    assert!(held > 0);
}
