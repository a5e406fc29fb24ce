//! Sorted set commands: the table, and what the submodules share (score and range parsing,
//! reply shapes). `write` holds ZADD and the removing commands, `read` the lookups, `range`
//! the ZRANGE family, `combine` ZUNION / ZINTER / ZDIFF and their STORE forms, `blocking`
//! BZPOPMIN / BZPOPMAX / BZMPOP.

mod blocking;
mod combine;
mod parse;
mod range;
mod read;
mod write;

use super::{CommandSpec, Kind};
use crate::protocol::Frame;
use crate::store::zset::ZSetValue;
use bytes::Bytes;

pub use blocking::BLOCKING;
pub use parse::{parse_lex_range, parse_score, parse_score_range, LexBound, ScoreRange};
pub use write::zadd;

const W: &[&str] = &["write", "denyoom", "fast"];
const WF: &[&str] = &["write", "fast"];
const WS: &[&str] = &["write"];
const WD: &[&str] = &["write", "denyoom"];
const RF: &[&str] = &["readonly", "fast"];
const R: &[&str] = &["readonly"];
const RM: &[&str] = &["readonly", "movablekeys"];
const WNFB: &[&str] = &["write", "noscript", "blocking", "fast"];

/// The sorted set command table (arity, flags and key positions as Redis 7.0.15 reports them).
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, W, (1, 1, 1), Kind::Write(write::zadd)),
    CommandSpec::new("zincrby", 4, W, (1, 1, 1), Kind::Write(write::zincrby)),
    CommandSpec::new("zrem", -3, WF, (1, 1, 1), Kind::Write(write::zrem)),
    CommandSpec::new("zcard", 2, RF, (1, 1, 1), Kind::Read(read::zcard)),
    CommandSpec::new("zcount", 4, RF, (1, 1, 1), Kind::Read(read::zcount)),
    CommandSpec::new("zlexcount", 4, RF, (1, 1, 1), Kind::Read(read::zlexcount)),
    CommandSpec::new("zscore", 3, RF, (1, 1, 1), Kind::Read(read::zscore)),
    CommandSpec::new("zmscore", -3, RF, (1, 1, 1), Kind::Read(read::zmscore)),
    CommandSpec::new("zrank", 3, RF, (1, 1, 1), Kind::Read(read::zrank)),
    CommandSpec::new("zrevrank", 3, RF, (1, 1, 1), Kind::Read(read::zrevrank)),
    CommandSpec::new("zrange", -4, R, (1, 1, 1), Kind::Read(range::zrange)),
    CommandSpec::new("zrangebyscore", -4, R, (1, 1, 1), Kind::Read(range::zrangebyscore)),
    CommandSpec::new("zrevrangebyscore", -4, R, (1, 1, 1), Kind::Read(range::zrevrangebyscore)),
    CommandSpec::new("zrangebylex", -4, R, (1, 1, 1), Kind::Read(range::zrangebylex)),
    CommandSpec::new("zrevrangebylex", -4, R, (1, 1, 1), Kind::Read(range::zrevrangebylex)),
    CommandSpec::new("zrevrange", -4, R, (1, 1, 1), Kind::Read(range::zrevrange)),
    CommandSpec::new("zrangestore", -5, WD, (1, 2, 1), Kind::Write(range::zrangestore)),
    CommandSpec::new("zremrangebyrank", 4, WS, (1, 1, 1), Kind::Write(write::zremrangebyrank)),
    CommandSpec::new("zremrangebyscore", 4, WS, (1, 1, 1), Kind::Write(write::zremrangebyscore)),
    CommandSpec::new("zremrangebylex", 4, WS, (1, 1, 1), Kind::Write(write::zremrangebylex)),
    CommandSpec::new("zpopmin", -2, WF, (1, 1, 1), Kind::Write(write::zpopmin)),
    CommandSpec::new("zpopmax", -2, WF, (1, 1, 1), Kind::Write(write::zpopmax)),
    CommandSpec::new("zmpop", -4, &["write", "movablekeys"], (0, 0, 0), Kind::Write(write::zmpop)),
    CommandSpec::new("bzpopmin", -3, WNFB, (1, -2, 1), Kind::Write(blocking::bzpopmin)),
    CommandSpec::new("bzpopmax", -3, WNFB, (1, -2, 1), Kind::Write(blocking::bzpopmax)),
    CommandSpec::new("bzmpop", -5, &["write", "blocking", "movablekeys"], (0, 0, 0), Kind::Write(blocking::bzmpop)),
    CommandSpec::new("zrandmember", -2, R, (1, 1, 1), Kind::Read(read::zrandmember)),
    CommandSpec::new("zunion", -3, RM, (0, 0, 0), Kind::Read(combine::zunion)),
    CommandSpec::new("zinter", -3, RM, (0, 0, 0), Kind::Read(combine::zinter)),
    CommandSpec::new("zdiff", -3, RM, (0, 0, 0), Kind::Read(combine::zdiff)),
    CommandSpec::new(
        "zunionstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        Kind::Write(combine::zunionstore),
    ),
    CommandSpec::new(
        "zinterstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        Kind::Write(combine::zinterstore),
    ),
    CommandSpec::new(
        "zdiffstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        Kind::Write(combine::zdiffstore),
    ),
    CommandSpec::new("zintercard", -3, RM, (0, 0, 0), Kind::Read(combine::zintercard)),
    CommandSpec::new("zscan", -3, R, (1, 1, 1), Kind::Read(read::zscan)),
];

