//! Abusive glob patterns (CVE-2022-36021) against a real raftis process: KEYS, the SCAN family
//! and CONFIG GET answer at once and the node keeps serving other clients. Before the bound on
//! backtracking, the first KEYS below never returned and the node stopped answering PING.

mod common;

use common::{Conn, Server};
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

const ABUSIVE: &str = "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";

/// Sends `args`, checks the reply arrives within a bound that exponential backtracking could
/// never meet (the pattern answered in microseconds once bounded; unbounded it ran for hours),
/// and returns it.
fn answers_promptly(c: &mut Conn, args: &[&str]) -> Frame {
    let started = Instant::now();
    let reply = c.cmd(args);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{args:?} took {took:?}");
    reply
}

#[test]
fn abusive_patterns_answer_at_once_and_the_node_keeps_serving() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    let long = "a".repeat(57);
    assert_eq!(c.cmd(&["SET", &long, "1"]), Frame::ok());
    assert_eq!(c.cmd(&["HSET", "h", &long, "1"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["SADD", "s", &long, "x"]), Frame::Integer(2));
    assert_eq!(c.cmd(&["ZADD", "z", "1", &long]), Frame::Integer(1));

    assert_eq!(answers_promptly(&mut c, &["KEYS", ABUSIVE]), Frame::Array(vec![]));
    let empty_scan = |f: Frame| matches!(f, Frame::Array(ref v) if v.len() == 2 && v[1] == Frame::Array(vec![]));
    for args in [
        ["SCAN", "0", "COUNT", "1000", "MATCH", ABUSIVE].as_slice(),
        &["HSCAN", "h", "0", "MATCH", ABUSIVE],
        &["SSCAN", "s", "0", "MATCH", ABUSIVE],
        &["ZSCAN", "z", "0", "MATCH", ABUSIVE],
    ] {
        let reply = answers_promptly(&mut c, args);
        assert!(empty_scan(reply.clone()), "{args:?}: {reply:?}");
    }
    // CONFIG GET matches its pattern against parameter names.
    assert_eq!(
        answers_promptly(&mut c, &["CONFIG", "GET", "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*x"]),
        Frame::Array(vec![])
    );
    // 50 000 nested `*`: answered (no match, as Redis's nesting bound says), no stack overflow.
    let deep = "*?".repeat(50_000);
    assert_eq!(answers_promptly(&mut c, &["KEYS", &deep]), Frame::Array(vec![]));

    // The same shape still matches when it should, and another client is served meanwhile.
    let matching = ABUSIVE.replace('b', "a");
    let reply = answers_promptly(&mut c, &["KEYS", &matching]);
    assert_eq!(reply, Frame::Array(vec![Frame::Bulk(long.clone().into())]));
    let mut other = s.conn();
    assert_eq!(other.cmd(&["PING"]), Frame::Simple("PONG".into()));
}
