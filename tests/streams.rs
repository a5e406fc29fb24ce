//! Streams on a three-node cluster (real sockets, real files): ids made by `*` come from the
//! write's stamped time carried in the log, so every replica holds the same entries with the
//! same ids, whichever node took the XADD; XREAD's keys are the ones after STREAMS. Consumer
//! groups read through any node deliver each entry to one consumer, and every replica holds
//! the same pending entries with the same delivery times. XREAD / XREADGROUP with BLOCK wait
//! on any node and are served by the write that fills the stream: a group entry goes to one
//! blocked consumer only.

mod common;

use common::in_process::{form_cluster, runtime, three_nodes};
use common::{tempdir::TempDir, wait_until, Conn};
use raftis::node::NodeHandle;
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

/// Nodes 1, 2, 3: node 1 bootstraps and takes a first write, then 2 and 3 join as voters.
fn cluster(rt: &tokio::runtime::Runtime, tag: &str) -> (Vec<TempDir>, [NodeHandle; 3], Conn) {
    let (dirs, nodes) = three_nodes(rt, tag);
    let c1 = form_cluster(rt, &nodes);
    (dirs, nodes, c1)
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

/// The ids in an XREADGROUP reply (`[[key, [[id, fields], ...]]]`), none for a null reply.
fn delivered_ids(reply: &Frame) -> Vec<String> {
    let Frame::Array(streams) = reply else { return Vec::new() };
    let mut ids = Vec::new();
    for s in streams {
        let Frame::Array(kv) = s else { panic!("stream reply {s:?}") };
        let Some(Frame::Array(entries)) = kv.get(1) else { panic!("entries {kv:?}") };
        for e in entries {
            let Frame::Array(pair) = e else { panic!("entry {e:?}") };
            ids.push(bulk_text(&pair[0]));
        }
    }
    ids
}

#[test]
fn group_deliveries_are_decided_once_for_every_replica() {
    let rt = runtime();
    let (_dirs, nodes, mut c1) = cluster(&rt, "groups");
    let port = |n: &NodeHandle| n.client_addr.port();
    let mut conns: Vec<Conn> = nodes.iter().map(|n| Conn::try_connect(port(n)).expect("connect")).collect();
    assert_eq!(c1.cmd(&["XGROUP", "CREATE", "q", "workers", "$", "MKSTREAM"]), Frame::ok());
    let mut added = Vec::new();
    for i in 0..30 {
        added.push(bulk_text(&c1.cmd(&["XADD", "q", "*", "job", &i.to_string()])));
    }
    // Three consumers, one per node, take two entries at a time until the stream is drained.
    let mut delivered: Vec<String> = Vec::new();
    for round in 0..40 {
        let i = round % 3;
        let name = format!("worker{i}");
        let reply = conns[i].cmd(&["XREADGROUP", "GROUP", "workers", &name, "COUNT", "2", "STREAMS", "q", ">"]);
        let ids = delivered_ids(&reply);
        for id in &ids {
            assert_eq!(conns[i].cmd(&["XACK", "q", "workers", id]), Frame::Integer(1), "acked once: {id}");
        }
        delivered.extend(ids);
    }
    delivered.sort();
    let mut want = added.clone();
    want.sort();
    assert_eq!(delivered, want, "each entry delivered exactly once");
    let summary = c1.cmd(&["XPENDING", "q", "workers"]);
    assert_eq!(summary, Frame::Array(vec![Frame::Integer(0), Frame::Null, Frame::Null, Frame::NullArray]));
    let want_digest = c1.cmd(&["DEBUG", "DIGEST-EXACT"]);
    let want_info = c1.cmd(&["XINFO", "STREAM", "q", "FULL"]);
    for n in &nodes[1..] {
        let mut c = Conn::try_connect(port(n)).expect("connect");
        assert_eq!(c.cmd(&["READONLY"]), Frame::ok());
        wait_until("a follower to converge", 20, || c.cmd(&["DEBUG", "DIGEST-EXACT"]) == want_digest);
        assert_eq!(c.cmd(&["XINFO", "STREAM", "q", "FULL"]), want_info);
    }
    rt.block_on(async {
        for n in nodes {
            n.shutdown().await;
        }
    });
}

fn send(c: &mut Conn, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send_raw(&Conn::encode(&args));
}

/// Waits until `c`'s node counts `n` blocked clients.
fn wait_blocked(c: &mut Conn, n: usize) {
    wait_until(&format!("{n} blocked clients"), 20, || c.info_field("clients", "blocked_clients") == n.to_string());
}

#[test]
fn blocked_readers_are_woken_by_the_write_that_fills_the_stream() {
    let rt = runtime();
    let (_dirs, nodes, mut c1) = cluster(&rt, "xblock");
    let port = |n: &NodeHandle| n.client_addr.port();
    let connect = |i: usize| Conn::try_connect(port(&nodes[i])).expect("connect");
    assert_eq!(c1.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), Frame::ok());

    // A plain reader on node 2, and two group consumers on nodes 1 and 3.
    let (mut reader, mut admin2) = (connect(1), connect(1));
    send(&mut reader, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    wait_blocked(&mut admin2, 1);
    let mut consumers = [connect(0), connect(2)];
    let mut admin3 = connect(2);
    send(&mut consumers[0], &["XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut c1, 1);
    send(&mut consumers[1], &["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut admin3, 1);

    let first = bulk_text(&c1.cmd(&["XADD", "s", "*", "n", "1"]));
    assert_eq!(delivered_ids(&reader.read_frame().expect("reader reply")), vec![first.clone()]);
    // The group entry goes to the consumer that blocked first, the next one to the other.
    assert_eq!(delivered_ids(&consumers[0].read_frame().expect("c1 reply")), vec![first.clone()]);
    let second = bulk_text(&c1.cmd(&["XADD", "s", "*", "n", "2"]));
    assert_eq!(delivered_ids(&consumers[1].read_frame().expect("c2 reply")), vec![second.clone()]);
    let pending = c1.cmd(&["XPENDING", "s", "g"]);
    let Frame::Array(summary) = pending else { panic!("XPENDING {pending:?}") };
    assert_eq!(summary[0], Frame::Integer(2));
    let per_consumer = |name: &str| Frame::Array(vec![Frame::Bulk(name.to_string().into()), Frame::Bulk("1".into())]);
    assert_eq!(summary[3], Frame::Array(vec![per_consumer("c1"), per_consumer("c2")]));

    // A timeout answers a null array; a destroyed group or a deleted stream answers an error.
    let t = Instant::now();
    assert_eq!(admin2.raw_cmd(&[b"XREAD", b"BLOCK", b"150", b"STREAMS", b"s", b"$"]).as_ref(), b"*-1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(150), "answered before its timeout");
    send(&mut consumers[0], &["XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut c1, 1);
    assert_eq!(c1.cmd(&["XGROUP", "DESTROY", "s", "g"]), Frame::Integer(1));
    let reply = consumers[0].read_frame();
    assert_eq!(reply, Some(Frame::error("NOGROUP the consumer group this client was blocked on no longer exists")));
    assert_eq!(c1.cmd(&["XGROUP", "CREATE", "s", "g", "$"]), Frame::ok());
    send(&mut consumers[1], &["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut admin3, 1);
    assert_eq!(c1.cmd(&["DEL", "s"]), Frame::Integer(1));
    assert_eq!(consumers[1].read_frame(), Some(Frame::error("UNBLOCKED the stream key no longer exists")));
    // So does FLUSHALL (Redis's TCL suite hung here when it did not wake the consumer).
    assert_eq!(c1.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), Frame::ok());
    send(&mut consumers[1], &["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut admin3, 1);
    assert_eq!(c1.cmd(&["FLUSHALL"]), Frame::ok());
    assert_eq!(consumers[1].read_frame(), Some(Frame::error("UNBLOCKED the stream key no longer exists")));
    rt.block_on(async {
        for n in nodes {
            n.shutdown().await;
        }
    });
}
