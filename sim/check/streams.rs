//! Property checked: **stream consumer groups deliver each entry at most once, acknowledge only
//! what was delivered, and lose no added entry** (issue 18, "Simulation": stream consumer
//! groups under every fault kind).
//!
//! A stream key gets `XADD key * v <value unique in the run>`, `XGROUP CREATE key g 0
//! MKSTREAM`, `XREADGROUP GROUP g <consumer> COUNT 1 [BLOCK ms] STREAMS key >` and `XACK key g
//! <id>` of an id the client was delivered; at the end (after healing) `XRANGE key - +` and
//! `XPENDING key g - + n`. Per key:
//!
//! - ids: acknowledged XADDs got distinct ids, in real-time order (an XADD acknowledged before
//!   another was sent has the smaller id: `*` ids come from stamped times and never go back,
//!   across leader changes too);
//! - a delivered entry was added (by an XADD not known to have failed, sent before the read
//!   completed), with the id that XADD got; no id is delivered twice (reads use `>` only);
//! - XACK answers 1 only for a delivered id, at most once per id, and answers 1 (not 0) for an
//!   id delivered by an acknowledged read and not acknowledged before;
//! - nothing lost: the final XRANGE holds every acknowledged XADD with its id and value, and
//!   only entries of XADDs not known to have failed;
//! - the final XPENDING lists exactly the delivered, unacknowledged ids under the consumer
//!   that got them, give or take what reads and acknowledgements of unknown outcome did.

use super::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};
use std::collections::{BTreeMap, BTreeSet};

/// The property name in violations.
pub const PROPERTY: &str = "stream consumer groups";

fn violation<'a>(detail: String, ops: impl IntoIterator<Item = &'a Op>) -> Violation {
    let mut ops: Vec<Op> = ops.into_iter().cloned().collect();
    ops.sort_by_key(|op| op.id);
    ops.dedup_by_key(|op| op.id);
    Violation { property: PROPERTY, detail, ops }
}

/// A stream id `ms-seq` as a comparable pair.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// What the history says about one stream key.
#[derive(Default)]
struct Stream<'a> {
    /// XADDs by value: the op and, when acknowledged, the id it got.
    adds: BTreeMap<&'a str, (&'a Op, Option<&'a str>)>,
    /// Acknowledged deliveries by id: the read and the value.
    delivered: BTreeMap<&'a str, (&'a Op, &'a str)>,
    /// Reads of unknown outcome (each may have delivered one entry to its consumer).
    unknown_reads: Vec<&'a Op>,
    /// XACKs by id: the ops and their outcomes.
    acks: BTreeMap<&'a str, Vec<&'a Op>>,
    final_range: Option<(&'a Op, &'a [String])>,
    final_pending: Option<(&'a Op, &'a [String])>,
}

fn collect<'a>(history: &'a History, key: &'a str, final_from_ns: u64) -> Result<Stream<'a>, Violation> {
    let mut s = Stream::default();
    for op in history.for_key(key) {
        let fin = op.invoke_ns >= final_from_ns;
        match (&op.kind, &op.outcome) {
            (OpKind::XAdd { value, .. }, outcome) => {
                let id = match outcome {
                    Outcome::Ok(Reply::Str(id)) => Some(id.as_str()),
                    Outcome::Ok(Reply::Error(_)) | Outcome::Failed(_) => continue,
                    Outcome::Unknown(_) => None,
                    Outcome::Ok(r) => return Err(violation(format!("XADD answered {r:?}"), [op])),
                };
                if let Some((first, _)) = s.adds.insert(value, (op, id)) {
                    return Err(violation(format!("value {value:?} added twice: values are unique"), [first, op]));
                }
            }
            (OpKind::XReadGroup { .. }, Outcome::Ok(Reply::List(entry))) => match entry.as_slice() {
                [] => {}
                [id, value] => {
                    if let Some((first, _)) = s.delivered.insert(id, (op, value)) {
                        return Err(violation(
                            format!("entry {id} delivered twice by reads of new entries"),
                            [first, op],
                        ));
                    }
                }
                other => return Err(violation(format!("XREADGROUP COUNT 1 gave {other:?}"), [op])),
            },
            (OpKind::XReadGroup { .. }, Outcome::Unknown(_)) => s.unknown_reads.push(op),
            (OpKind::XAck { id, .. }, _) => s.acks.entry(id).or_default().push(op),
            (OpKind::XRangeAll { .. }, Outcome::Ok(Reply::List(v))) if fin => s.final_range = Some((op, v)),
            (OpKind::XPendingAll { .. }, Outcome::Ok(Reply::List(v))) if fin => s.final_pending = Some((op, v)),
            _ => {}
        }
    }
    Ok(s)
}

