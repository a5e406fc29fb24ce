//! BITFIELD and BITFIELD_RO: GET / SET / INCRBY on signed (i1..i64) and unsigned (u1..u63)
//! integers at arbitrary bit offsets, with OVERFLOW WRAP / SAT / FAIL, as Redis 7.0.

use super::{edit_string, MAX_STRING_LEN};
use crate::cmd::args::{self, err, is, syntax};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::{parse_i64, Frame};
use crate::store::{notify, Value};
use bytes::Bytes;

const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum OpKind {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One parsed sub-command.
#[derive(Clone, Copy, Debug)]
struct Op {
    kind: OpKind,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// `i<1..64>` or `u<1..63>` (lowercase prefix, as Redis).
fn parse_type(arg: &[u8]) -> Result<(bool, u32), Frame> {
    let (signed, max) = match arg.first() {
        Some(b'i') => (true, 64),
        Some(b'u') => (false, 63),
        _ => return Err(err(BAD_TYPE)),
    };
    match parse_i64(&arg[1..]) {
        Some(n) if (1..=max).contains(&n) => Ok((signed, n as u32)),
        _ => Err(err(BAD_TYPE)),
    }
}

/// A bit offset, or `#N` meaning N fields of `bits` bits.
fn parse_offset(arg: &[u8], bits: u32) -> Result<u64, Frame> {
    let (hash, digits) = match arg.first() {
        Some(b'#') => (true, &arg[1..]),
        _ => (false, arg),
    };
    let n = parse_i64(digits).ok_or_else(|| err(BAD_OFFSET))?;
    let n = if hash { n.checked_mul(i64::from(bits)).ok_or_else(|| err(BAD_OFFSET))? } else { n };
    if n < 0 || (n as u64 >> 3) >= MAX_STRING_LEN {
        return Err(err(BAD_OFFSET));
    }
    Ok(n as u64)
}

fn parse_ops(argv: &[Bytes]) -> Result<Vec<Op>, Frame> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argv.len() {
        let (sub, rest) = (&argv[j], argv.len() - j - 1);
        let needs = match sub {
            s if is(s, "get") && rest >= 2 => 2,
            s if (is(s, "set") || is(s, "incrby")) && rest >= 3 => 3,
            s if is(s, "overflow") && rest >= 1 => {
                overflow = match &argv[j + 1] {
                    t if is(t, "wrap") => Overflow::Wrap,
                    t if is(t, "sat") => Overflow::Sat,
                    t if is(t, "fail") => Overflow::Fail,
                    _ => return Err(err("ERR Invalid OVERFLOW type specified")),
                };
                j += 2;
                continue;
            }
            _ => return Err(syntax()),
        };
        let (signed, bits) = parse_type(&argv[j + 1])?;
        let offset = parse_offset(&argv[j + 2], bits)?;
        let kind = match needs {
            2 => OpKind::Get,
            _ if is(sub, "set") => OpKind::Set(args::int(&argv[j + 3])?),
            _ => OpKind::IncrBy(args::int(&argv[j + 3])?),
        };
        ops.push(Op { kind, signed, bits, offset, overflow });
        j += needs + 1;
    }
    Ok(ops)
}

/// Reads `bits` bits MSB-first from `offset`; bits past the end read as 0.
fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0, |v, i| (v << 1) | u64::from(super::bits::get_bit(s, offset + i)))
}

