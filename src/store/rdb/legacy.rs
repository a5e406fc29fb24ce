//! The blob encodings older RDB types carry, read only: ziplists (lists, hashes and sorted sets
//! before Redis 7, and the nodes of a version-1 quicklist), zipmaps (hashes before 2.6) and
//! intsets (small integer sets, still what Redis 7.0 saves). Redis 7.0 loads all of them, so
//! RESTORE does too. Every length is checked against the blob.

use super::listpack::Item;
use super::Bad;
use bytes::Bytes;

/// Every entry of a ziplist.
pub fn ziplist(blob: &[u8]) -> Result<Vec<Item>, Bad> {
    const HEADER: usize = 10;
    if blob.len() < HEADER + 1 || le_u32(blob, 0)? as usize != blob.len() || blob[blob.len() - 1] != 0xFF {
        return Err(Bad);
    }
    let declared = u16::from_le_bytes([blob[8], blob[9]]) as usize;
    let end = blob.len() - 1;
    let (mut p, mut prev_len, mut items) = (HEADER, 0usize, Vec::new());
    while p < end {
        let start = p;
        let prevlen = if blob[p] < 254 {
            p += 1;
            blob[p - 1] as usize
        } else if blob[p] == 254 {
            p += 5;
            le_u32(blob, p - 4)? as usize
        } else {
            return Err(Bad);
        };
        if prevlen != prev_len {
            return Err(Bad);
        }
        let (item, used) = ziplist_entry(blob.get(p..end).ok_or(Bad)?)?;
        p += used;
        prev_len = p - start;
        items.push(item);
    }
    if declared != 65535 && declared != items.len() {
        return Err(Bad);
    }
    Ok(items)
}

fn ziplist_entry(b: &[u8]) -> Result<(Item, usize), Bad> {
    let first = *b.first().ok_or(Bad)?;
    let string = |skip: usize, n: usize| -> Result<(Item, usize), Bad> {
        let data = b.get(skip..skip + n).ok_or(Bad)?;
        Ok((Item::Str(Bytes::copy_from_slice(data)), skip + n))
    };
    let int = |n: usize| -> Result<i64, Bad> {
        let d = b.get(1..1 + n).ok_or(Bad)?;
        // Little-endian data placed in the high bytes, then shifted down with its sign.
        let mut le = [0u8; 8];
        le[8 - n..].copy_from_slice(d);
        Ok(i64::from_le_bytes(le) >> (8 * (8 - n)))
    };
    match first >> 6 {
        0 => return string(1, (first & 0x3F) as usize),
        1 => return string(2, (((first & 0x3F) as usize) << 8) | *b.get(1).ok_or(Bad)? as usize),
        2 if first == 0x80 => {
            let d = b.get(1..5).ok_or(Bad)?;
            return string(5, u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize);
        }
        2 => return Err(Bad),
        _ => {}
    }
    match first {
        0xC0 => Ok((Item::Int(int(2)?), 3)),
        0xD0 => Ok((Item::Int(int(4)?), 5)),
        0xE0 => Ok((Item::Int(int(8)?), 9)),
        0xF0 => Ok((Item::Int(int(3)?), 4)),
        0xFE => Ok((Item::Int(int(1)?), 2)),
        0xF1..=0xFD => Ok((Item::Int((first & 0x0F) as i64 - 1), 1)),
        _ => Err(Bad),
    }
}

/// The pairs of a zipmap.
pub fn zipmap(blob: &[u8]) -> Result<Vec<(Bytes, Bytes)>, Bad> {
    let mut p = 1; // the first byte is a (possibly stale) count
    let mut pairs = Vec::new();
    loop {
        let &first = blob.get(p).ok_or(Bad)?;
        if first == 255 {
            return if p + 1 == blob.len() { Ok(pairs) } else { Err(Bad) };
        }
        let (klen, used) = zipmap_len(blob, p)?;
        p += used;
        let key = blob.get(p..p + klen).ok_or(Bad)?;
        p += klen;
        let (vlen, used) = zipmap_len(blob, p)?;
        p += used;
        let free = *blob.get(p).ok_or(Bad)? as usize;
        p += 1;
        let value = blob.get(p..p + vlen).ok_or(Bad)?;
        p += vlen + free;
        pairs.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
    }
}

fn zipmap_len(blob: &[u8], p: usize) -> Result<(usize, usize), Bad> {
    match *blob.get(p).ok_or(Bad)? {
        n @ 0..=253 => Ok((n as usize, 1)),
        254 => Ok((le_u32(blob, p + 1)? as usize, 5)),
        _ => Err(Bad),
    }
}

/// The members of an intset, which must be sorted and distinct.
pub fn intset(blob: &[u8]) -> Result<Vec<i64>, Bad> {
    let width = le_u32(blob, 0)? as usize;
    let len = le_u32(blob, 4)? as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() != 8 + width.checked_mul(len).ok_or(Bad)? || len == 0 {
        return Err(Bad);
    }
    let values: Vec<i64> = blob[8..]
        .chunks_exact(width)
        .map(|c| match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
        .collect();
    if values.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Bad);
    }
    Ok(values)
}

/// Writes an intset of sorted, distinct `values` in the narrowest width that holds them all.
pub fn write_intset(values: &[i64]) -> Vec<u8> {
    let fits = |lo: i64, hi: i64| values.iter().all(|v| (lo..=hi).contains(v));
    let width: usize = if fits(i16::MIN as i64, i16::MAX as i64) {
        2
    } else if fits(i32::MIN as i64, i32::MAX as i64) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

fn le_u32(b: &[u8], at: usize) -> Result<u32, Bad> {
    let s = b.get(at..at + 4).ok_or(Bad)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intsets_round_trip_in_the_narrowest_width() {
        for values in [vec![1, 2, 3], vec![-70_000, 5], vec![i64::MIN, 0, i64::MAX]] {
            let blob = write_intset(&values);
            assert_eq!(intset(&blob), Ok(values));
        }
        assert_eq!(write_intset(&[1, 2]).len(), 8 + 4);
        assert!(intset(&write_intset(&[3, 1])).is_err());
    }

    #[test]
    fn a_ziplist_of_every_entry_kind_reads() {
        // zlbytes, zltail, zllen, then "ab", 5 (imm), 300 (int16), end.
        let mut b = vec![0u8; 10];
        b.extend_from_slice(&[0, 0x02, b'a', b'b']);
        b.extend_from_slice(&[4, 0xF6]);
        b.extend_from_slice(&[2, 0xC0, 0x2C, 0x01]);
        b.push(0xFF);
        let n = b.len() as u32;
        b[..4].copy_from_slice(&n.to_le_bytes());
        b[8..10].copy_from_slice(&3u16.to_le_bytes());
        let items = ziplist(&b).expect("valid");
        assert_eq!(items, vec![Item::Str(Bytes::from_static(b"ab")), Item::Int(5), Item::Int(300)]);
        for cut in 0..b.len() {
            assert!(ziplist(&b[..cut]).is_err());
        }
    }

    #[test]
    fn a_zipmap_reads_and_a_cut_one_does_not() {
        let b = [2u8, 1, b'k', 2, 0, b'v', b'w', 255];
        assert_eq!(zipmap(&b), Ok(vec![(Bytes::from_static(b"k"), Bytes::from_static(b"vw"))]));
        for cut in 0..b.len() {
            assert!(zipmap(&b[..cut]).is_err());
        }
    }
}
