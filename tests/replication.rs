//! Durability and replication of real `raftis` processes over real sockets: a node killed with
//! SIGKILL and restarted on its data directory still has every write it acknowledged.

mod common;

use bytes::Bytes;
use common::{tempdir::TempDir, Conn, Server};
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
