//! Blocking commands over real sockets: on one node (arrival order, timeouts, pipelines behind a
//! blocked command, MULTI, CLIENT UNBLOCK, a client that leaves or is killed while blocked), and
//! on three nodes in one process (a client blocked on a follower served through the leader,
//! each element to exactly one client, blocked clients kept across a leader change).

mod common;

use common::{tempdir::TempDir, wait_until, Conn};
use raftis::config::Config;
use raftis::disk::RealDisk;
use raftis::node::{start_with_disk, NodeHandle};
use raftis::protocol::Frame;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(rt: &tokio::runtime::Runtime, id: u64, dir: &TempDir, bootstrap: bool) -> NodeHandle {
    let config = Config { port: 0, node_id: id, seed: id, data_dir: dir.0.clone(), ..Config::default() };
    let disk = Arc::new(RealDisk::new(&dir.0).expect("disk"));
    rt.block_on(start_with_disk(config, disk, bootstrap)).expect("start node")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn connect(node: &NodeHandle) -> Conn {
    Conn::try_connect(node.client_addr.port()).expect("connect")
}

fn send(c: &mut Conn, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send_raw(&Conn::encode(&args));
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

fn pair(k: &str, v: &str) -> Frame {
    Frame::Array(vec![bulk(k), bulk(v)])
}

/// Waits until `c`'s node counts `n` blocked clients.
fn wait_blocked(c: &mut Conn, n: usize) {
    wait_until(&format!("{n} blocked clients"), 20, || c.info_field("clients", "blocked_clients") == n.to_string());
}

/// The id of the connection `c`.
fn client_id(c: &mut Conn) -> String {
    match c.cmd(&["CLIENT", "ID"]) {
        Frame::Integer(n) => n.to_string(),
        other => panic!("CLIENT ID: {other:?}"),
    }
}

/// CLIENT LIST's text.
fn client_list(c: &mut Conn) -> String {
    match c.cmd(&["CLIENT", "LIST"]) {
        Frame::Bulk(t) | Frame::Verbatim(_, t) => String::from_utf8_lossy(&t).into_owned(),
        other => panic!("CLIENT LIST: {other:?}"),
    }
}

#[test]
fn one_node_serves_blocked_clients_in_arrival_order() {
    let rt = runtime();
    let dir = TempDir::new("block1");
    let node = start(&rt, 1, &dir, true);
    let mut admin = connect(&node);
    assert_eq!(admin.cmd(&["PING"]), Frame::simple("PONG"));

    // Three clients block on one key, one after the other; two pushed elements go to the
    // first two, in the order they blocked.
    let mut waiting: Vec<Conn> = Vec::new();
    for (i, cmd) in [["BLPOP", "q", "0"], ["BRPOP", "q", "0"], ["BLPOP", "q", "0"]].iter().enumerate() {
        let mut c = connect(&node);
        send(&mut c, cmd);
        wait_blocked(&mut admin, i + 1);
        waiting.push(c);
    }
    let text = client_list(&mut admin);
    assert_eq!(text.matches("flags=b ").count(), 3, "{text}");
    assert_eq!(admin.cmd(&["RPUSH", "q", "a", "b"]), Frame::Integer(2));
    assert_eq!(waiting[0].read_frame(), Some(pair("q", "a")));
    assert_eq!(waiting[1].read_frame(), Some(pair("q", "b")));
    assert_eq!(admin.cmd(&["EXISTS", "q"]), Frame::Integer(0), "both popped by the push's own entry");
    wait_blocked(&mut admin, 1);

    // CLIENT UNBLOCK: the third client gets its timeout reply (a null array), or an error.
    let mut third = waiting.pop().expect("third");
    let id = client_id(&mut connect(&node));
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), Frame::Integer(0), "a client that is not blocked");
    let third_id = {
        let text = client_list(&mut admin);
        let line = text.lines().find(|l| l.contains("flags=b ")).expect("the blocked client").to_string();
        line.split(' ').next().and_then(|f| f.strip_prefix("id=")).expect("id").to_string()
    };
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &third_id, "TIMEOUT"]), Frame::Integer(1));
    assert_eq!(third.read_raw().as_deref(), Some(&b"*-1\r\n"[..]));
    send(&mut third, &["BZPOPMIN", "z", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &third_id, "ERROR"]), Frame::Integer(1));
    assert_eq!(third.read_frame(), Some(Frame::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")));
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &third_id, "maybe"]),
        Frame::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    );
    rt.block_on(node.shutdown());
}

