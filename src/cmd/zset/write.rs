//! Commands that add or remove members: ZADD, ZINCRBY, ZREM, ZREMRANGEBY{RANK,SCORE,LEX},
//! ZPOPMIN, ZPOPMAX, ZMPOP. Each one decides first from a read-only look whether it changes
//! anything, so a no-op leaves the key's version (WATCH) alone, as Redis does.

use super::super::args::{self, err, is, syntax};
use super::parse::{parse_lex_range, parse_score, parse_score_range};
use super::{lex_ranks, owned_reply, rank_range};
use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::zset::ZSetValue;
use bytes::Bytes;

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What ZADD does with one member, given its current score.
#[derive(Clone, Copy, PartialEq)]
enum Plan {
    /// Nothing (NX/XX/GT/LT refused it).
    Nop,
    /// Processed, score unchanged.
    Keep(f64),
    /// New or changed score.
    Set { score: f64, added: bool },
}

const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

/// Redis's `zsetAdd` decision. `Err` when INCR makes the score NaN.
fn plan(cur: Option<f64>, score: f64, f: AddFlags) -> Result<Plan, Frame> {
    let Some(cur) = cur else {
        return Ok(if f.xx { Plan::Nop } else { Plan::Set { score, added: true } });
    };
    if f.nx {
        return Ok(Plan::Nop);
    }
    let score = if f.incr { score + cur } else { score };
    if score.is_nan() {
        return Err(err(NAN_SCORE));
    }
    if (f.lt && score >= cur) || (f.gt && score <= cur) {
        return Ok(Plan::Nop);
    }
    Ok(if score != cur { Plan::Set { score, added: false } } else { Plan::Keep(score) })
}

