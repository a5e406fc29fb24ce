//! The blocking list commands: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP. Each is a row of
//! [`BlockingSpec`] (how it parses its timeout, which keys it waits on, one try); the command
//! table's handlers run them without blocking (inside MULTI or a script), and
//! `crate::cmd::blocking` blocks them. Replies as Redis 7.0.15's `blockingPopGenericCommand`,
//! `blmoveGenericCommand` and `serveClientBlockedOnList` give them.

use super::moves::{lmpop_inner, lmpop_parse, move_one};
use super::side;
use crate::cmd::blocking::{run_nonblocking, seconds_timeout, Attempt, BlockingSpec};
use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use crate::store::notify;
use bytes::Bytes;
use std::ops::Range;

pub static BLOCKING: &[BlockingSpec] = &[
    BlockingSpec {
        name: "blpop",
        timeout: last_arg_timeout,
        wait_keys: all_but_last,
        attempt: blpop_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: true,
    },
    BlockingSpec {
        name: "brpop",
        timeout: last_arg_timeout,
        wait_keys: all_but_last,
        attempt: brpop_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: true,
    },
    BlockingSpec {
        name: "brpoplpush",
        timeout: last_arg_timeout,
        wait_keys: first_key,
        attempt: brpoplpush_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::Null,
        stop_when_absent: true,
    },
    BlockingSpec {
        name: "blmove",
        timeout: blmove_timeout,
        wait_keys: first_key,
        attempt: blmove_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::Null,
        stop_when_absent: true,
    },
    BlockingSpec {
        name: "blmpop",
        timeout: blmpop_timeout,
        wait_keys: numkeys_keys,
        attempt: blmpop_attempt,
        timeout_reply: Frame::NullArray,
        nonblocking_reply: Frame::NullArray,
        stop_when_absent: true,
    },
];

pub(super) fn blpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[0], ctx, argv)
}

pub(super) fn brpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[1], ctx, argv)
}

pub(super) fn brpoplpush(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[2], ctx, argv)
}

pub(super) fn blmove(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[3], ctx, argv)
}

pub(super) fn blmpop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    run_nonblocking(&BLOCKING[4], ctx, argv)
}

/// `CMD key [key ...] timeout`, `BRPOPLPUSH src dst timeout`.
pub(crate) fn last_arg_timeout(argv: &[Bytes]) -> Result<Option<u64>, Frame> {
    seconds_timeout(&argv[argv.len() - 1]).map(Some)
}

pub(crate) fn all_but_last(argv: &[Bytes]) -> Range<usize> {
    1..argv.len() - 1
}

fn first_key(_: &[Bytes]) -> Range<usize> {
    1..2
}

/// `BLMPOP timeout numkeys key... where [COUNT n]`: the keys.
pub(crate) fn numkeys_keys(argv: &[Bytes]) -> Range<usize> {
    let n = crate::cmd::args::int(&argv[2]).ok().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    3..3usize.saturating_add(n).min(argv.len())
}

/// The positions are checked before the timeout, as Redis does.
fn blmove_timeout(argv: &[Bytes]) -> Result<Option<u64>, Frame> {
    side(&argv[3])?;
    side(&argv[4])?;
    seconds_timeout(&argv[5]).map(Some)
}

/// Everything LMPOP checks, then the timeout: LMPOP's parser run on the arguments after the
/// timeout (it reads `argv[1]` as numkeys).
fn blmpop_timeout(argv: &[Bytes]) -> Result<Option<u64>, Frame> {
    lmpop_parse(&argv[1..])?;
    seconds_timeout(&argv[1]).map(Some)
}

/// Whether `key` holds a list with something to pop (a retry waits on anything else).
fn has_items(ctx: &WriteCtx, key: &[u8]) -> bool {
    matches!(ctx.get_list(key), Ok(Some(l)) if !l.is_empty())
}

/// BLPOP / BRPOP: `[key, element]` from the first non-empty list (or from the ready one).
fn pop_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>, left: bool) -> Attempt {
    let keys = &argv[all_but_last(argv)];
    for key in keys {
        if ready.is_some_and(|r| r != key.as_ref()) {
            continue;
        }
        match ctx.get_list(key) {
            Err(e) if ready.is_none() => return Attempt::Done(e),
            Ok(Some(l)) if !l.is_empty() => {}
            _ => continue,
        }
        let Ok(Some(l)) = ctx.list_mut(key, false) else { continue };
        let Some(item) = l.pop(left) else { continue };
        ctx.notify(notify::LIST, if left { "lpop" } else { "rpop" }, key);
        ctx.remove_if_empty(key);
        return Attempt::Done(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Bulk(item)]));
    }
    Attempt::Block(None)
}

fn blpop_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    pop_attempt(ctx, argv, ready, true)
}

fn brpop_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    pop_attempt(ctx, argv, ready, false)
}

/// BLMOVE / BRPOPLPUSH: waits while the source is absent; once it holds a list, LMOVE runs
/// (a destination of another type answers WRONGTYPE, even on a retry, as Redis does).
fn move_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>, from_left: bool, to_left: bool) -> Attempt {
    let (src, dst) = (&argv[1], &argv[2]);
    match (ready, ctx.get_list(src)) {
        (None, Err(e)) => return Attempt::Done(e),
        (None, Ok(None)) => return Attempt::Block(None),
        (Some(_), _) if !has_items(ctx, src) => return Attempt::Block(None),
        _ => {}
    }
    Attempt::Done(move_one(ctx, src, dst, from_left, to_left).unwrap_or_else(|e| e))
}

fn brpoplpush_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    move_attempt(ctx, argv, ready, false, true)
}

fn blmove_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    match (side(&argv[3]), side(&argv[4])) {
        (Ok(from_left), Ok(to_left)) => move_attempt(ctx, argv, ready, from_left, to_left),
        (Err(e), _) | (_, Err(e)) => Attempt::Done(e),
    }
}

/// BLMPOP: LMPOP on the arguments after the timeout; a retry pops from the ready key only.
fn blmpop_attempt(ctx: &mut WriteCtx, argv: &[Bytes], ready: Option<&[u8]>) -> Attempt {
    let lmpop_argv: Vec<Bytes>;
    let lmpop_argv: &[Bytes] = match ready {
        None => &argv[1..],
        Some(key) => {
            if !has_items(ctx, key) {
                return Attempt::Block(None);
            }
            // The same command with the ready key as its only key.
            let keys = numkeys_keys(argv);
            lmpop_argv =
                [&argv[1..2], &[Bytes::from_static(b"1"), Bytes::copy_from_slice(key)], &argv[keys.end..]].concat();
            &lmpop_argv
        }
    };
    match lmpop_inner(ctx, lmpop_argv) {
        Ok(Frame::NullArray) => Attempt::Block(None),
        Ok(reply) | Err(reply) => Attempt::Done(reply),
    }
}
