//! `SCRIPT KILL`, `FUNCTION KILL` and the `BUSY` replies, with Redis 7.0's texts. The server
//! answers these itself, from this node's registry of running scripts
//! (`store::running`), never through the log: a write script holds the apply, and the KILL
//! must reach the node while it runs.
//!
//! What can be killed: a read-path run (EVAL_RO, EVALSHA_RO, FCALL_RO), which changes nothing
//! and runs on this node only. A write script (EVAL, EVALSHA, FCALL) runs in every replica's
//! apply; stopping it here at a moment of this node's clock would leave this replica with
//! other data than the rest, so it is `UNKILLABLE` (Redis says so of a script that has
//! written): it ends at its end or at `lua-max-steps`, at the same step everywhere.

use super::is;
use crate::protocol::Frame;
use crate::store::running::{Run, RunKind};
use bytes::Bytes;
use std::sync::atomic::Ordering;

pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
/// Redis's `slowevalerr`.
pub const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// Redis's `slowscripterr`.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
const UNKILLABLE: &str = "UNKILLABLE The busy script is a write applied through the log on every replica: \
it cannot be stopped on one node. It ends at its end or at lua-max-steps; you can kill the server in a \
hard way using the SHUTDOWN NOSAVE command.";

/// The `BUSY` reply while `run` runs.
pub fn busy_error(run: &Run) -> Frame {
    Frame::error(match run.kind {
        RunKind::Eval => BUSY_EVAL,
        RunKind::Function => BUSY_FUNCTION,
    })
}

/// Whether `argv` is `SCRIPT KILL` (`Some(true)`) or `FUNCTION KILL` (`Some(false)`).
pub fn kill_command(argv: &[Bytes]) -> Option<bool> {
    match argv {
        [cmd, sub] if is(sub, "kill") && is(cmd, "script") => Some(true),
        [cmd, sub] if is(sub, "kill") && is(cmd, "function") => Some(false),
        _ => None,
    }
}

/// `SCRIPT KILL` (`is_eval`) or `FUNCTION KILL` of `running` (the oldest run of this node),
/// checked in Redis's order (`scriptKill`).
pub fn kill(running: Option<&Run>, is_eval: bool) -> Frame {
    let Some(run) = running else {
        return Frame::error(NOTBUSY);
    };
    if !run.killable {
        return Frame::error(UNKILLABLE);
    }
    match (is_eval, run.kind) {
        (true, RunKind::Function) => Frame::error(BUSY_FUNCTION),
        (false, RunKind::Eval) => Frame::error(BUSY_EVAL),
        _ => {
            run.kill.store(true, Ordering::Relaxed);
            Frame::ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::running::Running;
    use std::sync::Arc;

    fn err(f: &Frame) -> String {
        match f {
            Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn kill_follows_redis_order() {
        assert!(err(&kill(None, true)).starts_with("NOTBUSY"));
        let running = Arc::new(Running::default());
        let write = running.begin(RunKind::Eval, false, &[]);
        assert!(err(&kill(running.oldest().as_deref(), true)).starts_with("UNKILLABLE"));
        drop(write);
        let _fcall_ro = running.begin(RunKind::Function, true, &[]);
        let run = running.oldest().expect("a run");
        assert_eq!(err(&kill(Some(&run), true)), BUSY_FUNCTION);
        assert!(!run.kill.load(Ordering::Relaxed), "SCRIPT KILL does not stop a function");
        assert_eq!(kill(Some(&run), false), Frame::ok());
        assert!(run.kill.load(Ordering::Relaxed));
    }

    #[test]
    fn only_the_two_kill_forms_are_recognised() {
        let argv = |s: &str| s.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect::<Vec<_>>();
        assert_eq!(kill_command(&argv("SCRIPT kill")), Some(true));
        assert_eq!(kill_command(&argv("function KILL")), Some(false));
        assert_eq!(kill_command(&argv("script kill extra")), None);
        assert_eq!(kill_command(&argv("script flush")), None);
    }
}