fn parse_add(argv: &[Bytes]) -> Result<(AddFlags, Vec<(f64, Bytes)>), Frame> {
    let mut f = AddFlags::default();
    let mut i = 2;
    while let Some(a) = argv.get(i) {
        let flag = match () {
            _ if is(a, "nx") => &mut f.nx,
            _ if is(a, "xx") => &mut f.xx,
            _ if is(a, "gt") => &mut f.gt,
            _ if is(a, "lt") => &mut f.lt,
            _ if is(a, "ch") => &mut f.ch,
            _ if is(a, "incr") => &mut f.incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let rest = &argv[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(syntax());
    }
    if f.nx && f.xx {
        return Err(err("ERR XX and NX options at the same time are not compatible"));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(err("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && rest.len() > 2 {
        return Err(err("ERR INCR option supports a single increment-element pair"));
    }
    let pairs = rest
        .chunks(2)
        .map(|p| parse_score(&p[0]).map(|s| (s, p[1].clone())).ok_or_else(|| err(args::NOT_FLOAT)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((f, pairs))
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
pub fn zadd(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    add_generic(ctx, argv, AddFlags::default()).unwrap_or_else(|e| e)
}

/// ZINCRBY is ZADD INCR with one pair (Redis even reads options from the increment position).
pub fn zincrby(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    add_generic(ctx, argv, AddFlags { incr: true, ..Default::default() }).unwrap_or_else(|e| e)
}

fn add_generic(ctx: &mut WriteCtx, argv: &[Bytes], forced: AddFlags) -> Result<Frame, Frame> {
    let (mut f, pairs) = parse_add(argv)?;
    f.incr |= forced.incr;
    let key = &argv[1];
    let current = ctx.get_zset(key)?;
    if current.is_none() && f.xx {
        return Ok(add_reply(f, 0, 0, None));
    }
    // Dry run on the current value: when nothing would change, do not touch the key.
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    let repeats = !pairs.iter().all(|(_, m)| seen.insert(m.as_ref()));
    let mut dry = Vec::with_capacity(pairs.len());
    for (score, member) in &pairs {
        dry.push(plan(current.and_then(|z| z.score(member)), *score, f)?);
    }
    if !repeats && !dry.iter().any(|p| matches!(p, Plan::Set { .. })) {
        let last = dry.iter().rev().find_map(|p| if let Plan::Keep(s) = p { Some(*s) } else { None });
        return Ok(add_reply(f, 0, 0, last));
    }
    let Some(z) = ctx.zset_mut(key, true)? else { return Ok(add_reply(f, 0, 0, None)) };
    let (mut added, mut updated, mut newscore) = (0, 0, None);
    for (score, member) in pairs {
        match plan(z.score(&member), score, f)? {
            Plan::Nop => {}
            Plan::Keep(s) => newscore = Some(s),
            Plan::Set { score, added: is_new } => {
                z.insert(member, score);
                newscore = Some(score);
                if is_new {
                    added += 1;
                } else {
                    updated += 1;
                }
            }
        }
    }
    if added + updated > 0 {
        ctx.notify(notify::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    Ok(add_reply(f, added, updated, newscore))
}

fn add_reply(f: AddFlags, added: i64, updated: i64, newscore: Option<f64>) -> Frame {
    if f.incr {
        newscore.map_or(Frame::Null, Frame::Double)
    } else {
        Frame::Integer(if f.ch { added + updated } else { added })
    }
}

/// `ZREM key member [member ...]`
pub fn zrem(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let key = &argv[1];
    match ctx.get_zset(key) {
        Err(e) => return e,
        Ok(Some(z)) if argv[2..].iter().any(|m| z.score(m).is_some()) => {}
        Ok(_) => return Frame::Integer(0),
    }
    let mut removed = 0;
    if let Ok(Some(z)) = ctx.zset_mut(key, false) {
        removed = argv[2..].iter().filter(|m| z.remove(m).is_some()).count() as i64;
    }
    ctx.notify(notify::ZSET, "zrem", key);
    ctx.remove_if_empty(key);
    Frame::Integer(removed)
}

/// Removes ranks `start..end` of the zset at `key` (if any) with the keyspace event `event`
/// and deletes the key when emptied.
fn remove_ranks(ctx: &mut WriteCtx, key: &[u8], start: usize, end: usize, event: &'static str) -> Vec<(Bytes, f64)> {
    if start >= end {
        return Vec::new();
    }
    let removed = match ctx.zset_mut(key, false) {
        Ok(Some(z)) => z.remove_range(start, end),
        _ => Vec::new(),
    };
    ctx.notify(notify::ZSET, event, key);
    ctx.remove_if_empty(key);
    removed
}

/// The shared shape of ZREMRANGEBY*: parse, look up (missing key: 0), find ranks, remove.
fn remrange(
    ctx: &mut WriteCtx,
    key: &[u8],
    event: &'static str,
    ranks: impl Fn(&ZSetValue) -> Option<(usize, usize)>,
) -> Frame {
    let range = match ctx.get_zset(key) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(z)) => ranks(z),
    };
    let Some((start, end)) = range else { return Frame::Integer(0) };
    Frame::Integer(remove_ranks(ctx, key, start, end, event).len() as i64)
}

/// `ZREMRANGEBYRANK key start stop`
pub fn zremrangebyrank(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (start, end) = match (args::int(&argv[2]), args::int(&argv[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    remrange(ctx, &argv[1], "zremrangebyrank", |z| rank_range(start, end, z.len()))
}

/// `ZREMRANGEBYSCORE key min max`
pub fn zremrangebyscore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let r = match parse_score_range(&argv[2], &argv[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    remrange(ctx, &argv[1], "zremrangebyscore", |z| {
        Some((z.partition_point(|_, s| r.below_min(s)), z.partition_point(|_, s| r.within_max(s))))
    })
}

/// `ZREMRANGEBYLEX key min max`
pub fn zremrangebylex(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (min, max) = match parse_lex_range(&argv[2], &argv[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    remrange(ctx, &argv[1], "zremrangebylex", |z| Some(lex_ranks(z, &min, &max, false)))
}

/// Pops up to `count` members from the low (`max == false`) or high end.
pub(super) fn pop(ctx: &mut WriteCtx, key: &[u8], count: usize, max: bool) -> Vec<(Bytes, f64)> {
    let len = ctx.get_zset(key).ok().flatten().map_or(0, ZSetValue::len);
    let n = count.min(len);
    let event = if max { "zpopmax" } else { "zpopmin" };
    let mut items = if max { remove_ranks(ctx, key, len - n, len, event) } else { remove_ranks(ctx, key, 0, n, event) };
    if max {
        items.reverse();
    }
    items
}

/// `ZPOPMIN key [count]`
pub fn zpopmin(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    pop_command(ctx, argv, false)
}

/// `ZPOPMAX key [count]`
pub fn zpopmax(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    pop_command(ctx, argv, true)
}

fn pop_command(ctx: &mut WriteCtx, argv: &[Bytes], max: bool) -> Frame {
    if argv.len() > 3 {
        return syntax();
    }
    let count = match argv.get(2).map(|c| args::int(c)) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n as usize),
        Some(_) => return err("ERR value is out of range, must be positive"),
    };
    match ctx.get_zset(&argv[1]) {
        Err(e) => return e,
        Ok(None) => return Frame::Array(Vec::new()),
        Ok(Some(_)) => {}
    }
    if count == Some(0) {
        return Frame::Array(Vec::new());
    }
    let items = pop(ctx, &argv[1], count.unwrap_or(1), max);
    match count {
        // Without COUNT the reply is a flat pair in both protocols.
        None => Frame::Array(items.into_iter().flat_map(|(m, s)| [Frame::Bulk(m), Frame::Double(s)]).collect()),
        Some(_) => owned_reply(&items, true),
    }
}

/// What ZMPOP's arguments ask for: the key arguments, the end (max or min), the count.
pub(super) struct ZmpopArgs {
    pub keys: std::ops::Range<usize>,
    pub max: bool,
    pub count: usize,
}

/// Parses `CMD numkeys key... MIN|MAX [COUNT n]` (numkeys at `argv[1]`) in Redis's order.
pub(super) fn zmpop_parse(argv: &[Bytes]) -> Result<ZmpopArgs, Frame> {
    let numkeys = match args::int(&argv[1]) {
        Ok(n) if n >= 1 => n as usize,
        _ => return Err(err("ERR numkeys should be greater than 0")),
    };
    let Some(where_at) = numkeys.checked_add(2).filter(|&w| w < argv.len()) else { return Err(syntax()) };
    let max = match &argv[where_at] {
        w if is(w, "min") => false,
        w if is(w, "max") => true,
        _ => return Err(syntax()),
    };
    let mut count = None;
    let mut i = where_at + 1;
    while i < argv.len() {
        match argv.get(i + 1) {
            Some(n) if count.is_none() && is(&argv[i], "count") => match args::int(n) {
                Ok(n) if n >= 1 => count = Some(n as usize),
                _ => return Err(err("ERR count should be greater than 0")),
            },
            _ => return Err(syntax()),
        }
        i += 2;
    }
    Ok(ZmpopArgs { keys: 2..where_at, max, count: count.unwrap_or(1) })
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`
pub fn zmpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match zmpop_parse(argv) {
        Ok(parsed) => zmpop_from(ctx, &argv[parsed.keys.clone()], &parsed),
        Err(e) => e,
    }
}

/// Pops from the first non-empty sorted set of `keys`: `[key, [[member, score]...]]`, or a
/// null array when all are empty.
pub(super) fn zmpop_from(ctx: &mut WriteCtx, keys: &[Bytes], parsed: &ZmpopArgs) -> Frame {
    for key in keys {
        match ctx.get_zset(key) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(_)) => {}
        }
        let items = pop(ctx, key, parsed.count, parsed.max);
        let pairs = items.into_iter().map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)])).collect();
        return Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(pairs)]);
    }
    Frame::NullArray
}
