//! A three-node cluster in one test process (real sockets, real files): node 1 bootstraps,
//! nodes 2 and 3 join through the Raft handle (`add_learner`, `change_membership`); writes on
//! the leader reach every follower, and followers forward commands, pipelines of writes and
//! MULTI/EXEC transactions to the leader. Linearizable reads, batched, are never stale. Also: a
//! failed fsync stops a node.

mod common;

use common::in_process::{form_cluster, runtime, three_nodes};
use common::{tempdir::TempDir, wait_until, Conn};
use raftis::config::Config;
use raftis::disk::RealDisk;
use raftis::node::{start_with_disk, NodeHandle};
use raftis::protocol::Frame;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn three_nodes_replicate_writes_to_every_follower() {
    let rt = runtime();
    let (_dirs, nodes) = three_nodes(&rt, "cluster");
    let mut c1 = form_cluster(&rt, &nodes);
    let [n1, n2, n3] = nodes;
    let port = |n: &NodeHandle| n.client_addr.port();

    for i in 0..200 {
        assert_eq!(c1.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]), Frame::ok());
    }
    assert_eq!(c1.cmd(&["RPUSH", "list", "a", "b"]), Frame::Integer(2));
    assert_eq!(c1.cmd(&["SET", "ttl", "x", "EX", "1000"]), Frame::ok());
    for n in [&n2, &n3] {
        let want = c1.cmd(&["DEBUG", "DIGEST-EXACT"]);
        let mut c = Conn::try_connect(port(n)).expect("connect");
        // READONLY: read the follower's own copy (a linearizable read would need the leader).
        assert_eq!(c.cmd(&["READONLY"]), Frame::ok());
        wait_until("a follower to converge", 20, || c.cmd(&["DEBUG", "DIGEST-EXACT"]) == want);
        assert_eq!(c.cmd(&["GET", "k199"]), Frame::Bulk("v199".into()));
        // A write on a follower is forwarded to the leader and applied there.
        let key = format!("via{}", port(n));
        assert_eq!(c.cmd(&["SET", &key, "forwarded"]), Frame::ok());
        assert_eq!(c1.cmd(&["GET", &key]), Frame::Bulk("forwarded".into()));
        // Without READONLY a follower's read waits for the leader's read index, so it sees that
        // write at once.
        assert_eq!(c.cmd(&["READWRITE"]), Frame::ok());
        assert_eq!(c.cmd(&["GET", &key]), Frame::Bulk("forwarded".into()));
        assert_eq!(c.cmd(&["INCR", "shared-counter"]), Frame::Integer(if port(n) == port(&n2) { 1 } else { 2 }));
        follower_transactions_and_pipelines(&mut c, &mut c1, &format!("{}", port(n)));
    }

    rt.block_on(async {
        for n in [n1, n2, n3] {
            n.shutdown().await;
        }
    });
}

/// On a follower `c` (leader connection `c1`): a MULTI/EXEC transaction is forwarded to the
/// leader as one batch; a WATCHed key changed meanwhile makes it fail with a null reply; a
/// pipeline of writes is forwarded as one batch, applied in order, seen by the read after it.
fn follower_transactions_and_pipelines(c: &mut Conn, c1: &mut Conn, tag: &str) {
    let queued = Frame::Simple("QUEUED".into());
    let (key, counter, watched) = (format!("in-tx-{tag}"), format!("tx-counter-{tag}"), format!("watched-{tag}"));
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", &key, tag]), queued);
    assert_eq!(c.cmd(&["INCR", &counter]), queued);
    assert_eq!(c.cmd(&["PING"]), queued);
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::ok(), Frame::Integer(1), Frame::Simple("PONG".into())]));
    assert_eq!(c1.cmd(&["GET", &key]), Frame::Bulk(tag.to_string().into()));

    // WATCH of a key nobody touches: EXEC runs.
    assert_eq!(c.cmd(&["WATCH", &watched]), Frame::ok());
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["INCR", &counter]), queued);
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Integer(2)]));
    // Changed by another client (on the leader) between WATCH and EXEC: null, nothing done.
    assert_eq!(c.cmd(&["WATCH", &watched]), Frame::ok());
    assert_eq!(c1.cmd(&["SET", &watched, "changed"]), Frame::ok());
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["INCR", &counter]), queued);
    assert_eq!(c.cmd(&["EXEC"]), Frame::NullArray);
    assert_eq!(c1.cmd(&["GET", &counter]), Frame::Bulk("2".into()));
    // A write acknowledged on the leader just before a WATCH on the follower is not a change
    // made after the WATCH: EXEC runs (WATCH reads the key's version linearizably, not from a
    // follower copy that may not have applied the write yet).
    for i in 0..30 {
        assert_eq!(c1.cmd(&["SET", &watched, &i.to_string()]), Frame::ok());
        assert_eq!(c.cmd(&["WATCH", &watched]), Frame::ok());
        assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
        assert_eq!(c.cmd(&["GET", &watched]), queued);
        assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Bulk(i.to_string().into())]), "round {i}");
    }

    // A pipeline of writes and a read, sent to the follower in one go.
    let mut out = Vec::new();
    for args in [&["SET", &counter, "10"][..], &["INCR", &counter], &["INCRBY", &counter, "5"], &["GET", &counter]] {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        out.extend(Conn::encode(&args));
    }
    c.send_raw(&out);
    let replies: Vec<Frame> = (0..4).map(|_| c.read_frame().expect("a reply")).collect();
    assert_eq!(replies, [Frame::ok(), Frame::Integer(11), Frame::Integer(16), Frame::Bulk("16".into())]);
}

