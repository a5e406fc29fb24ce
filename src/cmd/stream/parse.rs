//! Parsing of stream ids and of the trimming options XADD and XTRIM share, with Redis 7.0's
//! exact acceptance rules (t_stream.c `streamGenericParseIDOrReply`, which reads each number
//! with `string2ull`: strict decimal first, then C's `strtoull`, so `007`, `+7` and ` 7` are
//! ids too) and error texts.

use super::super::args::{err, int, is, syntax};
use crate::protocol::{parse_i64, Frame};
use crate::store::stream::{StreamId, Trim};
use bytes::Bytes;

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn invalid() -> Frame {
    err(INVALID_ID)
}

/// `string2ull`: `string2ll` when it gives a non-negative number, otherwise `strtoull` over
/// the whole text (leading spaces, a sign, leading zeros; a `-` negates modulo 2^64).
pub fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let s = &s[s.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).count()..];
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The text of an argument as Redis's C string sees it: up to the first NUL byte.
fn c_str(arg: &[u8]) -> &[u8] {
    &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())]
}

/// An id in `ms-seq` or `ms` form (`seq` then `missing_seq`); `-` and `+` unless `strict`.
/// With `allow_auto_seq` the form `ms-*` is accepted: the second value is then false.
fn parse_generic(arg: &[u8], missing_seq: u64, strict: bool, allow_auto_seq: bool) -> Result<(StreamId, bool), Frame> {
    if arg.len() > 127 {
        return Err(invalid());
    }
    let s = c_str(arg);
    match s {
        b"-" | b"+" if strict => return Err(invalid()),
        b"-" => return Ok((StreamId::MIN, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms_text, seq_text) = match s.iter().position(|&b| b == b'-') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let ms = string2ull(ms_text).ok_or_else(invalid)?;
    match seq_text {
        Some(b"*") if allow_auto_seq => Ok((StreamId::new(ms, 0), false)),
        Some(t) => Ok((StreamId::new(ms, string2ull(t).ok_or_else(invalid)?), true)),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// An id where `-` and `+` mean the smallest and largest ids.
pub fn id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Frame> {
    parse_generic(arg, missing_seq, false, false).map(|(id, _)| id)
}

/// An id where `-` and `+` are refused.
pub fn strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Frame> {
    parse_generic(arg, missing_seq, true, false).map(|(id, _)| id)
}

/// A range bound: `(id` is exclusive (and strict), anything else is [`id`].
pub fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Frame> {
    if arg.len() > 1 && arg[0] == b'(' {
        parse_generic(&arg[1..], missing_seq, true, false).map(|(id, _)| (id, true))
    } else {
        id(arg, missing_seq).map(|id| (id, false))
    }
}

/// XADD's and XTRIM's options.
#[derive(Debug, Default)]
pub struct AddTrimArgs {
    /// XADD: the explicit id (`None` for `*`) and whether its sequence was given (`ms-*`).
    pub id: Option<(StreamId, bool)>,
    pub no_mkstream: bool,
    pub trim: Option<Trim>,
    pub approx: bool,
    /// 0 means no limit.
    pub limit: u64,
    /// XADD: where the id argument is (the fields follow it).
    pub id_pos: usize,
}

const BOTH_STRATEGIES: &str = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";

/// Redis's `streamParseAddOrTrimArgsOrReply`: options from `argv[2]`, for XADD up to its id.
/// `default_limit`: the LIMIT of approximate trimming when none is given
/// (`store::Settings::default_trim_limit`).
pub fn add_or_trim_args(argv: &[Bytes], xadd: bool, default_limit: u64) -> Result<AddTrimArgs, Frame> {
    let mut a = AddTrimArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = &argv[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if a.trim.is_some() {
                return Err(err(BOTH_STRATEGIES));
            }
            a.approx = false;
            let next = argv[i + 1].as_ref();
            if more >= 2 && (next == b"~" || next == b"=") {
                a.approx = next == b"~";
                i += 1;
            }
            let value = &argv[i + 1];
            a.trim = Some(if is(opt, "maxlen") {
                let n = int(value)?;
                if n < 0 {
                    return Err(err("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(strict_id(value, 0)?)
            });
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = int(&argv[i + 1])?;
            if n < 0 {
                return Err(err("ERR The LIMIT argument must be >= 0."));
            }
            a.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            a.no_mkstream = true;
        } else if xadd {
            a.id = Some(parse_generic(opt, 0, true, true)?);
            break;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    a.id_pos = i;
    check_trim_args(&mut a, xadd, limit_given, default_limit)?;
    Ok(a)
}

/// The combinations Redis refuses, and the default LIMIT of approximate trimming.
fn check_trim_args(a: &mut AddTrimArgs, xadd: bool, limit_given: bool, default_limit: u64) -> Result<(), Frame> {
    if a.limit > 0 && a.trim.is_none() {
        return Err(err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && a.trim.is_none() {
        return Err(err("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit_given {
        if !a.approx {
            return Err(err("ERR syntax error, LIMIT cannot be used without the special ~ option"));
        }
    } else {
        a.limit = if a.approx { default_limit } else { 0 };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ull_accepts_what_strtoull_does() {
        assert_eq!(string2ull(b"12"), Some(12));
        assert_eq!(string2ull(b"007"), Some(7));
        assert_eq!(string2ull(b"+7"), Some(7));
        assert_eq!(string2ull(b" 7"), Some(7));
        assert_eq!(string2ull(b"-0"), Some(0));
        assert_eq!(string2ull(b"-5"), None);
        assert_eq!(string2ull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(string2ull(b"18446744073709551616"), None);
        assert_eq!(string2ull(b""), None);
        assert_eq!(string2ull(b"1x"), None);
        assert_eq!(string2ull(b"7 "), None);
    }

    #[test]
    fn ids_in_every_form() {
        assert_eq!(id(b"5", 9), Ok(StreamId::new(5, 9)));
        assert_eq!(id(b"5-3", 9), Ok(StreamId::new(5, 3)));
        assert_eq!(id(b"-", 9), Ok(StreamId::MIN));
        assert_eq!(id(b"+", 9), Ok(StreamId::MAX));
        assert!(strict_id(b"+", 0).is_err());
        assert!(id(b"5-", 0).is_err());
        assert!(id(b"-5", 0).is_err());
        assert!(id(b"5-*", 0).is_err());
        assert_eq!(parse_generic(b"5-*", 0, true, true), Ok((StreamId::new(5, 0), false)));
        assert_eq!(interval_id(b"(5-3", 0), Ok((StreamId::new(5, 3), true)));
        assert!(interval_id(b"(+", 0).is_err());
        assert_eq!(interval_id(b"(", 0).map(|(i, _)| i), Err(invalid()));
        assert!(id(&[b'1'; 128], 0).is_err());
    }
}
