//! DUMP / RESTORE against a real redis-server 7, both ways, for every type in its small and
//! large encodings: a value built on one server, DUMPed there and RESTOREd on the other, reads
//! back the same (type, encoding, content), and where the layout depends only on the value the
//! two servers' payloads are equal byte for byte. Also TTLs (relative, ABSTTL, in the past).

mod common;

use bytes::Bytes;
use common::{Conn, Server};
use raftis::protocol::Frame;

/// A value to build: its commands (on key `k`), and whether both servers' DUMPs must be
/// byte-identical (not for hash tables, whose order is Redis's random-seeded hash order, nor
/// for stream consumers, whose times are the servers' clocks).
struct Case {
    name: &'static str,
    setup: Vec<Vec<String>>,
    exact: bool,
}

fn cmds(lines: &[&str]) -> Vec<Vec<String>> {
    lines.iter().map(|l| l.split(' ').map(String::from).collect()).collect()
}

fn with_args(head: &[&str], args: impl IntoIterator<Item = String>) -> Vec<Vec<String>> {
    vec![head.iter().map(|s| s.to_string()).chain(args).collect()]
}

fn cases() -> Vec<Case> {
    let text: String = (0..5000).map(|i| i.to_string()).collect();
    let binary: Vec<u8> = (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let binary = String::from_utf8_lossy(&binary).into_owned();
    let n = |count: usize, f: fn(usize) -> String| (0..count).map(f).collect::<Vec<_>>();
    let pairs = |count: usize| (0..count).flat_map(|i| [format!("f{i}"), format!("v{i}")]).collect::<Vec<_>>();
    let case = |name, setup, exact| Case { name, setup, exact };
    vec![
        case("short string", cmds(&["SET k hello"]), true),
        case("integer string", cmds(&["SET k 12345"]), true),
        case("64-bit integer string", cmds(&["SET k -123456789012"]), true),
        case("empty string", with_args(&["SET", "k"], [String::new()]), true),
        case("compressible string", with_args(&["SET", "k"], ["ab".repeat(100)]), true),
        case("long text", with_args(&["SET", "k"], [text]), true),
        case("binary string", with_args(&["SET", "k"], [binary]), true),
        case("small list", cmds(&["RPUSH k a b 1 2 -3000 99999999999"]), true),
        case("list of several nodes", with_args(&["RPUSH", "k"], n(3000, |i| format!("item-{i}"))), true),
        case("list of long elements", with_args(&["RPUSH", "k"], n(300, |i| format!("{}{i}", "x".repeat(100)))), true),
        case("list with a 10 KB element", with_args(&["RPUSH", "k", "a"], ["y".repeat(10_000), "b".into()]), true),
        case("listpack hash", cmds(&["HSET k a 1 b two c 3.5"]), true),
        case("hashtable hash", with_args(&["HSET", "k"], pairs(600)), false),
        case("hash with a long value", with_args(&["HSET", "k", "a", "1", "b"], ["z".repeat(100)]), false),
        case("intset", cmds(&["SADD k 1 5 -7 100000 3000000000"]), true),
        case("set of strings", cmds(&["SADD k a b c"]), false),
        case("big intset", with_args(&["SADD", "k"], n(500, |i| (i * 3).to_string())), true),
        case("hashtable set of integers", with_args(&["SADD", "k"], n(600, |i| i.to_string())), false),
        case("listpack zset", cmds(&["ZADD k 1 a 2.5 b -inf c 1e20 d 0.1 e 3 f"]), true),
        case(
            "skiplist zset",
            with_args(&["ZADD", "k"], (0..200).flat_map(|i| [format!("{}", i as f64 / 7.0), format!("m{i}")])),
            true,
        ),
        case("zset with a long member", with_args(&["ZADD", "k", "1", "a", "2"], ["m".repeat(100)]), true),
        case("stream", cmds(&["XADD k 1-1 f v g 1", "XADD k 2-0 f w g 2", "XADD k 3-0 x y"]), true),
        case(
            "stream with tombstones",
            cmds(&["XADD k 1-1 f v", "XADD k 2-0 f w", "XADD k 3-0 f u", "XDEL k 2-0"]),
            true,
        ),
        case(
            "stream of several nodes",
            (1..=350).map(|i| vec!["XADD".into(), "k".into(), format!("{i}-0"), "f".into(), i.to_string()]).collect(),
            true,
        ),
        case("empty stream with a group", cmds(&["XGROUP CREATE k g $ MKSTREAM"]), true),
        case(
            "stream with groups, consumers and pending entries",
            cmds(&[
                "XADD k 1-1 f v",
                "XADD k 2-0 f w",
                "XADD k 3-0 f x",
                "XGROUP CREATE k g 0",
                "XGROUP CREATE k h $",
                "XREADGROUP GROUP g alice COUNT 2 STREAMS k >",
                "XREADGROUP GROUP g bob COUNT 1 STREAMS k >",
                "XACK k g 1-1",
                "XGROUP CREATECONSUMER k h carol",
            ]),
            false,
        ),
    ]
}

fn run(c: &mut Conn, args: &[String]) -> Frame {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    c.cmd(&args)
}

fn bulk(f: Frame) -> Bytes {
    match f {
        Frame::Bulk(b) => b,
        other => panic!("expected a bulk reply, got {other:?}"),
    }
}

/// Elements of an array reply as strings, pairs kept together, sorted (for unordered kinds).
fn sorted_pairs(f: Frame, width: usize) -> Vec<String> {
    let Frame::Array(items) = f else { return vec![format!("{f:?}")] };
    let mut rows: Vec<String> = items.chunks(width).map(|c| format!("{c:?}")).collect();
    rows.sort();
    rows
}

/// Everything that can be read about `key`, in a form comparable across the two servers.
fn read_back(c: &mut Conn, key: &str) -> Vec<String> {
    let ty = format!("{:?}", c.cmd(&["TYPE", key]));
    let mut out = vec![ty.clone(), format!("{:?}", c.cmd(&["OBJECT", "ENCODING", key]))];
    let q = |c: &mut Conn, args: &[&str]| format!("{:?}", c.cmd(args));
    match ty.as_str() {
        t if t.contains("string") => out.push(q(c, &["GET", key])),
        t if t.contains("list") => out.push(q(c, &["LRANGE", key, "0", "-1"])),
        t if t.contains("hash") => out.extend(sorted_pairs(c.cmd(&["HGETALL", key]), 2)),
        t if t.contains("zset") => out.push(q(c, &["ZRANGE", key, "0", "-1", "WITHSCORES"])),
        t if t.contains("set") => out.extend(sorted_pairs(c.cmd(&["SMEMBERS", key]), 1)),
        t if t.contains("stream") => {
            out.push(q(c, &["XRANGE", key, "-", "+"]));
            out.push(q(c, &["XINFO", "STREAM", key]));
            out.push(q(c, &["XINFO", "GROUPS", key]));
            for g in ["g", "h"] {
                out.push(q(c, &["XPENDING", key, g]));
            }
        }
        other => panic!("no such type {other}"),
    }
    out
}

/// Builds each case on `from`, moves it to `to` with DUMP / RESTORE, and compares.
fn transfer_all(from: &Server, to: &Server, direction: &str) -> Vec<String> {
    let (mut a, mut b) = (from.conn(), to.conn());
    let mut failures = Vec::new();
    for case in cases() {
        a.cmd(&["DEL", "k"]);
        for line in &case.setup {
            if let Frame::Error(e) = run(&mut a, line) {
                panic!("{}: setup {line:?} failed: {e:?}", case.name);
            }
        }
        let payload = bulk(a.cmd(&["DUMP", "k"]));
        let reply = b.raw_cmd(&[b"RESTORE", b"k", b"0", &payload, b"REPLACE"]);
        if reply.as_ref() != b"+OK\r\n" {
            failures.push(format!("{direction} {}: RESTORE replied {reply:?}", case.name));
            continue;
        }
        let (want, got) = (read_back(&mut a, "k"), read_back(&mut b, "k"));
        if want != got {
            failures.push(format!("{direction} {}:\n  source: {want:?}\n  target: {got:?}", case.name));
        }
        let again = bulk(b.cmd(&["DUMP", "k"]));
        if case.exact && again != payload {
            let at = payload.iter().zip(again.iter()).take_while(|(x, y)| x == y).count();
            let (l1, l2) = (payload.len(), again.len());
            failures.push(format!("{direction} {}: DUMP differs from byte {at} (lengths {l1}, {l2})", case.name));
        }
    }
    failures
}

#[test]
fn payloads_move_both_ways_between_redis_and_raftis() {
    let redis = Server::redis();
    let raftis = Server::raftis(&[]);
    let mut failures = transfer_all(&redis, &raftis, "redis -> raftis");
    failures.extend(transfer_all(&raftis, &redis, "raftis -> redis"));
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn restore_sets_relative_and_absolute_ttls() {
    let raftis = Server::raftis(&[]);
    let mut c = raftis.conn();
    c.cmd(&["SET", "src", "v"]);
    let payload = bulk(c.cmd(&["DUMP", "src"]));
    assert_eq!(c.raw_cmd(&[b"RESTORE", b"rel", b"100000", &payload]).as_ref(), b"+OK\r\n");
    let Frame::Integer(pttl) = c.cmd(&["PTTL", "rel"]) else { panic!("PTTL") };
    assert!(pttl > 90_000 && pttl <= 100_000, "pttl {pttl}");
    let Frame::Integer(now) = c.cmd(&["EVAL", "return redis.call('TIME')[1] * 1000", "0"]) else { panic!("TIME") };
    let at = (now + 200_000).to_string();
    assert_eq!(c.raw_cmd(&[b"RESTORE", b"abs", at.as_bytes(), &payload, b"ABSTTL"]).as_ref(), b"+OK\r\n");
    let Frame::Integer(pttl) = c.cmd(&["PTTL", "abs"]) else { panic!("PTTL") };
    assert!(pttl > 150_000 && pttl <= 201_000, "pttl {pttl}");
    // An absolute time in the past: OK, no key; with REPLACE the old key is gone too.
    assert_eq!(c.raw_cmd(&[b"RESTORE", b"abs", b"1000", &payload, b"ABSTTL", b"REPLACE"]).as_ref(), b"+OK\r\n");
    assert_eq!(c.cmd(&["EXISTS", "abs"]), Frame::Integer(0));
}
