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
/// float (hex allowed), no leading space, no NaN, no overflow (Redis's `string2d` checks).
pub fn parse_score(arg: &[u8]) -> Option<f64> {
    crate::cnum::string2d(arg)
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
    crate::cnum::strtod_skipping_space(text).map(|(v, _)| (v, ex))
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
