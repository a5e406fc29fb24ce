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
        Frame::PairsMap(pairs) => {
            int_line(out, if v3 { b'%' } else { b'*' }, pairs.len() as i64);
            for (k, v) in pairs {
                if !v3 {
                    out.put_slice(b"*2\r\n");
                }
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
        Frame::HumanDouble(d) => {
            let text = format_human(*d);
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

/// A one-line frame. CR and LF inside become spaces, as Redis's `addReplyErrorLength` does,
/// so text that echoes client input (an unknown command name) cannot split the reply.
fn line(out: &mut BytesMut, tag: u8, s: &[u8]) {
    out.reserve(s.len() + 3);
    out.put_u8(tag);
    if s.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(s.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.put_slice(s);
    }
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

/// Redis 7.0's `ld2string(LD_STR_HUMAN)` of a double: `%.17Lf` (the exact value, rounded
/// half to even), trailing zeros and a trailing dot removed, `-0` written `0`.
pub fn format_human(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let text = format!("{d:.17}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
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
pub fn format_g17(d: f64) -> String {
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
        let streams = Frame::PairsMap(vec![(Frame::bulk("s"), Frame::Array(vec![]))]);
        assert_eq!(enc(&streams, RespVersion::Resp2), "*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
        assert_eq!(enc(&streams, RespVersion::Resp3), "%1\r\n$1\r\ns\r\n*0\r\n");
        let p = Frame::Push(vec![Frame::Integer(1)]);
        assert_eq!(enc(&p, RespVersion::Resp3), ">1\r\n:1\r\n");
        let b = Frame::BigNumber(Bytes::from_static(b"123"));
        assert_eq!(enc(&b, RespVersion::Resp3), "(123\r\n");
    }

    fn both(f: &Frame) -> (String, String) {
        (enc(f, RespVersion::Resp2), enc(f, RespVersion::Resp3))
    }

    #[test]
    fn common_types_encode_the_same_in_both_versions() {
        let same = |f: Frame, want: &str| assert_eq!(both(&f), (want.to_string(), want.to_string()), "{f:?}");
        same(Frame::ok(), "+OK\r\n");
        same(Frame::simple(""), "+\r\n");
        same(Frame::error("ERR no such key"), "-ERR no such key\r\n");
        same(Frame::Integer(0), ":0\r\n");
        same(Frame::Integer(i64::MIN), ":-9223372036854775808\r\n");
        same(Frame::bulk("foo"), "$3\r\nfoo\r\n");
        same(Frame::bulk(""), "$0\r\n\r\n");
        same(Frame::bulk("a\r\nb"), "$4\r\na\r\nb\r\n");
        same(Frame::bulk_int(-12), "$3\r\n-12\r\n");
        same(Frame::Array(vec![]), "*0\r\n");
        same(Frame::bulks(["a", "bc"]), "*2\r\n$1\r\na\r\n$2\r\nbc\r\n");
        same(Frame::Array(vec![Frame::Array(vec![Frame::Integer(1)]), Frame::simple("x")]), "*2\r\n*1\r\n:1\r\n+x\r\n");
    }

    #[test]
    fn resp3_only_types_and_their_resp2_forms() {
        let pair = |f: Frame, r2: &str, r3: &str| assert_eq!(both(&f), (r2.to_string(), r3.to_string()), "{f:?}");
        pair(Frame::Null, "$-1\r\n", "_\r\n");
        pair(Frame::NullArray, "*-1\r\n", "_\r\n");
        pair(Frame::Map(vec![]), "*0\r\n", "%0\r\n");
        let m = Frame::Map(vec![(Frame::bulk("a"), Frame::Double(1.5)), (Frame::bulk("b"), Frame::Null)]);
        pair(m, "*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$-1\r\n", "%2\r\n$1\r\na\r\n,1.5\r\n$1\r\nb\r\n_\r\n");
        pair(Frame::Set(vec![]), "*0\r\n", "~0\r\n");
        pair(Frame::Set(vec![Frame::bulk("x")]), "*1\r\n$1\r\nx\r\n", "~1\r\n$1\r\nx\r\n");
        pair(Frame::Double(f64::INFINITY), "$3\r\ninf\r\n", ",inf\r\n");
        pair(Frame::Double(f64::NEG_INFINITY), "$4\r\n-inf\r\n", ",-inf\r\n");
        pair(Frame::Double(-2.0), "$2\r\n-2\r\n", ",-2\r\n");
        pair(Frame::HumanDouble(13.361389338970184), "$20\r\n13.36138933897018433\r\n", ",13.36138933897018433\r\n");
        pair(Frame::HumanDouble(-0.0), "$1\r\n0\r\n", ",0\r\n");
        pair(Frame::HumanDouble(2.5), "$3\r\n2.5\r\n", ",2.5\r\n");
        pair(Frame::Double(0.1), "$19\r\n0.10000000000000001\r\n", ",0.10000000000000001\r\n");
        pair(Frame::Boolean(true), ":1\r\n", "#t\r\n");
        pair(Frame::Boolean(false), ":0\r\n", "#f\r\n");
        let v = Frame::Verbatim(*b"mkd", Bytes::new());
        pair(v, "$0\r\n\r\n", "=4\r\nmkd:\r\n");
        let big = Frame::BigNumber(Bytes::from_static(b"-12345678901234567890"));
        pair(big, "$21\r\n-12345678901234567890\r\n", "(-12345678901234567890\r\n");
        let push = Frame::Push(vec![Frame::bulk("message"), Frame::bulk("c"), Frame::bulk("m")]);
        let r2 = "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n";
        pair(push, r2, &r2.replacen('*', ">", 1));
    }

    #[test]
    fn resp3_types_nested_in_arrays_downgrade_too() {
        let f = Frame::Array(vec![
            Frame::Set(vec![Frame::Boolean(true)]),
            Frame::Map(vec![(Frame::Integer(1), Frame::Null)]),
        ]);
        assert_eq!(enc(&f, RespVersion::Resp2), "*2\r\n*1\r\n:1\r\n*2\r\n:1\r\n$-1\r\n");
        assert_eq!(enc(&f, RespVersion::Resp3), "*2\r\n~1\r\n#t\r\n%1\r\n:1\r\n_\r\n");
    }

    #[test]
    fn line_frames_never_carry_cr_or_lf() {
        let e = Frame::error("ERR unknown command 'a\r\nb'");
        assert_eq!(both(&e).1, "-ERR unknown command 'a  b'\r\n");
        assert_eq!(both(&Frame::simple("x\ny")).0, "+x y\r\n");
    }

    #[test]
    fn doubles_edge_cases() {
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(4503599627370495.0), "4503599627370495");
        assert_eq!(format_double(4503599627370496.0), "4503599627370496");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(1e16), "10000000000000000");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(format_double(f64::MIN_POSITIVE), "2.2250738585072014e-308");
    }
}
