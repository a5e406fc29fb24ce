//! Listpack blobs (listpack.c), the compact encoding Redis 7 saves small hashes, sorted sets,
//! list nodes and stream nodes in: a writer that produces Redis's bytes exactly (integers
//! stored as integers, the same length and back-length forms) and a reader that checks every
//! header, length, back-length and the terminator against the blob.

use super::Bad;
use crate::store::stream::listpack::string_to_i64;
use bytes::Bytes;

const HEADER: usize = 6;
const END: u8 = 0xFF;
/// The element count of a listpack with at least this many elements is not kept.
const COUNT_UNKNOWN: usize = 65535;

/// One listpack element.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Str(Bytes),
    Int(i64),
}

impl Item {
    /// The element as the string Redis hands out for it.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Item::Str(b) => b,
            Item::Int(n) => Bytes::from(n.to_string()),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Item::Int(n) => Some(*n),
            Item::Str(s) => string_to_i64(s),
        }
    }
}

/// Builds a listpack element by element, as `lpAppend` does.
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer { buf: vec![0; HEADER], count: 0 }
    }
}

impl Writer {
    /// Appends a string, stored as an integer when it is one in listpack's strict sense.
    pub fn push_str(&mut self, s: &[u8]) {
        match string_to_i64(s) {
            Some(n) => self.push_int(n),
            None => {
                let start = self.buf.len();
                let n = s.len();
                if n < 64 {
                    self.buf.push(0x80 | n as u8);
                } else if n < 4096 {
                    self.buf.extend_from_slice(&[0xE0 | (n >> 8) as u8, n as u8]);
                } else {
                    self.buf.push(0xF0);
                    self.buf.extend_from_slice(&(n as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(s);
                self.close(start);
            }
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        match v {
            0..=127 => self.buf.push(v as u8),
            -4096..=4095 => {
                let u = if v < 0 { (1i64 << 13) + v } else { v } as u16;
                self.buf.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
            }
            -32768..=32767 => {
                self.buf.push(0xF1);
                self.buf.extend_from_slice(&(v as i16).to_le_bytes());
            }
            -8_388_608..=8_388_607 => {
                self.buf.push(0xF2);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            -2_147_483_648..=2_147_483_647 => {
                self.buf.push(0xF3);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                self.buf.push(0xF4);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        self.close(start);
    }

    /// Appends the back-length of the element that starts at `start`.
    fn close(&mut self, start: usize) {
        let l = (self.buf.len() - start) as u64;
        let groups: &[u32] = match l {
            0..=127 => &[0],
            128..=16_382 => &[7, 0],
            16_383..=2_097_150 => &[14, 7, 0],
            2_097_151..=268_435_454 => &[21, 14, 7, 0],
            _ => &[28, 21, 14, 7, 0],
        };
        for (i, shift) in groups.iter().enumerate() {
            let part = ((l >> shift) & 127) as u8;
            self.buf.push(if i == 0 { part } else { part | 128 });
        }
        self.count += 1;
    }

    /// Current size of the blob once finished (`lpBytes`).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(END);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(COUNT_UNKNOWN) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Every element of a listpack blob, checked.
pub fn parse(blob: &[u8]) -> Result<Vec<Item>, Bad> {
    if blob.len() < HEADER + 1 || u32_at(blob, 0)? as usize != blob.len() || blob[blob.len() - 1] != END {
        return Err(Bad);
    }
    let declared = u16::from_le_bytes([blob[4], blob[5]]) as usize;
    let mut items = Vec::new();
    let mut p = HEADER;
    let end = blob.len() - 1;
    while p < end {
        let (item, len) = element(&blob[p..end])?;
        p += len;
        let back = backlen(&blob[p..end], len)?;
        p += back;
        items.push(item);
    }
    if declared != COUNT_UNKNOWN && declared != items.len() {
        return Err(Bad);
    }
    Ok(items)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, Bad> {
    let s = b.get(at..at + 4).ok_or(Bad)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// One element at the start of `b`: its value and the bytes of encoding plus data.
fn element(b: &[u8]) -> Result<(Item, usize), Bad> {
    let first = *b.first().ok_or(Bad)?;
    let take = |n: usize| b.get(1..1 + n).ok_or(Bad);
    let string = |skip: usize, n: usize| -> Result<(Item, usize), Bad> {
        let data = b.get(skip..skip + n).ok_or(Bad)?;
        Ok((Item::Str(Bytes::copy_from_slice(data)), skip + n))
    };
    match first {
        0x00..=0x7F => Ok((Item::Int(first as i64), 1)),
        0x80..=0xBF => string(1, (first & 0x3F) as usize),
        0xC0..=0xDF => {
            let u = (((first & 0x1F) as i64) << 8) | *b.get(1).ok_or(Bad)? as i64;
            let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
            Ok((Item::Int(v), 2))
        }
        0xE0..=0xEF => string(2, (((first & 0x0F) as usize) << 8) | *b.get(1).ok_or(Bad)? as usize),
        0xF0 => string(5, u32_at(b, 1)? as usize),
        0xF1 => take(2).map(|d| (Item::Int(i16::from_le_bytes([d[0], d[1]]) as i64), 3)),
        0xF2 => take(3).map(|d| (Item::Int((i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8) as i64), 4)),
        0xF3 => take(4).map(|d| (Item::Int(i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64), 5)),
        0xF4 => take(8).map(|d| {
            let mut a = [0u8; 8];
            a.copy_from_slice(d);
            (Item::Int(i64::from_le_bytes(a)), 9)
        }),
        _ => Err(Bad),
    }
}

/// Checks the back-length at the start of `b` encodes `len`; returns its size.
fn backlen(b: &[u8], len: usize) -> Result<usize, Bad> {
    let size = match len {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    let bytes = b.get(..size).ok_or(Bad)?;
    let mut v = 0u64;
    for (i, &byte) in bytes.iter().enumerate() {
        if (i > 0) != (byte & 128 != 0) {
            return Err(Bad);
        }
        v = (v << 7) | (byte & 127) as u64;
    }
    if v != len as u64 {
        return Err(Bad);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_elements_read_back() {
        let mut w = Writer::default();
        let long = vec![b'y'; 5000];
        let strs: Vec<&[u8]> = vec![b"abc", b"0", b"-1", b"127", b"128", b"-4096", b"4095", b"40000", b"-32769"];
        for s in &strs {
            w.push_str(s);
        }
        w.push_str(&[b'x'; 100]);
        w.push_str(&long);
        w.push_int(i64::MIN);
        w.push_int(9_000_000_000);
        let blob = w.finish();
        let items = parse(&blob).expect("valid");
        assert_eq!(items.len(), strs.len() + 4);
        assert_eq!(items[0], Item::Str(Bytes::from_static(b"abc")));
        assert_eq!(items[2], Item::Int(-1));
        assert_eq!(items[5], Item::Int(-4096));
        assert_eq!(items[8], Item::Int(-32769));
        assert_eq!(items[10].clone().into_bytes().len(), 5000);
        assert_eq!(items[11], Item::Int(i64::MIN));
    }

    #[test]
    fn sizes_agree_with_the_stream_node_accounting() {
        let mut w = Writer::default();
        for s in [&b"abc"[..], b"12", b"012", &[b'x'; 200]] {
            w.push_str(s);
        }
        let expected = 7 + crate::store::stream::listpack::str_len(b"abc") + 2 + 5 + 204;
        assert_eq!(w.finish().len(), expected);
    }

    #[test]
    fn damaged_blobs_are_refused() {
        let mut w = Writer::default();
        w.push_str(b"hello");
        w.push_int(5);
        let blob = w.finish();
        for cut in 0..blob.len() {
            assert!(parse(&blob[..cut]).is_err());
        }
        let mut bad = blob.clone();
        bad[4] = 3; // wrong count
        assert!(parse(&bad).is_err());
        let mut bad = blob.clone();
        bad[6] = 0x80 | 30; // string longer than the blob
        assert!(parse(&bad).is_err());
    }
}
