//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM here; LPOS in [`pos`]; LMOVE, RPOPLPUSH, LMPOP in [`moves`]; the
//! blocking forms (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP) in [`blocking`]. The value type
//! lives in `crate::store::list`.

mod blocking;
mod moves;
mod pos;

pub use blocking::BLOCKING;
pub(crate) use blocking::{all_but_last, last_arg_timeout, numkeys_keys};

use super::args::{self, err, is, syntax, wrong_arity};
use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::{notify, own_small};
use bytes::Bytes;

const WDF: &[&str] = &["write", "denyoom", "fast"];
const WF: &[&str] = &["write", "fast"];
const WD: &[&str] = &["write", "denyoom"];
const W: &[&str] = &["write"];
const RF: &[&str] = &["readonly", "fast"];
const R: &[&str] = &["readonly"];
const WNB: &[&str] = &["write", "noscript", "blocking"];
const WDNB: &[&str] = &["write", "denyoom", "noscript", "blocking"];
const K: (i32, i32, i32) = (1, 1, 1);

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, WDF, K, Kind::Write(lpush)),
    CommandSpec::new("rpush", -3, WDF, K, Kind::Write(rpush)),
    CommandSpec::new("lpushx", -3, WDF, K, Kind::Write(lpushx)),
    CommandSpec::new("rpushx", -3, WDF, K, Kind::Write(rpushx)),
    CommandSpec::new("lpop", -2, WF, K, Kind::Write(lpop)),
    CommandSpec::new("rpop", -2, WF, K, Kind::Write(rpop)),
    CommandSpec::new("llen", 2, RF, K, Kind::Read(llen)),
    CommandSpec::new("lrange", 4, R, K, Kind::Read(lrange)),
    CommandSpec::new("lindex", 3, R, K, Kind::Read(lindex)),
    CommandSpec::new("lset", 4, WD, K, Kind::Write(lset)),
    CommandSpec::new("linsert", 5, WD, K, Kind::Write(linsert)),
    CommandSpec::new("lrem", 4, W, K, Kind::Write(lrem)),
    CommandSpec::new("ltrim", 4, W, K, Kind::Write(ltrim)),
    CommandSpec::new("lpos", -3, R, K, Kind::Read(pos::lpos)),
    CommandSpec::new("lmove", 5, WD, (1, 2, 1), Kind::Write(moves::lmove)),
    CommandSpec::new("rpoplpush", 3, WD, (1, 2, 1), Kind::Write(moves::rpoplpush)),
    CommandSpec::new("lmpop", -4, &["write", "movablekeys"], (0, 0, 0), Kind::Write(moves::lmpop)),
    CommandSpec::new("blpop", -3, WNB, (1, -2, 1), Kind::Write(blocking::blpop)),
    CommandSpec::new("brpop", -3, WNB, (1, -2, 1), Kind::Write(blocking::brpop)),
    CommandSpec::new("brpoplpush", 4, WDNB, (1, 2, 1), Kind::Write(blocking::brpoplpush)),
    CommandSpec::new("blmove", 6, WDNB, (1, 2, 1), Kind::Write(blocking::blmove)),
    CommandSpec::new("blmpop", -5, &["write", "blocking", "movablekeys"], (0, 0, 0), Kind::Write(blocking::blmpop)),
];

/// Turns a handler's `Result` into its reply (the error is a reply too).
fn reply(r: Result<Frame, Frame>) -> Frame {
    r.unwrap_or_else(|e| e)
}

fn bulks<'a>(items: impl Iterator<Item = &'a Bytes>) -> Frame {
    Frame::Array(items.map(|b| Frame::Bulk(b.clone())).collect())
}

/// `LEFT` (true) or `RIGHT` (false), case-insensitively; a syntax error otherwise.
fn side(arg: &[u8]) -> Result<bool, Frame> {
    match () {
        _ if is(arg, "left") => Ok(true),
        _ if is(arg, "right") => Ok(false),
        _ => Err(syntax()),
    }
}

fn lpush(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(push(ctx, argv, true, true))
}

fn rpush(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(push(ctx, argv, false, true))
}

fn lpushx(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(push(ctx, argv, true, false))
}

fn rpushx(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(push(ctx, argv, false, false))
}

/// Pushes `argv[2..]` one by one; `create` is false for the X variants (0 when absent).
fn push(ctx: &mut WriteCtx, argv: &[Bytes], left: bool, create: bool) -> Result<Frame, Frame> {
    if !create && ctx.get_list(&argv[1])?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let Some(l) = ctx.list_mut(&argv[1], true)? else { return Ok(Frame::Integer(0)) };
    for item in &argv[2..] {
        l.push(left, item.clone());
    }
    let len = l.len();
    ctx.notify(notify::LIST, if left { "lpush" } else { "rpush" }, &argv[1]);
    Ok(Frame::Integer(len as i64))
}

fn lpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(pop(ctx, argv, true))
}

fn rpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(pop(ctx, argv, false))
}

