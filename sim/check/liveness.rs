//! Property checked: **liveness after healing** (issue 4, "Checkers": "liveness: after faults
//! stop, the cluster serves a write within a bounded virtual time").
//!
//! The harness stops injecting faults and heals everything (reconnects, restarts, unclogs) at
//! virtual time `heal_ns`; the workload keeps running. The first write invoked at or after
//! `heal_ns` that is acknowledged (an `Ok` reply that is not an error) must complete by
//! `heal_ns + bound_ns`. A write never acknowledged after healing is a violation too.

use super::Violation;
use crate::history::{History, Op, Outcome, Reply};

/// The property name in violations.
pub const PROPERTY: &str = "liveness after healing";

/// Judges the times: `first_write_ns` is when the first write acknowledged after healing
/// completed (`None`: there was none).
pub fn check(heal_ns: u64, first_write_ns: Option<u64>, bound_ns: u64) -> Result<(), Violation> {
    let deadline = heal_ns.saturating_add(bound_ns);
    let detail = match first_write_ns {
        Some(t) if t <= deadline => return Ok(()),
        Some(t) => format!(
            "the first write after healing at {} ms was acknowledged at {} ms, after the bound of {} ms",
            heal_ns / 1_000_000,
            t / 1_000_000,
            bound_ns / 1_000_000
        ),
        None => format!("no write was acknowledged after healing at {} ms", heal_ns / 1_000_000),
    };
    Err(Violation { property: PROPERTY, detail, ops: Vec::new() })
}

/// When the first write invoked at or after `heal_ns` and acknowledged completed.
pub fn first_write_after(history: &History, heal_ns: u64) -> Option<u64> {
    history.ops.iter().filter(|op| op.invoke_ns >= heal_ns && acked_write(op)).map(|op| op.complete_ns).min()
}

/// [`check`] on `history`; a violation lists the first ops sent after healing (what the
/// cluster answered instead).
pub fn check_history(history: &History, heal_ns: u64, bound_ns: u64) -> Result<(), Violation> {
    check(heal_ns, first_write_after(history, heal_ns), bound_ns).map_err(|mut v| {
        v.ops = history.ops.iter().filter(|op| op.invoke_ns >= heal_ns).take(20).cloned().collect();
        v
    })
}

fn acked_write(op: &Op) -> bool {
    op.kind.is_write() && matches!(&op.outcome, Outcome::Ok(r) if !matches!(r, Reply::Error(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn check_liveness_accepts_a_write_within_the_bound() {
        assert!(check(100 * MS, Some(150 * MS), 50 * MS).is_ok());
        let h = hist(vec![
            failed(set("k", "1"), 100 * MS, 110 * MS),
            ok(get("k"), 110 * MS, 120 * MS, Reply::Nil),
            ok(set("k", "1"), 120 * MS, 130 * MS, Reply::Ok),
        ]);
        assert_eq!(first_write_after(&h, 100 * MS), Some(130 * MS));
        assert!(check_history(&h, 100 * MS, 50 * MS).is_ok());
    }

    #[test]
    fn check_liveness_rejects_no_write_after_healing() {
        let v = check(100 * MS, Some(151 * MS), 50 * MS).unwrap_err();
        assert!(v.detail.contains("after the bound"), "{v}");
        // Only failures, unknowns, reads, and a write from before healing.
        let h = hist(vec![
            ok(set("k", "0"), 10 * MS, 20 * MS, Reply::Ok),
            failed(set("k", "1"), 100 * MS, 110 * MS),
            unknown(set("k", "2"), 110 * MS, 120 * MS),
            ok(set("k", "3"), 120 * MS, 125 * MS, Reply::Error("CLUSTERDOWN".into())),
            ok(get("k"), 130 * MS, 140 * MS, Reply::Nil),
        ]);
        let v = check_history(&h, 100 * MS, 1000 * MS).unwrap_err();
        assert_eq!(v.property, PROPERTY);
        assert!(v.detail.contains("no write was acknowledged"), "{v}");
        assert_eq!(v.ops.len(), 4);
    }
}