fn int_of(f: &Frame) -> u64 {
    match f {
        Frame::Bulk(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).expect("a number"),
        Frame::Null => 0,
        other => panic!("not a counter value: {other:?}"),
    }
}

#[test]
fn batched_linearizable_reads_never_return_stale_values() {
    let rt = runtime();
    let (_dirs, nodes) = three_nodes(&rt, "reads");
    form_cluster(&rt, &nodes);
    let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    use std::sync::atomic::Ordering::SeqCst;
    // Two readers per node (followers forward their reads; the leader batches them all): each
    // read starts after the writer's acknowledgement of `floor` and must see at least it.
    let readers: Vec<_> = nodes
        .iter()
        .flat_map(|n| [n.client_addr.port(); 2])
        .map(|port| {
            let (acked, done) = (acked.clone(), done.clone());
            std::thread::spawn(move || {
                let mut c = Conn::try_connect(port).expect("connect");
                let mut checked = 0u64;
                while !done.load(SeqCst) || checked == 0 {
                    let floor = acked.load(SeqCst);
                    // Four GETs in one pipeline: they share one read barrier.
                    let mut out = Vec::new();
                    for _ in 0..4 {
                        out.extend(Conn::encode(&[b"GET", b"counter"]));
                    }
                    c.send_raw(&out);
                    let mut last = floor;
                    for _ in 0..4 {
                        let v = int_of(&c.read_frame().expect("a reply"));
                        assert!(v >= last, "stale read on port {port}: {v} after {last} was acknowledged or seen");
                        last = v;
                    }
                    checked += 4;
                }
                checked
            })
        })
        .collect();
    let mut w = Conn::try_connect(nodes[0].client_addr.port()).expect("connect");
    for i in 1..=200u64 {
        assert_eq!(w.cmd(&["INCR", "counter"]), Frame::Integer(i as i64));
        acked.store(i, SeqCst);
    }
    done.store(true, SeqCst);
    for r in readers {
        assert!(r.join().expect("a reader failed") > 0);
    }
    rt.block_on(async {
        for n in nodes {
            n.shutdown().await;
        }
    });
}

#[test]
fn the_leader_wait_is_a_setting() {
    // A cluster node that was never joined has no leader: a write waits `raft-leader-wait-ms`
    // (here 300 ms instead of the default 5 s) and is refused.
    let rt = runtime();
    let dir = TempDir::new("leaderwait");
    let config = Config {
        port: 0,
        node_id: 7,
        seed: 7,
        cluster_enabled: true,
        num_groups: 0,
        data_dir: dir.0.clone(),
        raft_leader_wait_ms: 300,
        ..Config::default()
    };
    let disk = Arc::new(RealDisk::new(&dir.0).expect("disk"));
    let node = rt.block_on(start_with_disk(config, disk, false)).expect("start node");
    let mut c = Conn::try_connect(node.client_addr.port()).expect("connect");
    let started = Instant::now();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::Error("CLUSTERDOWN no leader elected".into()));
    assert!(started.elapsed() < Duration::from_secs(4), "waited {:?}", started.elapsed());
    rt.block_on(node.shutdown());
}

