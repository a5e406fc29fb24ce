//! Property checked: **HyperLogLog counts** (issue 21, planted bug 23): PFCOUNT of a key
//! estimates the number of distinct elements PFADD put into it, within HyperLogLog's error,
//! as of an instant within the PFCOUNT (both go through the log, so they are linearizable).
//!
//! A HyperLogLog key gets only `PFADD key e` of one element unique in the run and
//! `PFCOUNT key`. For a PFCOUNT answering `c`, `lo` is the number of PFADDs acknowledged
//! before it began (their elements are surely in), `hi` the number invoked before it ended
//! and not known to have failed; the true count lies in `lo..=hi`. The reply must lie within
//! [`tolerance`] of that range. Redis's estimator is not exact even for a few elements (two
//! elements can share a register; measured against Redis 7.0.15 with random numeric elements:
//! off by up to 2 below 50 elements, up to 9 near 450, i.e. about 2 %), so the bound is
//! 2 + 4 % of the count: about five times HyperLogLog's standard error of 0.81 %, loose enough
//! never to fail on a correct estimate of the workload's few hundred elements, tight enough
//! that a count that stops following the adds (a stale cached cardinality) fails once a
//! handful of elements have gone in after it.
//!
//! PFADD's own reply (1 if a register changed) is checked where it is certain: the first
//! PFADD acknowledged on a key that no other PFADD could have created must answer 1.

use super::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};

/// The property name in violations.
pub const PROPERTY: &str = "HyperLogLog counts";

/// How far a correct estimate of `n` distinct elements may be from `n`.
pub fn tolerance(n: u64) -> u64 {
    2 + (n * 4).div_ceil(100)
}

/// Checks every HyperLogLog key (one with a `PfAdd` or `PfCount`) of `history`.
pub fn check(history: &History) -> Result<(), Violation> {
    for key in history.keys() {
        let ops: Vec<&Op> = history.for_key(&key).collect();
        if !ops.iter().any(|op| matches!(op.kind, OpKind::PfAdd { .. } | OpKind::PfCount { .. })) {
            continue;
        }
        check_key(&key, &ops)?;
    }
    Ok(())
}

