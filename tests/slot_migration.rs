//! Atomic slot migration between Raft groups with real processes (three nodes, four data
//! groups): `CLUSTER MIGRATESLOTS` moves a slot range while a client keeps writing (every
//! acknowledged write is readable afterwards, from the new owner; values of every type keep
//! their TTLs; CLUSTER SHARDS shows the new owner; the old owner's nodes answer `-MOVED`), a
//! migration cancelled while it copies leaves no copied key behind and its slots writable,
//! and bad input gets clear errors.

mod common;

use common::sharded::{text, Sharded};
use common::wait_until;
use raftis::cmd::cluster::slot::key_slot;
use raftis::protocol::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The fields of migration `id` in `CLUSTER GETSLOTMIGRATIONS` (name -> text).
fn migration(c: &mut common::Conn, id: Option<i64>) -> Option<Vec<(String, String)>> {
    let Frame::Array(list) = c.cmd(&["CLUSTER", "GETSLOTMIGRATIONS"]) else { panic!("GETSLOTMIGRATIONS") };
    list.iter().rev().find_map(|m| {
        let Frame::Array(fields) = m else { panic!("a migration is a list of fields: {m:?}") };
        let pairs: Vec<(String, String)> = fields
            .chunks(2)
            .map(|kv| {
                let v = match &kv[1] {
                    Frame::Integer(n) => n.to_string(),
                    other => text(other),
                };
                (text(&kv[0]), v)
            })
            .collect();
        let this = pairs.iter().any(|(k, v)| k == "id" && id.is_none_or(|id| *v == id.to_string()));
        this.then_some(pairs)
    })
}

fn field<'a>(m: &'a [(String, String)], name: &str) -> &'a str {
    m.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// Waits for the newest migration to reach `state`, then returns its fields.
fn wait_state(cluster: &Sharded, state: &str, secs: u64) -> Vec<(String, String)> {
    let mut c = cluster.conn(0);
    let mut last = None;
    wait_until(&format!("the migration to be {state}"), secs, || {
        last = migration(&mut c, None);
        last.as_ref().is_some_and(|m| field(m, "state") == state)
    });
    last.unwrap_or_default()
}

/// Slot ranges of CLUSTER SHARDS, one list per shard.
fn shard_ranges(c: &mut common::Conn) -> Vec<Vec<i64>> {
    let Frame::Array(shards) = c.cmd(&["CLUSTER", "SHARDS"]) else { panic!("CLUSTER SHARDS") };
    shards
        .iter()
        .map(|s| {
            let Frame::Array(fields) = s else { panic!("a shard is a map") };
            let slots = fields.chunks(2).find(|kv| text(&kv[0]) == "slots").map(|kv| kv[1].clone());
            let Some(Frame::Array(slots)) = slots else { panic!("slots") };
            slots.iter().map(|s| if let Frame::Integer(n) = s { *n } else { -1 }).collect()
        })
        .collect()
}

/// Keys named `{prefix}N` whose slots are below `below`, `n` of them.
fn keys_below(prefix: &str, below: u16, n: usize) -> Vec<String> {
    (0..).map(|i| format!("{prefix}{i}")).filter(|k| key_slot(k.as_bytes()) < below).take(n).collect()
}

