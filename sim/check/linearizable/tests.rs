//! Hand-made histories the register checker must reject or accept, and a generated long one
//! that must be decided within the default budget.

use super::*;
use crate::check::testutil::*;
use crate::history::Reply::{Int, Nil};

fn verdict(ops: Vec<Op>) -> Result<Vec<Inconclusive>, Violation> {
    check(&hist(ops), DEFAULT_BUDGET)
}

fn accepted(ops: Vec<Op>) {
    assert_eq!(verdict(ops).expect("must be linearizable"), vec![]);
}

fn rejected(ops: Vec<Op>) -> Violation {
    let v = verdict(ops).expect_err("must not be linearizable");
    assert_eq!(v.property, PROPERTY);
    assert!(!v.ops.is_empty());
    v
}

#[test]
fn check_lin_rejects_stale_read() {
    let v = rejected(vec![ok(set("k", "1"), 0, 10, Reply::Ok), ok(get("k"), 20, 30, Nil)]);
    assert!(v.detail.contains("#1"), "{v}");
    // The same read overlapping the write is fine.
    accepted(vec![ok(set("k", "1"), 0, 10, Reply::Ok), ok(get("k"), 5, 30, Nil)]);
}

#[test]
fn check_lin_rejects_new_then_old_reads() {
    // Both reads overlap the write, but once one saw the new value a later one cannot see the old.
    rejected(vec![ok(set("k", "1"), 0, 100, Reply::Ok), ok(get("k"), 10, 20, s("1")), ok(get("k"), 30, 40, Nil)]);
    accepted(vec![ok(set("k", "1"), 0, 100, Reply::Ok), ok(get("k"), 10, 20, Nil), ok(get("k"), 30, 40, s("1"))]);
}

#[test]
fn check_lin_accepts_concurrent_writes_in_either_order() {
    for last in ["a", "b"] {
        accepted(vec![
            ok(set("k", "a"), 0, 10, Reply::Ok),
            ok(set("k", "b"), 2, 12, Reply::Ok),
            ok(get("k"), 20, 21, s(last)),
            ok(get("k"), 22, 23, s(last)),
        ]);
    }
}

#[test]
fn check_lin_rejects_lost_write() {
    rejected(vec![
        ok(set("k", "1"), 0, 10, Reply::Ok),
        ok(set("k", "2"), 20, 30, Reply::Ok),
        ok(get("k"), 40, 50, s("1")),
    ]);
}

#[test]
fn check_lin_rejects_non_linearizable_counter() {
    // Two sequential increments both answering 1.
    rejected(vec![ok(incr("c"), 0, 1, Int(1)), ok(incr("c"), 2, 3, Int(1))]);
    // A value no number of increments explains.
    rejected(vec![ok(incr("c"), 0, 1, Int(1)), ok(incr("c"), 2, 3, Int(3))]);
    // Concurrent increments answer 1 and 2 in either order.
    accepted(vec![ok(incr("c"), 0, 10, Int(2)), ok(incr("c"), 1, 11, Int(1)), ok(get("c"), 12, 13, s("2"))]);
}

#[test]
fn check_lin_unknown_writes_may_or_may_not_take_effect() {
    for seen in [Nil, s("1")] {
        accepted(vec![unknown(set("k", "1"), 0, 10), ok(get("k"), 20, 30, seen)]);
    }
    // Pending until the end: may even take effect long after it was sent.
    accepted(vec![pending(set("k", "1"), 0), ok(get("k"), 20, 30, Nil), ok(get("k"), 40, 50, s("1"))]);
    // An unknown increment counts once or not at all.
    for n in [1, 2] {
        accepted(vec![unknown(incr("c"), 0, 5), ok(incr("c"), 10, 11, Int(n))]);
    }
    rejected(vec![unknown(incr("c"), 0, 5), ok(incr("c"), 10, 11, Int(3))]);
    // It cannot take effect before it was sent.
    rejected(vec![ok(get("k"), 0, 5, s("1")), unknown(set("k", "1"), 10, 20)]);
}

