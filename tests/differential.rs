//! Differential test: every script in tests/diff/ is sent line by line to a real
//! `redis-server` and to raftis; raw replies must be byte-identical.
//!
//! Script syntax (one command per line, split like redis-cli / inline commands):
//! - `# ...` comment; blank lines ignored.
//! - `~CMD ...` compare as unordered: the reply's elements (and nested arrays one level
//!   down) are sorted before comparing, for SMEMBERS, HGETALL of big hashes, KEYS, ...
//! - `!CMD ...` run on both, do not compare (setup whose reply legitimately differs).
//! - `?CMD ...` compare only the reply's type byte (values that differ by nature: TIME).
//! - `%CMD ...` compare with timing-dependent numbers masked: integers of 10^12 and more
//!   (millisecond timestamps: stream delivery and seen times), the value after an `idle`
//!   field (XINFO CONSUMERS) and the idle column of XPENDING's `[id, consumer, idle, count]`.
//! - `^CMD ...` compare with every integer and every client address (`127.0.0.1:port`)
//!   masked: SLOWLOG entries (ids, times, durations, the connections' ports differ).
//! - `@CMD ...` send on the script's second connection, the subscriber (opened on first
//!   use), and compare its reply.
//! - `@` alone: compare everything the subscriber has received since (keyspace events,
//!   messages): PING it and read up to its subscribed-mode `pong` (RESP2).
//! - `>` alone: read the next frame the main connection received unasked (a RESP3 push,
//!   such as a client-side caching `invalidate`) and compare it.
//! - `{sub}` in an argument is replaced by the subscriber's client id on each server (CLIENT
//!   TRACKING ... REDIRECT {sub}); compare such lines with `^` when the id shows in a reply.
//!
//! Each script runs on fresh connections after FLUSHALL on both servers.

mod common;

use bytes::Bytes;
use common::{Conn, Server};
use raftis::protocol::{parse_frame, Frame, Limits};

fn split_line(line: &str) -> Vec<Vec<u8>> {
    let mut buf = bytes::BytesMut::from(format!("{line}\n").as_bytes());
    raftis::protocol::parse_command(&mut buf, &Limits::default())
        .ok()
        .flatten()
        .map(|v| v.into_iter().map(|b| b.to_vec()).collect())
        .unwrap_or_default()
}

/// Canonical form for unordered comparison: sorted re-encoding of elements.
fn canonical(raw: &Bytes) -> Vec<u8> {
    let Ok((frame, _)) = parse_frame(raw, &Limits::default()) else { return raw.to_vec() };
    let mut out = Vec::new();
    sorted_repr(&frame, 0, &mut out);
    out
}

fn sorted_repr(f: &Frame, depth: usize, out: &mut Vec<u8>) {
    let items: Vec<&Frame> = match f {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.iter().collect(),
        Frame::Map(pairs) => {
            let mut reprs: Vec<Vec<u8>> = pairs.iter().map(|(k, v)| format!("{k:?}=>{v:?}").into_bytes()).collect();
            reprs.sort();
            out.extend(format!("map{}:", pairs.len()).into_bytes());
            reprs.into_iter().for_each(|r| out.extend(r));
            return;
        }
        other => {
            out.extend(format!("{other:?}").into_bytes());
            return;
        }
    };
    let mut reprs: Vec<Vec<u8>> = items
        .iter()
        .map(|i| {
            let mut r = Vec::new();
            sorted_repr(i, depth + 1, &mut r);
            r
        })
        .collect();
    if depth <= 1 {
        reprs.sort();
    }
    out.extend(format!("agg{}:", reprs.len()).into_bytes());
    reprs.into_iter().for_each(|r| out.extend(r));
}

/// The `%` mode's form of a reply: its frame with timing-dependent numbers masked.
fn masked(raw: &Bytes) -> String {
    match parse_frame(raw, &Limits::default()) {
        Ok((frame, _)) => format!("{:?}", mask(frame)),
        Err(_) => format!("{raw:?}"),
    }
}

fn mask(f: Frame) -> Frame {
    match f {
        Frame::Integer(n) if n >= 1_000_000_000_000 => Frame::Integer(-1),
        Frame::Array(items) => {
            let pending_entry = items.len() == 4
                && matches!(&items[0], Frame::Bulk(b) if b.contains(&b'-'))
                && matches!((&items[1], &items[2], &items[3]), (Frame::Bulk(_), Frame::Integer(_), Frame::Integer(_)));
            let mut out = Vec::with_capacity(items.len());
            let mut after_idle = false;
            for (i, item) in items.into_iter().enumerate() {
                let hide = after_idle || (pending_entry && i == 2);
                after_idle = matches!(&item, Frame::Bulk(b) if b.as_ref() == b"idle");
                out.push(if hide { Frame::Integer(-1) } else { mask(item) });
            }
            Frame::Array(out)
        }
        other => other,
    }
}

/// The `^` mode's form of a reply: integers and client addresses masked.
fn all_masked(raw: &Bytes) -> String {
    fn mask_all(f: Frame) -> Frame {
        match f {
            Frame::Integer(_) => Frame::Integer(-1),
            Frame::Bulk(b) if b.starts_with(b"127.0.0.1:") => Frame::Bulk(Bytes::from_static(b"addr")),
            Frame::Array(items) => Frame::Array(items.into_iter().map(mask_all).collect()),
            Frame::Map(pairs) => Frame::Map(pairs.into_iter().map(|(k, v)| (mask_all(k), mask_all(v))).collect()),
            other => other,
        }
    }
    match parse_frame(raw, &Limits::default()) {
        Ok((frame, _)) => format!("{:?}", mask_all(frame)),
        Err(_) => format!("{raw:?}"),
    }
}

