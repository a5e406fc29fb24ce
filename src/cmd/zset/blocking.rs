//! The blocking sorted set commands: BZPOPMIN, BZPOPMAX, BZMPOP, as rows of [`BlockingSpec`]
//! (see `crate::cmd::blocking`). Replies as Redis 7.0.15's `blockingGenericZpopCommand` and
//! `serveClientsBlockedOnSortedSetKey` give them.

use super::write::{pop, zmpop_from, zmpop_parse};
use crate::cmd::blocking::{run_nonblocking, seconds_timeout, Attempt, BlockingSpec};
use crate::cmd::list::{all_but_last, last_arg_timeout, numkeys_keys};
use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use bytes::Bytes;

pub static BLOCKING: &[BlockingSpec] = &[
    BlockingSpec {
        name: "bzpopmin",
        timeout: last_arg_timeout,
        wait_keys: all_but_last,
        attempt: bzpopmin_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: true,
    },
    BlockingSpec {
        name: "bzpopmax",
        timeout: last_arg_timeout,
        wait_keys: all_but_last,
        attempt: bzpopmax_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: true,
    },
    BlockingSpec {
        name: "bzmpop",
        timeout: bzmpop_timeout,
        wait_keys: numkeys_keys,
        attempt: bzmpop_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: true,
    },
];

pub(super) fn bzpopmin(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[0], ctx, argv)
}

pub(super) fn bzpopmax(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[1], ctx, argv)
}

pub(super) fn bzmpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[2], ctx, argv)
}

/// ZMPOP's checks on the arguments after the timeout, then the timeout.
fn bzmpop_timeout(argv: &[Bytes]) -> Result<Option<u64>, Frame> {
    zmpop_parse(&argv[1..])?;
    seconds_timeout(&argv[1]).map(Some)
}

/// Whether `key` holds a sorted set (Redis never keeps an empty one).
fn has_members(ctx: &WriteCtx, key: &[u8]) -> bool {
    matches!(ctx.get_zset(key), Ok(Some(z)) if !z.is_empty())
}

/// BZPOPMIN / BZPOPMAX: `[key, member, score]` from the first non-empty sorted set (or from
/// the ready one).
fn zpop_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>, max: bool) -> Attempt {
    for key in &argv[all_but_last(argv)] {
        if ready.is_some_and(|r| r != key.as_ref()) {
            continue;
        }
        match ctx.get_zset(key) {
            Err(e) if ready.is_none() => return Attempt::Done(e),
            Ok(Some(z)) if !z.is_empty() => {}
            _ => continue,
        }
        let Some((member, score)) = pop(ctx, key, 1, max).into_iter().next() else { continue };
        return Attempt::Done(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Bulk(member), Frame::Double(score)]));
    }
    Attempt::Block(None)
}

fn bzpopmin_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    zpop_attempt(ctx, argv, ready, false)
}

fn bzpopmax_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    zpop_attempt(ctx, argv, ready, true)
}

/// BZMPOP: ZMPOP on the arguments after the timeout; a retry pops from the ready key only.
fn bzmpop_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    let parsed = match zmpop_parse(&argv[1..]) {
        Ok(parsed) => parsed,
        Err(e) => return Attempt::Done(e),
    };
    let reply = match ready {
        None => zmpop_from(ctx, &argv[parsed.keys.start + 1..parsed.keys.end + 1], &parsed),
        Some(key) if has_members(ctx, key) => zmpop_from(ctx, &[Bytes::copy_from_slice(key)], &parsed),
        Some(_) => return Attempt::Block(None),
    };
    match reply {
        Frame::NullArray => Attempt::Block(None),
        reply => Attempt::Done(reply),
    }
}