/// A list of elements as Redis replies with it: members only, or member/score pairs (flat in
/// RESP2, nested pairs in RESP3).
fn elements_reply<'a>(items: impl IntoIterator<Item = (&'a Bytes, f64)>, withscores: bool) -> Frame {
    let items = items.into_iter();
    if withscores {
        Frame::Pairs(items.map(|(m, s)| (Frame::Bulk(m.clone()), Frame::Double(s))).collect())
    } else {
        Frame::Array(items.map(|(m, _)| Frame::Bulk(m.clone())).collect())
    }
}

/// Like [`elements_reply`] for owned elements.
fn owned_reply(items: &[(Bytes, f64)], withscores: bool) -> Frame {
    elements_reply(items.iter().map(|(m, s)| (m, *s)), withscores)
}

/// Turns Redis's rank arguments (negative counts from the end) into a half-open range of
/// ranks, or `None` when it selects nothing.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len.saturating_add(start) } else { start }.max(0);
    let end = if end < 0 { len.saturating_add(end) } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize + 1))
}

/// The ranks `lo..hi` a lex range selects. The listpack is walked as Redis walks it (first
/// member not below `min`, or last not above `max` for `rev`, then on while in range), which
/// gives Redis's exact results even with mixed scores; the skiplist encoding uses binary
/// search, the same result whenever scores are equal (the documented use of lex ranges).
fn lex_ranks(z: &ZSetValue, min: &LexBound, max: &LexBound, rev: bool) -> (usize, usize) {
    let (Some((first, _)), Some((last, _))) = (z.get(0), z.len().checked_sub(1).and_then(|r| z.get(r))) else {
        return (0, 0);
    };
    // Redis's zslIsInLexRange: ranges that are empty whatever the set holds.
    if lex_range_empty(min, max) || min.below_min(last) || !max.within_max(first) {
        return (0, 0);
    }
    if z.encoding() != "listpack" {
        // Binary search, as Redis's skiplist descent (O(log n) counts for ZLEXCOUNT).
        let lo = z.partition_point(|m, _| min.below_min(m));
        return (lo, z.partition_point(|m, _| max.within_max(m)).max(lo));
    }
    if rev {
        let end = z.iter().rev().position(|(m, _)| max.within_max(m)).map_or(0, |back| z.len() - back);
        let n = end.checked_sub(1).map_or(0, |r| z.iter_rev_from(r).take_while(|(m, _)| !min.below_min(m)).count());
        (end - n, end)
    } else {
        let start = z.iter().position(|(m, _)| !min.below_min(m)).unwrap_or(z.len());
        (start, start + z.iter_from(start).take_while(|(m, _)| max.within_max(m)).count())
    }
}

/// Redis's check `min > max || (min == max && (minex || maxex))` on lex bounds.
fn lex_range_empty(min: &LexBound, max: &LexBound) -> bool {
    use std::cmp::Ordering;
    let key = |b: &LexBound| -> (u8, Bytes, bool) {
        match b {
            LexBound::Min => (0, Bytes::new(), true),
            LexBound::Incl(x) => (1, x.clone(), false),
            LexBound::Excl(x) => (1, x.clone(), true),
            LexBound::Max => (2, Bytes::new(), true),
        }
    };
    let ((a, x, aex), (b, y, bex)) = (key(min), key(max));
    match (a, x).cmp(&(b, y)) {
        Ordering::Greater => true,
        Ordering::Equal => aex || bex,
        Ordering::Less => false,
    }
}

#[cfg(test)]
mod tests;