/// RESP2's reply to PING in subscribed mode: the end of a drain of the subscriber.
const SUBSCRIBED_PONG: &[u8] = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";

/// Everything a subscriber received before its reply to a PING sent now.
fn drain(sub: &mut Conn) -> Bytes {
    sub.send_raw(&Conn::encode(&[b"PING"]));
    let mut out = Vec::new();
    loop {
        let frame = sub.read_raw().expect("subscriber closed");
        if frame.as_ref() == SUBSCRIBED_PONG {
            return Bytes::from(out);
        }
        out.extend_from_slice(&frame);
    }
}

fn run_script(name: &str, text: &str, redis: &Server, raftis: &Server) -> Vec<String> {
    let (mut a, mut b) = (redis.conn(), raftis.conn());
    let mut subs: Option<(Conn, Conn)> = None;
    // Asked on first use of `{sub}`, which must come before the subscriber subscribes.
    let mut sub_ids: Option<(Vec<u8>, Vec<u8>)> = None;
    a.cmd(&["FLUSHALL"]);
    b.cmd(&["FLUSHALL"]);
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (mode, cmd) = match line.chars().next() {
            Some(c @ ('~' | '!' | '?' | '%' | '@' | '^' | '>')) => (c, &line[1..]),
            _ => ('=', line),
        };
        let args = split_line(cmd);
        if args.iter().any(|a| a.as_slice() == b"{sub}") {
            let (sa, sb) = subs.get_or_insert_with(|| (redis.conn(), raftis.conn()));
            let (ida, idb) = sub_ids.get_or_insert_with(|| (sub_id(sa), sub_id(sb))).clone();
            let with = |id: &[u8]| -> Vec<Vec<u8>> {
                args.iter().map(|a| if a.as_slice() == b"{sub}" { id.to_vec() } else { a.clone() }).collect()
            };
            let (aa, ab) = (with(&ida), with(&idb));
            let (aa, ab): (Vec<&[u8]>, Vec<&[u8]>) =
                (aa.iter().map(|a| a.as_slice()).collect(), ab.iter().map(|a| a.as_slice()).collect());
            let (ra, rb) = (a.raw_cmd(&aa), b.raw_cmd(&ab));
            if !compare(mode, &ra, &rb) {
                failures.push(mismatch(name, n, cmd, &ra, &rb));
            }
            continue;
        }
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let (ra, rb) = match mode {
            // Nothing arriving (the read times out) is a failure, not an empty match.
            '>' => (
                a.read_raw().unwrap_or_else(|| Bytes::from_static(b"(nothing)")),
                b.read_raw().unwrap_or_else(|| Bytes::from_static(b"(nothing)")),
            ),
            '@' => {
                let (sa, sb) = subs.get_or_insert_with(|| (redis.conn(), raftis.conn()));
                match args.is_empty() {
                    true => (drain(sa), drain(sb)),
                    false => (sa.raw_cmd(&args), sb.raw_cmd(&args)),
                }
            }
            _ => (a.raw_cmd(&args), b.raw_cmd(&args)),
        };
        if !compare(mode, &ra, &rb) || (mode == '>' && ra.as_ref() == b"(nothing)") {
            failures.push(mismatch(name, n, cmd, &ra, &rb));
        }
    }
    failures
}

/// Whether the replies of a line in `mode` match.
fn compare(mode: char, ra: &Bytes, rb: &Bytes) -> bool {
    match mode {
        '!' => true,
        '~' => canonical(ra) == canonical(rb),
        '?' => ra.first() == rb.first(),
        '%' => masked(ra) == masked(rb),
        '^' => all_masked(ra) == all_masked(rb),
        _ => ra == rb,
    }
}

fn mismatch(name: &str, n: usize, cmd: &str, ra: &Bytes, rb: &Bytes) -> String {
    format!(
        "{name}:{}: {cmd}\n    redis:  {:?}\n    raftis: {:?}",
        n + 1,
        String::from_utf8_lossy(ra),
        String::from_utf8_lossy(rb)
    )
}

/// The client id of the subscriber connection (CLIENT ID is refused in subscribed mode: the
/// script names `{sub}` before the subscriber subscribes).
fn sub_id(sub: &mut Conn) -> Vec<u8> {
    match sub.cmd(&["CLIENT", "ID"]) {
        Frame::Integer(id) => id.to_string().into_bytes(),
        other => panic!("CLIENT ID on the subscriber: {other:?}"),
    }
}

#[test]
fn replies_match_redis_byte_for_byte() {
    let redis = Server::redis();
    let raftis = Server::raftis(&[]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff");
    let only = std::env::var("DIFF_ONLY").ok();
    let mut scripts: Vec<_> =
        std::fs::read_dir(&dir).expect("tests/diff").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    scripts.sort();
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in scripts.iter().filter(|p| p.extension().is_some_and(|e| e == "txt")) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("read script");
        failures.extend(run_script(&name, &text, &redis, &raftis));
        ran += 1;
    }
    assert!(ran > 0, "no diff scripts ran");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn split_line_handles_quotes() {
    assert_eq!(split_line("SET \"a b\" c"), vec![b"SET".to_vec(), b"a b".to_vec(), b"c".to_vec()]);
    let _ = Conn::encode(&[b"x"]);
}
