//! XREAD and XREADGROUP with BLOCK, as rows of [`BlockingSpec`] (see `crate::cmd::blocking`):
//! the first try is the command itself at apply; a waiter is retried when a write changes one
//! of its streams, and then serves from that stream only, as Redis 7.0's
//! `serveClientsBlockedOnStreamKey` does. A retried XREADGROUP delivers at the log position
//! of the write that woke it, so each entry goes to exactly one waiting consumer.

use super::group::err_parts;
use super::read::{parse_read_args, resolve_ids, xread_inner, ReadArgs};
use super::readgroup::{deliver_new, has_consumer, notify_new_consumer, xreadgroup_inner};
use super::{entry_frame, parse};
use crate::cmd::blocking::{Attempt, BlockingSpec};
use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use crate::store::stream::StreamId;
use bytes::Bytes;
use std::ops::Range;

/// The COUNT of a served waiter that gave none (`XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_DEFAULT_COUNT: usize = 1000;

pub static BLOCKING: &[BlockingSpec] = &[
    BlockingSpec {
        name: "xread",
        timeout: xread_timeout,
        wait_keys: stream_keys,
        attempt: xread_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: false,
    },
    BlockingSpec {
        name: "xreadgroup",
        timeout: xreadgroup_timeout,
        wait_keys: stream_keys,
        attempt: xreadgroup_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: false,
    },
];

fn xread_timeout(argv: &[Bytes]) -> Result<Option<u64>, Frame> {
    parse_read_args(argv, false).map(|a| a.block_ms)
}

fn xreadgroup_timeout(argv: &[Bytes]) -> Result<Option<u64>, Frame> {
    parse_read_args(argv, true).map(|a| a.block_ms)
}

fn stream_keys(argv: &[Bytes]) -> Range<usize> {
    let keys = super::stream_keys(argv);
    match (keys.first(), keys.last()) {
        (Some(&a), Some(&b)) => a..b + 1,
        _ => 0..0,
    }
}

/// The index among `a`'s keys of `key`.
fn key_index(argv: &[Bytes], a: &ReadArgs, key: &[u8]) -> Option<usize> {
    (0..a.n).find(|&i| argv[a.keys_at + i].as_ref() == key)
}

fn xread_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    let a = match parse_read_args(argv, false) {
        Ok(a) => a,
        Err(e) => return Attempt::Done(e),
    };
    let Some(key) = ready else { return xread_first(ctx, argv, &a) };
    let Some(i) = key_index(argv, &a, key) else { return Attempt::Block(None) };
    let Ok(after) = parse::strict_id(&argv[a.keys_at + a.n + i], 0) else { return Attempt::Block(None) };
    let Ok(Some(s)) = ctx.get_stream(key) else { return Attempt::Block(None) };
    if s.last_id <= after {
        return Attempt::Block(None);
    }
    let count = if a.count == 0 { usize::MAX } else { a.count };
    let start = after.next().unwrap_or(StreamId::MAX);
    let entries = s.range(start, StreamId::MAX).take(count).map(|e| entry_frame(&e)).collect();
    Attempt::Done(one_stream(key, entries))
}

/// `[[key, entries]]`: a waiter is served from the one stream that woke it.
fn one_stream(key: &[u8], entries: Vec<Frame>) -> Frame {
    Frame::PairsMap(vec![(Frame::Bulk(Bytes::copy_from_slice(key)), Frame::Array(entries))])
}

/// The first try: served like XREAD; otherwise the waiter keeps a form with `$` replaced by
/// each stream's last id now, and the COUNT a served waiter gets.
fn xread_first(ctx: &mut WriteCtx, argv: &[Bytes], a: &ReadArgs) -> Attempt {
    let mut read = ctx.read();
    match xread_inner(&mut read, argv) {
        Err(e) => Attempt::Done(e),
        Ok(Some(reply)) => Attempt::Done(reply),
        Ok(None) => {
            let ids = match resolve_ids(&read, argv, a) {
                Ok(ids) => ids,
                Err(e) => return Attempt::Done(e),
            };
            let count = if a.count == 0 { BLOCKED_DEFAULT_COUNT } else { a.count };
            let mut form = vec![argv[0].clone(), Bytes::from_static(b"COUNT"), Bytes::from(count.to_string())];
            form.push(Bytes::from_static(b"STREAMS"));
            form.extend_from_slice(&argv[a.keys_at..a.keys_at + a.n]);
            form.extend(ids.into_iter().map(|id| id.to_bytes()));
            Attempt::Block(Some(form))
        }
    }
}

fn xreadgroup_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    let a = match parse_read_args(argv, true) {
        Ok(a) => a,
        Err(e) => return Attempt::Done(e),
    };
    let Some(key) = ready else {
        return match xreadgroup_inner(ctx, argv) {
            Err(e) => Attempt::Done(e),
            Ok(Some(reply)) => Attempt::Done(reply),
            Ok(None) => Attempt::Block(None),
        };
    };
    if key_index(argv, &a, key).is_none() {
        return Attempt::Block(None);
    }
    let (group, consumer) = a.group.clone().unwrap_or_default();
    let (last_id, group_last) = match ctx.get_stream(key) {
        Ok(Some(s)) => (s.last_id, s.groups.get(&group).map(|g| g.last_id)),
        // Redis unblocks a group reader whose stream was deleted or replaced.
        _ => return Attempt::Done(err_parts(&[b"UNBLOCKED the stream key no longer exists"])),
    };
    let Some(group_last) = group_last else {
        return Attempt::Done(err_parts(&[b"NOGROUP the consumer group this client was blocked on no longer exists"]));
    };
    if last_id <= group_last {
        return Attempt::Block(None);
    }
    let now = ctx.now_ms;
    let count = if a.count == 0 { BLOCKED_DEFAULT_COUNT } else { a.count };
    let had_consumer = has_consumer(ctx, key, &group, &consumer);
    let Ok(Some(s)) = ctx.stream_mut(key, false) else { return Attempt::Block(None) };
    let entries = deliver_new(s, &group, &consumer, count, a.noack, now);
    notify_new_consumer(ctx, key, &group, &consumer, had_consumer);
    Attempt::Done(one_stream(key, entries))
}
