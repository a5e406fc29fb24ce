//! Redis Cluster's migration protocol against a raftis cluster of three real processes with
//! four data groups (`common::sharded`):
//!
//! - by hand: `CLUSTER SETSLOT IMPORTING / MIGRATING`, a key moved by MIGRATE is answered
//!   `-ASK` at the source, `-MOVED` at the target without ASKING and served with it; a new key
//!   goes to the target through ASK; a multi-key command with one key moved gets `-TRYAGAIN`;
//!   `SETSLOT NODE` is refused while the source holds keys, then moves the slot (CLUSTER SLOTS,
//!   `-MOVED`); bad input gets Redis's errors;
//! - `redis-cli --cluster reshard` moving 120 slots from one node's group to another's while a
//!   slot-aware client (following `-MOVED` and `-ASK`) writes and reads keys of those slots:
//!   every acknowledged write readable afterwards, `redis-cli --cluster check` clean, CLUSTER
//!   SLOTS names the new owner; then `redis-cli --cluster rebalance` (by weight: the node
//!   leading two of the four groups weighs 2) moves them back.

mod common;

use common::sharded::{text, Sharded};
use common::{wait_until, Conn};
use raftis::cmd::cluster::slot::key_slot;
use raftis::protocol::Frame;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A master's line of CLUSTER NODES: id, port, slot ranges.
struct Master {
    id: String,
    port: u16,
    ranges: Vec<(u16, u16)>,
}

fn masters(c: &mut Conn) -> Vec<Master> {
    let nodes = text(&c.cmd(&["CLUSTER", "NODES"]));
    let mut out = Vec::new();
    for line in nodes.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 8 || !f[2].contains("master") {
            continue;
        }
        let port = f[1].split('@').next().and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| p.parse().ok());
        let ranges = f[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|a| (a, a)),
            })
            .collect();
        out.push(Master { id: f[0].to_string(), port: port.unwrap_or(0), ranges });
    }
    out
}

/// The master serving `slot`.
fn owner(ms: &[Master], slot: u16) -> Option<&Master> {
    ms.iter().find(|m| m.ranges.iter().any(|&(a, b)| a <= slot && slot <= b))
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("host:port")
}

/// Sends `args` as a Redis Cluster client does, from `port`: follows `-MOVED`, follows `-ASK`
/// with ASKING (once, not updating its start), retries `-TRYAGAIN` / `-CLUSTERDOWN` from
/// `start` for up to 30 s. Returns the reply and whether an `-ASK` was followed.
fn cluster_cmd(start: u16, args: &[&str]) -> (Frame, bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut port, mut asked, mut hops) = (start, false, 0);
    let mut asking = false;
    loop {
        let reply = match Conn::try_connect(port) {
            Ok(mut c) => {
                if asking {
                    assert_eq!(c.cmd(&["ASKING"]), Frame::ok());
                }
                c.cmd(args)
            }
            Err(e) => panic!("node on port {port}: {e}"),
        };
        asking = false;
        let msg = text(&reply);
        match reply {
            Frame::Error(_) if msg.starts_with("MOVED ") && hops < 8 => {
                port = port_of(msg.split(' ').nth(2).expect("MOVED slot addr"));
                hops += 1;
            }
            Frame::Error(_) if msg.starts_with("ASK ") && hops < 8 => {
                port = port_of(msg.split(' ').nth(2).expect("ASK slot addr"));
                (asking, asked, hops) = (true, true, hops + 1);
            }
            Frame::Error(_) if (msg.starts_with("CLUSTERDOWN") || msg.starts_with("TRYAGAIN")) => {
                assert!(Instant::now() < deadline, "{args:?}: still {msg}");
                (port, hops) = (start, 0);
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return (other, asked),
        }
    }
}

