//! LPOS: positions of an element, with RANK (which match to start from, negative from the
//! tail), COUNT (how many, 0 for all) and MAXLEN (how many elements to compare at most).

use super::reply;
use crate::cmd::args::{self, err, is, syntax};
use crate::cmd::ReadCtx;
use crate::protocol::Frame;
use bytes::Bytes;

struct Options {
    rank: i64,
    count: Option<i64>,
    maxlen: i64,
}

/// A non-negative integer; any failure gives `msg` (Redis's getPositiveLongFromObjectOrReply).
fn positive(arg: &[u8], msg: &str) -> Result<i64, Frame> {
    args::int(arg).ok().filter(|n| *n >= 0).ok_or_else(|| err(msg))
}

fn parse(argv: &[Bytes]) -> Result<Options, Frame> {
    let mut o = Options { rank: 1, count: None, maxlen: 0 };
    let mut i = 3;
    while i < argv.len() {
        let Some(value) = argv.get(i + 1) else { return Err(syntax()) };
        let opt = &argv[i];
        if is(opt, "rank") {
            o.rank = args::int(value)?;
            if o.rank == 0 {
                return Err(err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
        } else if is(opt, "count") {
            o.count = Some(positive(value, "ERR COUNT can't be negative")?);
        } else if is(opt, "maxlen") {
            o.maxlen = positive(value, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(syntax());
        }
        i += 2;
    }
    Ok(o)
}

pub(super) fn lpos(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    reply(lpos_inner(ctx, argv))
}

fn lpos_inner(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let o = parse(argv)?;
    let Some(l) = ctx.get_list(&argv[1])? else {
        return Ok(if o.count.is_some() { Frame::Array(Vec::new()) } else { Frame::Null });
    };
    let from_tail = o.rank < 0;
    // Redis negates with C's wrapping, so RANK -9223372036854775808 stays negative and then
    // accepts every match; the wrapping arithmetic below keeps that behaviour.
    let rank = if from_tail { o.rank.wrapping_neg() } else { o.rank };
    let count = o.count.unwrap_or(0);
    let len = l.len();
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    for step in 0..len {
        if o.maxlen != 0 && step as u64 >= o.maxlen as u64 {
            break;
        }
        let index = if from_tail { len - 1 - step } else { step };
        if l.items.get(index) != Some(&argv[2]) {
            continue;
        }
        matches += 1;
        if matches >= rank {
            found.push(Frame::Integer(index as i64));
            if o.count.is_none() || (count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count) {
                break;
            }
        }
    }
    Ok(match o.count {
        Some(_) => Frame::Array(found),
        None => found.into_iter().next().unwrap_or(Frame::Null),
    })
}
