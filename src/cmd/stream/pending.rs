//! The pending entries of a group: XPENDING (summary and extended form, with IDLE), XCLAIM
//! and XAUTOCLAIM, as Redis 7.0. Idle times are measured against the command's time: for the
//! claims, which are writes, that is the log entry's stamped time, so every replica decides
//! the same claims and records the same delivery times.

use super::group::no_key_or_group;
use super::readgroup::{has_consumer, notify_new_consumer};
use super::{entry_frame, id_frame, parse, reply};
use crate::cmd::args::{err, int, is, syntax};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::stream::{Group, Pending, StreamId, StreamValue};
use bytes::Bytes;

pub fn xpending(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    reply(xpending_inner(ctx, argv))
}

/// XPENDING's range form: `[IDLE min] start end count [consumer]`.
struct PendingRange {
    min_idle: i64,
    start: StreamId,
    end: StreamId,
    count: usize,
    consumer: Option<Bytes>,
}

fn parse_pending_range(argv: &[Bytes]) -> Result<PendingRange, Frame> {
    let mut at = 3;
    let mut min_idle = 0;
    if is(&argv[3], "idle") {
        min_idle = int(&argv[4])?;
        if argv.len() < 8 {
            return Err(syntax());
        }
        at += 2;
    }
    let count = int(&argv[at + 2])?.max(0) as usize;
    let (mut start, start_ex) = parse::interval_id(&argv[at], 0)?;
    if start_ex {
        start = start.next().ok_or_else(|| err("ERR invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = parse::interval_id(&argv[at + 1], u64::MAX)?;
    if end_ex {
        end = end.prev().ok_or_else(|| err("ERR invalid end ID for the interval"))?;
    }
    Ok(PendingRange { min_idle, start, end, count, consumer: argv.get(at + 3).cloned() })
}

fn xpending_inner(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    if argv.len() != 3 && !(6..=9).contains(&argv.len()) {
        return Err(syntax());
    }
    let range = if argv.len() >= 6 { Some(parse_pending_range(argv)?) } else { None };
    let Some(g) = ctx.get_stream(&argv[1])?.and_then(|s| s.groups.get(&argv[2])) else {
        return Err(no_key_or_group(&argv[1], &argv[2], ""));
    };
    match range {
        None => Ok(summary(g)),
        Some(r) => Ok(extended(g, &r, ctx.now_ms)),
    }
}

/// `[count, first, last, [[consumer, count], ...]]`.
fn summary(g: &Group) -> Frame {
    let (Some(first), Some(last)) = (g.pel.keys().next(), g.pel.keys().next_back()) else {
        return Frame::Array(vec![Frame::Integer(0), Frame::Null, Frame::Null, Frame::NullArray]);
    };
    let consumers = g
        .consumers
        .iter()
        .filter(|(_, c)| !c.pending.is_empty())
        .map(|(name, c)| Frame::Array(vec![Frame::Bulk(name.clone()), Frame::bulk_int(c.pending.len() as i64)]))
        .collect();
    Frame::Array(vec![Frame::Integer(g.pel.len() as i64), id_frame(*first), id_frame(*last), Frame::Array(consumers)])
}

/// `[[id, consumer, idle, deliveries], ...]` within the range, from the group's or one
/// consumer's pending list.
fn extended(g: &Group, r: &PendingRange, now: u64) -> Frame {
    let ids: Box<dyn Iterator<Item = &StreamId>> = match &r.consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) => Box::new(c.pending.iter()),
            None => return Frame::Array(Vec::new()),
        },
        None => Box::new(g.pel.keys()),
    };
    let idle = |p: &Pending| (now as i64).saturating_sub(p.delivery_time as i64);
    let mut out = Vec::new();
    for id in ids.filter(|id| **id >= r.start) {
        if out.len() >= r.count || *id > r.end {
            break;
        }
        let Some(p) = g.pel.get(id) else { continue };
        if r.min_idle != 0 && idle(p) < r.min_idle {
            continue;
        }
        out.push(Frame::Array(vec![
            id_frame(*id),
            Frame::Bulk(p.consumer.clone()),
            Frame::Integer(idle(p).max(0)),
            Frame::Integer(p.delivery_count as i64),
        ]));
    }
    Frame::Array(out)
}

