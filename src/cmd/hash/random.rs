//! HRANDFIELD (random picks from `ctx.rng`, so replicas and replays agree) and HSCAN.

use super::reply;
use crate::cmd::args::{self, err, is};
use crate::cmd::{scan, ReadCtx};
use crate::protocol::Frame;
use bytes::Bytes;
use rand::Rng;

/// The largest number of picks with repetition served (a bound Redis does not have).
const MAX_REPEATED_PICKS: i64 = 1 << 24;

pub(super) fn hrandfield(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    if argv.len() >= 3 {
        return reply(with_count(ctx, argv));
    }
    let len = match ctx.get_hash(&argv[1]) {
        Ok(Some(h)) => h.len(),
        Ok(None) => return Frame::Null,
        Err(e) => return e,
    };
    let i = ctx.rng.gen_range(0..len.max(1));
    let field = ctx.get_hash(&argv[1]).ok().flatten().and_then(|h| h.iter().nth(i).map(|(f, _)| f.clone()));
    field.map_or(Frame::Null, Frame::Bulk)
}

/// `HRANDFIELD key count [WITHVALUES]`: a negative count may repeat fields, a positive one
/// returns distinct fields (all of them when count reaches the size).
fn with_count(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let count = args::int(&argv[2])?;
    if count == i64::MIN {
        return Err(err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    }
    let with_values = match argv.get(3) {
        None => false,
        Some(a) if argv.len() == 4 && is(a, "withvalues") => true,
        Some(_) => return Err(args::syntax()),
    };
    // Redis refuses counts whose doubled reply length would overflow.
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(err("ERR value is out of range"));
    }
    let Some(h) = ctx.get_hash(&argv[1])? else { return Ok(Frame::Array(Vec::new())) };
    // Cheap clones (reference counts) that free `ctx` for the random source.
    let entries: Vec<(Bytes, Bytes)> = h.iter().map(|(f, v)| (f.clone(), v.clone())).collect();
    if entries.is_empty() || count == 0 {
        return Ok(Frame::Array(Vec::new()));
    }
    // Redis would stream any number of repeated picks until memory runs out; refuse instead.
    if count < -MAX_REPEATED_PICKS {
        return Err(err("ERR value is out of range"));
    }
    let picks: Vec<usize> = if count < 0 {
        let n = count.unsigned_abs() as usize;
        (0..n).map(|_| ctx.rng.gen_range(0..entries.len())).collect()
    } else if count as u64 >= entries.len() as u64 {
        (0..entries.len()).collect()
    } else {
        rand::seq::index::sample(&mut *ctx.rng, entries.len(), count as usize).into_vec()
    };
    let picked = picks.into_iter().filter_map(|i| entries.get(i));
    if with_values {
        // Pairs: flat in RESP2, [field, value] arrays in RESP3, as Redis 7 replies.
        return Ok(Frame::Pairs(picked.map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone()))).collect()));
    }
    Ok(Frame::Array(picked.map(|(f, _)| Frame::Bulk(f.clone())).collect()))
}

pub(super) fn hscan(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    reply(hscan_inner(ctx, argv))
}

/// Redis checks the cursor, then the key, and only then the options (so a missing key
/// hides bad options).
fn hscan_inner(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    scan::parse(&argv[..3], 2, false)?;
    let Some(h) = ctx.get_hash(&argv[1])? else { return Ok(scan::reply(0, Vec::new())) };
    let o = scan::parse(argv, 2, false)?;
    let (items, next) = h.scan(o.cursor, o.count);
    let mut out = Vec::with_capacity(items.len() * 2);
    for (f, v) in items.into_iter().filter(|(f, _)| o.matches(f)) {
        out.push(Frame::Bulk(f.clone()));
        out.push(Frame::Bulk(v.clone()));
    }
    Ok(scan::reply(next, out))
}