/// Writes the low `bits` bits of `value` MSB-first at `offset` (the buffer is long enough).
fn set_field(buf: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        let on = (value >> (u64::from(bits) - 1 - i)) & 1 == 1;
        let pos = offset + i;
        let mask = 0x80u8 >> (pos & 7);
        if let Some(byte) = buf.get_mut((pos >> 3) as usize) {
            if on {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

/// Interprets the low `bits` bits of `raw` as two's complement.
fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// Reads a field as the integer Redis replies with.
fn read(s: &[u8], op: &Op) -> i64 {
    let raw = get_field(s, op.offset, op.bits);
    if op.signed {
        sign_extend(raw, op.bits)
    } else {
        raw as i64
    }
}

/// `value + incr` stored in the field's type under the overflow policy: `None` for FAIL on
/// overflow, else the stored value (as an i64 bit pattern for the unsigned case).
fn apply_overflow(value: i128, incr: i128, signed: bool, bits: u32, policy: Overflow) -> Option<i64> {
    let (min, max): (i128, i128) =
        if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
    let sum = value + incr;
    if (min..=max).contains(&sum) {
        return Some(sum as i64);
    }
    match policy {
        Overflow::Fail => None,
        Overflow::Sat => Some(if sum > max { max as i64 } else { min as i64 }),
        Overflow::Wrap => {
            let low = (sum as u64) & (u64::MAX >> (64 - bits));
            Some(if signed { sign_extend(low, bits) } else { low as i64 })
        }
    }
}

/// Runs one SET/INCRBY on `buf`; the reply is the old value (SET) or the new one (INCRBY).
fn write(buf: &mut [u8], op: &Op) -> Frame {
    let old = read(buf, op);
    // SET of an unsigned field takes the argument's bit pattern, as Redis's uint64 cast does.
    let as_field = |v: i64| if op.signed { i128::from(v) } else { i128::from(v as u64) };
    let (value, incr) = match op.kind {
        OpKind::Set(v) => (as_field(v), 0),
        OpKind::IncrBy(d) => (i128::from(old), i128::from(d)),
        OpKind::Get => return Frame::Integer(old),
    };
    let Some(new) = apply_overflow(value, incr, op.signed, op.bits, op.overflow) else { return Frame::Null };
    set_field(buf, op.offset, op.bits, new as u64);
    Frame::Integer(if matches!(op.kind, OpKind::Set(_)) { old } else { new })
}

pub(super) fn bitfield(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let ops = match parse_ops(argv) {
        Ok(ops) => ops,
        Err(e) => return e,
    };
    let key = &argv[1];
    let exists = match ctx.get_str(key) {
        Ok(v) => v.is_some(),
        Err(e) => return e,
    };
    let highest = ops.iter().filter(|o| o.kind != OpKind::Get).map(|o| o.offset + u64::from(o.bits) - 1).max();
    let Some(highest) = highest else {
        return read_only(ctx.get_str(key).ok().flatten().map_or(&[][..], |s| &s[..]), &ops);
    };
    if !exists {
        ctx.set(key.clone(), Value::Str(Bytes::new()), None);
    }
    let mut replies = Vec::with_capacity(ops.len());
    edit_string(ctx, key, |buf| {
        let need = (highest >> 3) as usize + 1;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        replies.extend(ops.iter().map(|op| write(buf, op)));
    });
    ctx.notify(notify::STRING, "setbit", key);
    Frame::Array(replies)
}

pub(super) fn bitfield_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let ops = match parse_ops(argv) {
        Ok(ops) => ops,
        Err(e) => return e,
    };
    if ops.iter().any(|o| o.kind != OpKind::Get) {
        return err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    match ctx.get_str(&argv[1]) {
        Ok(v) => read_only(v.map_or(&[][..], |s| &s[..]), &ops),
        Err(e) => e,
    }
}

fn read_only(s: &[u8], ops: &[Op]) -> Frame {
    Frame::Array(ops.iter().map(|op| Frame::Integer(read(s, op))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut buf = vec![0u8; 3];
        set_field(&mut buf, 3, 10, 0b10_1100_0101);
        assert_eq!(get_field(&buf, 3, 10), 0b10_1100_0101);
        assert_eq!(sign_extend(get_field(&buf, 3, 10), 10), 0b10_1100_0101 - 1024);
        assert_eq!(get_field(&buf, 20, 8), 0);
        set_field(&mut buf, 0, 64, u64::MAX);
        assert_eq!(buf, [0xFF; 3]);
    }

    #[test]
    fn overflow_policies() {
        assert_eq!(apply_overflow(250, 10, false, 8, Overflow::Wrap), Some(4));
        assert_eq!(apply_overflow(250, 10, false, 8, Overflow::Sat), Some(255));
        assert_eq!(apply_overflow(250, 10, false, 8, Overflow::Fail), None);
        assert_eq!(apply_overflow(5, -10, false, 8, Overflow::Sat), Some(0));
        assert_eq!(apply_overflow(127, 1, true, 8, Overflow::Wrap), Some(-128));
        assert_eq!(apply_overflow(-128, -1, true, 8, Overflow::Sat), Some(-128));
        assert_eq!(apply_overflow(i64::MAX as i128, 1, true, 64, Overflow::Wrap), Some(i64::MIN));
        assert_eq!(apply_overflow(u64::MAX as i128, 0, false, 8, Overflow::Wrap), Some(255));
    }

    #[test]
    fn types_and_offsets() {
        assert_eq!(parse_type(b"i64"), Ok((true, 64)));
        assert_eq!(parse_type(b"u63"), Ok((false, 63)));
        for bad in [&b"u64"[..], b"i65", b"i0", b"I8", b"x8", b"u", b""] {
            assert!(parse_type(bad).is_err());
        }
        assert_eq!(parse_offset(b"#3", 8), Ok(24));
        assert!(parse_offset(b"#-1", 8).is_err());
        assert!(parse_offset(b"#9223372036854775807", 64).is_err());
        assert!(parse_offset(b"#536870912", 8).is_err());
    }
}
