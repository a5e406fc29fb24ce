//! Read-only lookups: ZCARD, ZCOUNT, ZLEXCOUNT, ZSCORE, ZMSCORE, ZRANK, ZREVRANK,
//! ZRANDMEMBER, ZSCAN.

use super::super::args::{self, err, is, syntax};
use super::super::scan;
use super::parse::{parse_lex_range, parse_score_range};
use super::{elements_reply, lex_ranks};
use crate::cmd::ReadCtx;
use crate::protocol::format_double;
use crate::protocol::Frame;
use crate::store::zset::ZSetValue;
use crate::store::{Keyspace, Value};
use bytes::Bytes;
use rand::Rng;

/// Most elements ZRANDMEMBER with a negative count returns in one reply (Redis streams any
/// number; we build replies in memory, so a huge count is refused instead).
const MAX_RANDOM_REPLY: u64 = 1 << 24;

/// Runs `f` on the zset at `key`; `missing` when absent; WRONGTYPE for other kinds.
fn with_zset(ctx: &ReadCtx, key: &[u8], missing: Frame, f: impl FnOnce(&ZSetValue) -> Frame) -> Frame {
    match ctx.get_zset(key) {
        Ok(Some(z)) => f(z),
        Ok(None) => missing,
        Err(e) => e,
    }
}

/// `ZCARD key`
pub fn zcard(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    with_zset(ctx, &argv[1], Frame::Integer(0), |z| Frame::Integer(z.len() as i64))
}

/// `ZCOUNT key min max`
pub fn zcount(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let r = match parse_score_range(&argv[2], &argv[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    with_zset(ctx, &argv[1], Frame::Integer(0), |z| {
        let (lo, hi) = (z.partition_point(|_, s| r.below_min(s)), z.partition_point(|_, s| r.within_max(s)));
        Frame::Integer(hi.saturating_sub(lo) as i64)
    })
}

/// `ZLEXCOUNT key min max`
pub fn zlexcount(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let (min, max) = match parse_lex_range(&argv[2], &argv[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    with_zset(ctx, &argv[1], Frame::Integer(0), |z| {
        let (lo, hi) = lex_ranks(z, &min, &max, false);
        Frame::Integer((hi - lo) as i64)
    })
}

/// `ZSCORE key member`
pub fn zscore(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    with_zset(ctx, &argv[1], Frame::Null, |z| z.score(&argv[2]).map_or(Frame::Null, Frame::Double))
}

/// `ZMSCORE key member [member ...]`
pub fn zmscore(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let nulls = Frame::Array(vec![Frame::Null; argv.len() - 2]);
    with_zset(ctx, &argv[1], nulls, |z| {
        Frame::Array(argv[2..].iter().map(|m| z.score(m).map_or(Frame::Null, Frame::Double)).collect())
    })
}

/// `ZRANK key member`
pub fn zrank(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    with_zset(ctx, &argv[1], Frame::Null, |z| z.rank(&argv[2]).map_or(Frame::Null, |r| Frame::Integer(r as i64)))
}

/// `ZREVRANK key member`
pub fn zrevrank(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    with_zset(ctx, &argv[1], Frame::Null, |z| {
        z.rank(&argv[2]).map_or(Frame::Null, |r| Frame::Integer((z.len() - 1 - r) as i64))
    })
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`
pub fn zrandmember(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let Some(count_arg) = argv.get(2) else {
        return match zset_at(ctx.ks, ctx.db, ctx.now_ms, &argv[1]) {
            Ok(Some(z)) if !z.is_empty() => {
                let pick = ctx.rng.gen_range(0..z.len());
                z.get(pick).map_or(Frame::Null, |(m, _)| Frame::Bulk(m.clone()))
            }
            Ok(_) => Frame::Null,
            Err(e) => e,
        };
    };
    let count = match args::int(count_arg) {
        Ok(n) if n != i64::MIN => n,
        Ok(_) => {
            return err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        }
        Err(e) => return e,
    };
    let withscores = match argv.get(3) {
        None => false,
        Some(a) if argv.len() == 4 && is(a, "withscores") => true,
        Some(_) => return syntax(),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return err("ERR value is out of range");
    }
    match zset_at(ctx.ks, ctx.db, ctx.now_ms, &argv[1]) {
        Ok(Some(z)) => random_members(z, count, withscores, ctx.rng),
        Ok(None) => Frame::Array(Vec::new()),
        Err(e) => e,
    }
}

/// The zset at `key` borrowed from the keyspace itself, so `ctx.rng` stays usable alongside.
fn zset_at<'k>(ks: &'k Keyspace, db: usize, now_ms: u64, key: &[u8]) -> Result<Option<&'k ZSetValue>, Frame> {
    match ks.db(db).get(key, now_ms).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(args::wrongtype()),
    }
}

fn random_members(z: &ZSetValue, count: i64, withscores: bool, rng: &mut dyn rand::RngCore) -> Frame {
    let len = z.len();
    if count == 0 || len == 0 {
        return Frame::Array(Vec::new());
    }
    if count < 0 || count == 1 {
        let n = count.unsigned_abs();
        if n > MAX_RANDOM_REPLY {
            return err("ERR value is out of range");
        }
        let picks: Vec<_> = (0..n).filter_map(|_| z.get(rng.gen_range(0..len))).collect();
        return elements_reply(picks, withscores);
    }
    if count as u64 >= len as u64 {
        // Redis returns the whole set, walking it from the highest score down.
        return elements_reply(z.iter().rev(), withscores);
    }
    let mut ranks = rand::seq::index::sample(rng, len, count as usize).into_vec();
    ranks.sort_unstable();
    elements_reply(ranks.into_iter().filter_map(|r| z.get(r)), withscores)
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: the listpack encoding is returned whole.
pub fn zscan(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    // Redis checks the cursor, then the key, then the options.
    if let Err(e) = scan::parse(&argv[..3], 2, false) {
        return e;
    }
    let z = match ctx.get_zset(&argv[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return scan::reply(0, Vec::new()),
        Err(e) => return e,
    };
    let opts = match scan::parse(argv, 2, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (items, next) = z.scan(opts.cursor, opts.count);
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items.into_iter().filter(|(m, _)| opts.matches(m)) {
        out.push(Frame::Bulk(m.clone()));
        out.push(Frame::Bulk(Bytes::from(format_double(s))));
    }
    scan::reply(next, out)
}
