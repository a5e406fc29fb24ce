//! Hand-made stream histories the consumer-group checker must reject or accept.

use super::*;
use crate::check::testutil::*;
use crate::history::Reply::Int;

/// Final reads begin at this time in every test history.
const FINAL: u64 = 1_000;

fn add(v: &str) -> OpKind {
    OpKind::XAdd { key: "x".into(), value: v.into() }
}
fn read(consumer: &str) -> OpKind {
    OpKind::XReadGroup { key: "x".into(), consumer: consumer.into(), block_ms: Some(100) }
}
fn ack(id: &str) -> OpKind {
    OpKind::XAck { key: "x".into(), id: id.into() }
}
fn range(flat: &[&str]) -> Op {
    ok(OpKind::XRangeAll { key: "x".into() }, FINAL, FINAL + 1, list(flat))
}
fn pel(flat: &[&str]) -> Op {
    ok(OpKind::XPendingAll { key: "x".into() }, FINAL + 2, FINAL + 3, list(flat))
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

/// Two entries added, both delivered (one by a read that blocked first), one acknowledged.
fn good() -> Vec<Op> {
    vec![
        ok(read("c1"), 0, 25, list(&["5-0", "a"])),
        ok(add("a"), 10, 20, s("5-0")),
        ok(add("b"), 30, 40, s("6-0")),
        ok(read("c2"), 50, 60, list(&["6-0", "b"])),
        ok(ack("5-0"), 70, 80, Int(1)),
        ok(read("c2"), 90, 95, Reply::Nil),
        range(&["5-0", "a", "6-0", "b"]),
        pel(&["6-0", "c2"]),
    ]
}

#[test]
fn accepts_deliveries_acks_and_the_final_state() {
    accepted(good());
}

#[test]
fn accepts_what_unknown_outcomes_may_have_done() {
    accepted(vec![
        unknown(add("a"), 0, 100),
        unknown(read("c1"), 110, 200),
        unknown(ack("5-0"), 210, 300),
        range(&["5-0", "a"]),
        pel(&["5-0", "c1"]),
    ]);
}

#[test]
fn rejects_an_entry_delivered_twice() {
    let mut ops = good();
    ops.push(ok(read("c3"), 96, 97, list(&["6-0", "b"])));
    rejected(ops, "delivered twice");
}

#[test]
fn rejects_a_delivery_of_nothing_added() {
    let mut ops = good();
    ops.push(ok(read("c3"), 96, 97, list(&["7-0", "zz"])));
    rejected(ops, "never added");
}

#[test]
fn rejects_a_delivery_under_another_id() {
    let mut ops = good();
    ops[3] = ok(read("c2"), 50, 60, list(&["6-1", "b"]));
    rejected(ops, "delivered as");
}

#[test]
fn rejects_ids_that_go_back_in_time() {
    let mut ops = good();
    ops[2] = ok(add("b"), 30, 40, s("4-0"));
    rejected(ops, "id below one acknowledged");
}

#[test]
fn rejects_a_lost_entry() {
    let mut ops = good();
    ops[6] = range(&["6-0", "b"]);
    rejected(ops, "lost");
}

#[test]
fn rejects_acks_of_undelivered_or_twice_or_refused() {
    let mut ops = good();
    ops.push(ok(ack("9-0"), 96, 97, Int(1)));
    rejected(ops, "never delivered");
    let mut ops = good();
    ops.push(ok(ack("5-0"), 96, 97, Int(1)));
    rejected(ops, "answered 1 twice");
    let mut ops = good();
    ops[4] = ok(ack("5-0"), 70, 80, Int(0));
    rejected(ops, "answered 0");
}

#[test]
fn rejects_a_wrong_pending_list() {
    let mut ops = good();
    ops[7] = pel(&[]);
    rejected(ops, "not pending");
    let mut ops = good();
    ops[7] = pel(&["5-0", "c1", "6-0", "c2"]);
    rejected(ops, "still pending");
    let mut ops = good();
    ops[7] = pel(&["6-0", "c1"]);
    rejected(ops, "pending for c1");
}
