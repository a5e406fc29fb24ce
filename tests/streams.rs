//! Streams on a three-node cluster (real sockets, real files): ids made by `*` come from the
//! write's stamped time carried in the log, so every replica holds the same entries with the
//! same ids, whichever node took the XADD; XREAD's keys are the ones after STREAMS.

mod common;

use common::{tempdir::TempDir, Conn};
use raftis::config::Config;
use raftis::disk::RealDisk;
use raftis::node::{start_with_disk, NodeHandle};
use raftis::protocol::Frame;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(rt: &tokio::runtime::Runtime, id: u64, dir: &TempDir, bootstrap: bool) -> NodeHandle {
    let config =
        Config { port: 0, node_id: id, seed: id, cluster_enabled: true, data_dir: dir.0.clone(), ..Config::default() };
    let disk = Arc::new(RealDisk::new(&dir.0).expect("disk"));
    rt.block_on(start_with_disk(config, disk, bootstrap)).expect("start node")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Nodes 1, 2, 3: node 1 bootstraps and takes a first write, then 2 and 3 join as voters.
fn cluster(rt: &tokio::runtime::Runtime, tag: &str) -> (Vec<TempDir>, [NodeHandle; 3], Conn) {
    let dirs: Vec<TempDir> = (1..=3).map(|i| TempDir::new(&format!("{tag}{i}"))).collect();
    let nodes: [NodeHandle; 3] = std::array::from_fn(|i| start(rt, i as u64 + 1, &dirs[i], i == 0));
    let mut c1 = Conn::try_connect(nodes[0].client_addr.port()).expect("connect");
    assert_eq!(c1.cmd(&["SET", "before", "join"]), Frame::ok());
    let raft = nodes[0].replica().raft().clone();
    let (i2, i3) = (nodes[1].replica().info().clone(), nodes[2].replica().info().clone());
    rt.block_on(async {
        raft.add_learner(2, i2, true).await.expect("add learner 2");
        raft.add_learner(3, i3, true).await.expect("add learner 3");
        raft.change_membership(BTreeSet::from([1, 2, 3]), false).await.expect("change membership");
    });
    (dirs, nodes, c1)
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bulk_text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

#[test]
fn auto_ids_are_the_same_on_every_replica() {
    let rt = runtime();
    let (_dirs, nodes, mut c1) = cluster(&rt, "streams");
    let port = |n: &NodeHandle| n.client_addr.port();
    let mut c2 = Conn::try_connect(port(&nodes[1])).expect("connect");
    let mut ids = Vec::new();
    for i in 0..50 {
        // Alternate leader and follower: a follower forwards the write, the id is still the
        // leader's stamp, and ids keep growing.
        let c = if i % 2 == 0 { &mut c1 } else { &mut c2 };
        let id = bulk_text(&c.cmd(&["XADD", "{s}1", "MAXLEN", "~", "1000", "*", "i", &i.to_string()]));
        ids.push(id);
    }
    let parse = |id: &str| -> (u64, u64) {
        let (ms, seq) = id.split_once('-').expect("ms-seq");
        (ms.parse().expect("ms"), seq.parse().expect("seq"))
    };
    assert!(ids.windows(2).all(|w| parse(&w[0]) < parse(&w[1])), "ids grow: {ids:?}");
    assert_eq!(c1.cmd(&["XLEN", "{s}1"]), Frame::Integer(50));
    let want_range = c1.cmd(&["XRANGE", "{s}1", "-", "+"]);
    let want_digest = c1.cmd(&["DEBUG", "DIGEST-EXACT"]);
    for n in &nodes[1..] {
        let mut c = Conn::try_connect(port(n)).expect("connect");
        assert_eq!(c.cmd(&["READONLY"]), Frame::ok());
        wait_until("a follower to converge", 20, || c.cmd(&["DEBUG", "DIGEST-EXACT"]) == want_digest);
        assert_eq!(c.cmd(&["XRANGE", "{s}1", "-", "+"]), want_range);
        assert_eq!(c.cmd(&["TYPE", "{s}1"]), Frame::Simple("stream".into()));
    }
    // XREAD's keys are found after STREAMS (COMMAND GETKEYS reports what routing uses).
    let keys = c1.cmd(&["COMMAND", "GETKEYS", "XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"]);
    assert_eq!(keys, Frame::Array(vec![Frame::Bulk("a".into()), Frame::Bulk("b".into())]));
    let one = c1.cmd(&["XREAD", "COUNT", "1", "STREAMS", "{s}1", "{s}2", "0", "0"]);
    let Frame::Array(streams) = one else { panic!("XREAD reply: {one:?}") };
    assert_eq!(streams.len(), 1);
    rt.block_on(async {
        for n in nodes {
            n.shutdown().await;
        }
    });
}
