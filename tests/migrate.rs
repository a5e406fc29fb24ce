//! MIGRATE between raftis and a real redis-server 7, both ways: keys of every type arrive with
//! their values and TTLs, leave the source unless COPY, and the target's errors (BUSYKEY,
//! AUTH) come back as Redis words them.

mod common;

use common::{free_port, Conn, Server};
use raftis::protocol::Frame;

fn fill(c: &mut Conn) {
    for line in [
        "SET s hello",
        "RPUSH l a b 1 2",
        "HSET h f v g 2",
        "SADD set 1 2 3",
        "ZADD z 1 a 2.5 b",
        "XADD x 1-1 f v",
        "SET ttl v PX 100000",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        assert!(!matches!(c.cmd(&args), Frame::Error(_)), "{line}");
    }
}

const KEYS: [&str; 7] = ["s", "l", "h", "set", "z", "x", "ttl"];

fn dump_all(c: &mut Conn) -> Vec<Frame> {
    KEYS.iter().map(|k| c.cmd(&["DUMP", k])).collect()
}

fn migrate(c: &mut Conn, to: &Server, extra: &[&str]) -> Frame {
    let port = to.port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000"];
    args.extend_from_slice(extra);
    args.push("KEYS");
    args.extend_from_slice(&KEYS);
    c.cmd(&args)
}

fn pttl(c: &mut Conn, key: &str) -> i64 {
    match c.cmd(&["PTTL", key]) {
        Frame::Integer(n) => n,
        other => panic!("PTTL: {other:?}"),
    }
}

/// Moves every kind from `from` to `to` and checks both sides.
fn move_all(from: &Server, to: &Server) {
    let (mut a, mut b) = (from.conn(), to.conn());
    a.cmd(&["FLUSHALL"]);
    b.cmd(&["FLUSHALL"]);
    fill(&mut a);
    let before = dump_all(&mut a);
    // COPY: the keys stay here.
    assert_eq!(migrate(&mut a, to, &["COPY"]), Frame::Simple("OK".into()));
    assert_eq!(dump_all(&mut b), before, "the target holds the same values");
    assert_eq!(dump_all(&mut a), before, "COPY keeps the source's keys");
    let ttl = pttl(&mut b, "ttl");
    assert!(ttl > 50_000 && ttl <= 100_000, "TTL carried over: {ttl}");
    assert_eq!(pttl(&mut b, "s"), -1);
    // Without REPLACE the target refuses keys it has.
    let busy = migrate(&mut a, to, &[]);
    let want = "ERR Target instance replied with error: BUSYKEY Target key name already exists.";
    assert_eq!(busy, Frame::Error(want.into()));
    // REPLACE: moved, and gone from the source.
    assert_eq!(migrate(&mut a, to, &["REPLACE"]), Frame::Simple("OK".into()));
    assert_eq!(a.cmd(&["DBSIZE"]), Frame::Integer(0));
    assert_eq!(dump_all(&mut b), before);
    assert_eq!(migrate(&mut a, to, &[]), Frame::Simple("NOKEY".into()));
    // The single-key form.
    a.cmd(&["SET", "one", "1"]);
    let port = to.port.to_string();
    assert_eq!(a.cmd(&["MIGRATE", "127.0.0.1", &port, "one", "3", "5000"]), Frame::Simple("OK".into()));
    b.cmd(&["SELECT", "3"]);
    assert_eq!(b.cmd(&["GET", "one"]), Frame::Bulk("1".into()));
}

#[test]
fn migrate_from_raftis_to_redis_and_back() {
    let redis = Server::redis();
    let raftis = Server::raftis(&[]);
    move_all(&raftis, &redis);
    move_all(&redis, &raftis);
}

#[test]
fn migrate_authenticates_and_reports_connection_errors() {
    let redis = Server::redis();
    let raftis = Server::raftis(&[]);
    let (mut r, mut x) = (redis.conn(), raftis.conn());
    r.cmd(&["CONFIG", "SET", "requirepass", "secret"]);
    x.cmd(&["SET", "k", "v"]);
    let port = redis.port.to_string();
    let plain = x.cmd(&["MIGRATE", "127.0.0.1", &port, "k", "0", "5000"]);
    let want = "ERR Target instance replied with error: NOAUTH Authentication required.";
    assert_eq!(plain, Frame::Error(want.into()));
    assert_eq!(x.cmd(&["EXISTS", "k"]), Frame::Integer(1), "a refused key stays");
    let authed = x.cmd(&["MIGRATE", "127.0.0.1", &port, "k", "0", "5000", "AUTH", "secret"]);
    assert_eq!(authed, Frame::Simple("OK".into()));
    let authed2 = {
        x.cmd(&["SET", "k2", "v"]);
        x.cmd(&["MIGRATE", "127.0.0.1", &port, "k2", "0", "5000", "AUTH2", "default", "secret"])
    };
    assert_eq!(authed2, Frame::Simple("OK".into()));
    assert_eq!(x.cmd(&["EXISTS", "k", "k2"]), Frame::Integer(0));
    let closed = free_port().to_string();
    x.cmd(&["SET", "k", "v"]);
    let refused = x.cmd(&["MIGRATE", "127.0.0.1", &closed, "k", "0", "1000"]);
    assert_eq!(refused, Frame::Error("IOERR error or timeout connecting to the client".into()));
    let keys_misuse = x.cmd(&["MIGRATE", "127.0.0.1", &port, "k", "0", "1000", "KEYS", "k"]);
    let want = "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
    assert_eq!(keys_misuse, Frame::Error(want.into()));
}

/// `redis-cli --cluster import` (which MIGRATEs every key of a plain redis-server to the
/// cluster node owning its slot) into a raftis cluster of one node and two data groups.
#[test]
fn redis_cli_cluster_import_brings_a_redis_servers_keys() {
    let redis = Server::redis();
    let raftis = Server::raftis(&["--node-id", "1", "--cluster-enabled", "--is-bootstrap", "--num-groups", "2"]);
    let mut x = raftis.conn();
    // Both data groups take writes once each has applied its slots ("a": slot 15495 of group
    // 2, "b": slot 3300 of group 1).
    common::wait_until("both data groups to take writes", 30, || {
        ["a", "b"].iter().all(|k| x.cmd(&["SET", k, "probe"]) == Frame::Simple("OK".into()))
    });
    x.cmd(&["DEL", "a"]);
    x.cmd(&["DEL", "b"]);
    let mut r = redis.conn();
    fill(&mut r);
    for i in 0..200 {
        r.cmd(&["SET", &format!("key:{i}"), &i.to_string()]);
    }
    let port = redis.port.to_string();
    let out = std::process::Command::new("redis-cli")
        .args(["--cluster", "import", &format!("127.0.0.1:{}", raftis.port)])
        .args(["--cluster-from", &format!("127.0.0.1:{port}"), "--cluster-copy"])
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(dump_all(&mut x), dump_all(&mut r), "every kind arrived as it was");
    for i in (0..200).step_by(37) {
        assert_eq!(x.cmd(&["GET", &format!("key:{i}")]), Frame::Bulk(i.to_string().into()));
    }
    assert_eq!(x.cmd(&["DBSIZE"]), Frame::Integer(207));
}