/// XCLAIM's options after the ids.
#[derive(Default)]
struct ClaimOptions {
    force: bool,
    justid: bool,
    delivery_time: Option<i64>,
    retry_count: Option<i64>,
    last_id: StreamId,
}

fn parse_claim_options(argv: &[Bytes], mut j: usize, now: i64) -> Result<ClaimOptions, Frame> {
    let mut o = ClaimOptions::default();
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let opt = &argv[j];
        let num = |arg: &Bytes, what: &str| {
            crate::protocol::parse_i64(arg)
                .ok_or_else(|| err(&format!("ERR Invalid {what} option argument for XCLAIM")))
        };
        if is(opt, "force") {
            o.force = true;
        } else if is(opt, "justid") {
            o.justid = true;
        } else if is(opt, "idle") && more {
            j += 1;
            o.delivery_time = Some(now.wrapping_sub(num(&argv[j], "IDLE")?));
        } else if is(opt, "time") && more {
            j += 1;
            o.delivery_time = Some(num(&argv[j], "TIME")?);
        } else if is(opt, "retrycount") && more {
            j += 1;
            o.retry_count = Some(num(&argv[j], "RETRYCOUNT")?);
        } else if is(opt, "lastid") && more {
            j += 1;
            o.last_id = parse::strict_id(&argv[j], 0)?;
        } else {
            let mut msg = b"ERR Unrecognized XCLAIM option '".to_vec();
            msg.extend_from_slice(&opt[..opt.iter().position(|&b| b == 0).unwrap_or(opt.len())]);
            msg.push(b'\'');
            return Err(Frame::Error(Bytes::from(msg)));
        }
        j += 1;
    }
    Ok(o)
}

/// `XCLAIM key group consumer min-idle-time id... [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE]
/// [JUSTID] [LASTID id]`
pub fn xclaim(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xclaim_inner(ctx, argv))
}

