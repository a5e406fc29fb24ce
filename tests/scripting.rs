//! Lua scripting over real sockets: on one node (the step budget, CONFIG, the cache across a
//! restart) and on three real processes (EVALSHA and FCALL on a new leader after a failover; a runaway
//! script aborted with the same reply and no trace on every replica). Conversions and error
//! texts are compared with real Redis in tests/diff/scripting.txt.

mod common;

use common::http::{http, json_u64};
use common::{free_port_block, tempdir::TempDir, Conn, Server};
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    assert_eq!(c.cmd(&["CONFIG", "GET", "lua-*"]), Frame::Array(vec![bulk("lua-max-steps"), bulk("200000")]));
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
struct Cluster {
    servers: Vec<Option<Server>>,
    raft_ports: Vec<u16>,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    fn start() -> Cluster {
        let (base, raft_base) = free_port_block(3);
        let (mut servers, mut members, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..3u16 {
            let (port, raft_port) = (base + i, raft_base + i);
            let (id, raft_addr) = ((i + 1).to_string(), format!("127.0.0.1:{raft_port}"));
            let dir = TempDir::new(&format!("lua{id}"));
            let flags = ["--node-id", &id, "--raft-addr", &raft_addr, "--is-bootstrap=false"];
            servers.push(Some(Server::raftis_at(&dir.0, port, &flags)));
            dirs.push(dir);
            members.push(format!(r#"[{id}, {{"raft_addr": "{raft_addr}", "resp_addr": "127.0.0.1:{port}"}}]"#));
        }
        let raft_ports: Vec<u16> = (0..3).map(|i| raft_base + i).collect();
        let init = format!(r#"{{"nodes": [{}]}}"#, members.join(","));
        let (status, body) = http(raft_ports[0], "POST", "/raft/init", &init);
        assert_eq!(status, 200, "init: {body}");
        let cluster = Cluster { servers, raft_ports, _dirs: dirs };
        wait_until("a leader", 30, || cluster.leader().is_some());
        cluster
    }

    /// The index (0-2) of the node every live node agrees leads.
    fn leader(&self) -> Option<usize> {
        let live = (0..3).filter(|i| self.servers[*i].is_some());
        let seen: Vec<Option<u64>> =
            live.map(|i| json_u64(&http(self.raft_ports[i], "GET", "/raft/metrics", "").1, "current_leader")).collect();
        let first = seen[0]?;
        let agreed = seen.iter().all(|s| *s == Some(first));
        let index = first as usize - 1;
        (agreed && self.servers[index].is_some()).then_some(index)
    }

    fn conn(&self, i: usize) -> Conn {
        self.servers[i].as_ref().expect("live node").conn()
    }
}

#[test]
fn evalsha_works_on_a_new_leader_after_a_failover() {
    let mut cluster = Cluster::start();
    let old = cluster.leader().expect("leader");
    let mut l = cluster.conn(old);
    let body = "return redis.call('incr', KEYS[1])";
    let Frame::Bulk(sha) = l.cmd(&["SCRIPT", "LOAD", body]) else { panic!("SCRIPT LOAD") };
    let sha = String::from_utf8(sha.to_vec()).expect("hex");
    assert_eq!(l.cmd(&["EVALSHA", &sha, "1", "c"]), Frame::Integer(1));
    let lib =
        "#!lua name=failover\nredis.register_function('bump', function(k) return redis.call('incrby', k[1], 10) end)";
    assert_eq!(l.cmd(&["FUNCTION", "LOAD", lib]), bulk("failover"));
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
    assert!(n.cmd(&["EVALSHA_RO", &sha, "1", "c"]).is_error(), "a write in a read-only script");
}

#[test]
fn a_runaway_script_is_aborted_alike_on_every_replica() {
    let cluster = Cluster::start();
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
