//! The on-disk record of the write-ahead log:
//!
//! ```text
//! | len: u32 LE | crc32c: u32 LE | kind: u8 | index: u64 LE | payload: len - 9 bytes |
//! ```
//! `len` counts kind + index + payload; the CRC covers the same bytes. A record either
//! decodes whole with a matching checksum, or is reported as incomplete or corrupt.

use bytes::Bytes;

/// Bytes before the checksummed body.
pub const HEADER: usize = 8;
/// Smallest body: kind + index.
const MIN_BODY: usize = 9;
/// Largest body accepted on read (a corrupt length must not make us allocate gigabytes).
pub const MAX_BODY: usize = 256 * 1024 * 1024;

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Log entry `index` with its serialized payload.
    Entry { index: u64, payload: Bytes },
    /// Every entry at or after `index` is gone (a conflicting suffix was replaced).
    TruncateFrom { index: u64 },
    /// Every entry at or before `index` is gone (compacted into a snapshot).
    PurgeUpTo { index: u64 },
}

const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_PURGE: u8 = 3;

/// Outcome of decoding at some offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A record and its total encoded size.
    Ok(Record, usize),
    /// The bytes end inside the record (a torn tail if nothing follows).
    Incomplete,
    /// The bytes are there but wrong; `end` is where the record claims to end.
    Corrupt { reason: &'static str, end: usize },
}

impl Record {
    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, index, payload): (u8, u64, &[u8]) = match self {
            Record::Entry { index, payload } => (KIND_ENTRY, *index, payload),
            Record::TruncateFrom { index } => (KIND_TRUNCATE, *index, &[]),
            Record::PurgeUpTo { index } => (KIND_PURGE, *index, &[]),
        };
        let body_len = MIN_BODY + payload.len();
        let start = out.len();
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(kind);
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(payload);
        let crc = crc32c::crc32c(&out[start + HEADER..]);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes the record at the front of `buf`.
    pub fn decode(buf: &[u8]) -> Decoded {
        if buf.len() < HEADER {
            return Decoded::Incomplete;
        }
        let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let end = HEADER.saturating_add(body_len);
        if !(MIN_BODY..=MAX_BODY).contains(&body_len) {
            return Decoded::Corrupt { reason: "impossible record length", end };
        }
        let Some(body) = buf.get(HEADER..end) else {
            return Decoded::Incomplete;
        };
        if crc32c::crc32c(body) != crc {
            return Decoded::Corrupt { reason: "checksum mismatch", end };
        }
        let mut index_bytes = [0u8; 8];
        index_bytes.copy_from_slice(&body[1..9]);
        let index = u64::from_le_bytes(index_bytes);
        let record = match body[0] {
            KIND_ENTRY => Record::Entry { index, payload: Bytes::copy_from_slice(&body[9..]) },
            KIND_TRUNCATE => Record::TruncateFrom { index },
            KIND_PURGE => Record::PurgeUpTo { index },
            _ => return Decoded::Corrupt { reason: "unknown record kind", end },
        };
        Decoded::Ok(record, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Record) -> Vec<u8> {
        let mut v = Vec::new();
        r.encode(&mut v);
        v
    }

    #[test]
    fn round_trip_every_kind() {
        for r in [
            Record::Entry { index: 7, payload: Bytes::from_static(b"payload") },
            Record::Entry { index: 0, payload: Bytes::new() },
            Record::TruncateFrom { index: 3 },
            Record::PurgeUpTo { index: u64::MAX },
        ] {
            let bytes = enc(&r);
            assert_eq!(Record::decode(&bytes), Decoded::Ok(r, bytes.len()));
        }
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let bytes = enc(&Record::Entry { index: 1, payload: Bytes::from_static(b"abcdef") });
        for cut in 0..bytes.len() {
            assert_eq!(Record::decode(&bytes[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn flipped_bits_are_corrupt() {
        let bytes = enc(&Record::Entry { index: 1, payload: Bytes::from_static(b"abcdef") });
        for i in HEADER..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(matches!(Record::decode(&b), Decoded::Corrupt { .. }), "flip at {i}");
        }
    }

    #[test]
    fn absurd_length_is_corrupt_not_an_allocation() {
        let mut b = enc(&Record::TruncateFrom { index: 1 });
        b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Record::decode(&b), Decoded::Corrupt { reason: "impossible record length", .. }));
    }
}
