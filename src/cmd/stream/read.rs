//! XREAD (and the argument parsing XREADGROUP shares): `[COUNT n] [BLOCK ms] STREAMS key...
//! id...`, ids strict or `$`; replies as Redis 7.0's `xreadCommand`.

use super::super::args::{err, int, is, syntax};
use super::{entry_frame, parse};
use crate::cmd::blocking::millis_timeout;
use crate::cmd::ReadCtx;
use crate::protocol::Frame;
use crate::store::stream::StreamId;
use bytes::Bytes;

/// The parsed options of XREAD / XREADGROUP.
#[derive(Debug, Default)]
pub struct ReadArgs {
    pub block_ms: Option<u64>,
    /// 0: no limit.
    pub count: usize,
    /// Index of the first key; keys then ids follow, `n` of each.
    pub keys_at: usize,
    pub n: usize,
    pub group: Option<(Bytes, Bytes)>,
    pub noack: bool,
}

const UNBALANCED: &str = "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.";

/// Redis's option loop of `xreadCommand` (errors in its order).
pub fn parse_read_args(argv: &[Bytes], xreadgroup: bool) -> Result<ReadArgs, Frame> {
    let mut a = ReadArgs::default();
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let o = &argv[i];
        if is(o, "block") && more > 0 {
            i += 1;
            a.block_ms = Some(millis_timeout(&argv[i])?);
        } else if is(o, "count") && more > 0 {
            i += 1;
            a.count = int(&argv[i])?.max(0) as usize;
        } else if is(o, "streams") && more > 0 {
            if !more.is_multiple_of(2) {
                return Err(err(UNBALANCED));
            }
            a.keys_at = i + 1;
            a.n = more / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
            }
            a.group = Some((argv[i + 1].clone(), argv[i + 2].clone()));
            i += 2;
        } else if is(o, "noack") {
            if !xreadgroup {
                return Err(err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
            }
            a.noack = true;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    if a.keys_at == 0 {
        return Err(syntax());
    }
    if xreadgroup && a.group.is_none() {
        return Err(err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(a)
}

/// `XREAD [COUNT n] [BLOCK ms] STREAMS key... id...` without blocking (a BLOCK form outside
/// MULTI never gets here: it blocks through `super::blocking`): entries above each id.
pub fn xread(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match xread_inner(ctx, argv) {
        Ok(Some(reply)) => reply,
        Ok(None) => Frame::NullArray,
        Err(e) => e,
    }
}

/// The reply when something can be served, `None` when nothing can (the caller blocks or
/// answers a null array).
pub fn xread_inner(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Option<Frame>, Frame> {
    let a = parse_read_args(argv, false)?;
    let ids = resolve_ids(ctx, argv, &a)?;
    let mut out = Vec::new();
    for (i, after) in ids.into_iter().enumerate() {
        let key = &argv[a.keys_at + i];
        let Some(s) = ctx.get_stream(key)? else { continue };
        if s.is_empty() || s.last_valid_id() <= after {
            continue;
        }
        let Some(start) = after.next() else { continue };
        let limit = if a.count == 0 { usize::MAX } else { a.count };
        let entries: Vec<Frame> = s.range(start, StreamId::MAX).take(limit).map(|e| entry_frame(&e)).collect();
        out.push((Frame::Bulk(key.clone()), Frame::Array(entries)));
    }
    Ok((!out.is_empty()).then_some(Frame::PairsMap(out)))
}

/// The id after which each stream is read: `$` is the stream's last id (0-0 when absent).
/// Types are checked key by key in the same pass, as Redis does.
pub fn resolve_ids(ctx: &ReadCtx, argv: &[Bytes], a: &ReadArgs) -> Result<Vec<StreamId>, Frame> {
    let mut ids = Vec::with_capacity(a.n);
    for i in 0..a.n {
        let s = ctx.get_stream(&argv[a.keys_at + i])?;
        let arg = &argv[a.keys_at + a.n + i];
        if arg.as_ref() == b"$" {
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
        } else if arg.as_ref() == b">" {
            return Err(err(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ));
        } else {
            ids.push(parse::strict_id(arg, 0)?);
        }
    }
    Ok(ids)
}