fn xclaim_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    if !ctx.get_stream(&argv[1])?.is_some_and(|s| s.groups.contains_key(&argv[2])) {
        return Err(no_key_or_group(&argv[1], &argv[2], ""));
    }
    let min_idle = crate::protocol::parse_i64(&argv[4])
        .ok_or_else(|| err("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let ids: Vec<StreamId> = argv[5..].iter().map_while(|a| parse::strict_id(a, 0).ok()).collect();
    let now = ctx.now_ms as i64;
    let o = parse_claim_options(argv, 5 + ids.len(), now)?;
    let delivery_time = match o.delivery_time {
        Some(t) if (0..=now).contains(&t) => t as u64,
        _ => now as u64,
    };
    let (group, consumer) = (&argv[2], &argv[3]);
    let had_consumer = has_consumer(ctx, &argv[1], group, consumer);
    let out = claim_ids(ctx, &argv[1], group, consumer, &ids, &o, min_idle, delivery_time);
    notify_new_consumer(ctx, &argv[1], group, consumer, had_consumer);
    Ok(Frame::Array(out))
}

/// XCLAIM's claims of `ids`, once the arguments are checked: the reply's elements.
#[allow(clippy::too_many_arguments)]
fn claim_ids(
    ctx: &mut WriteCtx,
    key: &[u8],
    group: &Bytes,
    consumer: &Bytes,
    ids: &[StreamId],
    o: &ClaimOptions,
    min_idle: i64,
    delivery_time: u64,
) -> Vec<Frame> {
    let now = ctx.now_ms as i64;
    let Ok(Some(s)) = ctx.stream_mut(key, false) else { return Vec::new() };
    if let Some(g) = s.groups.get_mut(group) {
        if o.last_id > g.last_id {
            g.last_id = o.last_id;
        }
    }
    let mut out = Vec::new();
    for &id in ids {
        let exists = s.get(id).is_some();
        let Some(g) = s.groups.get_mut(group) else { break };
        if !exists {
            g.ack(id);
            continue;
        }
        let forced = o.force && !g.pel.contains_key(&id);
        if forced {
            g.pel.insert(id, Pending { consumer: Bytes::new(), delivery_time: now as u64, delivery_count: 1 });
        }
        let Some(p) = g.pel.get(&id) else { continue };
        if !forced && min_idle > 0 && now - (p.delivery_time as i64) < min_idle {
            continue;
        }
        claim_one(g, id, consumer, now as u64, delivery_time, o.retry_count, o.justid);
        out.push(if o.justid { id_frame(id) } else { entry_reply(s, id) });
    }
    out
}

/// Gives pending `id` to `consumer` (created if needed) with a new delivery time, counting
/// the delivery unless JUSTID (or setting RETRYCOUNT).
fn claim_one(g: &mut Group, id: StreamId, consumer: &Bytes, now: u64, time: u64, retry: Option<i64>, justid: bool) {
    match g.consumers.get_mut(consumer) {
        Some(c) => c.seen_time = now,
        None => {
            g.create_consumer(consumer, now);
        }
    }
    g.reassign(id, consumer);
    if let Some(p) = g.pel.get_mut(&id) {
        p.delivery_time = time;
        match retry {
            Some(n) if n >= 0 => p.delivery_count = n as u64,
            _ if !justid => p.delivery_count += 1,
            _ => {}
        }
    }
}

fn entry_reply(s: &StreamValue, id: StreamId) -> Frame {
    s.get(id).map_or(Frame::NullArray, |e| entry_frame(&e))
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT n] [JUSTID]`
pub fn xautoclaim(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xautoclaim_inner(ctx, argv))
}

fn xautoclaim_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let min_idle = crate::protocol::parse_i64(&argv[4])
        .ok_or_else(|| err("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let (mut start, start_ex) = parse::interval_id(&argv[5], 0)?;
    if start_ex {
        start = start.next().ok_or_else(|| err("ERR invalid start ID for the interval"))?;
    }
    let (mut count, mut justid) = (100i64, false);
    let mut j = 6;
    while j < argv.len() {
        if is(&argv[j], "count") && j + 1 < argv.len() {
            count = crate::protocol::parse_i64(&argv[j + 1])
                .filter(|n| (1..=i64::MAX / 16).contains(n))
                .ok_or_else(|| err("ERR COUNT must be > 0"))?;
            j += 1;
        } else if is(&argv[j], "justid") {
            justid = true;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    if !ctx.get_stream(&argv[1])?.is_some_and(|s| s.groups.contains_key(&argv[2])) {
        return Err(no_key_or_group(&argv[1], &argv[2], ""));
    }
    let now = ctx.now_ms;
    let had_consumer = has_consumer(ctx, &argv[1], &argv[2], &argv[3]);
    let Ok(Some(s)) = ctx.stream_mut(&argv[1], false) else { return Ok(Frame::Array(Vec::new())) };
    let reply = autoclaim(s, &argv[2], &argv[3], min_idle, start, count, justid, now);
    notify_new_consumer(ctx, &argv[1], &argv[2], &argv[3], had_consumer);
    Ok(reply)
}

/// The scan of XAUTOCLAIM: at most `count * 10` pending entries looked at, at most `count`
/// claimed or dropped (deleted from the stream); replies `[next, claimed, deleted]`.
#[allow(clippy::too_many_arguments)]
fn autoclaim(
    s: &mut StreamValue,
    group: &Bytes,
    consumer: &Bytes,
    min_idle: i64,
    start: StreamId,
    mut count: i64,
    justid: bool,
    now: u64,
) -> Frame {
    let mut attempts = count.saturating_mul(10);
    let scan: Vec<StreamId> = s.groups.get(group).map_or(Vec::new(), |g| {
        g.pel.range(start..).map(|(id, _)| *id).take(attempts.min(1 << 24) as usize + 1).collect()
    });
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut next = 0;
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let Some(&id) = scan.get(next) else { break };
        next += 1;
        let exists = s.get(id).is_some();
        let Some(g) = s.groups.get_mut(group) else { break };
        if !exists {
            g.ack(id);
            deleted.push(id_frame(id));
            count -= 1;
            continue;
        }
        let idle = g.pel.get(&id).map_or(0, |p| now as i64 - p.delivery_time as i64);
        if min_idle > 0 && idle < min_idle {
            continue;
        }
        claim_one(g, id, consumer, now, now, None, justid);
        claimed.push(if justid { id_frame(id) } else { entry_reply(s, id) });
        count -= 1;
    }
    let cursor = scan.get(next).copied().unwrap_or(StreamId::MIN);
    Frame::Array(vec![id_frame(cursor), Frame::Array(claimed), Frame::Array(deleted)])
}
