//! C's number parsing where Redis's replies depend on it, one `strtod` with each caller's
//! checks: SORT's weights ([`strtod`]), `string2d` and `getDoubleFromObject` (config values,
//! sorted-set scores: [`string2d`]), score ranges ([`strtod_skipping_space`]). Shared by the
//! command layer and the config layer, so it sits below both.

/// The bytes before the first NUL: where a C string ends.
pub fn c_str(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
}

/// Redis's `string2d` (and `getDoubleFromObject`, which reads sorted-set scores the same way):
/// `strtod` over the whole text, refusing an empty text, leading white space, NaN, and the
/// out-of-range results Redis checks for (ERANGE with an infinite or zero result: a subnormal
/// result is kept, as Redis keeps it).
pub fn string2d(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[0] == 0x0b || s.contains(&0) {
        return None;
    }
    match strtod_whole(s)? {
        (v, true) if v.is_infinite() || v == 0.0 => None,
        (v, _) => Some(v),
    }
}

/// C's `strtod` as SORT uses it for weights: leading white space skipped, decimal or
/// hexadecimal, `inf`/`infinity`; `None` for trailing text, NaN, or any ERANGE result
/// (overflow, or underflow to a subnormal or zero). The text ends at a NUL byte, as a C string.
pub fn strtod(s: &[u8]) -> Option<f64> {
    match strtod_skipping_space(s)? {
        (_, true) => None,
        (v, false) => Some(v),
    }
}

/// C's `strtod` where the whole C string must be read (`eptr[0] == '\0'`): the text ends at a
/// NUL byte, leading white space is skipped, an empty (or NUL-first) text reads as 0. The
/// value and whether `errno` would be ERANGE; `None` for trailing text or NaN.
pub fn strtod_skipping_space(s: &[u8]) -> Option<(f64, bool)> {
    let s = c_str(s);
    if s.is_empty() {
        // Nothing parsed: 0, and the end pointer is the (empty) rest.
        return Some((0.0, false));
    }
    let start = s.iter().position(|&c| !is_c_space(c))?;
    strtod_whole(&s[start..])
}

/// C's `isspace` in the C locale.
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtod` (glibc, C locale) over the whole of `text`, which must start with the number: the
/// value and whether glibc sets ERANGE (an overflow to infinity, or an underflow: a nonzero
/// decimal that comes out subnormal or zero, a hexadecimal that comes out zero). `None` when
/// the text is not entirely a number, or is NaN.
pub fn strtod_whole(text: &[u8]) -> Option<(f64, bool)> {
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
        let nonzero = mantissa.bytes().any(|c| matches!(c, b'1'..=b'9'));
        (v, v.is_infinite() || (nonzero && (v == 0.0 || v.is_subnormal())))
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
        // Redis refuses ERANGE only with an infinite or zero result: a subnormal is a value.
        assert_eq!(string2d(b"1e-310"), Some(1e-310));
        assert_eq!(strtod(b"1e-310"), None, "SORT refuses every ERANGE");
        assert_eq!(string2d(b"+-5"), None);
        assert_eq!(strtod(b"+-5"), None);
    }

    #[test]
    fn strtod_skipping_space_reads_a_c_string_to_its_end() {
        assert_eq!(strtod_skipping_space(b""), Some((0.0, false)));
        assert_eq!(strtod_skipping_space(b"\0x"), Some((0.0, false)));
        assert_eq!(strtod_skipping_space(b" 1e400"), Some((f64::INFINITY, true)));
        assert_eq!(strtod_skipping_space(b" "), None);
        assert_eq!(strtod_skipping_space(b"1 "), None);
    }
}
