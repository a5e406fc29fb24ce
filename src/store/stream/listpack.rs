//! Byte sizes of Redis's listpack encoding (listpack.c), so a stream node knows how big the
//! listpack Redis would hold for it is. Redis starts a new stream node when the tail node's
//! listpack reaches `stream-node-max-bytes`; the node layout decides what approximate trimming
//! (`MAXLEN ~`) removes and what `XINFO STREAM` reports, so it must be reproduced exactly.

/// Header (total bytes + element count) and the end marker of an empty listpack.
pub const EMPTY_BYTES: usize = 6 + 1;

/// Bytes an integer element takes (encoding and data), as `lpEncodeIntegerGetType`.
fn int_encoding_len(v: i64) -> usize {
    match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    }
}

/// Bytes the back-length of an element of `l` bytes takes (`lpEncodeBacklen`).
fn backlen_len(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// `lpStringToInt64`: strict decimal (no `+`, no leading zeros, no `-0`), fits in an i64.
pub fn string_to_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: i64 = text.parse().ok()?;
    debug_assert_eq!(v < 0, neg);
    Some(v)
}

/// Total bytes of an integer element.
pub fn int_len(v: i64) -> usize {
    let l = int_encoding_len(v);
    l + backlen_len(l)
}

/// Total bytes of a string element (stored as an integer when it is one, as `lpAppend` does).
pub fn str_len(s: &[u8]) -> usize {
    let l = match string_to_i64(s) {
        Some(v) => int_encoding_len(v),
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    l + backlen_len(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_sizes_follow_listpack_c() {
        assert_eq!(int_len(0), 2);
        assert_eq!(int_len(127), 2);
        assert_eq!(int_len(128), 3);
        assert_eq!(int_len(-1), 3);
        assert_eq!(int_len(40_000), 5);
        assert_eq!(int_len(i64::MAX), 10);
        assert_eq!(str_len(b"abc"), 5);
        assert_eq!(str_len(b"12"), 2);
        assert_eq!(str_len(b"012"), 5);
        assert_eq!(str_len(b"-0"), 4);
        assert_eq!(str_len(&[b'x'; 63]), 65);
        assert_eq!(str_len(&[b'x'; 64]), 67);
        assert_eq!(str_len(&[b'x'; 200]), 204);
        assert_eq!(str_len(b"99999999999999999999"), 22);
    }
}
