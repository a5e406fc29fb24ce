//! Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, and the pure bit
//! helpers they use. Bit 0 is the most significant bit of the first byte, as in Redis.

use super::{clamp_range, edit_string, MAX_STRING_LEN};
use crate::cmd::args::{self, err, is, syntax};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::{parse_i64, Frame};
use crate::store::{notify, Value};
use bytes::Bytes;

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A SETBIT/GETBIT offset: a non-negative integer whose byte lies within 512 MiB.
fn bit_offset(arg: &[u8]) -> Result<u64, Frame> {
    match parse_i64(arg) {
        Some(n) if n >= 0 && (n as u64 >> 3) < MAX_STRING_LEN => Ok(n as u64),
        _ => Err(err(BAD_OFFSET)),
    }
}

/// The bit at `offset` (0 beyond the end).
pub fn get_bit(s: &[u8], offset: u64) -> bool {
    let Some(&byte) = usize::try_from(offset >> 3).ok().and_then(|i| s.get(i)) else { return false };
    byte & (0x80 >> (offset & 7)) != 0
}

/// Sets the bit at `offset` in a buffer long enough to hold it; returns the old bit.
fn set_bit(buf: &mut [u8], offset: usize, on: bool) -> bool {
    let mask = 0x80u8 >> (offset & 7);
    let byte = &mut buf[offset >> 3];
    let old = *byte & mask != 0;
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
    old
}

pub(super) fn setbit(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let offset = match bit_offset(&argv[2]) {
        Ok(o) => o as usize,
        Err(e) => return e,
    };
    let on = match parse_i64(&argv[3]) {
        Some(b @ (0 | 1)) => b == 1,
        _ => return err("ERR bit is not an integer or out of range"),
    };
    match ctx.get_str(&argv[1]) {
        Ok(None) => ctx.set(argv[1].clone(), Value::Str(Bytes::new()), None),
        Ok(Some(_)) => {}
        Err(e) => return e,
    }
    let mut old = false;
    edit_string(ctx, &argv[1], |buf| {
        let need = (offset >> 3) + 1;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        old = set_bit(buf, offset, on);
    });
    ctx.notify(notify::STRING, "setbit", &argv[1]);
    Frame::Integer(old as i64)
}

pub(super) fn getbit(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let offset = match bit_offset(&argv[2]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match ctx.get_str(&argv[1]) {
        Ok(v) => Frame::Integer(v.is_some_and(|s| get_bit(s, offset)) as i64),
        Err(e) => e,
    }
}

/// Number of set bits among bits `from..=to` (bit indexes, within the string).
pub fn count_bits(s: &[u8], from: u64, to: u64) -> u64 {
    let (first, last) = ((from >> 3) as usize, (to >> 3) as usize);
    let Some(bytes) = s.get(first..=last) else { return 0 };
    let mut n: u64 = bytes.iter().map(|b| u64::from(b.count_ones())).sum();
    // Take away the bits of the edge bytes that lie outside the range.
    n -= u64::from((bytes[0] & !(0xFFu8 >> (from & 7))).count_ones());
    n -= u64::from((bytes[bytes.len() - 1] & (0xFFu32 >> ((to & 7) + 1)) as u8).count_ones());
    n
}

/// Position of the first bit equal to `bit` among bits `from..=to`.
pub fn find_bit(s: &[u8], bit: bool, from: u64, to: u64) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xFF };
    let mut pos = from;
    while pos <= to {
        let byte = *s.get((pos >> 3) as usize)?;
        if pos & 7 == 0 && pos + 7 <= to && byte == skip {
            pos += 8;
            continue;
        }
        if (byte & (0x80 >> (pos & 7)) != 0) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Parses `start end [BYTE|BIT]` against a string of `len` bytes into an inclusive bit range;
/// `None` for an empty range.
fn bit_range(start: i64, end: i64, isbit: bool, len: usize) -> Option<(u64, u64)> {
    let total = if isbit { len as i64 * 8 } else { len as i64 };
    let (start, end) = clamp_range(start, end, total);
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if isbit { (start, end) } else { (start * 8, end * 8 + 7) })
}

