//! Frame encoder for RESP2 and RESP3, with Redis's downgrades of RESP3 types under RESP2.

use super::frame::{Frame, RespVersion};
use bytes::{BufMut, BytesMut};

/// Appends the wire form of `frame` for protocol `ver` to `out`.
pub fn encode(frame: &Frame, ver: RespVersion, out: &mut BytesMut) {
    let v3 = ver == RespVersion::Resp3;
    match frame {
        Frame::Simple(s) => line(out, b'+', s),
        Frame::Error(s) => line(out, b'-', s),
        Frame::Integer(n) => int_line(out, b':', *n),
        Frame::Bulk(b) => bulk(out, b),
        Frame::Null if v3 => out.put_slice(b"_\r\n"),
        Frame::Null => out.put_slice(b"$-1\r\n"),
        Frame::NullArray if v3 => out.put_slice(b"_\r\n"),
        Frame::NullArray => out.put_slice(b"*-1\r\n"),
        Frame::Array(items) => aggregate(out, b'*', items, ver),
        Frame::Set(items) => aggregate(out, if v3 { b'~' } else { b'*' }, items, ver),
        Frame::Push(items) => aggregate(out, if v3 { b'>' } else { b'*' }, items, ver),
        Frame::Map(pairs) => {
            if v3 {
                int_line(out, b'%', pairs.len() as i64);
            } else {
                int_line(out, b'*', 2 * pairs.len() as i64);
            }
            for (k, v) in pairs {
                encode(k, ver, out);
                encode(v, ver, out);
            }
        }
        Frame::Pairs(pairs) => {
            int_line(out, b'*', if v3 { pairs.len() } else { 2 * pairs.len() } as i64);
            for (a, b) in pairs {
                if v3 {
                    out.put_slice(b"*2\r\n");
                }
                encode(a, ver, out);
                encode(b, ver, out);
            }
        }
        Frame::Double(d) => {
            let text = format_double(*d);
            if v3 {
                line(out, b',', text.as_bytes());
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Frame::Boolean(b) if v3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Frame::Boolean(b) => int_line(out, b':', *b as i64),
        Frame::Verbatim(fmt, text) if v3 => {
            int_line(out, b'=', text.len() as i64 + 4);
            out.put_slice(fmt);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Frame::Verbatim(_, text) => bulk(out, text),
        Frame::BigNumber(n) if v3 => line(out, b'(', n),
        Frame::BigNumber(n) => bulk(out, n),
    }
}

fn line(out: &mut BytesMut, tag: u8, s: &[u8]) {
    out.reserve(s.len() + 3);
    out.put_u8(tag);
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    out.put_u8(tag);
    out.put_slice(buf.format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, b: &[u8]) {
    out.reserve(b.len() + 16);
    int_line(out, b'$', b.len() as i64);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, tag: u8, items: &[Frame], ver: RespVersion) {
    int_line(out, tag, items.len() as i64);
    for item in items {
        encode(item, ver, out);
    }
}

/// Formats a double the way Redis 7.0's `d2string` does: integral values in the exact
/// 52-bit range print as integers, everything else as C's `%.17g`; `inf`, `-inf`, `nan`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if d > -4503599627370495.0 && d < 4503599627370496.0 && d == (d as i64) as f64 {
        return (d as i64).to_string();
    }
    format_g17(d)
}

/// C's `%.17g`: 17 significant digits, trailing zeros removed, exponent form when the
/// exponent is below -4 or at least 17.
fn format_g17(d: f64) -> String {
    let sci = format!("{:.16e}", d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (16 - exp).max(0) as usize;
    trim_zeros(&format!("{:.*}", decimals, d)).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(f: &Frame, v: RespVersion) -> String {
        let mut out = BytesMut::new();
        encode(f, v, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn doubles_match_redis_d2string() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(123456.789), "123456.789");
    }

    #[test]
    fn resp3_types_downgrade_under_resp2() {
        let m = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&m, RespVersion::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, RespVersion::Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Frame::Null, RespVersion::Resp2), "$-1\r\n");
        assert_eq!(enc(&Frame::NullArray, RespVersion::Resp2), "*-1\r\n");
        assert_eq!(enc(&Frame::Null, RespVersion::Resp3), "_\r\n");
        assert_eq!(enc(&Frame::Double(2.5), RespVersion::Resp2), "$3\r\n2.5\r\n");
        assert_eq!(enc(&Frame::Double(2.5), RespVersion::Resp3), ",2.5\r\n");
        assert_eq!(enc(&Frame::Boolean(true), RespVersion::Resp2), ":1\r\n");
        assert_eq!(enc(&Frame::Boolean(false), RespVersion::Resp3), "#f\r\n");
        let v = Frame::Verbatim(*b"txt", Bytes::from_static(b"hi"));
        assert_eq!(enc(&v, RespVersion::Resp3), "=6\r\ntxt:hi\r\n");
        assert_eq!(enc(&v, RespVersion::Resp2), "$2\r\nhi\r\n");
        let s = Frame::Set(vec![Frame::Integer(1)]);
        assert_eq!(enc(&s, RespVersion::Resp3), "~1\r\n:1\r\n");
        let pairs = Frame::Pairs(vec![(Frame::bulk("a"), Frame::Double(1.0))]);
        assert_eq!(enc(&pairs, RespVersion::Resp2), "*2\r\n$1\r\na\r\n$1\r\n1\r\n");
        assert_eq!(enc(&pairs, RespVersion::Resp3), "*1\r\n*2\r\n$1\r\na\r\n,1\r\n");
        let p = Frame::Push(vec![Frame::Integer(1)]);
        assert_eq!(enc(&p, RespVersion::Resp3), ">1\r\n:1\r\n");
        let b = Frame::BigNumber(Bytes::from_static(b"123"));
        assert_eq!(enc(&b, RespVersion::Resp3), "(123\r\n");
    }
}