/// Checks every stream key of `history`; `final_from_ns` is when the final reads began.
pub fn check(history: &History, final_from_ns: u64) -> Result<(), Violation> {
    let keys: BTreeSet<String> = history
        .ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::XAdd { .. } | OpKind::XRangeAll { .. }))
        .map(|op| op.kind.key().to_string())
        .collect();
    for key in keys {
        let s = collect(history, &key, final_from_ns)?;
        check_ids(&s)?;
        check_deliveries(&s)?;
        check_acks(&s)?;
        check_final_range(&s)?;
        check_final_pending(&s)?;
    }
    Ok(())
}

/// Acknowledged XADDs have distinct ids that follow real time.
fn check_ids(s: &Stream<'_>) -> Result<(), Violation> {
    let mut acked: Vec<(&Op, (u64, u64))> = Vec::new();
    for (op, id) in s.adds.values() {
        let Some(id) = id else { continue };
        let parsed = parse_id(id).ok_or_else(|| violation(format!("XADD answered the id {id:?}"), [*op]))?;
        acked.push((op, parsed));
    }
    acked.sort_by_key(|(op, _)| op.complete_ns);
    let mut by_id: BTreeMap<(u64, u64), &Op> = BTreeMap::new();
    for (op, id) in &acked {
        if let Some(other) = by_id.insert(*id, op) {
            return Err(violation(format!("two XADDs got the id {}-{}", id.0, id.1), [other, *op]));
        }
    }
    // Of two acknowledged XADDs, the one that completed before the other was sent is smaller.
    let mut max_done: Option<(&Op, (u64, u64))> = None;
    let mut by_invoke = acked.clone();
    by_invoke.sort_by_key(|(op, _)| op.invoke_ns);
    let mut done = acked.iter().peekable();
    for (op, id) in by_invoke {
        while let Some((d, did)) = done.peek() {
            if d.complete_ns >= op.invoke_ns {
                break;
            }
            if max_done.is_none_or(|(_, m)| *did > m) {
                max_done = Some((d, *did));
            }
            done.next();
        }
        if let Some((prev, pid)) = max_done {
            if id <= pid {
                return Err(violation(
                    "an XADD got an id below one acknowledged before it was sent".into(),
                    [prev, op],
                ));
            }
        }
    }
    Ok(())
}

/// Every acknowledged delivery is of an added entry, with its id.
fn check_deliveries(s: &Stream<'_>) -> Result<(), Violation> {
    for (id, (read, value)) in &s.delivered {
        let Some((add, add_id)) = s.adds.get(value) else {
            return Err(violation(format!("entry {id} = {value:?} delivered but never added"), [*read]));
        };
        if add.invoke_ns > read.complete_ns {
            return Err(violation(format!("entry {id} delivered before it was added"), [*add, *read]));
        }
        if add_id.is_some_and(|a| a != *id) {
            return Err(violation(format!("entry {value:?} added as {add_id:?} but delivered as {id}"), [*add, *read]));
        }
    }
    Ok(())
}

