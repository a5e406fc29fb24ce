//! The ZRANGE family: ZRANGE (BYSCORE BYLEX REV LIMIT WITHSCORES), ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE and ZRANGESTORE, all through
//! one parser and one selector, as Redis's `zrangeGenericCommand`.

use super::super::args::{self, err, is, syntax};
use super::parse::{parse_lex_range, parse_score_range, LexBound, ScoreRange};
use super::{lex_ranks, owned_reply, rank_range};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::zset::ZSetValue;
use crate::store::Value;
use bytes::Bytes;

#[derive(Clone, Copy, PartialEq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexBound, LexBound),
}

struct Query {
    range: Range,
    rev: bool,
    offset: i64,
    /// -1: no limit.
    limit: i64,
    withscores: bool,
}

/// Parses `<min> <max> [options]` at `argv[at..]` (the source key is `argv[at - 1]`).
fn parse(argv: &[Bytes], at: usize, store: bool, by: By, rev: Option<bool>) -> Result<Query, Frame> {
    let (mut by, mut rev_opt, mut withscores, mut offset, mut limit) = (by, rev, false, 0, -1);
    let mut j = at + 2;
    while j < argv.len() {
        let a = &argv[j];
        let left = argv.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = args::int(&argv[j + 1])?;
            limit = args::int(&argv[j + 2])?;
            j += 2;
        } else if rev_opt.is_none() && is(a, "rev") {
            rev_opt = Some(true);
        } else if by == By::Auto && is(a, "bylex") {
            by = By::Lex;
        } else if by == By::Auto && is(a, "byscore") {
            by = By::Score;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    let rev = rev_opt.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if limit != -1 && by == By::Rank {
        return Err(err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && by == By::Lex {
        return Err(err("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    // Reverse score and lex ranges are written max first.
    let (lo, hi) = if rev && by != By::Rank { (&argv[at + 1], &argv[at]) } else { (&argv[at], &argv[at + 1]) };
    let range = match by {
        By::Score => Range::Score(parse_score_range(lo, hi)?),
        By::Lex => {
            let (a, b) = parse_lex_range(lo, hi)?;
            Range::Lex(a, b)
        }
        _ => Range::Rank(args::int(lo)?, args::int(hi)?),
    };
    Ok(Query { range, rev, offset, limit, withscores })
}

/// The elements the query selects, in reply order.
fn select(z: &ZSetValue, q: &Query) -> Vec<(Bytes, f64)> {
    let (lo, hi, offset, limit) = match &q.range {
        Range::Rank(start, end) => match rank_range(*start, *end, z.len()) {
            Some((s, e)) if q.rev => (z.len() - e, z.len() - s, 0, -1),
            Some((s, e)) => (s, e, 0, -1),
            None => return Vec::new(),
        },
        Range::Score(r) => {
            (z.partition_point(|_, s| r.below_min(s)), z.partition_point(|_, s| r.within_max(s)), q.offset, q.limit)
        }
        Range::Lex(min, max) => {
            let (lo, hi) = lex_ranks(z, min, max, q.rev);
            (lo, hi, q.offset, q.limit)
        }
    };
    // A negative offset selects nothing; a negative limit means no limit (as Redis's loops).
    if hi <= lo || offset < 0 || offset as u64 >= (hi - lo) as u64 {
        return Vec::new();
    }
    let avail = hi - lo - offset as usize;
    let n = if limit < 0 { avail } else { avail.min(limit as usize) };
    let own = |(m, s): (&Bytes, f64)| (m.clone(), s);
    if q.rev {
        z.iter_rev_from(hi - 1 - offset as usize).take(n).map(own).collect()
    } else {
        z.iter_from(lo + offset as usize).take(n).map(own).collect()
    }
}

fn read_range(ctx: &mut ReadCtx, argv: &[Bytes], by: By, rev: Option<bool>) -> Frame {
    let q = match parse(argv, 2, false, by, rev) {
        Ok(q) => q,
        Err(e) => return e,
    };
    match ctx.get_zset(&argv[1]) {
        Ok(Some(z)) => owned_reply(&select(z, &q), q.withscores),
        Ok(None) => Frame::Array(Vec::new()),
        Err(e) => e,
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub fn zrange(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_range(ctx, argv, By::Auto, None)
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
pub fn zrangebyscore(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_range(ctx, argv, By::Score, Some(false))
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
pub fn zrevrangebyscore(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_range(ctx, argv, By::Score, Some(true))
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
pub fn zrangebylex(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_range(ctx, argv, By::Lex, Some(false))
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
pub fn zrevrangebylex(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_range(ctx, argv, By::Lex, Some(true))
}

/// `ZREVRANGE key start stop [WITHSCORES]`
pub fn zrevrange(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    read_range(ctx, argv, By::Rank, Some(true))
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`
pub fn zrangestore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let q = match parse(argv, 3, true, By::Auto, None) {
        Ok(q) => q,
        Err(e) => return e,
    };
    let items = match ctx.get_zset(&argv[2]) {
        Ok(Some(z)) => select(z, &q),
        Ok(None) => Vec::new(),
        Err(e) => return e,
    };
    if items.is_empty() {
        ctx.delete(&argv[1]);
        return Frame::Integer(0);
    }
    // Redis adds the elements one by one in reply order to a fresh zset, sized up front only
    // for rank ranges; that order decides which -0 scores the listpack stage turns into 0.
    let hint = if matches!(q.range, Range::Rank(..)) { items.len() } else { 0 };
    let mut z = ZSetValue::with_size_hint(hint);
    let n = items.len() as i64;
    for (m, s) in items {
        z.insert(m, s);
    }
    ctx.set(argv[1].clone(), Value::ZSet(Box::new(z)), None);
    ctx.notify(notify::ZSET, "zrangestore", &argv[1]);
    Frame::Integer(n)
}

/// Stores a computed result at `dst` (deleting it when empty) and replies with its size.
pub(super) fn store_result(ctx: &mut WriteCtx, dst: &Bytes, items: Vec<(Bytes, f64)>, event: &'static str) -> Frame {
    let n = items.len() as i64;
    if items.is_empty() {
        ctx.delete(dst);
    } else {
        ctx.set(dst.clone(), Value::ZSet(Box::new(ZSetValue::from_entries(items))), None);
        ctx.notify(notify::ZSET, event, dst);
    }
    Frame::Integer(n)
}
