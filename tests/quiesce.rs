//! Quiet groups (`raft::quiesce`, `--raft-quiesce-ms`) with real processes: an idle sharded
//! cluster stops the ticks of every Raft group, clients' writes and reads wake the groups and
//! are served, and a node that led quiet groups dying still gets them new leaders.

mod common;

use common::sharded::{text, Sharded};
use common::{wait_until, Conn};
use raftis::protocol::Frame;
use std::collections::BTreeMap;

/// One Raft group as a node reports it in `INFO cluster`.
#[derive(Debug, PartialEq, Eq)]
struct GroupLine {
    group: u64,
    term: u64,
    leader: String,
    quiet: bool,
}

fn groups(c: &mut Conn) -> Vec<GroupLine> {
    let info = text(&c.cmd(&["INFO", "cluster"]));
    let line = |l: &str| {
        let (group, fields) = l.strip_prefix("raft_group_")?.split_once(':')?;
        let field = |k: &str| fields.split(',').find_map(|f| f.strip_prefix(k)?.strip_prefix('=')).map(str::to_string);
        Some(GroupLine {
            group: group.parse().ok()?,
            term: field("term")?.parse().ok()?,
            leader: field("leader")?,
            quiet: field("quiet")? == "1",
        })
    };
    info.lines().filter_map(line).collect()
}

/// MetaRaft and the four data groups, all quiet on this node.
fn all_quiet(c: &mut Conn) -> bool {
    let g = groups(c);
    g.len() == 5 && g.iter().all(|g| g.quiet)
}

/// A key of each data group (four even slot ranges: group = slot / 4096 + 1).
fn a_key_per_group(c: &mut Conn) -> BTreeMap<u64, String> {
    let mut keys = BTreeMap::new();
    for i in 0..10_000 {
        let key = format!("q{i}");
        let Frame::Integer(slot) = c.cmd(&["CLUSTER", "KEYSLOT", &key]) else { panic!("CLUSTER KEYSLOT") };
        keys.entry(slot as u64 / 4096 + 1).or_insert(key);
        if keys.len() == 4 {
            break;
        }
    }
    assert_eq!(keys.len(), 4);
    keys
}

/// Whether every node leads one or two of the four data groups (leader balance reached), by
/// this node's view.
fn balanced(c: &mut Conn) -> bool {
    let mut led = BTreeMap::new();
    for g in groups(c).iter().filter(|g| g.group > 0) {
        *led.entry(g.leader.clone()).or_insert(0) += 1;
    }
    led.len() == 3 && led.values().all(|n| (1..=2).contains(n)) && !led.contains_key("-")
}

#[test]
fn idle_groups_go_quiet_wake_for_clients_without_an_election_and_elect_when_a_node_dies() {
    // On by default (`raft-quiesce-ms` 2000).
    let mut cluster = Sharded::start("quiesce");
    let mut c = cluster.conn(0);
    wait_until("leadership balanced", 60, || balanced(&mut c));
    for i in 0..3 {
        let mut c = cluster.conn(i);
        wait_until("every group quiet on every node", 60, || all_quiet(&mut c));
    }
    let before = groups(&mut c);
    let keys = a_key_per_group(&mut c);
    for key in keys.values() {
        assert_eq!(cluster.routed(0, &["SET", key, "v1"]).0, Frame::ok());
        assert_eq!(text(&cluster.routed(0, &["GET", key]).0), "v1");
    }
    let after = groups(&mut c);
    // Waking for clients is not an election: every group keeps its leader and its term.
    let leaders_and_terms = |g: &[GroupLine]| g.iter().map(|g| (g.group, g.leader.clone(), g.term)).collect::<Vec<_>>();
    assert_eq!(leaders_and_terms(&before), leaders_and_terms(&after));
    assert!(after.iter().any(|g| !g.quiet), "the writes woke their groups' leaders: {after:?}");

    // Quiet again; then node 2, which leads quiet groups, dies: the others elect new leaders.
    for i in 0..3 {
        let mut c = cluster.conn(i);
        wait_until("every group quiet again", 60, || all_quiet(&mut c));
    }
    let led_by_2 = groups(&mut c).iter().filter(|g| g.leader == "2").count();
    assert!(led_by_2 > 0, "node 2 leads a group after balancing: {:?}", groups(&mut c));
    cluster.servers[1].take().expect("node 2").kill9();
    for key in keys.values() {
        assert_eq!(cluster.routed(0, &["SET", key, "v2"]).0, Frame::ok(), "{key} after node 2 died");
        assert_eq!(text(&cluster.routed(0, &["GET", key]).0), "v2");
    }
    wait_until("no group led by the dead node", 30, || groups(&mut c).iter().all(|g| g.leader != "2"));
}
