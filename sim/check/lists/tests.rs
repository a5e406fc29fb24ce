//! Hand-made list histories the list-append checker must reject or accept.

use super::*;
use crate::check::testutil::*;
use crate::history::{History, Reply::Int};

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

/// A consistent history of 8 clients appending and reading one list, each op taking effect at a
/// random instant inside its interval; one append in ten times out (and took effect or not).
fn generated(seed: u64) -> History {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut planned: Vec<(u64, Op)> = Vec::new();
    for c in 0..8u32 {
        let mut t = rng.gen_range(0..50);
        for i in 0..50 {
            let kind = if rng.gen_bool(0.5) { rpush("l", &format!("{c}-{i}")) } else { lrange("l") };
            let (t0, t1) = (t, t + rng.gen_range(1..100));
            planned.push((rng.gen_range(t0..=t1), ok(kind, t0, t1, Reply::Nil)));
            t = t1 + rng.gen_range(0..20);
        }
    }
    planned.sort_by_key(|(at, _)| *at);
    let mut state: Vec<String> = Vec::new();
    let mut ops = Vec::new();
    for (_, mut op) in planned {
        let timed_out = matches!(op.kind, OpKind::RPush { .. }) && rng.gen_bool(0.1);
        if !(timed_out && rng.gen_bool(0.5)) {
            op.outcome = Outcome::Ok(match &op.kind {
                OpKind::RPush { value, .. } => {
                    state.push(value.clone());
                    Int(state.len() as i64)
                }
                _ => Reply::List(state.clone()),
            });
        }
        if timed_out {
            op.outcome = Outcome::Unknown("timeout".into());
        }
        ops.push(op);
    }
    ops.sort_by_key(|op| op.invoke_ns);
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i;
    }
    History { ops }
}

#[test]
fn check_lists_accepts_long_concurrent_histories_and_catches_a_dropped_value() {
    for seed in 0..5 {
        let h = generated(seed);
        if let Err(v) = check(&h) {
            panic!("seed {seed}: {v}");
        }
        // Drop the first value of the last long read: it had been acknowledged long before.
        let mut bad = h.clone();
        let last = bad.ops.iter().rposition(|op| matches!(&op.outcome, Outcome::Ok(Reply::List(v)) if v.len() > 10));
        let Outcome::Ok(Reply::List(values)) = &mut bad.ops[last.unwrap()].outcome else { unreachable!() };
        values.remove(0);
        assert!(check(&bad).is_err(), "seed {seed}");
    }
}
