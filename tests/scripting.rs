//! Lua scripting over real sockets: on one node (the step budget, CONFIG, the cache across a
//! restart) and on three real processes (EVALSHA and FCALL on a new leader after a failover; a runaway
//! script aborted with the same reply and no trace on every replica). Conversions and error
//! texts are compared with real Redis in tests/diff/scripting.txt.

mod common;

use common::cluster::ThreeNodes;
use common::{tempdir::TempDir, wait_until, Conn, Server};
use raftis::protocol::Frame;

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

const RUNAWAY: &str = "redis.call('set', KEYS[1], 'new') redis.call('rpush', KEYS[2], 'x') \
                       while true do pcall(function() while true do end end) end";

fn budget_reply(steps: u64) -> Frame {
    Frame::error(format!(
        "ERR Script aborted: it ran more than lua-max-steps ({steps}) instructions; its writes were rolled back"
    ))
}

#[test]
fn a_runaway_script_is_stopped_by_the_step_budget_and_leaves_nothing() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "GET", "lua-max-steps"]), Frame::Array(vec![bulk("lua-max-steps"), bulk("10000000")]));
    assert_eq!(c.cmd(&["CONFIG", "SET", "lua-max-steps", "200000"]), Frame::ok());
    assert_eq!(c.cmd(&["CONFIG", "GET", "lua-max-*"]), Frame::Array(vec![bulk("lua-max-steps"), bulk("200000")]));
    let bad = c.cmd(&["CONFIG", "SET", "lua-max-steps", "10"]);
    assert!(matches!(&bad, Frame::Error(e) if e.starts_with(b"ERR CONFIG SET failed")), "{bad:?}");
    let mixed = c.cmd(&["CONFIG", "SET", "lua-max-steps", "5000", "maxclients", "100"]);
    assert!(matches!(&mixed, Frame::Error(_)), "{mixed:?}");
    assert_eq!(c.cmd(&["SET", "k", "old"]), Frame::ok());
    assert_eq!(c.cmd(&["EVAL", RUNAWAY, "2", "k", "l"]), budget_reply(200000));
    assert_eq!(c.cmd(&["GET", "k"]), bulk("old"));
    assert_eq!(c.cmd(&["EXISTS", "l"]), Frame::Integer(0));
    // A read-only runaway is stopped too (nothing to roll back), and the connection lives on.
    let ro = c.cmd(&["EVAL_RO", "while true do end", "0"]);
    assert!(matches!(&ro, Frame::Error(e) if e.starts_with(b"ERR Script aborted")), "{ro:?}");
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
}

#[test]
fn the_script_cache_survives_a_restart_and_scripts_pipeline() {
    let dir = TempDir::new("scripts");
    let server = Server::raftis_in(&dir.0, &[]);
    let mut c = server.conn();
    let sha = match c.cmd(&["SCRIPT", "LOAD", "return redis.call('incrby', KEYS[1], ARGV[1])"]) {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).expect("hex"),
        other => panic!("SCRIPT LOAD: {other:?}"),
    };
    // Pipelined EVALSHAs share log entries and still run one after the other.
    let mut pipeline = Vec::new();
    for _ in 0..20 {
        pipeline.extend(Conn::encode(&[b"EVALSHA", sha.as_bytes(), b"1", b"n", b"2"]));
    }
    c.send_raw(&pipeline);
    let replies: Vec<Frame> = (0..20).filter_map(|_| c.read_frame()).collect();
    assert_eq!(replies, (1..=20).map(|i| Frame::Integer(i * 2)).collect::<Vec<_>>());
    drop(c);
    server.kill9();
    let server = Server::raftis_in(&dir.0, &[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["EVALSHA", &sha, "1", "n", "1"]), Frame::Integer(41));
}

