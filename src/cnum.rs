//! C's number parsing where Redis's replies depend on it: `strtod` (SORT's weights) and
//! `string2d` (Redis's `util.c`, used by config values). Shared by the command layer and the
//! config layer, so it sits below both.

/// The bytes before the first NUL: where a C string ends.
pub fn c_str(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
}

/// Redis's `string2d`: `strtod` over the whole text, refusing an empty text, leading white
/// space, NaN and out-of-range values (overflow to infinity, underflow to zero).
pub fn string2d(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[0] == 0x0b || s.contains(&0) {
        return None;
    }
    strtod(s)
}

/// C's `strtod` as SORT uses it for weights: leading white space skipped, decimal or
/// hexadecimal, `inf`/`infinity`; `None` for trailing text, NaN, or a result out of range (ERANGE:
/// overflow, or underflow to a denormal or zero). The text ends at a NUL byte, as a C string.
pub fn strtod(s: &[u8]) -> Option<f64> {
    let s = c_str(s);
    let start = s.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).unwrap_or(s.len());
    let text = std::str::from_utf8(&s[start..]).ok()?;
    if text.is_empty() {
        // Nothing parsed: 0, and the end pointer is the (empty) rest.
        return Some(0.0);
    }
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let magnitude = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex(hex)?
    } else {
        if !body.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        let nonzero_digits =
            body.split(['e', 'E']).next().is_some_and(|m| m.bytes().any(|c| (b'1'..=b'9').contains(&c)));
        if v.is_infinite() || (nonzero_digits && (v == 0.0 || v.is_subnormal())) {
            return None;
        }
        v
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// The digits of a hexadecimal float after `0x`: `h[.h][p[+-]d]`.
fn parse_hex(hex: &str) -> Option<f64> {
    let (mant, exp) = match hex.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (hex, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let v = v * 2f64.powi(exp.saturating_sub(4 * frac.len() as i32));
    (!v.is_infinite()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_accepts_what_c_accepts() {
        assert_eq!(strtod(b"1.5"), Some(1.5));
        assert_eq!(strtod(b" 2"), Some(2.0));
        assert_eq!(strtod(b""), Some(0.0));
        assert_eq!(strtod(b"0x10"), Some(16.0));
        assert_eq!(strtod(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod(b"3\0junk"), Some(3.0));
        assert_eq!(strtod(b"0e5"), Some(0.0));
        assert_eq!(strtod(b"1e999"), None);
        assert_eq!(strtod(b"1e-400"), None);
        assert_eq!(strtod(b"nan"), None);
        assert_eq!(strtod(b"1 "), None);
        assert_eq!(strtod(b"abc"), None);
    }

    #[test]
    fn string2d_refuses_what_strtod_skips() {
        assert_eq!(string2d(b"0x1p3"), Some(8.0));
        assert_eq!(string2d(b".5"), Some(0.5));
        assert_eq!(string2d(b"5."), Some(5.0));
        assert_eq!(string2d(b"+50"), Some(50.0));
        assert_eq!(string2d(b"inf"), Some(f64::INFINITY));
        assert_eq!(string2d(b""), None);
        assert_eq!(string2d(b" 50"), None);
        assert_eq!(string2d(b"1e400"), None);
        assert_eq!(string2d(b"1e-400"), None);
        assert_eq!(string2d(b"NaN"), None);
        assert_eq!(string2d(b"1e"), None);
        assert_eq!(string2d(b"0x"), None);
    }
}
