//! Stream commands: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID here, XREAD in
//! [`read`], XREADGROUP in [`readgroup`], XGROUP and XACK in [`group`], XPENDING, XCLAIM and
//! XAUTOCLAIM in [`pending`], XINFO in [`info`]. The value type, its nodes and its groups live in `crate::store::stream`; id and
//! option parsing in [`parse`].
//!
//! Ids from `*` come from the write's stamped time (`ctx.now_ms`, fixed by the node that
//! accepted the write and carried in the log entry), never from a clock read at apply, so
//! every replica assigns the same ids; the monotonic rule (a new id is above the last one)
//! is Redis's `streamNextID`.

mod blocking;
mod group;
mod info;
pub mod parse;
mod pending;
mod read;
mod readgroup;
pub mod settings;

use super::args::{err, int, is, syntax, wrong_arity, NO_SUCH_KEY};
use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::stream::{EntryRef, StreamId, StreamValue, LISTPACK_MAX_SIZE};
use bytes::Bytes;

pub use blocking::BLOCKING;

const K: (i32, i32, i32) = (1, 1, 1);

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, &["write", "denyoom", "fast"], K, Kind::Write(xadd)),
    CommandSpec::new("xrange", -4, &["readonly"], K, Kind::Read(xrange)),
    CommandSpec::new("xrevrange", -4, &["readonly"], K, Kind::Read(xrevrange)),
    CommandSpec::new("xlen", 2, &["readonly", "fast"], K, Kind::Read(xlen)),
    CommandSpec::new("xdel", -3, &["write", "fast"], K, Kind::Write(xdel)),
    CommandSpec::new("xtrim", -4, &["write"], K, Kind::Write(xtrim)),
    CommandSpec::new("xsetid", -3, &["write", "denyoom", "fast"], K, Kind::Write(xsetid)),
    CommandSpec::new("xread", -4, &["readonly", "blocking", "movablekeys"], (0, 0, 0), Kind::Read(read::xread)),
    CommandSpec::new(
        "xreadgroup",
        -7,
        &["write", "blocking", "movablekeys"],
        (0, 0, 0),
        Kind::Write(readgroup::xreadgroup),
    ),
    CommandSpec::new("xgroup", -2, &[], (2, 2, 1), Kind::Write(group::xgroup)),
    CommandSpec::new("xack", -4, &["write", "fast"], K, Kind::Write(group::xack)),
    CommandSpec::new("xpending", -3, &["readonly"], K, Kind::Read(pending::xpending)),
    CommandSpec::new("xclaim", -6, &["write", "fast"], K, Kind::Write(pending::xclaim)),
    CommandSpec::new("xautoclaim", -6, &["write", "fast"], K, Kind::Write(pending::xautoclaim)),
    CommandSpec::new("xinfo", -2, &[], (2, 2, 1), Kind::Read(info::xinfo)),
    CommandSpec::new(
        settings::SET_STREAM_NODE,
        -3,
        &["write", "internal"],
        (0, 0, 0),
        Kind::Write(settings::set_stream_node),
    ),
];

/// Turns a handler's `Result` into its reply.
fn reply(r: Result<Frame, Frame>) -> Frame {
    r.unwrap_or_else(|e| e)
}

/// An id as a bulk string.
pub fn id_frame(id: StreamId) -> Frame {
    Frame::Bulk(id.to_bytes())
}

/// One entry as replies show it: `[id, [field, value, ...]]`.
pub fn entry_frame(e: &EntryRef<'_>) -> Frame {
    let fields = e.pairs().flat_map(|(f, v)| [Frame::Bulk(f.clone()), Frame::Bulk(v.clone())]).collect();
    Frame::Array(vec![id_frame(e.id()), Frame::Array(fields)])
}

