//! Hand-made queue histories the blocking-pop checker must reject or accept.

use super::*;
use crate::check::testutil::*;
use crate::history::Reply::Int;

/// Final reads begin at this time in every test history.
const FINAL: u64 = 1_000;

fn push(k: &str, v: &str) -> OpKind {
    OpKind::QPush { key: k.into(), value: v.into() }
}
fn bpop(keys: &[&str]) -> OpKind {
    OpKind::BPop { keys: keys.iter().map(|k| k.to_string()).collect(), timeout_ms: 100 }
}
fn got(k: &str, v: &str) -> Reply {
    list(&[k, v])
}
fn final_read(k: &str, vs: &[&str]) -> Op {
    ok(OpKind::QRange { key: k.into() }, FINAL, FINAL + 1, list(vs))
}

fn rejected(ops: Vec<Op>, why: &str) {
    let v = check(&hist(ops), FINAL).expect_err("must be rejected");
    assert_eq!(v.property, PROPERTY);
    assert!(v.detail.contains(why), "expected {why:?} in: {v}");
    assert!(!v.ops.is_empty());
}

fn accepted(ops: Vec<Op>) {
    if let Err(v) = check(&hist(ops), FINAL) {
        panic!("must be accepted: {v}");
    }
}

#[test]
fn accepts_pops_in_push_order_and_a_blocked_pop_served_later() {
    accepted(vec![
        // Blocked before anything was pushed, served by the first push.
        ok(bpop(&["q", "r"]), 0, 30, got("q", "a")),
        ok(push("q", "a"), 10, 20, Int(1)),
        ok(push("q", "b"), 21, 25, Int(1)),
        ok(push("r", "c"), 22, 26, Int(1)),
        ok(bpop(&["q"]), 40, 50, got("q", "b")),
        // Timed out while every key was empty.
        ok(bpop(&["q"]), 60, 70, Reply::Nil),
        final_read("q", &[]),
        final_read("r", &["c"]),
    ]);
}

#[test]
fn accepts_an_element_taken_by_a_pop_of_unknown_outcome() {
    accepted(vec![ok(push("q", "a"), 0, 10, Int(1)), unknown(bpop(&["q"]), 20, 30), final_read("q", &[])]);
}

#[test]
fn rejects_an_element_popped_twice() {
    rejected(
        vec![
            ok(push("q", "a"), 0, 10, Int(1)),
            ok(bpop(&["q"]), 20, 30, got("q", "a")),
            ok(bpop(&["q"]), 25, 35, got("q", "a")),
            final_read("q", &[]),
        ],
        "popped twice",
    );
}

#[test]
fn rejects_an_element_popped_and_still_there() {
    rejected(
        vec![ok(push("q", "a"), 0, 10, Int(1)), ok(bpop(&["q"]), 20, 30, got("q", "a")), final_read("q", &["a"])],
        "still in",
    );
}

#[test]
fn rejects_pops_of_what_was_never_pushed_or_failed() {
    rejected(vec![ok(bpop(&["q"]), 0, 10, got("q", "x")), final_read("q", &[])], "never pushed");
    rejected(
        vec![failed(push("q", "a"), 0, 10), ok(bpop(&["q"]), 20, 30, got("q", "a")), final_read("q", &[])],
        "its push failed",
    );
    rejected(
        vec![ok(bpop(&["q"]), 0, 10, got("q", "a")), ok(push("q", "a"), 20, 30, Int(1)), final_read("q", &[])],
        "pushed only after",
    );
    rejected(
        vec![ok(push("r", "a"), 0, 10, Int(1)), ok(bpop(&["q", "r"]), 20, 30, got("q", "a")), final_read("q", &[])],
        "pushed to",
    );
}

#[test]
fn rejects_a_lost_acknowledged_push() {
    rejected(vec![ok(push("q", "a"), 0, 10, Int(1)), final_read("q", &[])], "neither popped nor in the final list");
}

#[test]
fn rejects_pops_out_of_push_order() {
    rejected(
        vec![
            ok(push("q", "a"), 0, 10, Int(1)),
            ok(push("q", "b"), 20, 30, Int(2)),
            ok(bpop(&["q"]), 40, 50, got("q", "b")),
            final_read("q", &["a"]),
        ],
        "popped before",
    );
    rejected(
        vec![
            ok(push("q", "a"), 0, 10, Int(1)),
            ok(push("q", "b"), 20, 30, Int(2)),
            ok(bpop(&["q"]), 40, 50, got("q", "b")),
            ok(bpop(&["q"]), 60, 70, got("q", "a")),
            final_read("q", &[]),
        ],
        "popped before",
    );
}

#[test]
fn rejects_a_timeout_while_an_element_waited() {
    rejected(
        vec![ok(push("q", "a"), 0, 10, Int(1)), ok(bpop(&["x", "q"]), 20, 30, Reply::Nil), final_read("q", &["a"])],
        "timed out although",
    );
    // Pushed while the pop waited (well before its 100 ms deadline), never taken.
    let ms = 1_000_000;
    rejected(
        vec![
            ok(bpop(&["q"]), 0, 150 * ms, Reply::Nil),
            ok(push("q", "a"), 10 * ms, 20 * ms, Int(1)),
            final_read_at(200 * ms, "q", &["a"]),
        ],
        "timed out although",
    );
    // Pushed at the deadline: the pop may have timed out first.
    let late = vec![
        ok(bpop(&["q"]), 0, 150 * ms, Reply::Nil),
        ok(push("q", "a"), 10 * ms, 100 * ms, Int(1)),
        final_read_at(200 * ms, "q", &["a"]),
    ];
    if let Err(v) = check(&hist(late), 200 * ms) {
        panic!("must be accepted: {v}");
    }
}

fn final_read_at(t: u64, k: &str, vs: &[&str]) -> Op {
    ok(OpKind::QRange { key: k.into() }, t, t + 1, list(vs))
}
