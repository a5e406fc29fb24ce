//! SPOP and SRANDMEMBER: random picks, drawn only from `ctx.rng` (seeded per write batch), so
//! every replica applying the same SPOP removes the same members.

use super::{set_at, set_reply};
use crate::cmd::args::{self, err, syntax};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use bytes::Bytes;

/// Redis keeps popping one by one while the members left are more than this many times
/// fewer than the ones popped; otherwise it copies the survivors into a fresh set, which
/// re-encodes it (a hashtable of few integers becomes an intset again).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// SRANDMEMBER with a negative count builds the whole reply in memory; Redis has no bound
/// here, raftis refuses counts beyond this one instead of exhausting memory.
const MAX_REPEATED_PICKS: u64 = 10_000_000;

const POSITIVE: &str = "ERR value is out of range, must be positive";

pub(super) fn spop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let key = &argv[1];
    let count = match argv.len() {
        2 => None,
        3 => Some(args::int(&argv[2]).ok().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| err(POSITIVE))?),
        _ => return Err(syntax()),
    };
    let Some(set) = set_at(ctx.ks, ctx.db, ctx.now_ms, key)? else {
        return Ok(if count.is_some() { set_reply([]) } else { Frame::Null });
    };
    let len = set.len();
    let picked = match count {
        None => set.random_member(ctx.rng).into_iter().collect(),
        Some(0) => return Ok(set_reply([])),
        Some(n) if n >= len => {
            let all: Vec<Bytes> = set.iter().collect();
            ctx.notify(notify::SET, "spop", key);
            ctx.delete(key);
            return Ok(set_reply(all));
        }
        Some(n) => set.random_distinct(n, ctx.rng),
    };
    if let Some(set) = ctx.set_mut(key, false)? {
        for m in &picked {
            set.remove(m);
        }
        if count.is_some_and(|n| set.len() * SPOP_MOVE_STRATEGY_MUL <= n) {
            set.rebuild();
        }
    }
    ctx.notify(notify::SET, "spop", key);
    ctx.remove_if_empty(key);
    Ok(match count {
        None => picked.into_iter().next().map_or(Frame::Null, Frame::Bulk),
        Some(_) => set_reply(picked),
    })
}

pub(super) fn srandmember(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let count = match argv.len() {
        2 => None,
        3 => Some(match args::int(&argv[2])? {
            i64::MIN => {
                return Err(err(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ))
            }
            n => n,
        }),
        _ => return Err(syntax()),
    };
    let set = set_at(ctx.ks, ctx.db, ctx.now_ms, &argv[1])?;
    let Some(count) = count else {
        return Ok(set.and_then(|s| s.random_member(ctx.rng)).map_or(Frame::Null, Frame::Bulk));
    };
    let Some(set) = set else { return Ok(Frame::Array(Vec::new())) };
    let picked = if count >= 0 {
        set.random_distinct(usize::try_from(count).unwrap_or(usize::MAX), ctx.rng)
    } else {
        let n = count.unsigned_abs();
        if n > MAX_REPEATED_PICKS {
            return Err(err("ERR value is out of range"));
        }
        set.random_with_repeats(n as usize, ctx.rng)
    };
    Ok(Frame::Array(picked.into_iter().map(Frame::Bulk).collect()))
}
