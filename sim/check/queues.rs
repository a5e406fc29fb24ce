//! Property checked: **blocking pops take each element at most once, and only if it was
//! pushed** (issue 18, "Simulation": "every element popped at most once and only if pushed,
//! acknowledged pops consistent with the history"). The list checker's rules, extended to
//! queues that shrink.
//!
//! A queue key gets only `RPUSH key v` of a value unique in the run, `BLPOP key... timeout`
//! and, at the end, `LRANGE key 0 -1` (the final reads, after healing). Every acknowledged
//! BLPOP names the element it took, so per key:
//!
//! - a popped element was pushed to that key, by a push not known to have failed and sent
//!   before the pop completed; no element is popped twice, and none is both popped and still
//!   in the final list;
//! - nothing is lost: an acknowledged push's element is in the final list or was popped, except
//!   for as many elements as pops of unknown outcome could have taken (one each);
//! - first in, first out (pushes at the tail, pops at the head): of two acknowledged pushes,
//!   the one acknowledged before the other was sent is popped first, so the later one is never
//!   popped while the earlier stays in the final list, nor by a pop that completed before the
//!   earlier one's pop began;
//! - a blocked client is served: a BLPOP that timed out (nil) never saw one of its keys hold
//!   an element from before its deadline until after it ended (pushed and acknowledged more
//!   than a millisecond before the pop's invocation plus its timeout, and still there after
//!   it ended). Its deadline is stamped from the time its block entry was proposed (no earlier
//!   than its invocation) and the push from a time no later than its acknowledgement, read on
//!   the one virtual clock every simulated node shares; the millisecond covers the rounding.

use super::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};
use std::collections::{BTreeMap, BTreeSet};

/// The property name in violations.
pub const PROPERTY: &str = "blocking pops";

/// How a push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Acked,
    Unknown,
    Failed,
}

struct Push<'a> {
    op: &'a Op,
    key: &'a str,
    status: Status,
}

/// An acknowledged pop: the element it took.
struct Pop<'a> {
    op: &'a Op,
    key: &'a str,
    value: &'a str,
}

fn violation<'a>(detail: String, ops: impl IntoIterator<Item = &'a Op>) -> Violation {
    let mut ops: Vec<Op> = ops.into_iter().cloned().collect();
    ops.sort_by_key(|op| op.id);
    ops.dedup_by_key(|op| op.id);
    Violation { property: PROPERTY, detail, ops }
}

/// What the history says about the queues.
#[derive(Default)]
struct Queues<'a> {
    pushes: BTreeMap<&'a str, Push<'a>>,
    pops: Vec<Pop<'a>>,
    /// Pops of unknown outcome (each may have taken one element of one of its keys).
    unknown_pops: Vec<&'a Op>,
    /// Pops that answered nil (timed out).
    timed_out: Vec<&'a Op>,
    /// The last acknowledged final read of each key.
    finals: BTreeMap<&'a str, (&'a Op, &'a [String])>,
}

