//! Property checked: **TTLs follow their deadlines** (issue 21, planted bug 22; issue 17's
//! "TTLs kept"): a key written with a relative TTL expires at the absolute deadline its write
//! fixed, on every node and after every move, and not before.
//!
//! A TTL key gets only `RESTORE key T <payload> REPLACE` (T ms, the same T for every write of
//! the key) and `PTTL key`. A write's deadline is the time its leader stamped on the log entry
//! plus T, and that stamp lies within the write's invocation and completion (any time after
//! the invocation for an unknown outcome). A PTTL of `p` served at some instant of its own
//! interval says the deadline is that instant plus `p`. Violations, with [`SLACK_NS`] for the
//! server's whole-millisecond clock:
//! - `-1`: the key exists without a TTL, which no write of the workload makes (a RESTORE that
//!   dropped its TTL, a move that lost it);
//! - `p >= 0` with no write that could have fixed that deadline and that is not surely
//!   overwritten (an acknowledged write invoked after it ended and itself completed before the
//!   read began), or `p` above T: a deadline shifted or stale;
//! - `-2` (no key) while an acknowledged write completed before the read began and every write
//!   that could be the last one before the read (that one or any not finished before it began)
//!   fixed a deadline after the read ended: the key vanished before its deadline.
//!
//! Failed writes and error replies take no effect; unknown ones may have happened at any time
//! after their invocation, or never. Only acknowledged PTTL replies are judged.

use super::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};

/// The property name in violations.
pub const PROPERTY: &str = "TTLs follow their deadlines";

/// The server's clock has whole milliseconds; deadlines and remaining times are compared with
/// this much slack either way.
pub const SLACK_NS: u64 = 2_000_000;

/// Checks every TTL key (one with a `RestoreTtl` or `Pttl`) of `history`.
pub fn check(history: &History) -> Result<(), Violation> {
    for key in history.keys() {
        let ops: Vec<&Op> = history.for_key(&key).collect();
        if !ops.iter().any(|op| matches!(op.kind, OpKind::RestoreTtl { .. } | OpKind::Pttl { .. })) {
            continue;
        }
        check_key(&key, &ops)?;
    }
    Ok(())
}

/// A write that may have taken effect: its window and TTL (ns); `end` is None when unknown.
struct Write<'a> {
    op: &'a Op,
    start: u64,
    end: Option<u64>,
    ttl: u64,
}

impl Write<'_> {
    /// The earliest deadline it can have fixed.
    fn earliest(&self) -> u64 {
        self.start + self.ttl
    }
}

