//! Counters on string values: INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT. The TTL of an existing
//! key is kept (Redis overwrites the value in place).
//!
//! INCRBYFLOAT: Redis computes in `long double` and prints with `%.17Lf`; we compute in `f64`
//! and print the shortest round-trip form, rounded to 17 decimals when longer. The stored
//! value is that text, so every replica stores the same bytes.

use super::overwrite_string;
use crate::cmd::args::{self, err, NOT_INTEGER, OVERFLOW};
use crate::cmd::WriteCtx;
use crate::protocol::{parse_i64, Frame};
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
    Frame::Integer(new)
}

/// INCRBYFLOAT: the stored value is checked before the increment, as in Redis.
pub(super) fn incrbyfloat(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let old = match ctx.get_str(&argv[1]) {
        Ok(None) => 0.0,
        Ok(Some(v)) => match parse_long_double(v) {
            Some(x) => x,
            None => return err(NOT_FLOAT),
        },
        Err(e) => return e,
    };
    let Some(incr) = parse_long_double(&argv[2]) else { return err(NOT_FLOAT) };
    let sum = old + incr;
    if !sum.is_finite() {
        return err("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(format_long_double(sum));
    overwrite_string(ctx, &argv[1], text.clone());
    Frame::Bulk(text)
}

/// Redis's `string2ld` (C `strtold` on the whole text): optional sign, decimal or hex
/// (`0x1p3`) notation, `inf`/`infinity`; no spaces, no NaN, under 5120 bytes.
pub fn parse_long_double(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= 5120 {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let v = if body.len() > 2 && body.as_bytes()[..2].eq_ignore_ascii_case(b"0x") {
        parse_hex_float(&body[2..])?
    } else if body.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == 'i' || c == 'I') {
        body.parse::<f64>().ok()?
    } else {
        return None;
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// The part of a C hex float after `0x`: hex digits, optional fraction, optional `p` exponent.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int_part.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let e: i32 = match exp {
        None => 0,
        Some(e) => e.parse().ok()?,
    };
    Some(v * 2f64.powi(e))
}

/// Formats like Redis's `ld2string(.., LD_STR_HUMAN)`: plain decimal, no exponent, at most
/// 17 decimals, trailing zeros dropped, `-0` printed as `0`.
pub fn format_long_double(v: f64) -> String {
    let mut s = format!("{v}");
    if s.split_once('.').is_some_and(|(_, frac)| frac.len() > 17) {
        s = format!("{v:.17}");
        s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_strtold() {
        assert_eq!(parse_long_double(b"10.5"), Some(10.5));
        assert_eq!(parse_long_double(b"+1"), Some(1.0));
        assert_eq!(parse_long_double(b"-.5"), Some(-0.5));
        assert_eq!(parse_long_double(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_long_double(b"0x10"), Some(16.0));
        assert_eq!(parse_long_double(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_long_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_long_double(b"InFinity"), Some(f64::INFINITY));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"abc",
            b"1e",
            b"0x",
            b"--1",
            b"+-1",
            b"1,5",
            "0é".as_bytes(),
            "é".as_bytes(),
            b"0x1p++3",
        ] {
            assert_eq!(parse_long_double(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn formats_like_redis_human_mode() {
        assert_eq!(format_long_double(10.6), "10.6");
        assert_eq!(format_long_double(3.0), "3");
        assert_eq!(format_long_double(5.0e3), "5000");
        assert_eq!(format_long_double(-0.0), "0");
        assert_eq!(format_long_double(1e-20), "0");
        assert_eq!(format_long_double(-1e-20), "0");
        assert_eq!(format_long_double(1.5e-10), "0.00000000015");
        assert_eq!(format_long_double(1e20), "100000000000000000000");
    }
}
