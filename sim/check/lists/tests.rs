//! Hand-made list histories the list-append checker must reject or accept.

use super::*;
use crate::check::testutil::*;
use crate::history::Reply::Int;

fn rejected(ops: Vec<Op>, why: &str) {
    let v = check(&hist(ops)).expect_err("must be rejected");
    assert_eq!(v.property, PROPERTY);
    assert!(v.detail.contains(why), "expected {why:?} in: {v}");
    assert!(!v.ops.is_empty());
}

fn accepted(ops: Vec<Op>) {
    if let Err(v) = check(&hist(ops)) {
        panic!("must be accepted: {v}");
    }
}

#[test]
fn check_lists_accepts_concurrent_appends_in_either_order() {
    for (first, second) in [("a", "b"), ("b", "a")] {
        let (na, nb) = if first == "a" { (1, 2) } else { (2, 1) };
        accepted(vec![
            ok(rpush("l", "a"), 0, 10, Int(na)),
            ok(rpush("l", "b"), 1, 11, Int(nb)),
            ok(lrange("l"), 5, 6, list(&[first])),
            ok(lrange("l"), 20, 21, list(&[first, second])),
        ]);
    }
}

#[test]
fn check_lists_unknown_appends_may_or_may_not_appear() {
    for seen in [&["a", "b"][..], &["a"][..]] {
        accepted(vec![
            ok(rpush("l", "a"), 0, 1, Int(1)),
            unknown(rpush("l", "b"), 2, 3),
            ok(lrange("l"), 10, 11, list(seen)),
        ]);
    }
    // A failed or unknown read says nothing.
    accepted(vec![ok(rpush("l", "a"), 0, 1, Int(1)), unknown(lrange("l"), 2, 3), failed(lrange("l"), 4, 5)]);
}

#[test]
fn check_lists_rejects_duplicate_append() {
    rejected(vec![ok(rpush("l", "a"), 0, 1, Int(1)), ok(lrange("l"), 2, 3, list(&["a", "a"]))], "twice in one read");
}

#[test]
fn check_lists_rejects_read_of_failed_append() {
    rejected(vec![failed(rpush("l", "a"), 0, 1), ok(lrange("l"), 2, 3, list(&["a"]))], "append failed");
    rejected(
        vec![ok(rpush("l", "a"), 0, 1, Reply::Error("ERR".into())), ok(lrange("l"), 2, 3, list(&["a"]))],
        "append failed",
    );
    let tx = OpKind::Multi(vec![rpush("l", "a"), rpush("l", "b")]);
    rejected(vec![failed(tx, 0, 1), ok(lrange("l"), 2, 3, list(&["b"]))], "append failed");
}

#[test]
fn check_lists_rejects_value_never_appended() {
    rejected(vec![ok(lrange("l"), 2, 3, list(&["ghost"]))], "never appended");
    // Appended, but to another key.
    rejected(vec![ok(rpush("m", "a"), 0, 1, Int(1)), ok(lrange("l"), 2, 3, list(&["a"]))], "never appended");
}

#[test]
fn check_lists_rejects_read_from_the_future() {
    rejected(vec![ok(lrange("l"), 0, 1, list(&["a"])), ok(rpush("l", "a"), 5, 6, Int(1))], "after the read ended");
}

#[test]
fn check_lists_rejects_reads_out_of_one_order() {
    rejected(
        vec![
            ok(rpush("l", "a"), 0, 10, Int(1)),
            ok(rpush("l", "b"), 0, 10, Int(2)),
            ok(lrange("l"), 5, 20, list(&["a", "b"])),
            ok(lrange("l"), 5, 20, list(&["b"])),
        ],
        "not prefixes of one order",
    );
}

#[test]
fn check_lists_rejects_lost_acknowledged_append() {
    rejected(
        vec![ok(rpush("l", "a"), 0, 1, Int(1)), ok(rpush("l", "b"), 2, 3, Int(2)), ok(lrange("l"), 4, 5, list(&["a"]))],
        "missing from a read",
    );
}

#[test]
fn check_lists_rejects_stale_read() {
    // The second read's append is unknown, so only read-to-read real time catches it.
    rejected(
        vec![unknown(rpush("l", "a"), 0, 1), ok(lrange("l"), 2, 3, list(&["a"])), ok(lrange("l"), 4, 5, list(&[]))],
        "stale read",
    );
}

#[test]
fn check_lists_rejects_append_replies_out_of_order() {
    // Both acknowledged with length 1: one of them must have been applied twice or lost.
    rejected(vec![ok(rpush("l", "a"), 0, 1, Int(1)), ok(rpush("l", "b"), 2, 3, Int(1))], "answered 1");
    // The reply disagrees with the position the reads show.
    rejected(
        vec![
            ok(rpush("l", "a"), 0, 10, Int(2)),
            ok(rpush("l", "b"), 0, 10, Int(1)),
            ok(lrange("l"), 20, 21, list(&["a", "b"])),
        ],
        "answered length 2",
    );
}

#[test]
fn check_lists_checks_transactions_command_by_command() {
    let tx = OpKind::Multi(vec![rpush("l", "a"), lrange("l")]);
    accepted(vec![ok(tx.clone(), 0, 1, Reply::Multi(vec![Int(1), list(&["a"])])), ok(lrange("l"), 2, 3, list(&["a"]))]);
    rejected(vec![ok(tx, 0, 1, Reply::Multi(vec![Int(1), list(&["a", "a"])]))], "twice in one read");
}

#[test]
fn check_lists_refuses_mixed_keys_and_repeated_values() {
    rejected(vec![ok(rpush("l", "a"), 0, 1, Int(1)), ok(get("l"), 2, 3, Reply::Nil)], "list keys get only");
    rejected(vec![ok(rpush("l", "a"), 0, 1, Int(1)), ok(rpush("m", "a"), 2, 3, Int(1))], "appended twice");
}
