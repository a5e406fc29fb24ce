//! Property checked: **list appends are consistent** (issue 4, "Checkers": "Elle-style
//! list-append checks (every read a prefix of one order, no duplicates, no value whose append
//! definitely failed, no acknowledged append missing, real-time order)").
//!
//! A list key gets only `RPUSH key v` with a value unique in the run and `LRANGE key 0 -1`
//! (alone or inside MULTI/EXEC, whose commands are then checked one by one). Since values are
//! unique and lists only grow, every read names exactly which appends it saw and in what order,
//! so the checks need no search (Kingsbury & Alvaro, "Elle", VLDB 2020). Per key:
//!
//! - a read holds no value twice, no value never appended to this key, no value whose append
//!   failed (or was answered with an error), and no value appended only after the read ended;
//! - all reads are prefixes of one order (the longest read);
//! - real time: a read that started after an append was acknowledged contains its value, and a
//!   read that started after another read ended is at least as long;
//! - an acknowledged append's reply (the new length) is its position in that order, so two
//!   acknowledged appends never share a length, and one acknowledged before another was sent
//!   has the smaller one.
//!
//! An append with unknown outcome may be seen or not; a read with unknown outcome is ignored.

use super::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The property name in violations.
pub const PROPERTY: &str = "list append";

/// How an append ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Acknowledged with this new length.
    Acked(i64),
    Unknown,
    Failed,
}

struct Append<'a> {
    op: &'a Op,
    key: &'a str,
    value: &'a str,
    status: Status,
}

struct Read<'a> {
    op: &'a Op,
    values: &'a [String],
}

/// Checks every list key of `history` (a key with any RPUSH or LRANGE).
pub fn check(history: &History) -> Result<(), Violation> {
    let list_keys: BTreeSet<&str> =
        history.ops.iter().flat_map(|op| commands(&op.kind)).filter(|c| is_list_cmd(c)).map(OpKind::key).collect();
    let mut keys: BTreeMap<&str, (Vec<Append>, Vec<Read>)> = BTreeMap::new();
    for op in &history.ops {
        if commands(&op.kind).iter().any(|c| list_keys.contains(c.key())) {
            flatten(op, &mut keys)?;
        }
    }
    let mut appended: HashMap<&str, &Append> = HashMap::new();
    for a in keys.values().flat_map(|(appends, _)| appends) {
        if let Some(first) = appended.insert(a.value, a) {
            let detail = format!("value {:?} appended twice: the workload must append unique values", a.value);
            return Err(violation(detail, [first.op, a.op]));
        }
    }
    for (key, (appends, reads)) in &keys {
        check_key(key, appends, reads, &appended)?;
    }
    Ok(())
}

/// The commands of an op: a transaction's, or the op itself.
fn commands(kind: &OpKind) -> Vec<&OpKind> {
    match kind {
        OpKind::Multi(cmds) => cmds.iter().collect(),
        single => vec![single],
    }
}

fn is_list_cmd(cmd: &OpKind) -> bool {
    matches!(cmd, OpKind::RPush { .. } | OpKind::LRange { .. })
}

fn violation<'a>(detail: String, ops: impl IntoIterator<Item = &'a Op>) -> Violation {
    let mut ops: Vec<Op> = ops.into_iter().cloned().collect();
    ops.sort_by_key(|op| op.id);
    ops.dedup_by_key(|op| op.id);
    Violation { property: PROPERTY, detail, ops }
}

/// Splits `op` into appends and reads by key (a transaction's commands separately, all with the
/// transaction's times).
fn flatten<'a>(op: &'a Op, keys: &mut BTreeMap<&'a str, (Vec<Append<'a>>, Vec<Read<'a>>)>) -> Result<(), Violation> {
    let cmds = commands(&op.kind);
    // Per command: Some(Some(reply)), Some(None) when the whole op failed, None when unknown.
    let replies: Option<Vec<Option<&Reply>>> = match (&op.outcome, &op.kind) {
        (Outcome::Ok(Reply::Multi(rs)), OpKind::Multi(_)) if rs.len() == cmds.len() => {
            Some(rs.iter().map(Some).collect())
        }
        (Outcome::Ok(Reply::Error(_) | Reply::Nil), OpKind::Multi(_)) | (Outcome::Failed(_), _) => {
            Some(vec![None; cmds.len()])
        }
        (Outcome::Ok(r), OpKind::Multi(_)) => {
            return Err(violation(format!("EXEC reply {r:?} does not match its commands"), [op]));
        }
        (Outcome::Ok(r), _) => Some(vec![Some(r)]),
        (Outcome::Unknown(_), _) => None,
    };
    for (i, cmd) in cmds.into_iter().enumerate() {
        let reply = replies.as_ref().map(|r| r[i]);
        let entry = keys.entry(cmd.key()).or_default();
        match (cmd, reply) {
            (OpKind::RPush { key, value }, reply) => {
                let status = match reply {
                    None => Status::Unknown,
                    Some(Some(Reply::Int(n))) => Status::Acked(*n),
                    Some(None | Some(Reply::Error(_))) => Status::Failed,
                    Some(Some(r)) => return Err(violation(format!("RPUSH answered {r:?}"), [op])),
                };
                entry.0.push(Append { op, key, value, status });
            }
            (OpKind::LRange { .. }, Some(Some(Reply::List(values)))) => entry.1.push(Read { op, values }),
            (OpKind::LRange { .. }, None | Some(None | Some(Reply::Error(_)))) => {}
            (OpKind::LRange { .. }, Some(Some(r))) => {
                return Err(violation(format!("LRANGE answered {r:?}"), [op]));
            }
            (other, _) => {
                let detail = format!("{other} on list key {:?}: list keys get only RPUSH and LRANGE", other.key());
                return Err(violation(detail, [op]));
            }
        }
    }
    Ok(())
}

