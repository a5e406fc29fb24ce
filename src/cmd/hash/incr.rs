//! HINCRBY and HINCRBYFLOAT: read a field as a number, add, store the decimal text back.

use super::reply;
use crate::cmd::args::{self, err};
use crate::cmd::WriteCtx;
use crate::protocol::{parse_i64, Frame};
use crate::store::notify;
use bytes::Bytes;

/// The current value of `field` (None when the key or field is absent); WRONGTYPE as usual.
fn current(ctx: &WriteCtx, key: &[u8], field: &[u8]) -> Result<Option<Bytes>, Frame> {
    Ok(ctx.get_hash(key)?.and_then(|h| h.get(field)).cloned())
}

/// Stores the new text of `field` (creating the hash if needed).
fn store(ctx: &mut WriteCtx, key: &[u8], field: &Bytes, text: Bytes) -> Result<(), Frame> {
    if let Some(h) = ctx.hash_mut(key, true)? {
        h.insert(field.clone(), text);
    }
    Ok(())
}

pub(super) fn hincrby(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(incr_int(ctx, argv))
}

fn incr_int(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let incr = args::int(&argv[3])?;
    let old = match current(ctx, &argv[1], &argv[2])? {
        Some(v) => parse_i64(&v).ok_or_else(|| err("ERR hash value is not an integer"))?,
        None => 0,
    };
    let new = old.checked_add(incr).ok_or_else(|| err(args::OVERFLOW))?;
    store(ctx, &argv[1], &argv[2], Bytes::from(new.to_string()))?;
    ctx.notify(notify::HASH, "hincrby", &argv[1]);
    Ok(Frame::Integer(new))
}

pub(super) fn hincrbyfloat(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(incr_float(ctx, argv))
}

fn incr_float(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let incr = args::float(&argv[3])?;
    if !incr.is_finite() {
        return Err(err("ERR value is NaN or Infinity"));
    }
    let old = match current(ctx, &argv[1], &argv[2])? {
        Some(v) => args::parse_float(&v).ok_or_else(|| err("ERR hash value is not a float"))?,
        None => 0.0,
    };
    let new = old + incr;
    if !new.is_finite() {
        return Err(err("ERR increment would produce NaN or Infinity"));
    }
    let text = Bytes::from(format_float(new));
    store(ctx, &argv[1], &argv[2], text.clone())?;
    ctx.notify(notify::HASH, "hincrbyfloat", &argv[1]);
    Ok(Frame::Bulk(text))
}

/// The text HINCRBYFLOAT stores: Rust's shortest round-trip form, never with an exponent
/// (Redis prints a long double with `%.17Lf` and trims zeros; see docs/COMMANDS.md), and
/// no negative zero.
pub fn format_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::format_float;

    #[test]
    fn floats_print_without_exponent() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(1.5e-5), "0.000015");
        assert_eq!(format_float(1e21), "1000000000000000000000");
    }
}
