//! Property checked: **no acknowledged write is lost** (issue 4, "Checkers": "no acknowledged
//! write lost after a full-cluster crash"; DESIGN.md: "survive machine loss without losing an
//! acknowledged write").
//!
//! How the harness gives the final state: after its last fault (e.g. a full-cluster crash and
//! restart) and healing, it reads every key of the workload through the ordinary client path
//! (GET for string keys, LRANGE for list keys) and records those reads in the history like any
//! other op. It then calls [`check`] with the virtual time its final-read phase began: every
//! acknowledged read invoked at or after that time is a *final read*. (The linearizability and
//! list checkers see the same reads and reject the same losses too; this checker states the
//! property on its own and names the lost write.)
//!
//! For a final read R of key k, an acknowledged write W of k that completed before R started is
//! lost when:
//! - list key: W is an RPUSH whose value is missing from R;
//! - counter key (its writes are only INCRBYs): R's value is below the sum of the
//!   acknowledged increments (or above acknowledged + unknown ones: increments from nowhere);
//! - register key (its writes are only SET and DEL): every write that could have produced R's
//!   value (a SET of that value, or a DEL / no write at all for nil), acknowledged or unknown,
//!   had finished before W was sent, so W overwrote it.
//!
//! Keys mixing other writes (APPEND, or INCR with SET) are left to the linearizability checker.
//! Failed writes and writes answered with an error never count; unknown ones may have happened.

use super::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};

/// The property name in violations.
pub const PROPERTY: &str = "no acknowledged write lost";

