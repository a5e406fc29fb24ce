//! The harness's own checks of the list keys (RPUSH of unique values, LRANGE 0 -1), which
//! need no search and so run on every seed next to the checkers of `check/`:
//! - an acknowledged append is in every read that started after the append completed
//!   (covers lost acknowledged writes, with the final reads, and stale reads);
//! - no read holds a value whose append definitely failed;
//! - no read holds a value twice.

use crate::check::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};
use std::collections::{BTreeMap, BTreeSet};

/// The property name in violations.
pub const PROPERTY: &str = "list appends (harness)";

/// The appends and reads of one list key.
#[derive(Default)]
struct Key<'a> {
    acked: Vec<(&'a str, &'a Op)>,
    failed: BTreeMap<&'a str, &'a Op>,
    reads: Vec<(&'a [String], &'a Op)>,
}

/// Splits an operation into its commands with their replies (None: outcome not a reply).
fn commands(op: &Op) -> Vec<(&OpKind, Option<&Reply>)> {
    match (&op.kind, &op.outcome) {
        (OpKind::Multi(cmds), Outcome::Ok(Reply::Multi(replies))) => {
            cmds.iter().zip(replies.iter().map(Some)).collect()
        }
        (OpKind::Multi(cmds), _) => cmds.iter().map(|c| (c, None)).collect(),
        (kind, Outcome::Ok(r)) => vec![(kind, Some(r))],
        (kind, _) => vec![(kind, None)],
    }
}

fn collect(history: &History) -> BTreeMap<&str, Key<'_>> {
    let mut keys: BTreeMap<&str, Key> = BTreeMap::new();
    for op in &history.ops {
        for (cmd, reply) in commands(op) {
            match (cmd, reply, &op.outcome) {
                (OpKind::RPush { key, value }, Some(r), _) if !matches!(r, Reply::Error(_)) => {
                    keys.entry(key).or_default().acked.push((value, op))
                }
                (OpKind::RPush { key, value }, _, Outcome::Failed(_)) => {
                    keys.entry(key).or_default().failed.insert(value, op);
                }
                (OpKind::LRange { key }, Some(Reply::List(items)), _) => {
                    keys.entry(key).or_default().reads.push((items, op))
                }
                _ => {}
            }
        }
    }
    keys
}

fn violation(detail: String, ops: Vec<&Op>) -> Violation {
    Violation { property: PROPERTY, detail, ops: ops.into_iter().cloned().collect() }
}

/// Runs the three checks over every list key of `history`.
pub fn check(history: &History) -> Result<(), Violation> {
    for (key, k) in collect(history) {
        for &(items, read) in &k.reads {
            let seen: BTreeSet<&str> = items.iter().map(String::as_str).collect();
            if seen.len() != items.len() {
                return Err(violation(format!("{key}: a read holds a value twice"), vec![read]));
            }
            if let Some(v) = items.iter().find(|v| k.failed.contains_key(v.as_str())) {
                let append = k.failed[v.as_str()];
                return Err(violation(format!("{key}: value {v} read although its append failed"), vec![append, read]));
            }
            let missing = k.acked.iter().find(|(v, a)| a.complete_ns < read.invoke_ns && !seen.contains(v));
            if let Some((v, append)) = missing {
                return Err(violation(
                    format!("{key}: acknowledged append of {v} missing from a read that started after it"),
                    vec![append, read],
                ));
            }
        }
    }
    Ok(())
}