fn redis_cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("redis-cli").args(args).output().expect("redis-cli is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `redis-cli --cluster check` until it is clean with three masters (leadership spreads over
/// the nodes a few seconds after the cluster forms).
fn check_clean(port: u16) -> String {
    let addr = format!("127.0.0.1:{port}");
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_until("redis-cli --cluster check to pass", 61, || {
        assert!(Instant::now() < deadline, "redis-cli --cluster check:\n{last}");
        let (ok, out) = redis_cli(&["--cluster", "check", &addr]);
        last = out;
        let masters = last.lines().filter(|l| l.contains("M: ")).count();
        ok && masters == 3 && last.contains("All 16384 slots covered") && !last.contains("[WARNING]")
    });
    last
}

/// Keys hashing to slots `from..to`, `per` per slot.
fn keys_in(from: u16, to: u16, per: usize) -> Vec<String> {
    let mut found: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    let mut i = 0u64;
    while found.values().map(Vec::len).sum::<usize>() < usize::from(to - from) * per {
        let k = format!("k:{i}");
        let s = key_slot(k.as_bytes());
        if (from..to).contains(&s) && found.get(&s).map_or(0, Vec::len) < per {
            found.entry(s).or_default().push(k);
        }
        i += 1;
    }
    found.into_values().flatten().collect()
}

#[test]
fn setslot_asking_and_ask_by_hand() {
    let cluster = Sharded::start("askhand");
    check_clean(cluster.ports[0]);
    let ms = masters(&mut cluster.conn(0));
    let (key, other) = ("{h}moved", "{h}stays");
    let slot = key_slot(key.as_bytes());
    let src = owner(&ms, slot).expect("an owner");
    let dst = ms.iter().find(|m| m.id != src.id).expect("another master");
    let (mut s, mut d) = (Conn::try_connect(src.port).expect("src"), Conn::try_connect(dst.port).expect("dst"));
    let slot_s = slot.to_string();
    assert_eq!(s.cmd(&["SET", key, "v1"]), Frame::ok());
    assert_eq!(s.cmd(&["SET", other, "v2"]), Frame::ok());

    // Bad input: Redis's errors.
    let err = |c: &mut Conn, args: &[&str]| text(&c.cmd(args));
    assert_eq!(err(&mut s, &["CLUSTER", "SETSLOT", "16384", "STABLE"]), "ERR Invalid or out of range slot");
    assert!(err(&mut s, &["CLUSTER", "SETSLOT", &slot_s, "NODE", "nobody"]).starts_with("ERR I don't know about node"));
    assert!(err(&mut s, &["CLUSTER", "SETSLOT", &slot_s, "MOVE", &dst.id]).starts_with("ERR Invalid CLUSTER SETSLOT"));
    assert!(err(&mut d, &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &src.id]).contains("not the owner"));
    assert!(err(&mut s, &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &dst.id]).contains("already the owner"));

    assert_eq!(d.cmd(&["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &src.id]), Frame::ok());
    assert_eq!(s.cmd(&["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &dst.id]), Frame::ok());
    let marks = text(&s.cmd(&["CLUSTER", "NODES"]));
    assert!(marks.contains(&format!("[{slot}->-{}]", dst.id)), "{marks}");
    // Keys still at the source are served there.
    assert_eq!(s.cmd(&["GET", key]), Frame::bulk("v1"));
    let dst_addr = format!("127.0.0.1:{}", dst.port);
    let migrate = ["MIGRATE", "127.0.0.1", &dst.port.to_string(), "", "0", "5000", "KEYS", key];
    assert_eq!(s.cmd(&migrate), Frame::ok());
    // Moved: -ASK at the source; -MOVED at the target without ASKING, served with it.
    assert_eq!(err(&mut s, &["GET", key]), format!("ASK {slot} {dst_addr}"));
    assert_eq!(err(&mut s, &["SET", "{h}new", "x"]), format!("ASK {slot} {dst_addr}"), "a new key goes to the target");
    assert!(err(&mut s, &["MGET", key, other]).starts_with("TRYAGAIN"), "keys split by the move");
    assert!(err(&mut d, &["GET", key]).starts_with("MOVED "));
    assert_eq!(d.cmd(&["ASKING"]), Frame::ok());
    assert_eq!(d.cmd(&["GET", key]), Frame::bulk("v1"));
    assert!(err(&mut d, &["GET", key]).starts_with("MOVED "), "ASKING holds for one command");
    assert_eq!(d.cmd(&["ASKING"]), Frame::ok());
    assert_eq!(d.cmd(&["SET", "{h}new", "x"]), Frame::ok());
    // NODE is refused while the source holds keys of the slot; nothing moves.
    let node = ["CLUSTER", "SETSLOT", &slot_s, "NODE", &dst.id];
    assert!(err(&mut s, &node).contains("still hold keys"), "the source holds {other}");
    assert_eq!(s.cmd(&["GET", other]), Frame::bulk("v2"));
    let migrate = ["MIGRATE", "127.0.0.1", &dst.port.to_string(), other, "0", "5000"];
    assert_eq!(s.cmd(&migrate), Frame::ok());
    assert_eq!(s.cmd(&node), Frame::ok());
    // The slot is the target's: -MOVED there, every key there, no open slot left.
    for k in [key, other, "{h}new"] {
        let (reply, asked) = cluster_cmd(cluster.ports[0], &["GET", k]);
        assert!(reply != Frame::Null && !asked, "{k}: {reply:?}");
    }
    assert_eq!(err(&mut s, &["GET", key]), format!("MOVED {slot} {dst_addr}"));
    assert_eq!(cluster_cmd(cluster.ports[2], &["GET", other]).0, Frame::bulk("v2"));
    wait_until("no open slot left in CLUSTER NODES", 10, || {
        ms.iter().all(|m| !text(&Conn::try_connect(m.port).expect("c").cmd(&["CLUSTER", "NODES"])).contains('['))
    });
    check_clean(cluster.ports[1]);
}

/// The writer's record: the last acknowledged value of each key, and what it saw.
#[derive(Default)]
struct Acked {
    values: Mutex<BTreeMap<String, String>>,
    writes: AtomicU64,
    asks: AtomicU64,
}

/// Writes and reads `keys` in turn until `stop`: each acknowledged write is read back at once
/// (one writer per key, so the read must return it).
fn write_and_read(start: u16, keys: Vec<String>, stop: Arc<AtomicBool>, acked: Arc<Acked>) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let key = &keys[i % keys.len()];
        let value = format!("v{i}");
        let (reply, asked) = cluster_cmd(start, &["SET", key, &value]);
        assert_eq!(reply, Frame::ok(), "SET {key}");
        acked.values.lock().expect("lock").insert(key.clone(), value.clone());
        let (read, asked_too) = cluster_cmd(start, &["GET", key]);
        assert_eq!(read, Frame::bulk(value.clone()), "GET {key} right after its write");
        acked.writes.fetch_add(1, Ordering::Relaxed);
        acked.asks.fetch_add(u64::from(asked) + u64::from(asked_too), Ordering::Relaxed);
        i += 1;
    }
}

fn verify(start: u16, acked: &Acked) {
    for (k, v) in acked.values.lock().expect("lock").iter() {
        assert_eq!(cluster_cmd(start, &["GET", k]).0, Frame::bulk(v.clone()), "acknowledged write of {k}");
    }
}

#[test]
fn redis_cli_reshard_and_rebalance_under_writes() {
    let cluster = Sharded::start("reshard");
    check_clean(cluster.ports[0]);
    // Leadership balanced: three masters, one leading two of the four groups (8192 slots).
    // That one is the source, and weighs 2 in the rebalance below.
    let slot_count = |m: &Master| -> u32 { m.ranges.iter().map(|(a, b)| u32::from(b - a) + 1).sum() };
    let mut ms = Vec::new();
    wait_until("three masters, one of them with two groups", 60, || {
        ms = masters(&mut cluster.conn(0));
        ms.len() == 3 && ms.iter().any(|m| slot_count(m) == 8192)
    });
    let src = ms.iter().find(|m| slot_count(m) == 8192).expect("the master of two groups");
    let dst = ms.iter().find(|m| m.id != src.id).expect("another master");
    // redis-cli takes the source's lowest slots first.
    let first = src.ranges.iter().map(|(a, _)| *a).min().expect("the source's slots");
    // Enough that the target is over redis-cli's 2% rebalance threshold (4096 + 120: 2.9%), few
    // enough for CI (about 1 s per slot on a loaded machine, each way).
    const MOVED: u16 = 120;
    // Keys of the slots that move (redis-cli takes the source's lowest slots first).
    let mut keys = keys_in(first, first + MOVED, 2);
    // Existing keys there before the move, which MIGRATE carries.
    for k in &keys {
        assert_eq!(cluster_cmd(cluster.ports[0], &["SET", k, "before"]).0, Frame::ok());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Acked::default());
    for k in &keys {
        acked.values.lock().expect("lock").insert(k.clone(), "before".into());
    }
    keys.reverse(); // the writer starts with the slots moved last
    let writer = {
        let (stop, acked, start) = (stop.clone(), acked.clone(), cluster.ports[1]);
        std::thread::spawn(move || write_and_read(start, keys, stop, acked))
    };
    let from = format!("127.0.0.1:{}", cluster.ports[2]);
    let n = MOVED.to_string();
    let args = ["--cluster", "reshard", &from, "--cluster-from", &src.id, "--cluster-to", &dst.id];
    let started = Instant::now();
    let (ok, out) = redis_cli(&[&args[..], &["--cluster-slots", &n, "--cluster-yes"]].concat());
    assert!(ok && !out.contains("[ERR]"), "redis-cli --cluster reshard failed:\n{out}");
    eprintln!("reshard of {MOVED} slots: {:?}", started.elapsed());
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer saw every write acknowledged and read back");
    assert!(acked.writes.load(Ordering::Relaxed) > 0);
    eprintln!("writes {} asks {}", acked.writes.load(Ordering::Relaxed), acked.asks.load(Ordering::Relaxed));
    verify(cluster.ports[0], &acked);
    check_clean(cluster.ports[0]);
    let after = masters(&mut cluster.conn(1));
    for slot in [first, first + MOVED / 2, first + MOVED - 1] {
        assert_eq!(owner(&after, slot).map(|m| m.id.clone()), Some(dst.id.clone()), "slot {slot}");
    }
    let next = first + MOVED;
    assert_eq!(owner(&after, next).map(|m| m.id.clone()), Some(src.id.clone()), "slot {next} stays");
    let Frame::Array(slots) = cluster.conn(2).cmd(&["CLUSTER", "SLOTS"]) else { panic!("CLUSTER SLOTS") };
    let start = format!("Array([Integer({first}),");
    let moved = format!("{:?}", slots.iter().find(|s| format!("{s:?}").starts_with(&start)));
    assert!(moved.contains(&format!("Integer({})", dst.port)), "CLUSTER SLOTS: {moved}");

    // Rebalance by weight: the source node weighs 2 (it leads two of the four groups), so
    // the slots the reshard moved go back (an even rebalance would move 2400 slots: too long
    // for CI; run by hand once, see docs/OPERATIONS.md).
    let started = Instant::now();
    let weight = format!("{}=2", src.id);
    // (Leadership must not have moved meanwhile, or the weights are wrong.)
    let now: Vec<(String, u32)> = masters(&mut cluster.conn(0)).iter().map(|m| (m.id.clone(), slot_count(m))).collect();
    assert!(now.contains(&(src.id.clone(), 8192 - u32::from(MOVED))), "masters before the rebalance: {now:?}");
    let args = ["--cluster", "rebalance", &from, "--cluster-weight", &weight, "--cluster-yes"];
    let (ok, out) = redis_cli(&args);
    assert!(ok && !out.contains("[ERR]"), "redis-cli --cluster rebalance failed:\n{out}");
    eprintln!("rebalance: {:?}", started.elapsed());
    check_clean(cluster.ports[1]);
    let counts: BTreeMap<String, u32> = masters(&mut cluster.conn(0))
        .into_iter()
        .map(|m| (m.id, m.ranges.iter().map(|(a, b)| u32::from(b - a) + 1).sum()))
        .collect();
    // redis-cli's 2% threshold: within 2% of 8192 / 4096 / 4096.
    for (id, n) in &counts {
        let want = if *id == src.id { 8192 } else { 4096 };
        assert!(n.abs_diff(want) <= want / 50, "after rebalance: {counts:?}\n{out}");
    }
    verify(cluster.ports[2], &acked);
}
