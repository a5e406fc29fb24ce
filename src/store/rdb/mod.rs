//! Redis 7.0's serialized value format (RDB version 10): what DUMP produces, RESTORE and
//! FUNCTION RESTORE read, and MIGRATE carries between servers.
//!
//! A payload is one object (a type byte and its body, as in an RDB file), then the RDB
//! version (2 bytes, little-endian) and a CRC-64 (Jones, Redis's `crc64.c`) of everything
//! before it. [`dump`] writes the encodings redis-server 7.0.15 writes for the same value (the
//! compact listpack / intset forms while a value is small, LZF for strings over 20 bytes that
//! compress), so payloads compare byte for byte where the layout is determined by the value.
//! [`load`] accepts every encoding Redis 7.0 loads, older ones included (ziplists, zipmaps,
//! version-1 quicklists, `STREAM_LISTPACKS`), so a payload from any redis-server up to 7.0
//! restores here. A payload is client input: every length is checked against what remains
//! before anything is allocated for it, and anything malformed is [`Bad`], never a panic.
//!
//! Pure functions of their input: the keyspace layer (RESTORE is applied from the Raft log)
//! and the server layer (MIGRATE) both use them.

mod decode;
mod encode;
pub mod legacy;
pub mod listpack;
pub mod lzf;
mod stream;

use super::Value;

pub use decode::load_object;
pub use encode::write_object;

/// The RDB version this format is (Redis 7.0).
pub const RDB_VERSION: u16 = 10;

/// A malformed payload body (RESTORE's `Bad data format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bad;

/// Why a payload does not restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// Too short, a newer RDB version, or a checksum mismatch.
    VersionOrChecksum,
    /// The body is not a valid object.
    BadFormat,
}

impl From<Bad> for LoadError {
    fn from(_: Bad) -> Self {
        LoadError::BadFormat
    }
}

/// Object type bytes (rdb.h).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// The opcode before each library in a FUNCTION DUMP payload (`RDB_OPCODE_FUNCTION2`).
    pub const FUNCTION2: u8 = 245;
    /// Functions as saved by the 7.0 release candidates (`RDB_OPCODE_FUNCTION_PRE_GA`).
    pub const FUNCTION_PRE_GA: u8 = 246;
}

/// The CRC-64 Redis puts at the end of a payload.
pub fn crc64(data: &[u8]) -> u64 {
    const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);
    CRC.checksum(data)
}

/// Appends the version and checksum trailer that makes `body` a payload.
pub fn seal(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// The body of a payload whose trailer is right (Redis's `verifyDumpPayload`).
pub fn verify(payload: &[u8]) -> Result<&[u8], LoadError> {
    if payload.len() < 10 {
        return Err(LoadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION || crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(LoadError::VersionOrChecksum);
    }
    Ok(body)
}

/// DUMP: the payload of a value.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&mut out, value);
    seal(out)
}

/// RESTORE: the value of a payload. The whole body must be one object.
pub fn load(payload: &[u8]) -> Result<Value, LoadError> {
    let body = verify(payload)?;
    let mut r = Reader::new(body);
    let value = load_object(&mut r)?;
    if !r.is_empty() {
        return Err(LoadError::BadFormat);
    }
    Ok(value)
}

/// A cursor over a payload body; every read checks what remains.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        if n > self.buf.len() {
            return Err(Bad);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, Bad> {
        Ok(self.take(1)?[0])
    }

    /// An RDB length; `Ok((n, true))` for a special encoding (integer or LZF string).
    fn len_or_encoding(&mut self) -> Result<(u64, bool), Bad> {
        let first = self.u8()?;
        match first >> 6 {
            0 => Ok(((first & 0x3F) as u64, false)),
            1 => Ok(((((first & 0x3F) as u64) << 8) | self.u8()? as u64, false)),
            3 => Ok(((first & 0x3F) as u64, true)),
            _ => match first {
                0x80 => {
                    let b = self.take(4)?;
                    Ok((u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64, false))
                }
                0x81 => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Ok((u64::from_be_bytes(a), false))
                }
                _ => Err(Bad),
            },
        }
    }

    /// A plain length.
    pub fn len(&mut self) -> Result<u64, Bad> {
        match self.len_or_encoding()? {
            (n, false) => Ok(n),
            _ => Err(Bad),
        }
    }

    /// A count of things that each take at least `min_bytes` of what remains: a count the
    /// rest of the payload cannot hold is refused before anything is allocated for it.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, Bad> {
        let n = usize::try_from(self.len()?).map_err(|_| Bad)?;
        if n.checked_mul(min_bytes.max(1)).is_none_or(|need| need > self.buf.len()) {
            return Err(Bad);
        }
        Ok(n)
    }

    /// A string in any of its encodings (raw, integer, LZF).
    pub fn string(&mut self) -> Result<Vec<u8>, Bad> {
        match self.len_or_encoding()? {
            (n, false) => {
                let n = usize::try_from(n).map_err(|_| Bad)?;
                Ok(self.take(n)?.to_vec())
            }
            (0, true) => Ok((self.u8()? as i8).to_string().into_bytes()),
            (1, true) => {
                let b = self.take(2)?;
                Ok(i16::from_le_bytes([b[0], b[1]]).to_string().into_bytes())
            }
            (2, true) => {
                let b = self.take(4)?;
                Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string().into_bytes())
            }
            (3, true) => {
                let compressed = usize::try_from(self.len()?).map_err(|_| Bad)?;
                let plain = usize::try_from(self.len()?).map_err(|_| Bad)?;
                let data = self.take(compressed)?;
                // LZF expands at most ~88x (3 bytes for a 264-byte reference): a larger
                // claimed size is corrupt, and refusing it bounds the allocation.
                if plain > compressed.saturating_mul(90) {
                    return Err(Bad);
                }
                lzf::decompress(data, plain).ok_or(Bad)
            }
            _ => Err(Bad),
        }
    }

    /// Little-endian u64 (millisecond times of stream groups).
    pub fn u64_le(&mut self) -> Result<u64, Bad> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Appends an RDB length.
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a string as `rdbSaveRawString` does: as an integer when it is a short one that
/// reads back identically, LZF-compressed when over 20 bytes and compression saves at least
/// 4 bytes, raw otherwise.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = crate::store::stream::listpack::string_to_i64(s) {
            if let Ok(v) = i32::try_from(v) {
                if let Ok(b) = i8::try_from(v) {
                    out.extend_from_slice(&[0xC0, b as u8]);
                } else if let Ok(h) = i16::try_from(v) {
                    out.push(0xC1);
                    out.extend_from_slice(&h.to_le_bytes());
                } else {
                    out.push(0xC2);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                return;
            }
        }
    }
    if s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xC3);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests;