/// Keys of XREAD / XREADGROUP: the first half of what follows STREAMS (Redis's
/// `xreadGetKeys`, which skips the options before it).
pub fn stream_keys(argv: &[Bytes]) -> Vec<usize> {
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if is(a, "block") || is(a, "count") {
            i += 2;
        } else if is(a, "group") {
            i += 3;
        } else if is(a, "noack") {
            i += 1;
        } else if is(a, "streams") {
            let n = (argv.len() - i - 1) / 2;
            return (i + 1..i + 1 + n).collect();
        } else {
            break;
        }
    }
    Vec::new()
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...`
fn xadd(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xadd_inner(ctx, argv))
}

fn xadd_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let args = parse::add_or_trim_args(argv, true, ctx.ks.settings.default_trim_limit())?;
    let fields = argv.get(args.id_pos + 1..).unwrap_or_default();
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(wrong_arity("xadd"));
    }
    if let Some((StreamId::MIN, true)) = args.id {
        return Err(err("ERR The ID specified in XADD must be greater than 0-0"));
    }
    let now = ctx.now_ms;
    if ctx.get_stream(&argv[1])?.is_none() && args.no_mkstream {
        return Ok(Frame::Null);
    }
    let limits = ctx.ks.settings.node_limits();
    let Some(s) = ctx.stream_mut(&argv[1], true)? else { return Ok(Frame::Null) };
    if s.last_id == StreamId::MAX {
        return Err(err("ERR The stream has exhausted the last possible ID, unable to add more items"));
    }
    let id = new_id(s, args.id, now)?;
    if fields.iter().map(|f| f.len()).sum::<usize>() > LISTPACK_MAX_SIZE {
        return Err(err("ERR Elements are too large to be stored"));
    }
    s.append(id, fields, limits);
    let trimmed = args.trim.map_or(0, |trim| s.trim(trim, args.approx, args.limit));
    ctx.notify(notify::STREAM, "xadd", &argv[1]);
    if trimmed > 0 {
        ctx.notify(notify::STREAM, "xtrim", &argv[1]);
    }
    Ok(id_frame(id))
}

/// The id of a new entry: `*` from the stamped time, `ms-*` or a full id from the client,
/// always above the last id (`streamAppendItem`'s rules and errors).
fn new_id(s: &StreamValue, given: Option<(StreamId, bool)>, now_ms: u64) -> Result<StreamId, Frame> {
    let too_small = || err("ERR The ID specified in XADD is equal or smaller than the target stream top item");
    let id = match given {
        None if now_ms > s.last_id.ms => StreamId::new(now_ms, 0),
        None => s.last_id.next().ok_or_else(too_small)?,
        Some((id, true)) => id,
        // Redis fails here without setting errno, so its reply is the ERANGE one.
        Some((id, false)) if id.ms == s.last_id.ms => {
            s.last_id.next().filter(|n| n.ms == id.ms).ok_or_else(|| err("ERR Elements are too large to be stored"))?
        }
        Some((id, false)) => id,
    };
    if id <= s.last_id {
        return Err(too_small());
    }
    Ok(id)
}

fn xrange(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    reply(range_generic(ctx, argv, false))
}

fn xrevrange(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    reply(range_generic(ctx, argv, true))
}

/// XRANGE / XREVRANGE: bounds (exclusive with `(`), then `COUNT n`, then the key.
fn range_generic(ctx: &mut ReadCtx, argv: &[Bytes], rev: bool) -> Result<Frame, Frame> {
    let (start_arg, end_arg) = if rev { (&argv[3], &argv[2]) } else { (&argv[2], &argv[3]) };
    let (mut start, start_ex) = parse::interval_id(start_arg, 0)?;
    if start_ex {
        start = start.next().ok_or_else(|| err("ERR invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = parse::interval_id(end_arg, u64::MAX)?;
    if end_ex {
        end = end.prev().ok_or_else(|| err("ERR invalid end ID for the interval"))?;
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if is(&argv[j], "count") && j + 1 < argv.len() {
            count = int(&argv[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(syntax());
        }
    }
    let Some(s) = ctx.get_stream(&argv[1])? else { return Ok(Frame::Array(Vec::new())) };
    if count == 0 {
        return Ok(Frame::NullArray);
    }
    let limit = if count < 0 { usize::MAX } else { count as usize };
    let entries = s.range(start, end);
    let frames: Vec<Frame> = if rev {
        entries.rev().take(limit).map(|e| entry_frame(&e)).collect()
    } else {
        entries.take(limit).map(|e| entry_frame(&e)).collect()
    };
    Ok(Frame::Array(frames))
}

fn xlen(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_stream(&argv[1]) {
        Ok(s) => Frame::Integer(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

/// `XDEL key id...`: every id is checked before anything is deleted.
fn xdel(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xdel_inner(ctx, argv))
}

fn xdel_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let Some(s) = ctx.get_stream(&argv[1])? else { return Ok(Frame::Integer(0)) };
    let ids = argv[2..].iter().map(|a| parse::strict_id(a, 0)).collect::<Result<Vec<_>, _>>()?;
    // Look before writing: deleting nothing must not touch the key's version (WATCH).
    if !ids.iter().any(|id| s.get(*id).is_some()) {
        return Ok(Frame::Integer(0));
    }
    let Some(s) = ctx.stream_mut(&argv[1], false)? else { return Ok(Frame::Integer(0)) };
    let deleted = ids.into_iter().filter(|id| s.delete(*id)).count();
    ctx.notify(notify::STREAM, "xdel", &argv[1]);
    Ok(Frame::Integer(deleted as i64))
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
fn xtrim(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xtrim_inner(ctx, argv))
}

fn xtrim_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let args = parse::add_or_trim_args(argv, false, ctx.ks.settings.default_trim_limit())?;
    let Some(trim) = args.trim else { return Err(syntax()) };
    let Some(s) = ctx.get_stream(&argv[1])? else { return Ok(Frame::Integer(0)) };
    if !s.trim_would_delete(trim, args.approx, args.limit) {
        return Ok(Frame::Integer(0));
    }
    let Some(s) = ctx.stream_mut(&argv[1], false)? else { return Ok(Frame::Integer(0)) };
    let trimmed = s.trim(trim, args.approx, args.limit);
    if trimmed > 0 {
        ctx.notify(notify::STREAM, "xtrim", &argv[1]);
    }
    Ok(Frame::Integer(trimmed as i64))
}

/// `XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]`
fn xsetid(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xsetid_inner(ctx, argv))
}

fn xsetid_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let id = parse::strict_id(&argv[2], 0)?;
    let (mut entries_added, mut max_deleted) = (None, StreamId::MIN);
    let mut i = 3;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(&argv[i], "entriesadded") && more {
            let n = int(&argv[i + 1])?;
            if n < 0 {
                return Err(err("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if is(&argv[i], "maxdeletedid") && more {
            max_deleted = parse::strict_id(&argv[i + 1], 0)?;
            if id < max_deleted {
                return Err(err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
        } else {
            return Err(syntax());
        }
        i += 2;
    }
    let Some(s) = ctx.get_stream(&argv[1])? else { return Err(err(NO_SUCH_KEY)) };
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return Err(err("ERR The ID specified in XSETID is smaller than the target stream top item"));
        }
        if entries_added.is_some_and(|n| s.len() > n) {
            return Err(err("ERR The entries_added specified in XSETID is smaller than the target stream length"));
        }
    }
    let Some(s) = ctx.stream_mut(&argv[1], false)? else { return Err(err(NO_SUCH_KEY)) };
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if max_deleted != StreamId::MIN {
        s.max_deleted_id = max_deleted;
    }
    ctx.notify(notify::STREAM, "xsetid", &argv[1]);
    Ok(Frame::ok())
}