#[test]
fn timeouts_pipelines_transactions_and_departed_clients() {
    let rt = runtime();
    let dir = TempDir::new("block2");
    let node = start(&rt, 1, &dir, true);
    let mut c = connect(&node);

    // A fractional timeout passes and answers a null array; 0.001 s does not block forever.
    let t = Instant::now();
    assert_eq!(c.raw_cmd(&[b"BLPOP", b"none", b"0.2"]).as_ref(), b"*-1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(200), "answered before its timeout");
    assert_eq!(c.raw_cmd(&[b"BRPOPLPUSH", b"none", b"dst", b"0.001"]).as_ref(), b"*-1\r\n");
    assert_eq!(c.cmd(&["BLPOP", "none", "-1"]), Frame::error("ERR timeout is negative"));
    assert_eq!(c.cmd(&["BLPOP", "none", "x"]), Frame::error("ERR timeout is not a float or out of range"));

    // Commands pipelined behind a blocked command wait for it: replies keep their order.
    let mut p = connect(&node);
    let mut pipeline = Conn::encode(&[b"BLPOP", b"pipe", b"0"]);
    pipeline.extend(Conn::encode(&[b"SET", b"after", b"1"]));
    pipeline.extend(Conn::encode(&[b"GET", b"after"]));
    p.send_raw(&pipeline);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["GET", "after"]), Frame::Null, "the SET behind BLPOP has not run");
    assert_eq!(c.cmd(&["LPUSH", "pipe", "x"]), Frame::Integer(1));
    assert_eq!(p.read_frame(), Some(pair("pipe", "x")));
    assert_eq!(p.read_frame(), Some(Frame::ok()));
    assert_eq!(p.read_frame(), Some(bulk("1")));

    // Inside MULTI nothing blocks.
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["BLPOP", "empty", "0"]), Frame::simple("QUEUED"));
    assert_eq!(c.cmd(&["BLMOVE", "empty", "d", "LEFT", "LEFT", "0"]), Frame::simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::NullArray, Frame::Null]));

    // A client that disconnects, or is killed, while blocked takes nothing afterwards.
    for how in ["disconnect", "kill"] {
        let mut gone = connect(&node);
        let id = client_id(&mut gone);
        send(&mut gone, &["BLPOP", "kept", "0"]);
        wait_blocked(&mut c, 1);
        if how == "kill" {
            assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &id]), Frame::Integer(1));
        } else {
            drop(gone);
        }
        wait_blocked(&mut c, 0);
        // Its waiter leaves the replicated queue: the push is not consumed by it.
        assert_eq!(c.cmd(&["RPUSH", "kept", how]), Frame::Integer(1));
        assert_eq!(c.cmd(&["LPOP", "kept"]), bulk(how));
    }
    rt.block_on(node.shutdown());
}

#[test]
fn blocked_clients_on_followers_are_served_through_the_leader_and_survive_a_leader_change() {
    let rt = runtime();
    let dirs: Vec<TempDir> = (1..=3).map(|i| TempDir::new(&format!("blockc{i}"))).collect();
    let nodes: [NodeHandle; 3] = std::array::from_fn(|i| start(&rt, i as u64 + 1, &dirs[i], i == 0));
    let mut c1 = connect(&nodes[0]);
    assert_eq!(c1.cmd(&["SET", "before", "join"]), Frame::ok());
    let raft = nodes[0].replica().raft().clone();
    let (i2, i3) = (nodes[1].replica().info().clone(), nodes[2].replica().info().clone());
    rt.block_on(async {
        raft.add_learner(2, i2, true).await.expect("add learner 2");
        raft.add_learner(3, i3, true).await.expect("add learner 3");
        raft.change_membership(BTreeSet::from([1, 2, 3]), false).await.expect("change membership");
    });

    // One client blocked on each follower and one on the leader, in that order.
    let (mut c2, mut c3) = (connect(&nodes[1]), connect(&nodes[2]));
    let mut b2 = connect(&nodes[1]);
    send(&mut b2, &["BLPOP", "jobs", "0"]);
    wait_blocked(&mut c2, 1);
    let mut b3 = connect(&nodes[2]);
    send(&mut b3, &["BLPOP", "jobs", "0"]);
    wait_blocked(&mut c3, 1);
    let mut b1 = connect(&nodes[0]);
    send(&mut b1, &["BLPOP", "jobs", "0"]);
    wait_blocked(&mut c1, 1);
    // One push of three elements: each client gets exactly one, in the order they blocked.
    assert_eq!(c1.cmd(&["RPUSH", "jobs", "j1", "j2", "j3"]), Frame::Integer(3));
    assert_eq!(b2.read_frame(), Some(pair("jobs", "j1")));
    assert_eq!(b3.read_frame(), Some(pair("jobs", "j2")));
    assert_eq!(b1.read_frame(), Some(pair("jobs", "j3")));

    // A client blocked on a follower stays blocked while the leader stops and another is
    // elected; a push through the new leader serves it.
    send(&mut b3, &["BRPOP", "later", "0"]);
    wait_blocked(&mut c3, 1);
    drop((b1, c1));
    let [n1, n2, n3] = nodes;
    rt.block_on(n1.shutdown());
    wait_until("a new leader to take writes", 30, || c2.cmd(&["SET", "after", "failover"]) == Frame::ok());
    assert_eq!(c3.info_field("clients", "blocked_clients"), "1");
    assert_eq!(c2.cmd(&["LPUSH", "later", "x"]), Frame::Integer(1));
    assert_eq!(b3.read_frame(), Some(pair("later", "x")));
    assert_eq!(c2.cmd(&["EXISTS", "later"]), Frame::Integer(0));
    rt.block_on(async {
        n2.shutdown().await;
        n3.shutdown().await;
    });
}
