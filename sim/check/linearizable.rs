//! Property checked: **per-key linearizability of registers and counters** (issue 4,
//! "Checkers": "Per-key linearizability of registers and counters (Wing-Gong-Lowe search with
//! memoization, Porcupine-style)"). Every operation on a string key (GET, SET, INCR, DEL,
//! APPEND, and MULTI/EXEC of those on one key as one atomic op) must appear to take effect at
//! one instant between its invocation and its completion, in an order that a single Redis
//! would have replied to exactly as recorded.
//!
//! Operations on different keys commute, so each key is searched on its own (Porcupine's
//! partitioning). Keys used as lists (any RPUSH or LRANGE) are left to `lists.rs`.
//!
//! Outcomes: a failed op, or one answered with an error reply, took no effect and is left out
//! (raftis promises that an error means "not applied"). An unknown-outcome read is left out
//! (it observed nothing). An unknown-outcome write may take effect at any instant after its
//! invocation, or never; its reply is not checked.

use super::wgl::{self, Event, Model};
use super::Violation;
use crate::history::{History, Op, OpKind, Outcome, Reply};

/// The property name in violations.
pub const PROPERTY: &str = "linearizable register";

/// Search steps allowed per key before the check gives up on that key: about 3 s in a debug
/// build. Linearizable histories of hundreds of ops per key need far fewer (the search finds
/// an order quickly); proving a violation means exploring every order up to it, which many
/// unknown-outcome writes can make too large (see docs/SIMULATION.md, "Checkers").
pub const DEFAULT_BUDGET: u64 = 1_000_000;

/// The result for one key that could not be decided within the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconclusive {
    pub key: String,
    pub ops: usize,
}

/// Checks every register key of `history`. Returns the keys whose search ran out of budget
/// (they are neither accepted nor rejected; the caller reports them).
pub fn check(history: &History, budget: u64) -> Result<Vec<Inconclusive>, Violation> {
    let mut inconclusive = Vec::new();
    for key in history.keys() {
        let ops: Vec<&Op> = history.for_key(&key).collect();
        if ops.iter().any(|op| is_list_op(&op.kind)) {
            continue;
        }
        if let Some(n) = check_key(&key, &ops, budget)? {
            inconclusive.push(Inconclusive { key, ops: n });
        }
    }
    Ok(inconclusive)
}

/// Whether the op (or a command of the transaction) belongs to a key another checker judges:
/// lists, queues and streams (`lists.rs`, `queues.rs`, `streams.rs`), keys with a TTL
/// (`expiry.rs`) and HyperLogLogs (`hll.rs`).
pub fn is_list_op(kind: &OpKind) -> bool {
    match kind {
        OpKind::RPush { .. } | OpKind::LRange { .. } => true,
        OpKind::QPush { .. } | OpKind::BPop { .. } | OpKind::QRange { .. } => true,
        OpKind::XAdd { .. }
        | OpKind::XGroupCreate { .. }
        | OpKind::XReadGroup { .. }
        | OpKind::XAck { .. }
        | OpKind::XRangeAll { .. }
        | OpKind::XPendingAll { .. } => true,
        OpKind::RestoreTtl { .. } | OpKind::Pttl { .. } | OpKind::PfAdd { .. } | OpKind::PfCount { .. } => true,
        OpKind::Multi(cmds) => cmds.iter().any(is_list_op),
        _ => false,
    }
}

/// One operation as the model sees it: its commands and, if known, their replies.
#[derive(PartialEq)]
pub struct RegOp {
    cmds: Vec<OpKind>,
    /// One per command; `None` when the outcome is unknown.
    replies: Option<Vec<Reply>>,
}

/// Turns a recorded op into a search event, or `None` if it cannot matter (no effect, or an
/// unknown read).
fn event(op: &Op) -> Option<Event<RegOp>> {
    let cmds = match &op.kind {
        OpKind::Multi(cmds) => cmds.clone(),
        single => vec![single.clone()],
    };
    let replies = match (&op.outcome, &op.kind) {
        (Outcome::Failed(_), _) | (Outcome::Ok(Reply::Error(_)), _) => return None,
        (Outcome::Unknown(_), kind) if !kind.is_write() => return None,
        (Outcome::Unknown(_), _) => None,
        // EXEC answered nil: the transaction was discarded.
        (Outcome::Ok(Reply::Nil), OpKind::Multi(_)) => return None,
        (Outcome::Ok(Reply::Multi(replies)), OpKind::Multi(_)) => Some(replies.clone()),
        (Outcome::Ok(reply), _) => Some(vec![reply.clone()]),
    };
    let complete = replies.as_ref().map(|_| op.complete_ns);
    Some(Event { op: RegOp { cmds, replies }, invoke: op.invoke_ns, complete })
}

/// A single Redis string key: `None` when the key does not exist.
pub struct Register;

impl Model for Register {
    type State = Option<String>;
    type Op = RegOp;

    fn step(&self, state: &Option<String>, op: &RegOp) -> Option<Option<String>> {
        if op.replies.as_ref().is_some_and(|r| r.len() != op.cmds.len()) {
            return None;
        }
        let mut state = state.clone();
        for (i, cmd) in op.cmds.iter().enumerate() {
            let reply = op.replies.as_ref().map(|r| &r[i]);
            state = apply(state, cmd, reply)?;
        }
        Some(state)
    }
}