#[test]
fn check_lin_rejects_read_of_failed_write() {
    rejected(vec![failed(set("k", "1"), 0, 10), ok(get("k"), 20, 30, s("1"))]);
    rejected(vec![failed(incr("c"), 0, 10), ok(incr("c"), 20, 30, Int(2))]);
    // An error reply also means "not applied".
    rejected(vec![ok(set("k", "1"), 0, 10, Reply::Error("ERR".into())), ok(get("k"), 20, 30, s("1"))]);
}

#[test]
fn check_lin_models_del_append_and_incr_errors() {
    accepted(vec![
        ok(append("k", "ab"), 0, 1, Int(2)),
        ok(append("k", "c"), 2, 3, Int(3)),
        ok(get("k"), 4, 5, s("abc")),
        ok(incr("k"), 6, 7, Reply::Error("ERR value is not an integer".into())),
        ok(del("k"), 8, 9, Int(1)),
        ok(del("k"), 10, 11, Int(0)),
        ok(incr("k"), 12, 13, Int(1)),
    ]);
    rejected(vec![ok(append("k", "ab"), 0, 1, Int(2)), ok(append("k", "c"), 2, 3, Int(1))]);
    rejected(vec![ok(set("k", "x"), 0, 1, Reply::Ok), ok(del("k"), 2, 3, Int(0))]);
    // INCR of a non-integer cannot succeed.
    rejected(vec![ok(set("k", "x"), 0, 1, Reply::Ok), ok(incr("k"), 2, 3, Int(1))]);
    rejected(vec![ok(set("k", "01"), 0, 1, Reply::Ok), ok(incr("k"), 2, 3, Int(2))]);
}

#[test]
fn check_lin_rejects_replies_handed_to_the_wrong_client() {
    // Two concurrent INCRBYs of 1 and 2 from 0: 1 then 3, or 2 then 3.
    accepted(vec![ok(incrby("c", 1), 0, 10, Int(1)), ok(incrby("c", 2), 1, 11, Int(3))]);
    accepted(vec![ok(incrby("c", 1), 0, 10, Int(3)), ok(incrby("c", 2), 1, 11, Int(2))]);
    // Each got the other's reply: no order explains it (with INCR, both 1, it would pass).
    rejected(vec![ok(incrby("c", 1), 0, 10, Int(2)), ok(incrby("c", 2), 1, 11, Int(1))]);
    rejected(vec![ok(incrby("c", 1), 0, 10, Int(3)), ok(incrby("c", 2), 1, 11, Int(1))]);
}

#[test]
fn check_lin_treats_multi_exec_as_one_atomic_op() {
    let multi = OpKind::Multi(vec![incr("c"), incr("c")]);
    let replies = Reply::Multi(vec![Int(1), Int(2)]);
    accepted(vec![ok(multi.clone(), 0, 10, replies.clone()), ok(get("c"), 5, 6, s("2"))]);
    accepted(vec![ok(multi.clone(), 0, 10, replies.clone()), ok(get("c"), 5, 6, Nil)]);
    // The state between the two increments is never visible.
    rejected(vec![ok(multi.clone(), 0, 10, replies.clone()), ok(get("c"), 5, 6, s("1"))]);
    // Unknown transactions apply whole or not at all.
    rejected(vec![unknown(multi.clone(), 0, 10), ok(get("c"), 20, 21, s("1"))]);
    accepted(vec![unknown(multi, 0, 10), ok(get("c"), 20, 21, s("2"))]);
}

#[test]
fn check_lin_skips_list_keys() {
    let h = hist(vec![ok(rpush("l", "a"), 0, 1, Int(1)), ok(lrange("l"), 2, 3, list(&["zzz"]))]);
    assert_eq!(check(&h, DEFAULT_BUDGET).unwrap(), vec![]);
}

#[test]
fn check_lin_reports_inconclusive_instead_of_searching_forever() {
    let h = hist(vec![ok(set("k", "1"), 0, 10, Reply::Ok), ok(get("k"), 20, 30, Nil)]);
    assert_eq!(check(&h, 1).unwrap(), vec![Inconclusive { key: "k".into(), ops: 2 }]);
}