fn check_key(key: &str, ops: &[&Op]) -> Result<(), Violation> {
    let fail = |detail: String, culprits: Vec<&Op>| {
        Err(Violation { property: PROPERTY, detail, ops: culprits.into_iter().cloned().collect() })
    };
    // PFADDs that may have taken effect, with their completion (None: unknown).
    let mut adds: Vec<(&Op, Option<u64>)> = Vec::new();
    for op in ops {
        match (&op.kind, &op.outcome) {
            (OpKind::PfAdd { .. }, Outcome::Ok(Reply::Int(0 | 1))) => adds.push((op, Some(op.complete_ns))),
            (OpKind::PfAdd { .. }, Outcome::Unknown(_)) => adds.push((op, None)),
            (OpKind::PfAdd { .. }, Outcome::Failed(_) | Outcome::Ok(Reply::Error(_))) => {}
            (OpKind::PfAdd { .. }, Outcome::Ok(other)) => {
                return fail(format!("PFADD on {key:?} answered {other:?}"), vec![op]);
            }
            (OpKind::PfCount { .. }, _) => {}
            _ => {
                return fail(format!("key {key:?} mixes HyperLogLog commands with {}: uncheckable", op.kind), vec![op])
            }
        }
    }
    if let Some((first, Some(end))) = adds.iter().find(|(_, end)| end.is_some()) {
        let alone = adds.iter().all(|(op, _)| op.id == first.id || op.invoke_ns > *end);
        if alone && first.outcome != Outcome::Ok(Reply::Int(1)) {
            return fail(format!("the PFADD that created {key:?} answered 0"), vec![first]);
        }
    }
    for read in ops.iter().filter(|op| matches!(op.kind, OpKind::PfCount { .. })) {
        let Outcome::Ok(Reply::Int(c)) = read.outcome else { continue };
        let lo = adds.iter().filter(|(_, end)| end.is_some_and(|e| e < read.invoke_ns)).count() as u64;
        let hi = adds.iter().filter(|(op, _)| op.invoke_ns < read.complete_ns).count() as u64;
        let (min, max) = (lo.saturating_sub(tolerance(lo)), hi + tolerance(hi));
        if c < 0 || (c as u64) < min || c as u64 > max {
            let detail = format!(
                "PFCOUNT of {key:?} answered {c}, but between {lo} and {hi} distinct elements were in it \
                 (a correct estimate lies in {min}..={max})"
            );
            let mut culprits: Vec<&Op> =
                adds.iter().filter(|(op, _)| op.invoke_ns < read.complete_ns).map(|(op, _)| *op).collect();
            culprits.push(read);
            return fail(detail, culprits);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::{failed, hist, ok, unknown};

    fn pfadd(v: &str) -> OpKind {
        OpKind::PfAdd { key: "h".into(), value: v.into() }
    }
    fn pfcount() -> OpKind {
        OpKind::PfCount { key: "h".into() }
    }

    /// `n` acknowledged PFADDs, one per 10 ns from 0.
    fn adds(n: u64) -> Vec<Op> {
        (0..n).map(|i| ok(pfadd(&i.to_string()), i * 10, i * 10 + 5, Reply::Int(1))).collect()
    }

    #[test]
    fn counts_within_the_error_of_the_elements_added_pass() {
        let mut ops = adds(50);
        ops.push(ok(pfcount(), 1_000, 1_001, Reply::Int(50)));
        ops.push(ok(pfcount(), 1_002, 1_003, Reply::Int(49)));
        assert!(check(&hist(ops)).is_ok());
    }

    #[test]
    fn a_count_that_stopped_following_the_adds_is_a_violation() {
        let mut ops = adds(50);
        ops.push(ok(pfcount(), 1_000, 1_001, Reply::Int(10)));
        let v = check(&hist(ops)).unwrap_err();
        assert_eq!(v.property, PROPERTY);
        assert!(v.detail.contains("answered 10, but between 50 and 50"), "{v}");
    }

    #[test]
    fn a_count_above_every_add_sent_is_a_violation() {
        let mut ops = adds(5);
        ops.push(ok(pfcount(), 1_000, 1_001, Reply::Int(20)));
        assert!(check(&hist(ops)).is_err());
    }

    #[test]
    fn unknown_and_concurrent_adds_may_count_and_failed_ones_may_not() {
        let mut ops = adds(20);
        ops.extend((0..10).map(|i| unknown(pfadd(&format!("u{i}")), 300 + i, 400)));
        ops.push(ok(pfcount(), 500, 501, Reply::Int(30)));
        ops.push(ok(pfcount(), 502, 503, Reply::Int(20)));
        assert!(check(&hist(ops)).is_ok());
        let mut ops = adds(20);
        ops.extend((0..10).map(|i| failed(pfadd(&format!("f{i}")), 300 + i, 400)));
        ops.push(ok(pfcount(), 500, 501, Reply::Int(30)));
        assert!(check(&hist(ops)).is_err());
    }

    #[test]
    fn the_pfadd_that_creates_the_key_answers_one() {
        let h = hist(vec![ok(pfadd("a"), 0, 5, Reply::Int(0))]);
        assert!(check(&h).unwrap_err().detail.contains("created"));
        // With another add concurrent, it may not have been the first.
        let h = hist(vec![ok(pfadd("a"), 0, 5, Reply::Int(0)), unknown(pfadd("b"), 1, 9)]);
        assert!(check(&h).is_ok());
    }

    #[test]
    fn the_tolerance_covers_the_estimate_of_small_sets() {
        // The estimate of raftis's own HyperLogLog (Redis's algorithm and layout) for sets of
        // the workload's unique numbers (client * 10^6 + sequence), as a PFADD per element
        // builds it, in several orders.
        for (stride, clients) in [(1, 6), (7, 6), (13, 3), (101, 6), (1_009, 1)] {
            let mut v = raftis::store::hll::new_sparse();
            for n in 1..=600u64 {
                let element = (n % clients) * 1_000_000 + n * stride;
                raftis::store::hll::add(&mut v, element.to_string().as_bytes()).expect("add");
                let est = raftis::store::hll::count(&v).expect("count");
                assert!(est.abs_diff(n) <= tolerance(n), "{n} elements (stride {stride}) estimated as {est}");
            }
        }
    }
}