/// Three processes, nodes 1-3, formed into one cluster; dropped, they are killed.
#[test]
fn evalsha_works_on_a_new_leader_after_a_failover() {
    let mut cluster = ThreeNodes::start("lua", &[]);
    let old = cluster.leader().expect("leader");
    let mut l = cluster.conn(old);
    let body = "return redis.call('incr', KEYS[1])";
    let Frame::Bulk(sha) = l.cmd(&["SCRIPT", "LOAD", body]) else { panic!("SCRIPT LOAD") };
    let sha = String::from_utf8(sha.to_vec()).expect("hex");
    assert_eq!(l.cmd(&["EVALSHA", &sha, "1", "c"]), Frame::Integer(1));
    let lib =
        "#!lua name=failover\nredis.register_function('bump', function(k) return redis.call('incrby', k[1], 10) end)";
    assert_eq!(l.cmd(&["FUNCTION", "LOAD", lib]), bulk("failover"));
    // A library's locals start afresh for every call, on every replica (none can have its
    // own history of calls: a restarted one, or one installed from a snapshot, has none).
    let counter = "#!lua name=counter\nlocal n = 0\nredis.register_function('count', function(k) n = n + 1 redis.call('rpush', k[1], n) return n end)";
    assert_eq!(l.cmd(&["FUNCTION", "LOAD", counter]), bulk("counter"));
    for _ in 0..3 {
        assert_eq!(l.cmd(&["FCALL", "count", "1", "calls"]), Frame::Integer(1));
    }
    // The cache is replicated: a follower knows the script before any failover.
    let follower = (old + 1) % 3;
    let mut f = cluster.conn(follower);
    assert_eq!(f.cmd(&["SCRIPT", "EXISTS", &sha]), Frame::Array(vec![Frame::Integer(1)]));
    drop(l);
    cluster.servers[old].take().expect("old leader").kill9();
    wait_until("a new leader", 30, || cluster.leader().is_some_and(|i| i != old));
    let new = cluster.leader().expect("new leader");
    let mut n = cluster.conn(new);
    assert_eq!(n.cmd(&["EVALSHA", &sha, "1", "c"]), Frame::Integer(2));
    assert_eq!(n.cmd(&["FCALL", "bump", "1", "c"]), Frame::Integer(12), "libraries are replicated too");
    assert_eq!(n.cmd(&["FCALL", "count", "1", "calls"]), Frame::Integer(1));
    assert_eq!(n.cmd(&["LRANGE", "calls", "0", "-1"]), Frame::Array(vec![bulk("1"); 4]));
    // A library replaced is run as its new code (the compiled chunk is cached by its body).
    let v2 = "#!lua name=counter\nredis.register_function('count', function() return 'v2' end)";
    assert_eq!(n.cmd(&["FUNCTION", "LOAD", "REPLACE", v2]), bulk("counter"));
    assert_eq!(n.cmd(&["FCALL", "count", "0"]), bulk("v2"));
    assert!(n.cmd(&["EVALSHA_RO", &sha, "1", "c"]).is_error(), "a write in a read-only script");
}

#[test]
fn a_runaway_script_is_aborted_alike_on_every_replica() {
    let cluster = ThreeNodes::start("lua", &[]);
    let leader = cluster.leader().expect("leader");
    let mut l = cluster.conn(leader);
    assert_eq!(l.cmd(&["CONFIG", "SET", "lua-max-steps", "300000"]), Frame::ok());
    assert_eq!(l.cmd(&["SET", "k", "old"]), Frame::ok());
    // Sent to a follower, the script is forwarded and applied by every replica from the log.
    let follower = (leader + 1) % 3;
    let mut f = cluster.conn(follower);
    assert_eq!(f.cmd(&["EVAL", RUNAWAY, "2", "k", "l"]), budget_reply(300000));
    assert_eq!(l.cmd(&["SET", "marker", "1"]), Frame::ok());
    for i in 0..3 {
        let mut c = cluster.conn(i);
        // A follower answers a read from its own copy once it has applied the leader's read
        // index: what it shows is what its own apply of the script left.
        wait_until("the marker on every node", 20, || c.cmd(&["GET", "marker"]) == bulk("1"));
        assert_eq!(c.cmd(&["GET", "k"]), bulk("old"), "node {i}: the script's SET was rolled back");
        assert_eq!(c.cmd(&["EXISTS", "l"]), Frame::Integer(0), "node {i}: its RPUSH too");
        let steps = c.cmd(&["CONFIG", "GET", "lua-max-steps"]);
        assert_eq!(steps, Frame::Array(vec![bulk("lua-max-steps"), bulk("300000")]), "node {i}: the budget");
    }
}