/// A linearizable history of `clients` clients doing `per_client` ops each on one key: every
/// op takes effect at a random instant inside its interval on a real register; writes time out
/// at `unknown_rate` (and then take effect or not).
fn generated(seed: u64, clients: u32, per_client: usize, unknown_rate: f64) -> History {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // (linearization instant, op)
    let mut planned: Vec<(u64, Op)> = Vec::new();
    for c in 0..clients {
        let mut t = rng.gen_range(0..50);
        for i in 0..per_client {
            let kind = match rng.gen_range(0..10) {
                0..=3 => get("k"),
                4..=5 => set("k", &format!("{c}-{i}")),
                6..=8 => incr("k"),
                _ => del("k"),
            };
            let (t0, t1) = (t, t + rng.gen_range(1..100));
            let at = rng.gen_range(t0..=t1);
            let mut op = ok(kind, t0, t1, Nil);
            op.client = c;
            planned.push((at, op));
            t = t1 + rng.gen_range(0..20);
        }
    }
    planned.sort_by_key(|(at, _)| *at);
    let mut state: Option<String> = None;
    let mut ops = Vec::new();
    for (_, mut op) in planned {
        let timed_out = op.kind.is_write() && rng.gen_bool(unknown_rate);
        if timed_out && rng.gen_bool(0.5) {
            op.outcome = Outcome::Unknown("timeout".into());
            ops.push(op);
            continue;
        }
        let (reply, next) = sequential(&state, &op.kind);
        state = next;
        op.outcome = if timed_out { Outcome::Unknown("timeout".into()) } else { Outcome::Ok(reply) };
        ops.push(op);
    }
    ops.sort_by_key(|op| op.invoke_ns);
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i;
    }
    History { ops }
}

/// What a single Redis replies to `cmd` on `state`, and the state after it.
fn sequential(state: &Option<String>, cmd: &OpKind) -> (Reply, Option<String>) {
    match cmd {
        OpKind::Get { .. } => (state.clone().map_or(Nil, Reply::Str), state.clone()),
        OpKind::Set { value, .. } => (Reply::Ok, Some(value.clone())),
        OpKind::Del { .. } => (Int(i64::from(state.is_some())), None),
        OpKind::Incr { by, .. } | OpKind::ScriptIncr { by, .. } => match incremented(state.as_deref(), *by) {
            Some(n) => (Int(n), Some(n.to_string())),
            None => (Reply::Error("ERR value is not an integer".into()), state.clone()),
        },
        other => unreachable!("not generated: {other}"),
    }
}

#[test]
fn check_lin_decides_long_histories_within_the_budget() {
    for seed in 0..3 {
        // 400 ops by 8 clients, one write in ten timed out: linearizable, found quickly.
        let h = generated(seed, 8, 50, 0.1);
        assert_eq!(h.ops.len(), 400);
        assert_eq!(check(&h, DEFAULT_BUDGET).expect("generated histories are linearizable"), vec![], "seed {seed}");
        // With fewer unknown writes, one corrupted late read is found non-linearizable (which
        // means exploring every order up to it) within the budget too.
        let mut bad = generated(seed, 8, 50, 0.02);
        let read = bad.ops.iter().rposition(|op| matches!(op.outcome, Outcome::Ok(Reply::Str(_)))).unwrap();
        bad.ops[read].outcome = Outcome::Ok(s("never written"));
        let v = check(&bad, DEFAULT_BUDGET).expect_err("a read of a value never written");
        assert!(v.ops.iter().any(|op| op.id == read), "seed {seed}: {v}");
    }
}

#[test]
fn check_lin_never_accepts_a_bad_history_it_cannot_decide() {
    // Many unknown writes make the search for a late violation too large for a small budget:
    // the answer is "inconclusive", never "linearizable".
    let mut bad = generated(7, 8, 50, 0.1);
    let read = bad.ops.iter().rposition(|op| matches!(op.outcome, Outcome::Ok(Reply::Str(_)))).unwrap();
    bad.ops[read].outcome = Outcome::Ok(s("never written"));
    match check(&bad, 50_000) {
        Ok(undecided) => assert_eq!(undecided.len(), 1),
        Err(v) => assert!(v.ops.iter().any(|op| op.id == read), "{v}"),
    }
}
