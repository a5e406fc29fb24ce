//! Hand-made histories with final reads (from t = 1000) the lost-write checker must reject or
//! accept.

use super::*;
use crate::check::testutil::*;
use crate::history::Reply::{Int, Nil};

const FINAL: u64 = 1000;

fn verdict(ops: Vec<Op>) -> Result<(), Violation> {
    check(&hist(ops), FINAL)
}

fn rejected(ops: Vec<Op>, why: &str) {
    let v = verdict(ops).expect_err("must be rejected");
    assert_eq!(v.property, PROPERTY);
    assert!(v.detail.contains(why), "expected {why:?} in: {v}");
}

#[test]
fn check_lost_rejects_lost_register_write() {
    rejected(
        vec![
            ok(set("k", "1"), 0, 10, Reply::Ok),
            ok(set("k", "2"), 20, 30, Reply::Ok),
            ok(get("k"), FINAL, FINAL + 1, s("1")),
        ],
        "overwrote",
    );
    // All writes gone after a crash.
    rejected(vec![ok(set("k", "1"), 0, 10, Reply::Ok), ok(get("k"), FINAL, FINAL + 1, Nil)], "overwrote");
    rejected(vec![ok(get("k"), FINAL, FINAL + 1, s("9"))], "no write wrote");
}

#[test]
fn check_lost_accepts_concurrent_and_unknown_writes() {
    for seen in ["1", "2"] {
        assert!(verdict(vec![
            ok(set("k", "1"), 0, 10, Reply::Ok),
            ok(set("k", "2"), 5, 15, Reply::Ok),
            ok(get("k"), FINAL, FINAL + 1, s(seen)),
        ])
        .is_ok());
    }
    for seen in [s("1"), s("2")] {
        assert!(verdict(vec![
            ok(set("k", "1"), 0, 10, Reply::Ok),
            unknown(set("k", "2"), 20, 30),
            ok(get("k"), FINAL, FINAL + 1, seen),
        ])
        .is_ok());
    }
    // A DEL acknowledged last explains nil; reads before the final phase are not final.
    assert!(verdict(vec![
        ok(set("k", "1"), 0, 10, Reply::Ok),
        ok(get("k"), 11, 12, Nil),
        ok(del("k"), 20, 30, Int(1)),
        ok(get("k"), FINAL, FINAL + 1, Nil),
    ])
    .is_ok());
}

#[test]
fn check_lost_rejects_lost_increment() {
    let incrs = || vec![ok(incr("c"), 0, 10, Int(1)), ok(incr("c"), 20, 30, Int(2)), unknown(incr("c"), 40, 50)];
    for (seen, good) in [(Nil, false), (s("1"), false), (s("2"), true), (s("3"), true), (s("4"), false)] {
        let mut ops = incrs();
        ops.push(ok(get("c"), FINAL, FINAL + 1, seen.clone()));
        assert_eq!(verdict(ops).is_ok(), good, "final read {seen:?}");
    }
}

#[test]
fn check_lost_sums_the_increments_of_each_client() {
    let incrs =
        || vec![ok(incrby("c", 1), 0, 10, Int(1)), ok(incrby("c", 4), 20, 30, Int(5)), unknown(incrby("c", 2), 40, 50)];
    for (seen, good) in [(s("1"), false), (s("4"), false), (s("5"), true), (s("7"), true), (s("8"), false)] {
        let mut ops = incrs();
        ops.push(ok(get("c"), FINAL, FINAL + 1, seen.clone()));
        assert_eq!(verdict(ops).is_ok(), good, "final read {seen:?}");
    }
}

#[test]
fn check_lost_rejects_lost_append() {
    rejected(
        vec![
            ok(rpush("l", "a"), 0, 10, Int(1)),
            ok(rpush("l", "b"), 20, 30, Int(2)),
            failed(rpush("l", "c"), 40, 50),
            ok(lrange("l"), FINAL, FINAL + 1, list(&["a"])),
        ],
        "lacks acknowledged RPUSH of \"b\"",
    );
    assert!(verdict(vec![
        ok(rpush("l", "a"), 0, 10, Int(1)),
        unknown(rpush("l", "b"), 20, 30),
        ok(lrange("l"), FINAL, FINAL + 1, list(&["a"])),
    ])
    .is_ok());
}
