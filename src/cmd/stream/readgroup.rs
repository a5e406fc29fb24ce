//! XREADGROUP: reading as a consumer of a group. `>` delivers entries the group has not
//! delivered yet (each joins the group's pending list under this consumer, unless NOACK);
//! any other id replays this consumer's own pending entries from there. It is a write: the
//! delivery is decided by the log entry, at its stamped time, so every replica records the
//! same pending entries with the same delivery times, and an entry is delivered once.

use super::group::no_key_or_group;
use super::read::{parse_read_args, ReadArgs};
use super::{entry_frame, id_frame, parse, reply};
use crate::cmd::args::err;
use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::stream::{StreamId, StreamValue};
use bytes::Bytes;

const DOLLAR: &str = "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.";

/// Where one stream is read from.
#[derive(Clone, Copy)]
enum From {
    /// `>`: entries after the group's last delivered id.
    New,
    /// The consumer's pending entries from after this id.
    History(StreamId),
}

pub fn xreadgroup(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(xreadgroup_inner(ctx, argv).map(|r| r.unwrap_or(Frame::NullArray)))
}

/// The reply, or `None` when nothing could be served (XREADGROUP ... BLOCK waits then).
pub fn xreadgroup_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Option<Frame>, Frame> {
    let a = parse_read_args(argv, true)?;
    let froms = resolve(ctx, argv, &a)?;
    let (group, consumer) = a.group.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (i, from) in froms.into_iter().enumerate() {
        let key = &argv[a.keys_at + i];
        let Ok(Some(s)) = ctx.get_stream(key) else { continue };
        let serve = match from {
            From::History(_) => true,
            From::New => s.groups.get(&group).is_some_and(|g| !s.is_empty() && s.last_valid_id() > g.last_id),
        };
        if !serve {
            continue;
        }
        let now = ctx.now_ms;
        let had_consumer = has_consumer(ctx, key, &group, &consumer);
        let Ok(Some(s)) = ctx.stream_mut(key, false) else { continue };
        let entries = match from {
            From::New => deliver_new(s, &group, &consumer, a.count, a.noack, now),
            From::History(after) => replay_history(s, &group, &consumer, after, a.count, now),
        };
        notify_new_consumer(ctx, key, &group, &consumer, had_consumer);
        out.push((Frame::Bulk(key.clone()), Frame::Array(entries)));
    }
    Ok((!out.is_empty()).then_some(Frame::PairsMap(out)))
}

/// Checks every key (type, group) and id in Redis's order.
fn resolve(ctx: &WriteCtx, argv: &[Bytes], a: &ReadArgs) -> Result<Vec<From>, Frame> {
    let (group, _) = a.group.as_ref().ok_or_else(|| err("ERR Missing GROUP option for XREADGROUP"))?;
    let mut froms = Vec::with_capacity(a.n);
    for i in 0..a.n {
        let key = &argv[a.keys_at + i];
        let s = ctx.get_stream(key)?;
        if !s.is_some_and(|s| s.groups.contains_key(group)) {
            return Err(no_key_or_group(key, group, " in XREADGROUP with GROUP option"));
        }
        let arg = &argv[a.keys_at + a.n + i];
        froms.push(match arg.as_ref() {
            b"$" => return Err(err(DOLLAR)),
            b">" => From::New,
            _ => From::History(parse::strict_id(arg, 0)?),
        });
    }
    Ok(froms)
}

/// Whether the group `group` of the stream at `key` has `consumer` (before a command that
/// may create it: see [`notify_new_consumer`]).
pub(super) fn has_consumer(ctx: &WriteCtx, key: &[u8], group: &[u8], consumer: &[u8]) -> bool {
    let group = ctx.get_stream(key).ok().flatten().and_then(|s| s.groups.get(group));
    group.is_some_and(|g| g.consumers.contains_key(consumer))
}

/// Announces `consumer` as `xgroup-createconsumer` if the command created it (Redis's
/// `streamCreateConsumer` notifies).
pub(super) fn notify_new_consumer(ctx: &mut WriteCtx, key: &[u8], group: &[u8], consumer: &[u8], had: bool) {
    if !had && has_consumer(ctx, key, group, consumer) {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
}

/// Looks the consumer up (refreshing its seen time) or creates it.
fn touch_consumer(s: &mut StreamValue, group: &Bytes, consumer: &Bytes, now: u64) {
    if let Some(g) = s.groups.get_mut(group) {
        match g.consumers.get_mut(consumer) {
            Some(c) => c.seen_time = now,
            None => {
                g.create_consumer(consumer, now);
            }
        }
    }
}

/// `>`: up to `count` (0: all) entries after the group's last id, recorded as delivered.
pub(super) fn deliver_new(
    s: &mut StreamValue,
    group: &Bytes,
    consumer: &Bytes,
    count: usize,
    noack: bool,
    now: u64,
) -> Vec<Frame> {
    touch_consumer(s, group, consumer, now);
    let Some(start) = s.groups.get(group).and_then(|g| g.last_id.next()) else { return Vec::new() };
    let limit = if count == 0 { usize::MAX } else { count };
    let picked: Vec<(StreamId, Frame)> =
        s.range(start, StreamId::MAX).take(limit).map(|e| (e.id(), entry_frame(&e))).collect();
    for (id, _) in &picked {
        s.advance_group(group, *id);
        if !noack {
            if let Some(g) = s.groups.get_mut(group) {
                g.deliver(*id, consumer, now);
            }
        }
    }
    picked.into_iter().map(|(_, f)| f).collect()
}

/// A history read: the consumer's pending entries after `after`; each one still in the
/// stream counts as delivered again, a deleted one shows as `[id, nil]`.
fn replay_history(
    s: &mut StreamValue,
    group: &Bytes,
    consumer: &Bytes,
    after: StreamId,
    count: usize,
    now: u64,
) -> Vec<Frame> {
    touch_consumer(s, group, consumer, now);
    let Some(start) = after.next() else { return Vec::new() };
    let limit = if count == 0 { usize::MAX } else { count };
    let ids: Vec<StreamId> = s
        .groups
        .get(group)
        .and_then(|g| g.consumers.get(consumer))
        .map(|c| c.pending.range(start..).take(limit).copied().collect())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match s.get(id).map(|e| entry_frame(&e)) {
            Some(frame) => {
                out.push(frame);
                if let Some(p) = s.groups.get_mut(group).and_then(|g| g.pel.get_mut(&id)) {
                    p.delivery_time = now;
                    p.delivery_count += 1;
                }
            }
            None => out.push(Frame::Array(vec![id_frame(id), Frame::NullArray])),
        }
    }
    out
}