/// Checks the final reads (acknowledged reads invoked at or after `final_from_ns`) of every key.
pub fn check(history: &History, final_from_ns: u64) -> Result<(), Violation> {
    for key in history.keys() {
        let ops: Vec<&Op> = history.for_key(&key).collect();
        let cmds: Vec<&OpKind> = ops.iter().flat_map(|op| commands(&op.kind)).collect();
        let is_list = cmds.iter().any(|c| matches!(c, OpKind::RPush { .. } | OpKind::LRange { .. }));
        let writes: Vec<&&OpKind> = cmds.iter().filter(|c| c.is_write()).collect();
        let incrs = writes.iter().filter(|c| c.is_incr()).count();
        let counter = incrs > 0 && incrs == writes.len();
        let register = writes.iter().all(|c| matches!(c, OpKind::Set { .. } | OpKind::Del { .. }));
        for read in ops.iter().filter(|op| op.invoke_ns >= final_from_ns) {
            match (&read.kind, &read.outcome) {
                (OpKind::LRange { .. }, Outcome::Ok(Reply::List(values))) if is_list => {
                    check_list(&key, &ops, read, values)?
                }
                (OpKind::Get { .. }, Outcome::Ok(reply)) if counter && !is_list => {
                    check_counter(&key, &ops, read, reply)?
                }
                (OpKind::Get { .. }, Outcome::Ok(reply)) if register && !is_list => {
                    check_register(&key, &ops, read, reply)?
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn commands(kind: &OpKind) -> Vec<&OpKind> {
    match kind {
        OpKind::Multi(cmds) => cmds.iter().collect(),
        single => vec![single],
    }
}

/// How a write ended, as far as this check cares.
#[derive(PartialEq, Eq)]
enum Fate {
    Acked,
    Unknown,
    NotApplied,
}

/// A write's fate (a transaction's commands share it; an error reply means not applied).
fn fate(op: &Op, index_in_tx: usize) -> Fate {
    match &op.outcome {
        Outcome::Unknown(_) => Fate::Unknown,
        Outcome::Failed(_) | Outcome::Ok(Reply::Error(_)) => Fate::NotApplied,
        Outcome::Ok(Reply::Multi(rs)) if matches!(rs.get(index_in_tx), Some(Reply::Error(_)) | None) => {
            Fate::NotApplied
        }
        Outcome::Ok(Reply::Nil) if matches!(op.kind, OpKind::Multi(_)) => Fate::NotApplied,
        Outcome::Ok(_) => Fate::Acked,
    }
}

/// Every write command of `ops` with its op and fate.
fn writes<'a>(ops: &[&'a Op]) -> Vec<(&'a Op, &'a OpKind, Fate)> {
    let mut out = Vec::new();
    for op in ops {
        for (i, cmd) in commands(&op.kind).into_iter().enumerate() {
            if cmd.is_write() {
                out.push((*op, cmd, fate(op, i)));
            }
        }
    }
    out
}

fn lost(key: &str, what: String, ops: impl IntoIterator<Item = Op>) -> Violation {
    let mut ops: Vec<Op> = ops.into_iter().collect();
    ops.sort_by_key(|op| op.id);
    ops.dedup_by_key(|op| op.id);
    Violation { property: PROPERTY, detail: format!("key {key:?}: {what}"), ops }
}

fn check_list(key: &str, ops: &[&Op], read: &Op, values: &[String]) -> Result<(), Violation> {
    for (op, cmd, fate) in writes(ops) {
        if let OpKind::RPush { value, .. } = cmd {
            if fate == Fate::Acked && op.complete_ns < read.invoke_ns && !values.contains(value) {
                let what = format!("the final read lacks acknowledged RPUSH of {value:?}");
                return Err(lost(key, what, [op.clone(), read.clone()]));
            }
        }
    }
    Ok(())
}

fn check_counter(key: &str, ops: &[&Op], read: &Op, reply: &Reply) -> Result<(), Violation> {
    let value = match reply {
        Reply::Nil => 0,
        Reply::Str(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return Err(lost(key, format!("counter read {s:?}"), [read.clone()])),
        },
        _ => return Ok(()),
    };
    let writes = writes(ops);
    let amount = |cmd: &OpKind| match cmd {
        OpKind::Incr { by, .. } | OpKind::ScriptIncr { by, .. } => i128::from(*by),
        _ => 0,
    };
    let acked: Vec<_> = writes.iter().filter(|w| w.2 == Fate::Acked && w.0.complete_ns < read.invoke_ns).collect();
    let acked_sum: i128 = acked.iter().map(|w| amount(w.1)).sum();
    let possible: i128 = writes
        .iter()
        .filter(|w| w.2 != Fate::NotApplied && w.0.invoke_ns <= read.complete_ns)
        .map(|w| amount(w.1))
        .sum();
    if i128::from(value) < acked_sum {
        let what = format!(
            "final value {value} but {} increments summing to {acked_sum} were acknowledged before the read",
            acked.len()
        );
        return Err(lost(key, what, acked.iter().map(|w| w.0).chain([read]).cloned()));
    }
    if i128::from(value) > possible {
        let what = format!("final value {value} but the increments that may have happened sum to only {possible}");
        return Err(lost(key, what, [read.clone()]));
    }
    Ok(())
}

fn check_register(key: &str, ops: &[&Op], read: &Op, reply: &Reply) -> Result<(), Violation> {
    let seen = match reply {
        Reply::Nil => None,
        Reply::Str(s) => Some(s.as_str()),
        _ => return Ok(()),
    };
    let writes = writes(ops);
    // Writes that may have produced what the read saw: (invoke, complete) of each; the initial
    // empty key counts as a write that completed before everything.
    let mut sources: Vec<&Op> = Vec::new();
    for (op, cmd, fate) in &writes {
        let produces = match cmd {
            OpKind::Set { value, .. } => seen == Some(value.as_str()),
            _ => seen.is_none(),
        };
        if produces && *fate != Fate::NotApplied && op.invoke_ns <= read.complete_ns {
            sources.push(op);
        }
    }
    for (w, _, fate) in &writes {
        let acked_before = *fate == Fate::Acked && w.complete_ns < read.invoke_ns;
        // Every source finished before `w` began (the empty initial key always did).
        let overwritten = sources.iter().all(|s| s.complete_ns < w.invoke_ns);
        if acked_before && overwritten && (seen.is_none() || !sources.is_empty()) {
            let what = format!("the final read saw {seen:?}, which acknowledged write #{} overwrote", w.id);
            return Err(lost(key, what, sources.iter().map(|s| (*s).clone()).chain([(*w).clone(), read.clone()])));
        }
    }
    if seen.is_some() && sources.is_empty() {
        return Err(lost(key, format!("the final read saw {seen:?}, which no write wrote"), [read.clone()]));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