/// One command on `state`: the new state, or `None` if `reply` (when known) cannot be what a
/// Redis holding `state` answers. An error reply means the command had no effect.
fn apply(state: Option<String>, cmd: &OpKind, reply: Option<&Reply>) -> Option<Option<String>> {
    if let Some(Reply::Error(_)) = reply {
        return Some(state);
    }
    let (next, expected) = match cmd {
        OpKind::Get { .. } => {
            let r = state.clone().map_or(Reply::Nil, Reply::Str);
            (state, r)
        }
        OpKind::Set { value, .. } => (Some(value.clone()), Reply::Ok),
        OpKind::Del { .. } => {
            let r = Reply::Int(i64::from(state.is_some()));
            (None, r)
        }
        OpKind::Append { value, .. } => {
            let v = state.unwrap_or_default() + value;
            let r = Reply::Int(v.len() as i64);
            (Some(v), r)
        }
        OpKind::Incr { by, .. } | OpKind::ScriptIncr { by, .. } => match incremented(state.as_deref(), *by) {
            Some(n) => (Some(n.to_string()), Reply::Int(n)),
            // Not an integer (or overflow): Redis errors and changes nothing; a known reply
            // other than an error (handled above) is impossible.
            None => return if reply.is_none() { Some(state) } else { None },
        },
        // Lists and nested transactions are not register commands.
        OpKind::RPush { .. } | OpKind::LRange { .. } | OpKind::Multi(_) => return None,
        OpKind::QPush { .. } | OpKind::BPop { .. } | OpKind::QRange { .. } => return None,
        OpKind::XAdd { .. }
        | OpKind::XGroupCreate { .. }
        | OpKind::XReadGroup { .. }
        | OpKind::XAck { .. }
        | OpKind::XRangeAll { .. }
        | OpKind::XPendingAll { .. } => return None,
        OpKind::RestoreTtl { .. } | OpKind::Pttl { .. } | OpKind::PfAdd { .. } | OpKind::PfCount { .. } => return None,
    };
    match reply {
        Some(r) if *r != expected => None,
        _ => Some(next),
    }
}

/// INCRBY's result on a value (absent = 0), or `None` where Redis answers an error: not a
/// canonical 64-bit integer (Redis rejects "+1", " 1", "01", "-0"), or overflow.
fn incremented(value: Option<&str>, by: i64) -> Option<i64> {
    let Some(s) = value else { return Some(by) };
    let n: i64 = s.parse().ok()?;
    if n.to_string() != s {
        return None;
    }
    n.checked_add(by)
}

/// Checks one key's ops; `Ok(Some(n))` when the search over `n` events was inconclusive.
fn check_key(key: &str, ops: &[&Op], budget: u64) -> Result<Option<usize>, Violation> {
    let mut kept: Vec<&Op> = Vec::new();
    let mut events = Vec::new();
    for op in ops {
        if let Some(e) = event(op) {
            kept.push(op);
            events.push(e);
        }
    }
    // An unknown write invoked after every known op completed can be placed last or nowhere:
    // it cannot change the answer, so it does not enlarge the search.
    let last = events.iter().filter_map(|e| e.complete).max().unwrap_or(0);
    let keep: Vec<bool> = events.iter().map(|e| e.complete.is_some() || e.invoke <= last).collect();
    let mut i = 0;
    kept.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    let mut i = 0;
    events.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    match wgl::search(&Register, None, &events, budget) {
        wgl::Outcome::Linearizable => Ok(None),
        wgl::Outcome::Inconclusive { .. } => Ok(Some(events.len())),
        wgl::Outcome::NotLinearizable { stuck, prefix, state } => Err(violation(key, &kept, stuck, &prefix, state)),
    }
}

/// The report: the op that could not be placed, the ops concurrent with it, and the tail of
/// the longest order found before it.
fn violation(key: &str, ops: &[&Op], stuck: usize, prefix: &[usize], state: Option<String>) -> Violation {
    let Some(bad) = ops.get(stuck) else {
        let detail = format!("key {key:?}: no linearization (and no op to blame)");
        return Violation { property: PROPERTY, detail, ops: ops.iter().map(|o| (*o).clone()).collect() };
    };
    let mut ids: Vec<usize> = prefix.iter().rev().take(8).copied().collect();
    ids.push(stuck);
    for (i, op) in ops.iter().enumerate() {
        if op.invoke_ns <= bad.complete_ns && op.complete_ns >= bad.invoke_ns {
            ids.push(i);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let detail = format!(
        "key {key:?}: no order of the ops explains op #{}; the longest order found placed {} ops \
         (last ones listed), leaving the value {state:?}, from which #{} cannot reply {:?}",
        bad.id,
        prefix.len(),
        bad.id,
        bad.outcome,
    );
    Violation { property: PROPERTY, detail, ops: ids.into_iter().take(40).map(|i| ops[i].clone()).collect() }
}

#[cfg(test)]
mod tests;
