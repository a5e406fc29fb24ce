//! The scripts running on this node now: node-local and never replicated, the one part of the
//! keyspace that is not state (it compares equal whatever it holds).
//!
//! A script registers its run while it runs (EVAL and FCALL at apply, EVAL_RO and FCALL_RO on
//! the read path); the server reads the registry to answer `BUSY` to other clients once a
//! killable run has lasted `busy-reply-threshold`, and `SCRIPT KILL` / `FUNCTION KILL` raise a
//! run's kill flag, which the script's instruction hook polls. Only read-path runs are killable: a write
//! script runs on every replica's apply, and stopping it on one node at a moment of that node's
//! clock would make the replicas diverge (docs/ARCHITECTURE.md, "Lua scripts").

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

/// What kind of script a run is: it picks the `BUSY` text and which KILL may stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// EVAL, EVALSHA and their `_RO` forms.
    Eval,
    /// FCALL and FCALL_RO.
    Function,
}

/// One script running now.
#[derive(Debug)]
pub struct Run {
    id: u64,
    pub kind: RunKind,
    /// A read-path run: `SCRIPT KILL` / `FUNCTION KILL` may stop it.
    pub killable: bool,
    /// When it started (this node's clock: only replies depend on it).
    pub started: Instant,
    /// The command that started it (FUNCTION STATS shows it).
    pub argv: Vec<Bytes>,
    /// Raised by a KILL; the run's instruction hook polls it.
    pub kill: Arc<AtomicBool>,
}

/// The registry of a group's running scripts.
#[derive(Debug, Default)]
pub struct Running {
    runs: Mutex<Vec<Arc<Run>>>,
    /// How many runs are listed: every command looks, so the usual answer (none) takes no lock.
    count: AtomicUsize,
    next_id: AtomicU64,
}

/// Node-local: never part of the state two replicas compare.
impl PartialEq for Running {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Running {
    fn runs(&self) -> MutexGuard<'_, Vec<Arc<Run>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a run; it ends when the guard drops.
    pub fn begin(self: &Arc<Self>, kind: RunKind, killable: bool, argv: &[Bytes]) -> RunGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = Arc::new(AtomicBool::new(false));
        let run = Arc::new(Run { id, kind, killable, started: Instant::now(), argv: argv.to_vec(), kill });
        self.runs().push(run.clone());
        self.count.fetch_add(1, Ordering::Release);
        RunGuard { running: self.clone(), run }
    }

    /// The run that started first, if any is running.
    pub fn oldest(&self) -> Option<Arc<Run>> {
        self.oldest_where(|_| true)
    }

    /// The run that started first among those `pick` accepts.
    pub fn oldest_where(&self, pick: impl Fn(&Run) -> bool) -> Option<Arc<Run>> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.runs().iter().filter(|r| pick(r)).min_by_key(|r| r.started).cloned()
    }
}

/// A registered run: unregistered on drop.
pub struct RunGuard {
    running: Arc<Running>,
    run: Arc<Run>,
}

impl RunGuard {
    /// The flag a KILL raises for this run.
    pub fn kill_flag(&self) -> Arc<AtomicBool> {
        self.run.kill.clone()
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let id = self.run.id;
        self.running.runs().retain(|r| r.id != id);
        self.running.count.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_listed_until_its_guard_drops() {
        let running = Arc::new(Running::default());
        assert!(running.oldest().is_none());
        let first = running.begin(RunKind::Eval, true, &[Bytes::from_static(b"eval_ro")]);
        let second = running.begin(RunKind::Function, false, &[]);
        assert_eq!(running.oldest().map(|r| r.kind), Some(RunKind::Eval));
        first.kill_flag().store(true, Ordering::Relaxed);
        drop(first);
        let oldest = running.oldest().expect("the second run");
        assert_eq!((oldest.kind, oldest.killable), (RunKind::Function, false));
        assert!(!oldest.kill.load(Ordering::Relaxed));
        drop(second);
        assert!(running.oldest().is_none());
    }
}