/// All checks for one key; `appended` maps every appended value (any key) to its append.
fn check_key(
    key: &str,
    appends: &[Append],
    reads: &[Read],
    appended: &HashMap<&str, &Append>,
) -> Result<(), Violation> {
    for read in reads {
        check_read_values(key, read, appended)?;
    }
    let Some(longest) = reads.iter().max_by_key(|r| (r.values.len(), std::cmp::Reverse(r.op.id))) else {
        return check_append_replies(key, appends, &HashMap::new(), 0);
    };
    for read in reads {
        if longest.values[..read.values.len()] != *read.values {
            let detail = format!("key {key:?}: two reads are not prefixes of one order");
            return Err(violation(detail, [longest.op, read.op]));
        }
    }
    // Every read is a prefix of `longest`: it holds a value iff the value's position is below
    // its length.
    let pos: HashMap<&str, usize> = longest.values.iter().enumerate().map(|(i, v)| (v.as_str(), i)).collect();
    check_real_time(key, appends, reads, &pos)?;
    check_append_replies(key, appends, &pos, longest.values.len())
}

/// No duplicate, no value foreign to the key, failed, or appended only after the read ended.
fn check_read_values(key: &str, read: &Read, appended: &HashMap<&str, &Append>) -> Result<(), Violation> {
    let mut seen = HashMap::new();
    for value in read.values {
        if seen.insert(value.as_str(), ()).is_some() {
            return Err(violation(format!("key {key:?}: value {value:?} appears twice in one read"), [read.op]));
        }
        let Some(a) = appended.get(value.as_str()).filter(|a| a.key == key) else {
            return Err(violation(format!("key {key:?}: read a value {value:?} never appended to it"), [read.op]));
        };
        let problem = if a.status == Status::Failed {
            "whose append failed"
        } else if a.op.invoke_ns > read.op.complete_ns {
            "appended only after the read ended"
        } else {
            continue;
        };
        return Err(violation(format!("key {key:?}: read value {value:?} {problem}"), [a.op, read.op]));
    }
    Ok(())
}

/// Reads contain every append acknowledged before they started, and never shrink over time.
fn check_real_time(key: &str, appends: &[Append], reads: &[Read], pos: &HashMap<&str, usize>) -> Result<(), Violation> {
    for read in reads {
        for a in appends {
            let acked_before = matches!(a.status, Status::Acked(_)) && a.op.complete_ns < read.op.invoke_ns;
            if acked_before && pos.get(a.value).is_none_or(|&i| i >= read.values.len()) {
                let detail = format!(
                    "key {key:?}: acknowledged append of {:?} missing from a read that started after it",
                    a.value
                );
                return Err(violation(detail, [a.op, read.op]));
            }
        }
    }
    // A read that started after the longest read so far ended must be at least as long.
    let mut by_end: Vec<&Read> = reads.iter().collect();
    by_end.sort_by_key(|r| r.op.complete_ns);
    for read in reads {
        let before = by_end.iter().take_while(|r| r.op.complete_ns < read.op.invoke_ns);
        if let Some(earlier) = before.max_by_key(|r| r.values.len()) {
            if earlier.values.len() > read.values.len() {
                let detail = format!("key {key:?}: a read lost values an earlier read had seen (stale read)");
                return Err(violation(detail, [earlier.op, read.op]));
            }
        }
    }
    Ok(())
}

/// An acknowledged append's reply is its 1-based position in the order (`pos`, of `len`
/// values) when the order is long enough to hold it, unique, and grows with real time.
fn check_append_replies(
    key: &str,
    appends: &[Append],
    pos: &HashMap<&str, usize>,
    len: usize,
) -> Result<(), Violation> {
    let acked: Vec<(&Append, i64)> = appends
        .iter()
        .filter_map(|a| match a.status {
            Status::Acked(n) => Some((a, n)),
            _ => None,
        })
        .collect();
    for &(a, n) in &acked {
        let pos = pos.get(a.value).copied();
        let fits = match pos {
            Some(i) => i as i64 + 1 == n,
            None => n > len as i64,
        };
        if !fits {
            let detail = format!(
                "key {key:?}: RPUSH of {:?} answered length {n} but the reads place it at {:?} (1-based) in an order of {}",
                a.value,
                pos.map(|i| i + 1),
                len
            );
            return Err(violation(detail, [a.op]));
        }
    }
    for &(a, n) in &acked {
        for &(b, m) in &acked {
            if a.op.id != b.op.id && (n == m || (a.op.complete_ns < b.op.invoke_ns && n > m)) {
                let detail = format!(
                    "key {key:?}: RPUSH of {:?} answered {n} and RPUSH of {:?} (sent later or concurrently) {m}",
                    a.value, b.value
                );
                return Err(violation(detail, [a.op, b.op]));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