#[test]
fn a_range_moves_under_writes_and_every_acknowledged_write_survives() {
    let cluster = Arc::new(Sharded::start("slotmove"));
    // Data of every kind in slots 0..=999 (group 1), some with a TTL.
    let keys = keys_below("pre:", 1000, 200);
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(cluster.routed(n % 3, &["SET", k, &format!("v{n}")]).0, Frame::ok());
    }
    let (ttl_key, list, hash) = (&keys[0], &format!("{{{}}}list", keys[1]), &format!("{{{}}}hash", keys[1]));
    assert_eq!(cluster.routed(0, &["PEXPIRE", ttl_key, "600000"]).0, Frame::Integer(1));
    assert_eq!(cluster.routed(1, &["RPUSH", list, "a", "b", "c"]).0, Frame::Integer(3));
    assert_eq!(cluster.routed(2, &["HSET", hash, "f", "1", "g", "2"]).0, Frame::Integer(2));
    assert!(key_slot(list.as_bytes()) < 1000);

    // A client writes throughout, half of its keys in the migrating range.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (cluster, stop, acked) = (cluster.clone(), stop.clone(), acked.clone());
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("w:{n}");
                let value = format!("x{n}");
                let (reply, _) = cluster.routed(n % 3, &["SET", &key, &value]);
                assert_eq!(reply, Frame::ok(), "SET {key}");
                acked.lock().expect("lock").push((key, value));
                n += 1;
            }
        })
    };
    wait_until("some writes before the migration", 20, || acked.lock().expect("lock").len() > 20);

    let mut c = cluster.conn(1);
    assert_eq!(c.cmd(&["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "499", "500", "999", "GROUP", "2"]), Frame::ok());
    let m = wait_state(&cluster, "done", 60);
    assert_eq!(
        (field(&m, "slot_ranges"), field(&m, "source_group"), field(&m, "target_group")),
        ("0-499 500-999", "1", "2")
    );
    assert!(field(&m, "keys").parse::<u64>().expect("keys") >= 202, "{m:?}");
    let before = acked.lock().expect("lock").len();
    wait_until("writes after the migration", 20, || acked.lock().expect("lock").len() > before + 20);
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("the writer saw no error");

    // The map: group 2 has 0-999 besides its own range, group 1 the rest of its own.
    for i in 0..3 {
        let mut ranges = shard_ranges(&mut cluster.conn(i));
        ranges.sort();
        assert_eq!(ranges, vec![vec![0, 999, 4096, 8191], vec![1000, 4095], vec![8192, 12287], vec![12288, 16383]]);
    }
    // Every acknowledged write reads back; the moved keys kept their values, types and TTLs.
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.iter().filter(|(k, _)| key_slot(k.as_bytes()) < 1000).count() > 5, "writes hit the range");
    for (n, (k, v)) in acked.iter().enumerate() {
        assert_eq!(cluster.routed(n % 3, &["GET", k]).0, Frame::Bulk(v.clone().into()), "GET {k}");
    }
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(cluster.routed(n % 3, &["GET", k]).0, Frame::Bulk(format!("v{n}").into()), "GET {k}");
    }
    let Frame::Integer(pttl) = cluster.routed(0, &["PTTL", ttl_key]).0 else { panic!("PTTL") };
    assert!((1..=600_000).contains(&pttl), "TTL kept: {pttl}");
    let (reply, owner_port) = cluster.routed(0, &["LRANGE", list, "0", "-1"]);
    assert_eq!(reply, Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b"), Frame::bulk("c")]));
    assert_eq!(cluster.routed(2, &["HGET", hash, "g"]).0, Frame::bulk("2"));
    // Nodes that do not lead group 2 send clients there.
    let running = cluster.ports.iter().enumerate().filter(|(i, _)| cluster.servers[*i].is_some());
    for (i, port) in running.filter(|(_, p)| **p != owner_port) {
        let reply = text(&cluster.conn(i).cmd(&["GET", ttl_key]));
        assert!(reply.starts_with(&format!("MOVED {} ", key_slot(ttl_key.as_bytes()))), "node on {port}: {reply}");
        assert!(reply.ends_with(&format!(":{owner_port}")), "{reply}");
    }
}

#[test]
fn a_cancelled_migration_leaves_nothing_and_bad_input_is_refused() {
    let cluster = Sharded::start("slotcancel");
    let mut c = cluster.conn(0);
    let migrate = |c: &mut common::Conn, args: &[&str]| {
        let mut argv = vec!["CLUSTER", "MIGRATESLOTS"];
        argv.extend_from_slice(args);
        text(&c.cmd(&argv))
    };
    let refusals = [
        (vec!["SLOTSRANGE", "0", "16384", "GROUP", "2"], "ERR Invalid or out of range slot"),
        (vec!["SLOTSRANGE", "-1", "5", "GROUP", "2"], "ERR Invalid or out of range slot"),
        (vec!["SLOTSRANGE", "9", "5", "GROUP", "2"], "ERR Invalid or out of range slot"),
        (vec!["SLOTSRANGE", "0", "5", "NODE", "77"], "ERR Unknown node 77"),
        (vec!["SLOTSRANGE", "0", "5", "GROUP", "9"], "ERR unknown data group 9"),
        (vec!["SLOTSRANGE", "4000", "4200", "GROUP", "3"], "ERR the slots belong to more than one group"),
        (vec!["SLOTSRANGE", "0", "5", "GROUP", "1"], "ERR the slots already belong to group 1"),
        (vec!["SLOTSRANGE", "0", "5", "7", "GROUP", "2"], "ERR syntax error"),
        (vec!["SLOTSRANGE", "0", "5", "TO", "2"], "ERR syntax error"),
        (vec!["SLOTS", "0", "5", "GROUP", "2"], "ERR syntax error"),
    ];
    for (args, want) in refusals {
        let reply = migrate(&mut c, &args);
        assert!(reply.starts_with(want), "{args:?}: {reply}");
    }
    assert!(text(&c.cmd(&["CLUSTER", "GETSLOTMIGRATIONS", "x"])).starts_with("ERR wrong number of arguments"));

    // Many keys in one slot of group 1, so that the copy takes a while.
    let tag = (0..).map(|i| format!("c{i}")).find(|t| key_slot(t.as_bytes()) < 4096).expect("a tag");
    let slot = key_slot(tag.as_bytes());
    for batch in 0..30 {
        let mut argv = vec!["MSET".to_string()];
        for i in 0..1000 {
            argv.extend([format!("{{{tag}}}{batch}:{i}"), "v".into()]);
        }
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(cluster.routed(0, &args).0, Frame::ok());
    }
    let total = |cluster: &Sharded| -> i64 {
        (0..3).map(|i| if let Frame::Integer(n) = cluster.conn(i).cmd(&["DBSIZE"]) { n } else { 0 }).sum()
    };
    wait_until("30000 keys counted once", 20, || total(&cluster) == 30_000);
    let slot_text = slot.to_string();
    // The migration and its cancellation back to back; a second migration of an overlapping
    // range in between is refused.
    // A node that leads one group, not group 1: NODE names that group.
    // Leadership is balanced (2/1/1 of four groups) once the balancer has settled: wait for it.
    let mut found = None;
    wait_until("a master of exactly one group other than group 1", 30, || {
        let nodes = text(&c.cmd(&["CLUSTER", "NODES"]));
        found = nodes
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.len() == 9 && f[8] != "0-4095")
            .map(|line| (line[0].to_string(), (f_start(line[8]) / 4096 + 1).to_string()));
        found.is_some()
    });
    let (target_node, target_group) = found.expect("a master of one group");
    c.send_raw(&common::Conn::encode(&[
        b"CLUSTER",
        b"MIGRATESLOTS",
        b"SLOTSRANGE",
        slot_text.as_bytes(),
        slot_text.as_bytes(),
        b"NODE",
        target_node.as_bytes(),
    ]));
    c.send_raw(&common::Conn::encode(&[b"CLUSTER", b"MIGRATESLOTS", b"SLOTSRANGE", b"0", b"4095", b"GROUP", b"2"]));
    c.send_raw(&common::Conn::encode(&[b"CLUSTER", b"CANCELSLOTMIGRATIONS"]));
    assert_eq!(c.read_frame(), Some(Frame::ok()), "the migration starts");
    let overlap = c.read_frame().map(|f| text(&f)).unwrap_or_default();
    assert!(overlap.starts_with(&format!("ERR slot {slot} is already migrating")), "{overlap}");
    assert_eq!(c.read_frame(), Some(Frame::ok()), "cancelled");
    let m = wait_state(&cluster, "cancelled", 60);
    assert_eq!(field(&m, "target_group"), target_group, "NODE names the group that node leads: {m:?}");
    // Nothing the copy brought stays, and the slot takes writes again, in its own group.
    wait_until("the copied keys to go", 20, || total(&cluster) == 30_000);
    assert_eq!(cluster.routed(2, &["SET", &format!("{{{tag}}}new"), "1"]).0, Frame::ok());
    assert_eq!(cluster.routed(1, &["GET", &format!("{{{tag}}}0:0")]).0, Frame::bulk("v"));
    for i in 0..3 {
        let mut ranges = shard_ranges(&mut cluster.conn(i));
        ranges.sort();
        assert_eq!(ranges[0], vec![0, 4095], "the slot never moved");
    }
}

/// The first slot of a `CLUSTER NODES` range (`a-b` or `a`).
fn f_start(range: &str) -> u64 {
    range.split('-').next().and_then(|s| s.parse().ok()).expect("a slot range")
}