#[test]
fn a_failed_fsync_stops_the_node() {
    let rt = runtime();
    let disk = Arc::new(raftis::disk::SimDisk::new());
    let config = Config { port: 0, seed: 1, ..Config::default() };
    let node = rt.block_on(start_with_disk(config, disk.clone(), true)).expect("start node");
    let mut c = Conn::try_connect(node.client_addr.port()).expect("connect");
    assert_eq!(c.cmd(&["SET", "a", "1"]), Frame::ok());
    disk.fail_next_syncs(1);
    // The write whose sync failed is never acknowledged.
    assert!(matches!(c.cmd(&["SET", "b", "2"]), Frame::Error(_)));
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), node.stopped()).await.expect("node did not stop");
        assert!(node.replica().has_failed());
        node.shutdown().await;
    });
}

#[test]
fn a_follower_takes_over_when_the_leader_stops() {
    let rt = runtime();
    let (_dirs, nodes) = three_nodes(&rt, "failover");
    let mut c1 = form_cluster(&rt, &nodes);
    let [n1, n2, n3] = nodes;
    // Active expiry runs on the leader only; its deletions reach the followers.
    assert_eq!(c1.cmd(&["SET", "short", "x", "PX", "200"]), Frame::ok());
    assert_eq!(c1.cmd(&["SET", "acked", "before-failover"]), Frame::ok());
    let mut c2 = Conn::try_connect(n2.client_addr.port()).expect("connect");
    assert_eq!(c2.cmd(&["READONLY"]), Frame::ok());
    wait_until("the expired key to be deleted on a follower", 20, || c2.cmd(&["DBSIZE"]) == Frame::Integer(2));

    drop(c1);
    rt.block_on(n1.shutdown());
    // A new leader among 2 and 3 takes writes; reads through either node see every write.
    let mut c3 = Conn::try_connect(n3.client_addr.port()).expect("connect");
    wait_until("a new leader to accept writes", 20, || c3.cmd(&["SET", "after", "failover"]) == Frame::ok());
    assert_eq!(c2.cmd(&["READWRITE"]), Frame::ok());
    assert_eq!(c2.cmd(&["GET", "acked"]), Frame::Bulk("before-failover".into()));
    assert_eq!(c2.cmd(&["GET", "after"]), Frame::Bulk("failover".into()));
    assert_eq!(c3.cmd(&["GET", "before"]), Frame::Bulk("join".into()));
    rt.block_on(async {
        n2.shutdown().await;
        n3.shutdown().await;
    });
}

/// Many clients writing at once to every node (followers forward): each gets its own reply,
/// whichever log entry its write shared with others (INCR replies are a permutation of
/// 1..=N), and the leader's proposal counters account for every write.
#[test]
fn concurrent_writers_each_get_their_own_reply() {
    const CLIENTS: usize = 24;
    const INCRS: usize = 50;
    let rt = runtime();
    let (_dirs, nodes) = three_nodes(&rt, "group");
    let mut c1 = form_cluster(&rt, &nodes);
    let before = nodes[0].replica().proposal_counts();
    let ports: Vec<u16> = nodes.iter().map(|n| n.client_addr.port()).collect();
    let writers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let port = ports[i % 3];
            std::thread::spawn(move || {
                let mut c = Conn::try_connect(port).expect("connect");
                (0..INCRS)
                    .map(|_| match c.cmd(&["INCR", "counter"]) {
                        Frame::Integer(n) => n,
                        other => panic!("INCR on port {port} replied {other:?}"),
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in writers {
        let seen = w.join().expect("a writer failed");
        assert!(seen.windows(2).all(|p| p[0] < p[1]), "one client's INCRs must increase: {seen:?}");
        all.extend(seen);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=(CLIENTS * INCRS) as i64).collect::<Vec<_>>());
    let after = nodes[0].replica().proposal_counts();
    assert_eq!(after.writes - before.writes, (CLIENTS * INCRS) as u64, "the leader proposed every write");
    assert!(after.proposals - before.proposals <= after.writes - before.writes);
    assert_eq!(c1.cmd(&["GET", "counter"]), Frame::Bulk((CLIENTS * INCRS).to_string().into()));
    rt.block_on(async {
        for n in nodes {
            n.shutdown().await;
        }
    });
}
