//! Commands that pop from one list and push to another or pop from the first non-empty of
//! several: LMOVE, RPOPLPUSH, LMPOP (their blocking forms are in `blocking`).

use super::{reply, side};
use crate::cmd::args::{self, err, is, syntax};
use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use crate::store::notify;
use bytes::Bytes;

pub(super) fn lmove(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply((|| {
        let (from_left, to_left) = (side(&argv[3])?, side(&argv[4])?);
        move_one(ctx, &argv[1], &argv[2], from_left, to_left)
    })())
}

pub(super) fn rpoplpush(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(move_one(ctx, &argv[1], &argv[2], false, true))
}

/// Pops one element from `src` and pushes it onto `dst` (which may be the same list: a
/// rotation). Null when `src` is absent; WRONGTYPE when either key holds something else.
pub(super) fn move_one(
    ctx: &mut WriteCtx,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
) -> Result<Frame, Frame> {
    if ctx.get_list(src)?.is_none() {
        return Ok(Frame::Null);
    }
    ctx.get_list(dst)?;
    let Some(item) = ctx.list_mut(src, false)?.and_then(|l| l.pop(from_left)) else { return Ok(Frame::Null) };
    if let Some(l) = ctx.list_mut(dst, true)? {
        l.push(to_left, item.clone());
    }
    // Redis's order: the push, then the pop, then the source's deletion.
    ctx.notify(notify::LIST, if to_left { "lpush" } else { "rpush" }, dst);
    ctx.notify(notify::LIST, if from_left { "lpop" } else { "rpop" }, src);
    // After the push: when src == dst the list must not vanish in between.
    ctx.remove_if_empty(src);
    Ok(Frame::Bulk(item))
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`: pops up to `count` elements from
/// the first non-empty list and replies `[key, [elements]]`, or a null array.
pub(super) fn lmpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(lmpop_inner(ctx, argv))
}

/// What LMPOP's arguments ask for: the range of key arguments, the side, the count.
pub(super) struct MpopArgs {
    pub keys: std::ops::Range<usize>,
    pub left: bool,
    pub count: i64,
}

/// Parses `CMD numkeys key... LEFT|RIGHT [COUNT n]` (numkeys at `argv[1]`) in Redis's order.
pub(super) fn lmpop_parse(argv: &[Bytes]) -> Result<MpopArgs, Frame> {
    let numkeys =
        args::int(&argv[1]).ok().filter(|n| *n >= 1).ok_or_else(|| err("ERR numkeys should be greater than 0"))?;
    let where_at = (numkeys as u64).saturating_add(2);
    let Some(where_arg) = argv.get(usize::try_from(where_at).unwrap_or(usize::MAX)) else { return Err(syntax()) };
    let left = side(where_arg)?;
    let mut count = None;
    let mut i = where_at as usize + 1;
    while i < argv.len() {
        match argv.get(i + 1) {
            Some(value) if count.is_none() && is(&argv[i], "count") => {
                let n = args::int(value).ok().filter(|n| *n >= 1);
                count = Some(n.ok_or_else(|| err("ERR count should be greater than 0"))?);
            }
            _ => return Err(syntax()),
        }
        i += 2;
    }
    Ok(MpopArgs { keys: 2..where_at as usize, left, count: count.unwrap_or(1) })
}

pub(super) fn lmpop_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let MpopArgs { keys, left, count } = lmpop_parse(argv)?;
    for key in &argv[keys] {
        let len = match ctx.get_list(key)? {
            Some(l) if !l.is_empty() => l.len(),
            _ => continue,
        };
        let n = (count as u64).min(len as u64) as usize;
        let Some(l) = ctx.list_mut(key, false)? else { continue };
        let popped: Vec<Frame> = (0..n).filter_map(|_| l.pop(left)).map(Frame::Bulk).collect();
        ctx.notify(notify::LIST, if left { "lpop" } else { "rpop" }, key);
        ctx.remove_if_empty(key);
        return Ok(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(popped)]));
    }
    Ok(Frame::NullArray)
}
