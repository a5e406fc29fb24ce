//! A client command that runs longer than the election timeout must not cost the leader its
//! leadership: on a three-process cluster holding many keys, `KEYS *` and `DEBUG SLEEP 2` on the
//! leader leave every node's term and leader as they were, and a write sent meanwhile
//! completes; so does a long write (a transaction with DEBUG SLEEP 2, applied on every node)
//! (docs/ARCHITECTURE.md, "Slow commands").

mod common;

use common::cluster::ThreeNodes;
use common::http::{http, json_u64};
use common::{wait_until, Conn};
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

/// Keys loaded: 200k, not the million of the issue. KEYS runs off the runtime thread, but its
/// reply is still encoded (and freed) on it: ~30 ms per million keys in a release build, ten
/// times that in a debug one, and several times more again on a test machine busy with builds,
/// which would let this test fail on the encoding alone. DEBUG SLEEP 2 is the command that
/// outlasts the default election timeout here (run inline on the runtime thread, it deposes
/// the leader: checked by hand); KEYS checks that a big keyspace-wide read is safe too.
const KEYS: usize = 200_000;
/// Keys per MSET, and MSETs in flight on the loading connection: entries small enough that one
/// batch of them replicated (openraft sends up to 300 per RPC) decodes quickly in a debug build.
const PER_MSET: usize = 200;
const IN_FLIGHT: usize = 4;

fn key(i: usize) -> String {
    format!("key:{i:07}")
}

/// Loads keys `key:0000000`.. with pipelined MSETs, a few in flight at a time.
fn load(c: &mut Conn) {
    let batches: Vec<Vec<u8>> = (0..KEYS / PER_MSET)
        .map(|b| {
            let names: Vec<String> = (b * PER_MSET..(b + 1) * PER_MSET).map(key).collect();
            let mut args: Vec<&[u8]> = vec![b"MSET"];
            names.iter().for_each(|k| args.extend([k.as_bytes(), b"v".as_slice()]));
            Conn::encode(&args)
        })
        .collect();
    let mut sent = 0;
    for b in 0..batches.len() {
        while sent < batches.len() && sent < b + IN_FLIGHT {
            c.send_raw(&batches[sent]);
            sent += 1;
        }
        assert_eq!(c.read_frame(), Some(Frame::Simple("OK".into())), "MSET {b}");
    }
}

/// Every node's (term, leader), from its admin API.
fn terms(cluster: &ThreeNodes) -> Vec<(Option<u64>, Option<u64>)> {
    cluster
        .raft_ports
        .iter()
        .map(|p| {
            let body = http(*p, "GET", "/raft/leader", "").1;
            (json_u64(&body, "term"), json_u64(&body, "leader_id"))
        })
        .collect()
}

/// Sends `KEYS *` and reads its reply's bytes without parsing the million elements (the test's
/// parser would redo its work for every chunk): checks the header counts every key and the
/// reply is as long as their bulk strings; a following command proves nothing more came.
fn keys_all(c: &mut Conn) -> usize {
    c.send_raw(&Conn::encode(&[b"KEYS", b"*"]));
    let bulk_len = |i: usize| {
        let k = key(i);
        format!("${}\r\n{k}\r\n", k.len()).len()
    };
    let expected_body: usize = (0..KEYS).map(bulk_len).sum();
    let header = format!("*{KEYS}\r\n");
    let total = header.len() + expected_body;
    let got = c.read_bytes(total);
    assert!(got.starts_with(header.as_bytes()), "{:?}", String::from_utf8_lossy(&got[..32]));
    KEYS
}

#[test]
fn long_commands_on_the_leader_keep_its_leadership() {
    let cluster = ThreeNodes::start("slowcmd", &[]);
    let leader = cluster.leader().expect("a leader");
    let mut c = cluster.conn(leader);
    load(&mut c);
    // Every node holds the keys (so followers are not catching up during what follows).
    for i in 0..3 {
        let mut f = cluster.conn(i);
        wait_until("replicas hold every key", 120, || f.cmd(&["DBSIZE"]) == Frame::Integer(KEYS as i64));
    }
    let before = terms(&cluster);
    assert!(before.iter().all(|t| *t == before[0] && t.0.is_some()), "one term and leader: {before:?}");

    let started = Instant::now();
    assert_eq!(keys_all(&mut c), KEYS);
    assert_eq!(c.cmd(&["PING"]), Frame::Simple("PONG".into()), "the KEYS reply ended where expected");
    let keys_took = started.elapsed();

    // A write sent while DEBUG SLEEP holds the keyspace waits for it, then completes.
    let mut sleeper = cluster.conn(leader);
    sleeper.send_raw(&Conn::encode(&[b"DEBUG", b"SLEEP", b"2"]));
    let slept = Instant::now();
    assert_eq!(c.cmd(&["SET", "during", "sleep"]), Frame::Simple("OK".into()));
    assert_eq!(sleeper.read_frame(), Some(Frame::Simple("OK".into())));
    assert!(slept.elapsed() >= Duration::from_secs(2), "DEBUG SLEEP 2 slept");

    // A long write: DEBUG SLEEP 2 inside a transaction is applied, through the log, on every
    // node; it is applied off the runtime thread as any write that may run long (a big DEL,
    // SUNIONSTORE or FLUSHALL), so no follower misses a heartbeat meanwhile.
    for cmd in [&["MULTI"][..], &["SET", "in", "tx"], &["DEBUG", "SLEEP", "2"]] {
        c.send_raw(&Conn::encode(&cmd.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
    }
    assert_eq!(c.read_frame(), Some(Frame::Simple("OK".into())));
    assert_eq!(c.read_frame(), Some(Frame::Simple("QUEUED".into())));
    assert_eq!(c.read_frame(), Some(Frame::Simple("QUEUED".into())));
    let slept = Instant::now();
    let ok = Frame::Simple("OK".into());
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![ok.clone(), ok]));
    assert!(slept.elapsed() >= Duration::from_secs(2), "the transaction's DEBUG SLEEP 2 slept");

    let after = terms(&cluster);
    assert_eq!(after, before, "no election during KEYS ({keys_took:?}), DEBUG SLEEP 2 or the long transaction");
    assert_eq!(cluster.conn(leader).cmd(&["GET", "during"]), Frame::Bulk("sleep".into()));
}
