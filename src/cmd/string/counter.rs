//! Counters on string values: INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT. The TTL of an existing
//! key is kept (Redis overwrites the value in place).
//!
//! INCRBYFLOAT: Redis computes in x87 `long double` and prints with `%.17Lf`; we do the same
//! in software (see `longdouble`). The stored value is that text, so replicas agree.

use super::{longdouble, overwrite_string};
use crate::cmd::args::{self, err, NOT_INTEGER, OVERFLOW};
use crate::cmd::WriteCtx;
use crate::protocol::{parse_i64, Frame};
use crate::store::notify;
use bytes::Bytes;

const NOT_FLOAT: &str = "ERR value is not a valid float";

pub(super) fn incr(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    incr_by(ctx, &argv[1], 1)
}

pub(super) fn decr(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    incr_by(ctx, &argv[1], -1)
}

pub(super) fn incrby(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match args::int(&argv[2]) {
        Ok(n) => incr_by(ctx, &argv[1], n),
        Err(e) => e,
    }
}

pub(super) fn decrby(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match args::int(&argv[2]) {
        Ok(i64::MIN) => err("ERR decrement would overflow"),
        Ok(n) => incr_by(ctx, &argv[1], -n),
        Err(e) => e,
    }
}

/// Adds `delta` to the integer at `key` (absent counts as 0) and replies with the result.
fn incr_by(ctx: &mut WriteCtx, key: &Bytes, delta: i64) -> Frame {
    let old = match ctx.get_str(key) {
        Ok(None) => 0,
        Ok(Some(v)) => match parse_i64(v) {
            Some(n) => n,
            None => return err(NOT_INTEGER),
        },
        Err(e) => return e,
    };
    let Some(new) = old.checked_add(delta) else { return err(OVERFLOW) };
    overwrite_string(ctx, key, Bytes::from(new.to_string()));
    ctx.notify(notify::STRING, "incrby", key);
    Frame::Integer(new)
}

/// INCRBYFLOAT: the stored value is checked before the increment, as in Redis.
pub(super) fn incrbyfloat(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let old = match ctx.get_str(&argv[1]) {
        Ok(None) => longdouble::parse(b"0"),
        Ok(Some(v)) => longdouble::parse(v),
        Err(e) => return e,
    };
    let (Some(old), Some(incr)) = (old, longdouble::parse(&argv[2])) else { return err(NOT_FLOAT) };
    let Some(text) = longdouble::add_and_format(old, incr) else {
        return err("ERR increment would produce NaN or Infinity");
    };
    let text = Bytes::from(text);
    overwrite_string(ctx, &argv[1], text.clone());
    ctx.notify(notify::STRING, "incrbyfloat", &argv[1]);
    Frame::Bulk(text)
}
