//! Durability and replication of real `raftis` processes over real sockets: a node killed with
//! SIGKILL and restarted on its data directory still has every write it acknowledged; ROLE.

mod common;

use bytes::Bytes;
use common::cluster::ThreeNodes;
use common::{tempdir::TempDir, wait_until, Conn, Server};
use raftis::protocol::Frame;

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn digest(c: &mut Conn, which: &str) -> Frame {
    let d = c.cmd(&["DEBUG", which]);
    assert!(matches!(d, Frame::Bulk(_) | Frame::Simple(_)), "DEBUG {which}: {d:?}");
    d
}

/// The default single-threaded runtime syncs a lone node's log in its idle time; with more
/// I/O threads the flusher thread does every sync. Both must keep what they acknowledged.
#[test]
fn acknowledged_writes_survive_kill_9() {
    survives_kill_9(&[], true);
}

#[test]
fn acknowledged_writes_survive_kill_9_with_two_io_threads() {
    survives_kill_9(&["--io-threads", "2"], false);
}

fn survives_kill_9(extra_flags: &[&str], syncs_when_idle: bool) {
    let dir = TempDir::new("restart");
    // A low snapshot threshold: the restart loads a snapshot and replays the log after it.
    let mut flags = vec!["--snapshot-logs", "300"];
    flags.extend_from_slice(extra_flags);
    let node = Server::raftis_in(&dir.0, &flags);
    let mut c = node.conn();
    for i in 0..1000 {
        assert_eq!(c.cmd(&["SET", &format!("key:{i}"), &format!("value:{i}")]), Frame::ok());
    }
    assert_eq!(c.cmd(&["HSET", "h", "f1", "a", "f2", "b"]), Frame::Integer(2));
    assert_eq!(c.cmd(&["RPUSH", "l", "x", "y", "z"]), Frame::Integer(3));
    assert_eq!(c.cmd(&["ZADD", "z", "1.5", "m1", "-2", "m2"]), Frame::Integer(2));
    assert_eq!(c.cmd(&["SADD", "s", "a", "b", "c"]), Frame::Integer(3));
    assert_eq!(c.cmd(&["SET", "ttl", "v", "EX", "100000"]), Frame::ok());
    assert_eq!(c.cmd(&["SELECT", "3"]), Frame::ok());
    assert_eq!(c.cmd(&["INCRBY", "counter", "42"]), Frame::Integer(42));
    let before = digest(&mut c, "DIGEST");
    let before_exact = digest(&mut c, "DIGEST-EXACT");
    assert_eq!(c.log_idle_rounds() > 0, syncs_when_idle, "who synced the log");
    node.kill9();

    let node = Server::raftis_in(&dir.0, &flags);
    let mut c = node.conn();
    for i in 0..1000 {
        assert_eq!(c.cmd(&["GET", &format!("key:{i}")]), bulk(&format!("value:{i}")), "key:{i} lost");
    }
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), Frame::bulks(["x", "y", "z"]));
    assert_eq!(c.cmd(&["SELECT", "3"]), Frame::ok());
    assert_eq!(c.cmd(&["GET", "counter"]), bulk("42"));
    assert_eq!(digest(&mut c, "DIGEST"), before);
    assert_eq!(digest(&mut c, "DIGEST-EXACT"), before_exact);
    // And it keeps taking writes after the restart.
    assert_eq!(c.cmd(&["INCR", "counter"]), Frame::Integer(43));
    assert_eq!(c.log_idle_rounds() > 0, syncs_when_idle, "who synced the log after the restart");
}

#[test]
fn a_pipeline_cut_by_kill_9_keeps_every_acknowledged_write() {
    let dir = TempDir::new("cut");
    let node = Server::raftis_in(&dir.0, &["--snapshot-logs", "500"]);
    let mut c = node.conn();
    let total = 3000;
    let mut pipeline = Vec::new();
    for i in 0..total {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        pipeline.extend(Conn::encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
    }
    c.send_raw(&pipeline);
    let acked = total / 2;
    for i in 0..acked {
        assert_eq!(c.read_frame(), Some(Frame::ok()), "reply {i}");
    }
    let mut info = node.conn();
    assert!(info.log_idle_rounds() > 0, "the lone node synced in its idle time");
    node.kill9();

    let node = Server::raftis_in(&dir.0, &[]);
    let mut c = node.conn();
    for i in 0..acked {
        assert_eq!(c.cmd(&["GET", &format!("k{i}")]), bulk(&format!("v{i}")), "acknowledged k{i} lost");
    }
    // Writes are applied in order: whatever survived beyond the acknowledged ones is a prefix.
    let Frame::Integer(n) = c.cmd(&["DBSIZE"]) else { panic!("DBSIZE") };
    assert!(n >= acked as i64 && n <= total as i64, "dbsize {n}");
    for i in 0..n {
        assert_eq!(c.cmd(&["GET", &format!("k{i}")]), bulk(&format!("v{i}")), "gap at k{i}");
    }
}

/// ROLE: a lone node is a master without replicas; in a three-node cluster the leader is the
/// master of the other two (their client ports), a follower a connected replica of the leader.
#[test]
fn role_follows_raft_leadership() {
    let lone = Server::raftis(&[]);
    let Frame::Array(role) = lone.conn().cmd(&["ROLE"]) else { panic!("ROLE: an array") };
    assert_eq!((role[0].clone(), role[2].clone()), (bulk("master"), Frame::Array(vec![])));
    assert!(matches!(role[1], Frame::Integer(n) if n >= 0), "{role:?}");
    let cluster = ThreeNodes::start("role", &[]);
    let leader = cluster.leader().expect("a leader");
    let port = |i: usize| cluster.servers[i].as_ref().expect("live").port.to_string();
    let replicas_of_leader = || {
        let Frame::Array(role) = cluster.conn(leader).cmd(&["ROLE"]) else { panic!("ROLE: an array") };
        assert_eq!(role[0], bulk("master"), "{role:?}");
        let Frame::Array(replicas) = &role[2] else { panic!("{role:?}") };
        let mut ports: Vec<Frame> = replicas
            .iter()
            .map(|r| match r {
                Frame::Array(f) => f[1].clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        ports.sort_by_key(|p| format!("{p:?}"));
        ports
    };
    let mut others: Vec<Frame> = (0..3).filter(|i| *i != leader).map(|i| bulk(&port(i))).collect();
    others.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(replicas_of_leader(), others);
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let mut c = cluster.conn(follower);
    wait_until("the follower to know its leader", 30, || {
        let Frame::Array(role) = c.cmd(&["ROLE"]) else { return false };
        role.len() == 5 && role[3] == bulk("connected")
    });
    let Frame::Array(role) = c.cmd(&["ROLE"]) else { panic!("ROLE: an array") };
    assert_eq!(role[0], bulk("slave"));
    assert_eq!(role[2], Frame::Integer(port(leader).parse().unwrap()), "{role:?}");
}