/// XACK answers 1 only for delivered ids, once; and 1 for a delivered, unacknowledged id.
fn check_acks(s: &Stream<'_>) -> Result<(), Violation> {
    for (id, acks) in &s.acks {
        let ones: Vec<&Op> = acks.iter().copied().filter(|op| op.outcome == Outcome::Ok(Reply::Int(1))).collect();
        let delivered = s.delivered.get(id);
        if !ones.is_empty() && delivered.is_none() && s.unknown_reads.is_empty() {
            return Err(violation(format!("XACK of {id} answered 1 but it was never delivered"), ones));
        }
        if ones.len() > 1 {
            return Err(violation(format!("XACK of {id} answered 1 twice"), ones));
        }
        if let Some((read, _)) = delivered {
            let mut earlier = acks.iter().filter(|a| a.invoke_ns < read.complete_ns);
            if let Some(a) = earlier.next() {
                return Err(violation(format!("XACK of {id} sent before its delivery completed"), [*read, *a]));
            }
            let first = acks.iter().min_by_key(|a| a.invoke_ns);
            if let Some(a) = first.filter(|a| a.outcome == Outcome::Ok(Reply::Int(0))) {
                return Err(violation(format!("XACK of delivered, pending {id} answered 0"), [*read, *a]));
            }
        }
    }
    Ok(())
}

/// The final XRANGE holds every acknowledged XADD, and nothing that was not added.
fn check_final_range(s: &Stream<'_>) -> Result<(), Violation> {
    let Some((read, flat)) = s.final_range else { return Ok(()) };
    let entries: BTreeMap<&str, &str> =
        flat.chunks(2).filter_map(|c| Some((c.first()?.as_str(), c.get(1)?.as_str()))).collect();
    let by_value: BTreeMap<&str, &str> = entries.iter().map(|(id, v)| (*v, *id)).collect();
    for (value, (add, id)) in &s.adds {
        match (id, by_value.get(value)) {
            (Some(id), Some(got)) if got != id => {
                return Err(violation(format!("{value:?} added as {id} but the stream has it as {got}"), [*add, read]));
            }
            (Some(id), None) if add.complete_ns < read.invoke_ns => {
                return Err(violation(format!("acknowledged XADD {id} = {value:?} lost"), [*add, read]));
            }
            _ => {}
        }
    }
    if let Some((id, value)) = entries.iter().find(|(_, v)| !s.adds.contains_key(*v)) {
        return Err(violation(format!("entry {id} = {value:?} in the stream but never added"), [read]));
    }
    Ok(())
}

/// The final XPENDING lists the delivered, unacknowledged ids with their consumers.
fn check_final_pending(s: &Stream<'_>) -> Result<(), Violation> {
    let Some((read, flat)) = s.final_pending else { return Ok(()) };
    let pending: BTreeMap<&str, &str> =
        flat.chunks(2).filter_map(|c| Some((c.first()?.as_str(), c.get(1)?.as_str()))).collect();
    for (id, (delivery, _)) in &s.delivered {
        let acked = s.acks.get(id).is_some_and(|acks| acks.iter().any(|a| !matches!(a.outcome, Outcome::Failed(_))));
        let OpKind::XReadGroup { consumer, .. } = &delivery.kind else { continue };
        match pending.get(id) {
            None if !acked => {
                return Err(violation(format!("delivered, unacknowledged {id} not pending"), [*delivery, read]));
            }
            Some(_)
                if s.acks.get(id).is_some_and(|acks| acks.iter().any(|a| a.outcome == Outcome::Ok(Reply::Int(1)))) =>
            {
                return Err(violation(format!("acknowledged {id} still pending"), [*delivery, read]));
            }
            Some(owner) if owner != consumer => {
                return Err(violation(
                    format!("{id} delivered to {consumer} but pending for {owner}"),
                    [*delivery, read],
                ));
            }
            _ => {}
        }
    }
    if s.unknown_reads.is_empty() {
        if let Some(id) = pending.keys().find(|id| !s.delivered.contains_key(*id)) {
            return Err(violation(format!("{id} pending but never delivered"), [read]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