/// `LPOP key [count]`: one bulk without a count, an array with one (null array when the
/// key is absent).
fn pop(ctx: &mut WriteCtx, argv: &[Bytes], left: bool) -> Result<Frame, Frame> {
    let name = if left { "lpop" } else { "rpop" };
    if argv.len() > 3 {
        return Err(wrong_arity(name));
    }
    let count = match argv.get(2) {
        Some(a) => Some(args::int(a).ok().filter(|n| *n >= 0).ok_or_else(|| err(POSITIVE))?),
        None => None,
    };
    let len = match ctx.get_list(&argv[1])? {
        Some(l) => l.len(),
        None => return Ok(if count.is_some() { Frame::NullArray } else { Frame::Null }),
    };
    if count == Some(0) {
        return Ok(Frame::Array(Vec::new()));
    }
    let n = count.map_or(1, |c| (c as u64).min(len as u64) as usize);
    let Some(l) = ctx.list_mut(&argv[1], false)? else { return Ok(Frame::Null) };
    let popped: Vec<Frame> = (0..n).filter_map(|_| l.pop(left)).map(Frame::Bulk).collect();
    ctx.notify(notify::LIST, name, &argv[1]);
    ctx.remove_if_empty(&argv[1]);
    Ok(match count {
        Some(_) => Frame::Array(popped),
        None => popped.into_iter().next().unwrap_or(Frame::Null),
    })
}

const POSITIVE: &str = "ERR value is out of range, must be positive";

fn llen(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_list(&argv[1]) {
        Ok(l) => Frame::Integer(l.map_or(0, |l| l.len()) as i64),
        Err(e) => e,
    }
}

fn lrange(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    reply((|| {
        let (start, stop) = (args::int(&argv[2])?, args::int(&argv[3])?);
        let Some(l) = ctx.get_list(&argv[1])? else { return Ok(Frame::Array(Vec::new())) };
        Ok(match l.range(start, stop) {
            Some((a, b)) => bulks(l.items.range(a..=b)),
            None => Frame::Array(Vec::new()),
        })
    })())
}

fn lindex(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    reply((|| {
        let Some(l) = ctx.get_list(&argv[1])? else { return Ok(Frame::Null) };
        let index = args::int(&argv[2])?;
        Ok(l.position(index).and_then(|i| l.items.get(i)).map_or(Frame::Null, |v| Frame::Bulk(v.clone())))
    })())
}

fn lset(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply((|| {
        let Some(l) = ctx.get_list(&argv[1])? else { return Err(err(args::NO_SUCH_KEY)) };
        let index = args::int(&argv[2])?;
        let i = l.position(index).ok_or_else(|| err(args::OUT_OF_RANGE))?;
        if let Some(slot) = ctx.list_mut(&argv[1], false)?.and_then(|l| l.items.get_mut(i)) {
            *slot = own_small(argv[3].clone());
        }
        ctx.notify(notify::LIST, "lset", &argv[1]);
        Ok(Frame::ok())
    })())
}

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 without the pivot.
fn linsert(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply((|| {
        let after = match () {
            _ if is(&argv[2], "after") => true,
            _ if is(&argv[2], "before") => false,
            _ => return Err(syntax()),
        };
        let Some(l) = ctx.get_list(&argv[1])? else { return Ok(Frame::Integer(0)) };
        let Some(i) = l.items.iter().position(|x| *x == argv[3]) else { return Ok(Frame::Integer(-1)) };
        let Some(l) = ctx.list_mut(&argv[1], false)? else { return Ok(Frame::Integer(0)) };
        l.items.insert(i + after as usize, own_small(argv[4].clone()));
        let len = l.len();
        ctx.notify(notify::LIST, "linsert", &argv[1]);
        Ok(Frame::Integer(len as i64))
    })())
}

/// `LREM key count element`: count > 0 from the head, < 0 from the tail, 0 all.
fn lrem(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply((|| {
        let count = args::int(&argv[2])?;
        let Some(l) = ctx.get_list(&argv[1])? else { return Ok(Frame::Integer(0)) };
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs().min(usize::MAX as u64) as usize };
        let mut hits: Vec<usize> = if count < 0 {
            l.items.iter().enumerate().rev().filter(|(_, x)| **x == argv[3]).map(|(i, _)| i).take(limit).collect()
        } else {
            l.items.iter().enumerate().filter(|(_, x)| **x == argv[3]).map(|(i, _)| i).take(limit).collect()
        };
        if hits.is_empty() {
            return Ok(Frame::Integer(0));
        }
        hits.sort_unstable();
        let Some(l) = ctx.list_mut(&argv[1], false)? else { return Ok(Frame::Integer(0)) };
        let mut i = 0;
        l.items.retain(|_| {
            let keep = hits.binary_search(&i).is_err();
            i += 1;
            keep
        });
        ctx.notify(notify::LIST, "lrem", &argv[1]);
        ctx.remove_if_empty(&argv[1]);
        Ok(Frame::Integer(hits.len() as i64))
    })())
}

fn ltrim(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply((|| {
        let (start, stop) = (args::int(&argv[2])?, args::int(&argv[3])?);
        let Some(l) = ctx.get_list(&argv[1])? else { return Ok(Frame::ok()) };
        // No shortcut when nothing is trimmed: Redis still counts it as a change (WATCH).
        let keep = l.range(start, stop);
        if let Some(l) = ctx.list_mut(&argv[1], false)? {
            match keep {
                Some((a, b)) => {
                    l.items.truncate(b + 1);
                    l.items.drain(..a);
                }
                None => l.items.clear(),
            }
        }
        ctx.notify(notify::LIST, "ltrim", &argv[1]);
        ctx.remove_if_empty(&argv[1]);
        Ok(Frame::ok())
    })())
}
