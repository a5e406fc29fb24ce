//! Set algebra: SINTER (and SMEMBERS, which Redis 7.0 runs as a one-key SINTER), SINTERCARD,
//! SUNION, SDIFF and their STORE variants. Every key is type-checked before anything is
//! computed, as Redis does; a missing key is an empty set. Stored results are built afresh,
//! so they take the compact intset form whenever their members allow it.

use super::{set_at, set_reply};
use crate::cmd::args::{self, err, is, syntax};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::set::SetValue;
use crate::store::{Keyspace, Value};
use bytes::Bytes;

/// The sets at `keys` (None for a missing key), or WRONGTYPE if any key holds something else.
fn gather<'a>(ks: &'a Keyspace, db: usize, now_ms: u64, keys: &[Bytes]) -> Result<Vec<Option<&'a SetValue>>, Frame> {
    keys.iter().map(|k| set_at(ks, db, now_ms, k)).collect()
}

/// Members common to all `sets`, in the order of the smallest one; at most `limit` of them
/// when `limit` is not 0.
fn inter(sets: &[Option<&SetValue>], limit: usize) -> Vec<Bytes> {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&SetValue>>>() else { return Vec::new() };
    // Walk the smallest set (stable sort: ties keep key order, so the result is deterministic).
    sets.sort_by_key(|s| s.len());
    let Some((first, rest)) = sets.split_first() else { return Vec::new() };
    let mut out = Vec::new();
    for m in first.iter() {
        if rest.iter().all(|s| s.contains(&m)) {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    out
}

fn union(sets: &[Option<&SetValue>]) -> SetValue {
    sets.iter().flatten().flat_map(|s| s.iter()).collect()
}

/// Members of the first set that are in none of the others.
fn diff(sets: &[Option<&SetValue>]) -> SetValue {
    let Some((Some(first), rest)) = sets.split_first() else { return SetValue::new() };
    first.iter().filter(|m| !rest.iter().flatten().any(|s| s.contains(m))).collect()
}

/// Stores `result` at `dst` (replacing any value and TTL) or deletes `dst` when it is empty;
/// replies with the result's size.
fn store(ctx: &mut WriteCtx, dst: &Bytes, result: SetValue, event: &'static str) -> Frame {
    let n = result.len();
    if n == 0 {
        ctx.delete(dst);
    } else {
        ctx.set(dst.clone(), Value::Set(Box::new(result)), None);
        ctx.notify(notify::SET, event, dst);
    }
    Frame::Integer(n as i64)
}

/// SINTER key [key ...], and SMEMBERS key.
pub(super) fn sinter(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let sets = gather(ctx.ks, ctx.db, ctx.now_ms, &argv[1..])?;
    Ok(set_reply(inter(&sets, 0)))
}

pub(super) fn sinterstore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let sets = gather(ctx.ks, ctx.db, ctx.now_ms, &argv[2..])?;
    let result = SetValue::from_members(inter(&sets, 0));
    Ok(store(ctx, &argv[1], result, "sinterstore"))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub(super) fn sintercard(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let numkeys =
        args::int(&argv[1]).ok().filter(|n| *n > 0).ok_or_else(|| err("ERR numkeys should be greater than 0"))? as u64;
    let keys_end = match usize::try_from(numkeys).ok().and_then(|n| n.checked_add(2)) {
        Some(end) if end <= argv.len() => end,
        _ => return Err(err("ERR Number of keys can't be greater than number of args")),
    };
    let mut limit = 0;
    let mut i = keys_end;
    while i < argv.len() {
        match argv.get(i + 1) {
            Some(value) if is(&argv[i], "limit") => {
                limit = args::int(value)
                    .ok()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| err("ERR LIMIT can't be negative"))?;
            }
            _ => return Err(syntax()),
        }
        i += 2;
    }
    let sets = gather(ctx.ks, ctx.db, ctx.now_ms, &argv[2..keys_end])?;
    Ok(Frame::Integer(inter(&sets, limit).len() as i64))
}

pub(super) fn sunion(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let sets = gather(ctx.ks, ctx.db, ctx.now_ms, &argv[1..])?;
    Ok(set_reply(union(&sets).iter()))
}

pub(super) fn sunionstore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let sets = gather(ctx.ks, ctx.db, ctx.now_ms, &argv[2..])?;
    let result = union(&sets);
    Ok(store(ctx, &argv[1], result, "sunionstore"))
}

pub(super) fn sdiff(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let sets = gather(ctx.ks, ctx.db, ctx.now_ms, &argv[1..])?;
    Ok(set_reply(diff(&sets).iter()))
}

pub(super) fn sdiffstore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let sets = gather(ctx.ks, ctx.db, ctx.now_ms, &argv[2..])?;
    let result = diff(&sets);
    Ok(store(ctx, &argv[1], result, "sdiffstore"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(members: &[&str]) -> SetValue {
        members.iter().map(|m| Bytes::from(m.to_string())).collect()
    }

    fn sorted(v: impl IntoIterator<Item = Bytes>) -> Vec<Bytes> {
        let mut v: Vec<Bytes> = v.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn algebra() {
        let (a, b) = (set(&["1", "2", "x"]), set(&["2", "x", "y"]));
        let both = [Some(&a), Some(&b)];
        assert_eq!(sorted(inter(&both, 0)), vec![Bytes::from("2"), Bytes::from("x")]);
        assert_eq!(inter(&both, 1).len(), 1);
        assert!(inter(&[Some(&a), None], 0).is_empty());
        assert_eq!(union(&both).len(), 4);
        assert_eq!(sorted(diff(&both).iter()), vec![Bytes::from("1")]);
        assert_eq!(diff(&[Some(&a), None]).len(), 3);
        assert!(diff(&[None, Some(&a)]).is_empty());
        assert_eq!(diff(&[Some(&a), Some(&b)]).encoding(), "intset", "fresh result is compact");
    }
}
