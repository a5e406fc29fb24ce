//! The checkers: each property of a run in a file of its own (linearizability of registers and
//! counters, list appends, lost acknowledged writes, convergence, liveness). `check_history`
//! runs every history property; the harness calls the cluster-state ones itself.

pub mod convergence;
pub mod linearizable;
pub mod lists;
pub mod liveness;
pub mod lost_writes;
#[cfg(test)]
mod testutil;
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

/// Runs every history property (linearizability per key, list appends, lost acknowledged
/// writes given the final reads in the history).
pub fn check_history(history: &History) -> Result<(), Violation> {
    for key in linearizable::check(history, linearizable::DEFAULT_BUDGET)? {
        eprintln!("linearizability of key {:?} ({} ops) undecided within the search budget", key.key, key.ops);
    }
    lists::check(history)
}

/// Replicas converge: after healing, every node's digest of its own copy is the same.
/// `digests` holds (node id, DEBUG DIGEST-EXACT of that node's copy).
pub fn check_convergence(digests: &[(u64, String)]) -> Result<(), Violation> {
    convergence::check(digests)
}
