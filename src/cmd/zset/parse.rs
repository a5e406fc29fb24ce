//! Parsing of scores (C `strtod` rules, as Redis: hex floats, `inf`, overflow checks) and of
//! score ranges (`(1.5`, `-inf`) and lex ranges (`[a`, `(a`, `-`, `+`).

use crate::protocol::Frame;
use bytes::Bytes;

/// `ERR min or max is not a float`
pub const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
/// `ERR min or max not valid string range item`
pub const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// A score range: `min`/`max` with exclusive flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub minex: bool,
    pub max: f64,
    pub maxex: bool,
}

impl ScoreRange {
    /// True for scores below the range's lower end (a prefix of the sorted set).
    pub fn below_min(&self, s: f64) -> bool {
        if self.minex {
            s <= self.min
        } else {
            s < self.min
        }
    }

    /// True for scores not above the range's upper end (a prefix of the sorted set).
    pub fn within_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

/// One end of a lex range.
#[derive(Debug, Clone, PartialEq)]
pub enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    /// `[x`
    Incl(Bytes),
    /// `(x`
    Excl(Bytes),
}

impl LexBound {
    /// True for members below this bound used as the lower end.
    pub fn below_min(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(x) => m < x.as_ref(),
            LexBound::Excl(x) => m <= x.as_ref(),
        }
    }

    /// True for members not above this bound used as the upper end.
    pub fn within_max(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(x) => m <= x.as_ref(),
            LexBound::Excl(x) => m < x.as_ref(),
        }
    }
}

/// A score argument as Redis's `getDoubleFromObject` reads it: the whole text must be a C
/// float (hex allowed), no leading space, no NaN, no overflow.
pub fn parse_score(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|c| is_c_space(*c)) {
        return None;
    }
    match strtod_full(arg)? {
        (v, false) => Some(v),
        (_, true) => None,
    }
}

/// `min max` of ZRANGEBYSCORE and friends (`zslParseRange`).
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Frame> {
    let (min, minex) = range_item(min).ok_or_else(|| Frame::error(NOT_FLOAT_RANGE))?;
    let (max, maxex) = range_item(max).ok_or_else(|| Frame::error(NOT_FLOAT_RANGE))?;
    Ok(ScoreRange { min, minex, max, maxex })
}

/// `min max` of ZRANGEBYLEX and friends (`zslParseLexRange`).
pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<(LexBound, LexBound), Frame> {
    match (lex_item(min), lex_item(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Frame::error(NOT_LEX_RANGE)),
    }
}

fn lex_item(arg: &[u8]) -> Option<LexBound> {
    match arg.first()? {
        b'+' if arg.len() == 1 => Some(LexBound::Max),
        b'-' if arg.len() == 1 => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(Bytes::copy_from_slice(&arg[1..]))),
        b'[' => Some(LexBound::Incl(Bytes::copy_from_slice(&arg[1..]))),
        _ => None,
    }
}

/// One end of a score range: `strtod` that must reach the end of the text; overflow is fine
/// (it gives ±inf), NaN is not. An empty text reads as 0, as `strtod` leaves it.
fn range_item(arg: &[u8]) -> Option<(f64, bool)> {
    let (text, ex) = match arg.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (arg, false),
    };
    // strtod stops at a NUL byte, which Redis then takes as the end of the string.
    let text = &text[..text.iter().position(|&c| c == 0).unwrap_or(text.len())];
    if text.is_empty() {
        return Some((0.0, ex));
    }
    let start = text.iter().position(|c| !is_c_space(*c))?;
    strtod_full(&text[start..]).map(|(v, _)| (v, ex))
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtod` over the whole text (C locale). Returns the value and whether it was out of range
/// (`ERANGE`: overflow, or a nonzero number that underflows to zero). `None` when the text is
/// not entirely a number, or is NaN.
fn strtod_full(text: &[u8]) -> Option<(f64, bool)> {
    let s = std::str::from_utf8(text).ok()?;
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.starts_with(['+', '-']) {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (v, erange) = if lower == "inf" || lower == "infinity" {
        (f64::INFINITY, false)
    } else if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex(hex)?
    } else {
        if !lower.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-')) {
            return None;
        }
        let v: f64 = lower.parse().ok()?;
        let mantissa = lower.split('e').next().unwrap_or("");
        let underflow = v == 0.0 && mantissa.bytes().any(|c| matches!(c, b'1'..=b'9'));
        (v, v.is_infinite() || underflow)
    };
    Some((if neg { -v } else { v }, erange))
}

/// The part after `0x` of a C hex float: hex digits with an optional point, then an optional
/// binary exponent `p[+-]digits`.
fn parse_hex(s: &str) -> Option<(f64, bool)> {
    let (mantissa, exp) = match s.split_once('p') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int_part.chars().chain(frac_part.chars()) {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut e: i64 = -4 * frac_part.len() as i64;
    if let Some(exp) = exp {
        let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        e = e.saturating_add(exp.parse::<i64>().unwrap_or(if exp.starts_with('-') { i64::MIN } else { i64::MAX }));
    }
    let v = v * 2f64.powi(e.clamp(-10_000, 10_000) as i32);
    let nonzero = v != 0.0 || mantissa.chars().any(|c| c.is_ascii_hexdigit() && c != '0');
    Some((v, v.is_infinite() || (v == 0.0 && nonzero)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_get_double_from_object() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1p3"), Some(8.0));
        assert_eq!(parse_score(b"-0x.8"), Some(-0.5));
        assert_eq!(parse_score(b"0x"), None);
        assert_eq!(parse_score(b"0x1p"), None);
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"5."), Some(5.0));
        assert_eq!(parse_score(b"1e-310"), Some(1e-310));
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"1e-400"), None);
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b"1 "), None);
        assert_eq!(parse_score(b""), None);
        assert_eq!(parse_score(b"1e"), None);
        assert_eq!(parse_score(b"--1"), None);
    }

    #[test]
    fn score_ranges_follow_zsl_parse_range() {
        let r = parse_score_range(b"(1.5", b"+inf").unwrap();
        assert_eq!(r, ScoreRange { min: 1.5, minex: true, max: f64::INFINITY, maxex: false });
        assert_eq!(parse_score_range(b"(", b"").unwrap().min, 0.0);
        assert_eq!(parse_score_range(b" 1", b"1e400").unwrap().max, f64::INFINITY);
        assert!(parse_score_range(b"(nan", b"1").is_err());
        assert!(parse_score_range(b"1 ", b"1").is_err());
        assert!(parse_score_range(b" ", b"1").is_err());
    }

    #[test]
    fn lex_ranges_follow_zsl_parse_lex_range() {
        let (a, b) = parse_lex_range(b"[a", b"(b").unwrap();
        assert_eq!(a, LexBound::Incl(Bytes::from_static(b"a")));
        assert_eq!(b, LexBound::Excl(Bytes::from_static(b"b")));
        assert_eq!(parse_lex_range(b"-", b"+").unwrap(), (LexBound::Min, LexBound::Max));
        assert!(parse_lex_range(b"a", b"+").is_err());
        assert!(parse_lex_range(b"-x", b"+").is_err());
        assert!(parse_lex_range(b"", b"+").is_err());
        assert!(LexBound::Excl(Bytes::from_static(b"a")).below_min(b"a"));
        assert!(!LexBound::Incl(Bytes::from_static(b"a")).below_min(b"a"));
    }
}