fn check_key(key: &str, ops: &[&Op]) -> Result<(), Violation> {
    let fail = |detail: String, culprits: Vec<&Op>| {
        Err(Violation { property: PROPERTY, detail, ops: culprits.into_iter().cloned().collect() })
    };
    let mut writes = Vec::new();
    for op in ops {
        match (&op.kind, &op.outcome) {
            (OpKind::RestoreTtl { ttl_ms, .. }, outcome) => {
                let end = match outcome {
                    Outcome::Ok(Reply::Error(_)) | Outcome::Failed(_) => continue,
                    Outcome::Ok(_) => Some(op.complete_ns),
                    Outcome::Unknown(_) => None,
                };
                writes.push(Write { op, start: op.invoke_ns, end, ttl: ttl_ms * 1_000_000 });
            }
            (OpKind::Pttl { .. }, _) => {}
            _ => return fail(format!("key {key:?} mixes TTL writes with {}: uncheckable", op.kind), vec![op]),
        }
    }
    for read in ops.iter().filter(|op| matches!(op.kind, OpKind::Pttl { .. })) {
        let Outcome::Ok(Reply::Int(p)) = read.outcome else { continue };
        let (r0, r1) = (read.invoke_ns, read.complete_ns);
        match p {
            -1 => return fail(format!("PTTL of {key:?} found no TTL; every write sets one"), vec![read]),
            -2 => {
                // The last write before the read is `w` or one that could follow it.
                for w in writes.iter().filter(|w| w.end.is_some_and(|e| e < r0)) {
                    let could_follow = writes.iter().filter(|x| x.start < r1 && x.end.is_none_or(|e| e >= w.start));
                    let soonest = could_follow.map(Write::earliest).min().unwrap_or(w.earliest());
                    if soonest > r1 + SLACK_NS {
                        let detail = format!(
                            "PTTL of {key:?} found no key, but the write acknowledged before it (and any that could \
                             follow it) expires {} ms after the read ended at the earliest",
                            (soonest - r1) / 1_000_000
                        );
                        return fail(detail, vec![w.op, read]);
                    }
                }
            }
            p if p >= 0 => {
                let p = p as u64 * 1_000_000;
                let (lo, hi) = (r0 + p, r1.saturating_add(p));
                let fits = |w: &&Write| {
                    let superseded =
                        writes.iter().any(|x| x.end.is_some_and(|xe| xe < r0) && w.end.is_some_and(|we| we < x.start));
                    let latest = w.end.map_or(u64::MAX, |e| e + w.ttl + SLACK_NS);
                    !superseded && p <= w.ttl + SLACK_NS && w.earliest() <= hi + SLACK_NS && latest >= lo
                };
                if !writes.iter().any(|w| fits(&w)) {
                    let detail = format!(
                        "PTTL of {key:?} answered {} ms: no write that the read could still see fixed a deadline \
                         in [{:.3}, {:.3}] ms",
                        p / 1_000_000,
                        lo as f64 / 1e6,
                        hi as f64 / 1e6
                    );
                    let mut culprits: Vec<&Op> = writes.iter().map(|w| w.op).collect();
                    culprits.push(read);
                    return fail(detail, culprits);
                }
            }
            other => return fail(format!("PTTL of {key:?} answered {other}"), vec![read]),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::{hist, ok, unknown};

    const MS: u64 = 1_000_000;

    fn restore(ttl_ms: u64) -> OpKind {
        OpKind::RestoreTtl { key: "t".into(), value: "1".into(), ttl_ms }
    }
    fn pttl() -> OpKind {
        OpKind::Pttl { key: "t".into() }
    }
    fn int(n: i64) -> Reply {
        Reply::Int(n)
    }

    #[test]
    fn remaining_times_consistent_with_the_deadline_pass() {
        // Written between 0 and 10 ms with 1000 ms: the deadline is in [1000, 1010] ms.
        let h = hist(vec![
            ok(restore(1000), 0, 10 * MS, Reply::Ok),
            ok(pttl(), 100 * MS, 105 * MS, int(900)),
            ok(pttl(), 500 * MS, 501 * MS, int(505)),
            ok(pttl(), 1020 * MS, 1021 * MS, int(-2)),
        ]);
        assert!(check(&h).is_ok());
    }

    #[test]
    fn a_key_without_a_ttl_is_a_violation() {
        let h = hist(vec![ok(restore(1000), 0, 10 * MS, Reply::Ok), ok(pttl(), 20 * MS, 21 * MS, int(-1))]);
        let v = check(&h).unwrap_err();
        assert_eq!(v.property, PROPERTY);
        assert!(v.detail.contains("found no TTL"), "{v}");
    }

    #[test]
    fn a_shifted_deadline_is_a_violation() {
        // 400 ms left at 100 ms: a deadline of 500 ms, though the write fixed one near 1000.
        let h = hist(vec![ok(restore(1000), 0, 10 * MS, Reply::Ok), ok(pttl(), 100 * MS, 101 * MS, int(400))]);
        assert!(check(&h).unwrap_err().detail.contains("no write that the read could still see"));
        // More time left than the TTL itself.
        let h = hist(vec![ok(restore(1000), 0, 10 * MS, Reply::Ok), ok(pttl(), 10 * MS, 11 * MS, int(1500))]);
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_key_gone_before_its_deadline_is_a_violation() {
        let h = hist(vec![ok(restore(1000), 0, 10 * MS, Reply::Ok), ok(pttl(), 500 * MS, 501 * MS, int(-2))]);
        assert!(check(&h).unwrap_err().detail.contains("found no key"));
        // An unknown write concurrent with the read does not excuse it: it would only add time.
        let h = hist(vec![
            ok(restore(1000), 0, 10 * MS, Reply::Ok),
            unknown(restore(1000), 400 * MS, 450 * MS),
            ok(pttl(), 500 * MS, 501 * MS, int(-2)),
        ]);
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_stale_deadline_of_an_overwritten_write_is_a_violation() {
        // The second write ended before the read began and started after the first ended.
        let h = hist(vec![
            ok(restore(1000), 0, 10 * MS, Reply::Ok),
            ok(restore(1000), 300 * MS, 310 * MS, Reply::Ok),
            ok(pttl(), 400 * MS, 401 * MS, int(605)),
        ]);
        assert!(check(&h).is_err());
        let fresh = hist(vec![
            ok(restore(1000), 0, 10 * MS, Reply::Ok),
            ok(restore(1000), 300 * MS, 310 * MS, Reply::Ok),
            ok(pttl(), 400 * MS, 401 * MS, int(905)),
        ]);
        assert!(check(&fresh).is_ok());
    }

    #[test]
    fn an_unknown_write_may_fix_a_later_deadline() {
        // Timed out at 20 ms: it may have been applied (and stamped) much later.
        let h = hist(vec![unknown(restore(1000), 0, 20 * MS), ok(pttl(), 3000 * MS, 3001 * MS, int(700))]);
        assert!(check(&h).is_ok());
        // A failed write fixes nothing.
        let mut failed = h.clone();
        failed.ops[0].outcome = Outcome::Failed("CLUSTERDOWN".into());
        assert!(check(&failed).is_err());
    }

    #[test]
    fn other_writes_on_a_ttl_key_are_uncheckable() {
        let h = hist(vec![
            ok(restore(1000), 0, 10 * MS, Reply::Ok),
            ok(crate::check::testutil::del("t"), 20 * MS, 21 * MS, int(1)),
        ]);
        assert!(check(&h).unwrap_err().detail.contains("uncheckable"));
    }
}
