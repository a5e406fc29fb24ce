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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: usize, kind: OpKind, at: (u64, u64), outcome: Outcome) -> Op {
        Op { id, client: id as u32, node: 1, kind, invoke_ns: at.0, complete_ns: at.1, outcome }
    }

    fn push(id: usize, v: &str, at: (u64, u64), outcome: Outcome) -> Op {
        op(id, OpKind::RPush { key: "l".into(), value: v.into() }, at, outcome)
    }

    fn read(id: usize, items: &[&str], at: (u64, u64)) -> Op {
        let list = Reply::List(items.iter().map(|s| s.to_string()).collect());
        op(id, OpKind::LRange { key: "l".into() }, at, Outcome::Ok(list))
    }

    fn history(ops: Vec<Op>) -> History {
        History { ops }
    }

    #[test]
    fn accepts_reads_that_see_every_earlier_append() {
        let h = history(vec![
            push(0, "a", (0, 10), Outcome::Ok(Reply::Int(1))),
            // Concurrent with the read: may or may not be seen.
            push(1, "b", (15, 40), Outcome::Ok(Reply::Int(2))),
            push(2, "c", (16, 50), Outcome::Unknown("timeout".into())),
            read(3, &["a"], (20, 30)),
            read(4, &["a", "b", "c"], (60, 70)),
        ]);
        assert!(check(&h).is_ok());
    }

    #[test]
    fn rejects_a_stale_read() {
        let h = history(vec![push(0, "a", (0, 10), Outcome::Ok(Reply::Int(1))), read(1, &[], (20, 30))]);
        let v = check(&h).unwrap_err();
        assert!(v.detail.contains("acknowledged append of a missing"), "{v}");
        assert_eq!(v.ops.len(), 2);
    }

    #[test]
    fn rejects_a_value_whose_append_failed() {
        let h = history(vec![push(0, "a", (0, 10), Outcome::Failed("CLUSTERDOWN".into())), read(1, &["a"], (20, 30))]);
        assert!(check(&h).unwrap_err().detail.contains("append failed"));
    }

    #[test]
    fn rejects_a_duplicate() {
        let h = history(vec![push(0, "a", (0, 10), Outcome::Ok(Reply::Int(1))), read(1, &["a", "a"], (20, 30))]);
        assert!(check(&h).unwrap_err().detail.contains("twice"));
    }

    #[test]
    fn sees_appends_and_reads_inside_transactions() {
        let multi = OpKind::Multi(vec![
            OpKind::RPush { key: "l".into(), value: "a".into() },
            OpKind::LRange { key: "l".into() },
        ]);
        let replies = Reply::Multi(vec![Reply::Int(1), Reply::List(vec!["a".into()])]);
        let h = history(vec![op(0, multi, (0, 10), Outcome::Ok(replies)), read(1, &[], (20, 30))]);
        assert!(check(&h).is_err());
    }
}