fn collect(history: &History, final_from_ns: u64) -> Result<Queues<'_>, Violation> {
    let mut q = Queues::default();
    for op in &history.ops {
        match (&op.kind, &op.outcome) {
            (OpKind::QPush { key, value }, outcome) => {
                let status = match outcome {
                    Outcome::Ok(Reply::Int(_)) => Status::Acked,
                    Outcome::Unknown(_) => Status::Unknown,
                    Outcome::Failed(_) | Outcome::Ok(Reply::Error(_)) => Status::Failed,
                    Outcome::Ok(r) => return Err(violation(format!("RPUSH answered {r:?}"), [op])),
                };
                if let Some(first) = q.pushes.insert(value, Push { op, key, status }) {
                    return Err(violation(
                        format!("value {value:?} pushed twice: the workload pushes unique values"),
                        [first.op, op],
                    ));
                }
            }
            (OpKind::BPop { keys, .. }, outcome) => match outcome {
                Outcome::Ok(Reply::List(kv)) if kv.len() == 2 && keys.contains(&kv[0]) => {
                    q.pops.push(Pop { op, key: &kv[0], value: &kv[1] })
                }
                Outcome::Ok(Reply::Nil) => q.timed_out.push(op),
                Outcome::Unknown(_) => q.unknown_pops.push(op),
                Outcome::Failed(_) | Outcome::Ok(Reply::Error(_)) => {}
                Outcome::Ok(r) => return Err(violation(format!("BLPOP answered {r:?}"), [op])),
            },
            (OpKind::QRange { key }, Outcome::Ok(Reply::List(values))) if op.invoke_ns >= final_from_ns => {
                q.finals.insert(key, (op, values));
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Checks every queue key of `history`; `final_from_ns` is when the final reads began.
pub fn check(history: &History, final_from_ns: u64) -> Result<(), Violation> {
    let q = collect(history, final_from_ns)?;
    let popped = check_pops(&q)?;
    check_finals(&q, &popped)?;
    check_fifo(&q, &popped)?;
    check_timeouts(&q, &popped)
}

/// Every acknowledged pop took a pushed element, at most once. Returns who popped what.
fn check_pops<'a>(q: &'a Queues<'a>) -> Result<BTreeMap<&'a str, &'a Pop<'a>>, Violation> {
    let mut popped: BTreeMap<&str, &Pop> = BTreeMap::new();
    for pop in &q.pops {
        let Some(push) = q.pushes.get(pop.value) else {
            return Err(violation(format!("BLPOP took {:?}, which was never pushed", pop.value), [pop.op]));
        };
        let problem = if push.key != pop.key {
            Some(format!("pushed to {:?}, popped from {:?}", push.key, pop.key))
        } else if push.status == Status::Failed {
            Some("its push failed".to_string())
        } else if push.op.invoke_ns > pop.op.complete_ns {
            Some("pushed only after the pop ended".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(violation(format!("BLPOP took {:?}: {p}", pop.value), [push.op, pop.op]));
        }
        if let Some(first) = popped.insert(pop.value, pop) {
            return Err(violation(format!("element {:?} popped twice", pop.value), [push.op, first.op, pop.op]));
        }
    }
    Ok(popped)
}

/// The final lists hold pushed elements nobody popped, and lose none beyond what pops of
/// unknown outcome may have taken.
fn check_finals(q: &Queues, popped: &BTreeMap<&str, &Pop>) -> Result<(), Violation> {
    let mut missing: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for (key, (read, values)) in &q.finals {
        let held: BTreeSet<&str> = values.iter().map(String::as_str).collect();
        if held.len() != values.len() {
            return Err(violation(format!("final read of {key:?} holds an element twice"), [*read]));
        }
        for v in values.iter() {
            match (q.pushes.get(v.as_str()), popped.get(v.as_str())) {
                (_, Some(pop)) => {
                    return Err(violation(format!("{v:?} was popped and is still in {key:?}"), [pop.op, *read]))
                }
                (Some(push), None) if push.key == *key && push.status != Status::Failed => {}
                (Some(push), None) => {
                    return Err(violation(format!("{key:?} holds {v:?}, failed or pushed elsewhere"), [push.op, *read]))
                }
                (None, None) => return Err(violation(format!("{key:?} holds {v:?}, never pushed"), [*read])),
            }
        }
        for (value, push) in q.pushes.iter().filter(|(_, p)| p.key == *key && p.status == Status::Acked) {
            if !held.contains(value) && !popped.contains_key(value) {
                missing.entry(key).or_default().push(push.op);
            }
        }
    }
    let total: usize = missing.values().map(Vec::len).sum();
    for (key, lost) in &missing {
        let could_take = q.unknown_pops.iter().filter(|op| pop_keys(op).iter().any(|k| k == key)).count();
        if lost.len() > could_take || total > q.unknown_pops.len() {
            let detail = format!(
                "{} acknowledged pushes to {key:?} are neither popped nor in the final list; only {could_take} pops of unknown outcome could have taken them",
                lost.len()
            );
            return Err(violation(detail, lost.iter().copied()));
        }
    }
    Ok(())
}

fn pop_keys(op: &Op) -> &[String] {
    match &op.kind {
        OpKind::BPop { keys, .. } => keys,
        _ => &[],
    }
}

/// Acknowledged pushes one after the other come out in that order.
fn check_fifo(q: &Queues, popped: &BTreeMap<&str, &Pop>) -> Result<(), Violation> {
    let acked: Vec<(&str, &Push)> =
        q.pushes.iter().filter(|(_, p)| p.status == Status::Acked).map(|(v, p)| (*v, p)).collect();
    for &(b, pb) in &acked {
        let Some(pop_b) = popped.get(b) else { continue };
        for &(a, pa) in &acked {
            if pa.key != pb.key || pa.op.complete_ns >= pb.op.invoke_ns {
                continue;
            }
            // `a` went in before `b`: it must come out first.
            let still_there = q.finals.get(pa.key).is_some_and(|(_, values)| values.iter().any(|v| v == a));
            let popped_later = popped.get(a).is_some_and(|pop_a| pop_b.op.complete_ns < pop_a.op.invoke_ns);
            if still_there || popped_later {
                let detail = format!("{b:?} was popped before {a:?}, which was pushed to {:?} before it", pa.key);
                let mut ops = vec![pa.op, pb.op, pop_b.op];
                ops.extend(popped.get(a).map(|p| p.op));
                return Err(violation(detail, ops));
            }
        }
    }
    Ok(())
}

/// A BLPOP that timed out never had an element available from before its deadline on.
fn check_timeouts(q: &Queues, popped: &BTreeMap<&str, &Pop>) -> Result<(), Violation> {
    for &pop in &q.timed_out {
        let keys = pop_keys(pop);
        let timeout_ns = match pop.kind {
            OpKind::BPop { timeout_ms, .. } if timeout_ms > 0 => timeout_ms * 1_000_000,
            _ => u64::MAX / 2,
        };
        let deadline_ns = pop.invoke_ns.saturating_add(timeout_ns);
        for (value, push) in &q.pushes {
            let in_time = push.op.complete_ns.saturating_add(1_000_000) < deadline_ns;
            if push.status != Status::Acked || !keys.iter().any(|k| k == push.key) || !in_time {
                continue;
            }
            let stayed = match popped.get(value) {
                Some(taker) => taker.op.invoke_ns > pop.complete_ns,
                None => q.finals.get(push.key).is_some_and(|(_, values)| values.iter().any(|v| v == value)),
            };
            if stayed {
                let detail =
                    format!("BLPOP timed out although {value:?} was in {:?} before its deadline and after", push.key);
                return Err(violation(detail, [push.op, pop]));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