/// `BYTE` or `BIT` (case-insensitive); anything else is a syntax error.
fn unit_arg(arg: &[u8]) -> Result<bool, Frame> {
    match () {
        _ if is(arg, "bit") => Ok(true),
        _ if is(arg, "byte") => Ok(false),
        _ => Err(syntax()),
    }
}

/// BITCOUNT: in 7.0 the key is looked up first, so a missing key answers 0 whatever follows.
pub(super) fn bitcount(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let s = match ctx.get_str(&argv[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Integer(0),
        Err(e) => return e,
    };
    let range = match argv.len() {
        2 => bit_range(0, -1, false, s.len()),
        4 | 5 => {
            let (start, end) = match (args::int(&argv[2]), args::int(&argv[3])) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            let isbit = match argv.get(4).map(|a| unit_arg(a)) {
                Some(Err(e)) => return e,
                Some(Ok(b)) => b,
                None => false,
            };
            if start < 0 && end < 0 && start > end {
                return Frame::Integer(0);
            }
            bit_range(start, end, isbit, s.len())
        }
        _ => return syntax(),
    };
    Frame::Integer(range.map_or(0, |(from, to)| count_bits(s, from, to)) as i64)
}

/// BITPOS key bit [start [end [BYTE|BIT]]].
pub(super) fn bitpos(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let bit = match args::int(&argv[2]) {
        Ok(b @ (0 | 1)) => b == 1,
        Ok(_) => return err("ERR The bit argument must be 1 or 0."),
        Err(e) => return e,
    };
    let s = match ctx.get_str(&argv[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Integer(if bit { -1 } else { 0 }),
        Err(e) => return e,
    };
    let (range, end_given) = match bitpos_range(argv, s.len()) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some((from, to)) = range else { return Frame::Integer(-1) };
    let pos = match find_bit(s, bit, from, to) {
        Some(p) => p as i64,
        // Without an explicit end the string counts as followed by zero bits.
        None if !bit && !end_given => to as i64 + 1,
        None => -1,
    };
    Frame::Integer(pos)
}

/// The bit range of BITPOS and whether an end was given. As in Redis 7.0, the unit is
/// checked before the end is parsed.
fn bitpos_range(argv: &[Bytes], len: usize) -> Result<(Option<(u64, u64)>, bool), Frame> {
    if argv.len() == 3 {
        return Ok((bit_range(0, -1, false, len), false));
    }
    if argv.len() > 6 {
        return Err(syntax());
    }
    let start = args::int(&argv[3])?;
    let isbit = match argv.get(5) {
        Some(a) => unit_arg(a)?,
        None => false,
    };
    let end = match argv.get(4) {
        Some(a) => Some(args::int(a)?),
        None => None,
    };
    Ok((bit_range(start, end.unwrap_or(-1), isbit, len), end.is_some()))
}

/// A BITOP operator.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Applies `op` over `srcs` (NOT takes one); shorter sources count as zero-padded.
pub fn bit_op(op: BitOp, srcs: &[&[u8]]) -> Vec<u8> {
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    (0..maxlen)
        .map(|i| {
            let mut it = srcs.iter().map(|s| byte(s, i));
            let first = it.next().unwrap_or(0);
            match op {
                BitOp::And => it.fold(first, |a, b| a & b),
                BitOp::Or => it.fold(first, |a, b| a | b),
                BitOp::Xor => it.fold(first, |a, b| a ^ b),
                BitOp::Not => !first,
            }
        })
        .collect()
}

/// BITOP op destkey key...: stores the result (no TTL), or deletes destkey when it is empty.
pub(super) fn bitop(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let op = match &argv[1] {
        a if is(a, "and") => BitOp::And,
        a if is(a, "or") => BitOp::Or,
        a if is(a, "xor") => BitOp::Xor,
        a if is(a, "not") => BitOp::Not,
        _ => return syntax(),
    };
    if op == BitOp::Not && argv.len() != 4 {
        return err("ERR BITOP NOT must be called with a single source key.");
    }
    let mut srcs: Vec<&[u8]> = Vec::with_capacity(argv.len() - 3);
    for key in &argv[3..] {
        match ctx.get_str(key) {
            Ok(v) => srcs.push(v.map_or(&[][..], |v| &v[..])),
            Err(e) => return e,
        }
    }
    let result = bit_op(op, &srcs);
    let len = result.len() as i64;
    if result.is_empty() {
        ctx.delete(&argv[2]);
    } else {
        ctx.set(argv[2].clone(), Value::Str(Bytes::from(result)), None);
        ctx.notify(notify::STRING, "set", &argv[2]);
    }
    Frame::Integer(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_set_bits() {
        let mut buf = vec![0u8; 2];
        assert!(!set_bit(&mut buf, 1, true));
        assert!(set_bit(&mut buf, 1, true));
        assert!(!set_bit(&mut buf, 15, true));
        assert_eq!(buf, [0x40, 0x01]);
        assert!(get_bit(&buf, 1) && get_bit(&buf, 15) && !get_bit(&buf, 0));
        assert!(!get_bit(&buf, 1000) && !get_bit(&buf, u64::MAX));
        assert!(set_bit(&mut buf, 1, false));
        assert_eq!(buf, [0x00, 0x01]);
    }

    #[test]
    fn offsets_are_limited() {
        assert_eq!(bit_offset(b"0"), Ok(0));
        assert_eq!(bit_offset(b"4294967295"), Ok(4294967295));
        assert!(bit_offset(b"4294967296").is_err());
        assert!(bit_offset(b"-1").is_err());
        assert!(bit_offset(b"x").is_err());
    }

    #[test]
    fn counts_bit_ranges() {
        let s = b"foobar";
        assert_eq!(count_bits(s, 0, 47), 26);
        assert_eq!(count_bits(s, 8, 15), 6);
        assert_eq!(count_bits(s, 5, 30), 17);
        assert_eq!(count_bits(&[0xFF], 3, 3), 1);
        assert_eq!(count_bits(&[0xFF], 0, 7), 8);
        assert_eq!(count_bits(&[0xFF, 0xFF], 1, 14), 14);
    }

    #[test]
    fn finds_bits() {
        let s = [0xFF, 0xF0, 0x00];
        assert_eq!(find_bit(&s, false, 0, 23), Some(12));
        assert_eq!(find_bit(&s, true, 12, 23), None);
        assert_eq!(find_bit(&s, true, 3, 23), Some(3));
        assert_eq!(find_bit(&s, false, 0, 7), None);
        assert_eq!(find_bit(&[0, 0, 1], true, 0, 23), Some(23));
    }

    #[test]
    fn ranges_in_bytes_and_bits() {
        assert_eq!(bit_range(0, -1, false, 3), Some((0, 23)));
        assert_eq!(bit_range(1, 1, false, 3), Some((8, 15)));
        assert_eq!(bit_range(5, 30, true, 3), Some((5, 23)));
        assert_eq!(bit_range(2, 1, false, 3), None);
        assert_eq!(bit_range(0, -1, false, 0), None);
    }

    #[test]
    fn bit_operations() {
        assert_eq!(bit_op(BitOp::And, &[b"\xff\x0f", b"\x0f"]), [0x0f, 0x00]);
        assert_eq!(bit_op(BitOp::Or, &[b"\xf0", b"\x0f\x01"]), [0xff, 0x01]);
        assert_eq!(bit_op(BitOp::Xor, &[b"\xff", b"\x0f", b"\x01"]), [0xf1]);
        assert_eq!(bit_op(BitOp::Not, &[b"\x0f\xff"]), [0xf0, 0x00]);
        assert!(bit_op(BitOp::And, &[b"", b""]).is_empty());
    }
}
