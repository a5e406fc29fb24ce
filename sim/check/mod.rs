//! The checkers: each property of a run in a file of its own (linearizability of registers and
//! counters, list appends, blocking pops on queues, stream consumer groups, TTL deadlines,
//! HyperLogLog counts, lost acknowledged writes, convergence, liveness, slot ownership of
//! sharded runs, the WAL's records). `check_history` runs every history property; the harness calls the
//! cluster-state ones itself.

pub mod convergence;
pub mod expiry;
pub mod hll;
pub mod linearizable;
pub mod lists;
pub mod liveness;
pub mod lost_writes;
pub mod ownership;
pub mod queues;
pub mod streams;
#[cfg(test)]
mod testutil;
pub mod wal_log;
mod wgl;

use crate::history::{History, Op};
use std::fmt;

/// A broken property: which one, why, and the operations that show it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The property, as the checker's file names it (e.g. "linearizable register").
    pub property: &'static str,
    pub detail: String,
    /// The part of the history that broke the check (for the failing seed's report).
    pub ops: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "property violated: {}: {}", self.property, self.detail)?;
        for op in &self.ops {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// Runs every property of the history alone: linearizability of each register key
/// (`linearizable.rs`), the list-append checks of each list key (`lists.rs`), the deadlines of
/// TTL keys (`expiry.rs`) and the counts of HyperLogLog keys (`hll.rs`). A register key
/// whose search exceeds the budget is reported on stderr and not judged.
/// The search budget per key is `SIM_LIN_BUDGET` when set (CI's seed sweep lowers it to keep
/// hundreds of seeds affordable), else [`linearizable::DEFAULT_BUDGET`].
pub fn check_history(history: &History) -> Result<(), Violation> {
    let budget = std::env::var("SIM_LIN_BUDGET").ok().and_then(|b| b.parse().ok());
    for key in linearizable::check(history, budget.unwrap_or(linearizable::DEFAULT_BUDGET))? {
        eprintln!("linearizability of key {:?} ({} ops) undecided within the search budget", key.key, key.ops);
    }
    lists::check(history)?;
    expiry::check(history)?;
    hll::check(history)
}

/// No acknowledged write lost (`lost_writes.rs`): the acknowledged reads invoked at or after
/// `final_from_ns` (when the harness began reading every key back, after the last fault and
/// healing) must reflect every write acknowledged before them.
pub fn check_lost_writes(history: &History, final_from_ns: u64) -> Result<(), Violation> {
    lost_writes::check(history, final_from_ns)
}

/// Blocking pops (`queues.rs`): every element popped at most once and only if pushed, none
/// lost, first in first out, no timeout while an element waited; `final_from_ns` as for
/// [`check_lost_writes`].
pub fn check_queues(history: &History, final_from_ns: u64) -> Result<(), Violation> {
    queues::check(history, final_from_ns)
}

/// Stream consumer groups (`streams.rs`): each entry delivered at most once, acknowledged
/// only if delivered, none lost, pending lists as deliveries and acknowledgements left them;
/// `final_from_ns` as for [`check_lost_writes`].
pub fn check_streams(history: &History, final_from_ns: u64) -> Result<(), Violation> {
    streams::check(history, final_from_ns)
}

/// Replicas converge: after healing, every node's digest of its own copy is the same.
/// `digests` holds (node id, DEBUG DIGEST-EXACT of that node's copy).
pub fn check_convergence(digests: &[(u64, String)]) -> Result<(), Violation> {
    convergence::check(digests)
}

/// Liveness (`liveness.rs`): a write sent at or after `heal_ns` (when faults stopped) was
/// acknowledged by `heal_ns + bound_ns`.
pub fn check_liveness(history: &History, heal_ns: u64, bound_ns: u64) -> Result<(), Violation> {
    liveness::check_history(history, heal_ns, bound_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Reply;
    use testutil::*;

    #[test]
    fn check_history_runs_the_register_and_list_checkers() {
        let good = hist(vec![
            ok(set("k", "1"), 0, 10, Reply::Ok),
            ok(get("k"), 20, 30, s("1")),
            ok(rpush("l", "a"), 0, 10, Reply::Int(1)),
            ok(lrange("l"), 20, 30, list(&["a"])),
        ]);
        assert!(check_history(&good).is_ok());
        let mut stale = good.clone();
        stale.ops[2].outcome = crate::history::Outcome::Ok(Reply::Nil);
        assert_eq!(check_history(&stale).unwrap_err().property, linearizable::PROPERTY);
        let mut lost = good.clone();
        lost.ops[3].outcome = crate::history::Outcome::Ok(list(&[]));
        assert_eq!(check_history(&lost).unwrap_err().property, lists::PROPERTY);
        assert_eq!(check_lost_writes(&lost, 20).unwrap_err().property, lost_writes::PROPERTY);
        assert!(check_lost_writes(&good, 20).is_ok());
        assert!(check_liveness(&good, 0, 10).is_ok());
        assert_eq!(check_liveness(&good, 5, 100).unwrap_err().property, liveness::PROPERTY);
    }

    #[test]
    fn check_violation_display_lists_the_ops() {
        let h =
            hist(vec![ok(set("k", "1"), 0, 10_000_000, Reply::Ok), ok(get("k"), 20_000_000, 30_000_000, Reply::Nil)]);
        let text = check_history(&h).unwrap_err().to_string();
        assert!(text.starts_with("property violated: linearizable register: key \"k\""), "{text}");
        assert!(text.contains("#0 c0 n1 [0.000ms .. 10.000ms] SET k 1 => Ok(Ok)"), "{text}");
        assert!(text.contains("GET k => Ok(Nil)"), "{text}");
    }
}
