//! Builders for hand-made histories in the checkers' unit tests.

use crate::history::{History, Op, OpKind, Outcome, Reply};

pub fn get(k: &str) -> OpKind {
    OpKind::Get { key: k.into() }
}
pub fn set(k: &str, v: &str) -> OpKind {
    OpKind::Set { key: k.into(), value: v.into() }
}
pub fn incr(k: &str) -> OpKind {
    incrby(k, 1)
}
pub fn incrby(k: &str, by: i64) -> OpKind {
    OpKind::Incr { key: k.into(), by }
}
pub fn del(k: &str) -> OpKind {
    OpKind::Del { key: k.into() }
}
pub fn append(k: &str, v: &str) -> OpKind {
    OpKind::Append { key: k.into(), value: v.into() }
}
pub fn rpush(k: &str, v: &str) -> OpKind {
    OpKind::RPush { key: k.into(), value: v.into() }
}
pub fn lrange(k: &str) -> OpKind {
    OpKind::LRange { key: k.into() }
}
pub fn s(v: &str) -> Reply {
    Reply::Str(v.into())
}
pub fn list(vs: &[&str]) -> Reply {
    Reply::List(vs.iter().map(|v| v.to_string()).collect())
}

/// An op answered with `reply`, running from `t0` to `t1`.
pub fn ok(kind: OpKind, t0: u64, t1: u64, reply: Reply) -> Op {
    op(kind, t0, t1, Outcome::Ok(reply))
}
/// An op that definitely did not take effect.
pub fn failed(kind: OpKind, t0: u64, t1: u64) -> Op {
    op(kind, t0, t1, Outcome::Failed("CLUSTERDOWN".into()))
}
/// An op whose outcome is unknown (timed out at `t1`).
pub fn unknown(kind: OpKind, t0: u64, t1: u64) -> Op {
    op(kind, t0, t1, Outcome::Unknown("timeout".into()))
}
/// An op still pending when the run ended.
pub fn pending(kind: OpKind, t0: u64) -> Op {
    op(kind, t0, u64::MAX, Outcome::Unknown("pending".into()))
}

fn op(kind: OpKind, invoke_ns: u64, complete_ns: u64, outcome: Outcome) -> Op {
    Op { id: 0, client: 0, node: 1, kind, invoke_ns, complete_ns, outcome }
}

/// A history of `ops` in invocation order, each on a client of its own, ids assigned.
pub fn hist(mut ops: Vec<Op>) -> History {
    ops.sort_by_key(|op| op.invoke_ns);
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i;
        op.client = i as u32;
    }
    History { ops }
}
