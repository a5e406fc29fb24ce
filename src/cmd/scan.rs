//! The SCAN family's shared parts: cursor parsing, `MATCH` / `COUNT` / `TYPE` options, and the
//! reply shape `[cursor, [items...]]`.

use super::args::{self, is};
use super::glob;
use crate::protocol::Frame;
use bytes::Bytes;

/// Options of SCAN, HSCAN, SSCAN, ZSCAN.
#[derive(Debug, Default)]
pub struct ScanOptions {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    /// SCAN only: `TYPE name`.
    pub type_name: Option<Bytes>,
}

impl ScanOptions {
    /// Whether `item` passes MATCH (a lone `*` passes everything, the empty string included,
    /// as in Redis).
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.as_ref() == b"*" || glob::matches(p, item, false))
    }
}

/// Parses `cursor [MATCH pattern] [COUNT count] [TYPE type]` starting at `argv[at]`
/// (the cursor). `allow_type` is true for SCAN only.
pub fn parse(argv: &[Bytes], at: usize, allow_type: bool) -> Result<ScanOptions, Frame> {
    let cursor = parse_cursor(&argv[at]).ok_or_else(|| Frame::error("ERR invalid cursor"))?;
    let mut o = ScanOptions { cursor, count: 10, ..Default::default() };
    let mut i = at + 1;
    while i < argv.len() {
        let Some(value) = argv.get(i + 1) else { return Err(args::syntax()) };
        if is(&argv[i], "count") {
            let n = args::int(value)?;
            if n < 1 {
                return Err(args::syntax());
            }
            o.count = n as usize;
        } else if is(&argv[i], "match") {
            o.pattern = Some(value.clone());
        } else if allow_type && is(&argv[i], "type") {
            o.type_name = Some(value.clone());
        } else {
            return Err(args::syntax());
        }
        i += 2;
    }
    Ok(o)
}

/// A cursor as Redis reads it with `strtoul`: optional sign, decimal digits, no overflow; a
/// negative number wraps around (`-1` is 2^64-1) and the empty string is 0.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if arg.is_empty() {
        return Some(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// `[cursor, [items...]]`
pub fn reply(next_cursor: u64, items: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::Bulk(Bytes::from(next_cursor.to_string())), Frame::Array(items)])
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b" 1"), None);
    }
}
