//! Byte encoding of one snapshot record (a key with its value, expiry and version).
//!
//! Values are written as their logical content (list items, hash pairs, set members, zset
//! members with scores) plus their encoding tag, never as the in-memory representation, and are
//! rebuilt through the value types' public constructors. The encoding tag is kept because the
//! form is replicated state: a set that once converted to a hashtable stays one (Redis never
//! converts back), so a replica restored from a snapshot must answer `OBJECT ENCODING`, HGETALL
//! order and SCAN cursors exactly as a replica that applied the log.
//!
//! Integers are LEB128 varints, byte strings are a varint length then the bytes, scores are the
//! 8 little-endian bytes of the `f64` (exact, -0 and infinities included). The decoder treats its
//! input as untrusted: every length is checked against what is left, so a bad record is an
//! error, never a panic or a huge allocation.

use crate::store::hash::HashValue;
use crate::store::list::ListValue;
use crate::store::set::SetValue;
use crate::store::zset::ZSetValue;
use crate::store::{Entry, KeyMap, Value};
use bytes::Bytes;

mod stream;

const TAG_STR: u8 = 0;
const TAG_LIST: u8 = 1;
const TAG_HASH: u8 = 2;
const TAG_SET: u8 = 3;
const TAG_ZSET: u8 = 4;
const TAG_STREAM: u8 = 5;

/// Compact form (listpack / intset) vs big form (hashtable / skiplist).
const ENC_COMPACT: u8 = 0;
const ENC_TABLE: u8 = 1;

/// One decoded key.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub db: u32,
    pub key: Bytes,
    pub expire_at: Option<u64>,
    pub version: u64,
    pub value: Value,
}

/// Appends the record for `key` in database `db` to `out`.
pub fn encode_record(out: &mut Vec<u8>, db: u32, key: &[u8], entry: &Entry) {
    put_varint(out, u64::from(db));
    put_bytes(out, key);
    match entry.expire_at() {
        Some(t) => {
            out.push(1);
            put_varint(out, t);
        }
        None => out.push(0),
    }
    put_varint(out, entry.version());
    encode_value(out, &entry.value);
}

fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => {
            out.push(TAG_STR);
            put_bytes(out, s);
        }
        Value::List(l) => {
            out.push(TAG_LIST);
            put_varint(out, l.items.len() as u64);
            l.items.iter().for_each(|item| put_bytes(out, item));
        }
        Value::Hash(h) => {
            out.push(TAG_HASH);
            out.push(if h.encoding() == "listpack" { ENC_COMPACT } else { ENC_TABLE });
            put_varint(out, h.len() as u64);
            for (field, val) in h.iter() {
                put_bytes(out, field);
                put_bytes(out, val);
            }
        }
        Value::Set(s) => {
            out.push(TAG_SET);
            out.push(if s.encoding() == "intset" { ENC_COMPACT } else { ENC_TABLE });
            put_varint(out, s.len() as u64);
            s.iter().for_each(|m| put_bytes(out, &m));
        }
        Value::ZSet(z) => {
            out.push(TAG_ZSET);
            let (table, entries) = zset_entries(z);
            out.push(if table { ENC_TABLE } else { ENC_COMPACT });
            put_varint(out, entries.len() as u64);
            for (member, score) in entries {
                put_bytes(out, &member);
                out.extend_from_slice(&score.to_bits().to_le_bytes());
            }
        }
        Value::Stream(s) => {
            out.push(TAG_STREAM);
            stream::encode(out, s);
        }
    }
}

/// Decodes one record; `what` describes the failure when it is malformed.
pub fn decode_record(buf: &[u8]) -> Result<Record, &'static str> {
    let mut c = Cursor { buf, pos: 0 };
    let db = u32::try_from(c.varint()?).map_err(|_| "database index out of range")?;
    let key = c.bytes()?;
    let expire_at = match c.u8()? {
        0 => None,
        1 => Some(c.varint()?),
        _ => return Err("bad expiry flag"),
    };
    let version = c.varint()?;
    let value = decode_value(&mut c)?;
    if c.pos != buf.len() {
        return Err("trailing bytes after the value");
    }
    Ok(Record { db, key, expire_at, version, value })
}

fn decode_value(c: &mut Cursor<'_>) -> Result<Value, &'static str> {
    let value = match c.u8()? {
        TAG_STR => Value::Str(c.bytes()?),
        TAG_LIST => {
            let n = c.count(1)?;
            let mut l = ListValue::default();
            for _ in 0..n {
                l.items.push_back(c.bytes()?);
            }
            Value::List(Box::new(l))
        }
        TAG_HASH => {
            let table = c.encoding()?;
            let n = c.count(2)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((c.bytes()?, c.bytes()?));
            }
            Value::Hash(if table {
                let mut m = KeyMap::new();
                pairs.into_iter().for_each(|(f, v)| {
                    m.insert(f, v);
                });
                Box::new(HashValue::Table(m))
            } else {
                // Listpack order is insertion order: keep it as written.
                Box::new(HashValue::Listpack(pairs))
            })
        }
        TAG_SET => {
            let table = c.encoding()?;
            let n = c.count(1)?;
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                members.push(c.bytes()?);
            }
            Value::Set(if table {
                Box::new(SetValue::from_table_members(members))
            } else {
                let s = SetValue::from_members(members);
                if s.encoding() != "intset" {
                    return Err("intset holds a member that is not an integer");
                }
                Box::new(s)
            })
        }
        TAG_ZSET => {
            let table = c.encoding()?;
            let n = c.count(9)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let member = c.bytes()?;
                let score = f64::from_bits(u64::from_le_bytes(c.array()?));
                // No command stores NaN (Redis refuses it too), and with one the set has no
                // order: a round trip could reorder it (a fuzz finding of 2026-12-06).
                if score.is_nan() {
                    return Err("zset score is NaN");
                }
                entries.push((member, score));
            }
            Value::ZSet(Box::new(zset_from_entries(table, entries)))
        }
        TAG_STREAM => Value::Stream(Box::new(stream::decode(c)?)),
        _ => return Err("unknown value type"),
    };
    if value.is_empty_collection() {
        return Err("empty collection");
    }
    Ok(value)
}

/// A zset's form (true: skiplist) and its (member, score) pairs in order.
fn zset_entries(z: &ZSetValue) -> (bool, Vec<(Bytes, f64)>) {
    (z.encoding() == "skiplist", z.iter().map(|(m, s)| (m.clone(), s)).collect())
}

/// Rebuilds a zset in the given form: a size hint above the listpack limit gives the skiplist
/// form even for a small set (Redis never converts back, so neither may a restored replica).
fn zset_from_entries(table: bool, entries: Vec<(Bytes, f64)>) -> ZSetValue {
    let mut z =
        if table { ZSetValue::with_size_hint(crate::store::zset::MAX_LISTPACK_ENTRIES + 1) } else { ZSetValue::new() };
    for (member, score) in entries {
        z.insert(member, score);
    }
    z
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A read position in an untrusted buffer.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        let b = *self.buf.get(self.pos).ok_or("record ends early")?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }

    fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        if n > self.left() {
            return Err("length beyond the record");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A byte string, copied: sharing the record buffer would pin it in memory for as long as
    /// any one element lives.
    fn bytes(&mut self) -> Result<Bytes, &'static str> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length beyond the record")?;
        self.take(n).map(Bytes::copy_from_slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn encoding(&mut self) -> Result<bool, &'static str> {
        match self.u8()? {
            ENC_COMPACT => Ok(false),
            ENC_TABLE => Ok(true),
            _ => Err("unknown encoding tag"),
        }
    }

    /// An element count, refused if the remaining bytes cannot hold that many elements of at
    /// least `min_bytes` each (so a bad count never drives a huge allocation).
    fn count(&mut self, min_bytes: usize) -> Result<usize, &'static str> {
        let n = self.varint()?;
        if n > (self.left() / min_bytes) as u64 {
            return Err("element count beyond the record");
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    fn roundtrip(value: Value, expire_at: Option<u64>) {
        let mut db = Db::default();
        db.insert(Bytes::from_static(b"k"), value, expire_at, 77);
        let Some(entry) = db.get(b"k", 0) else { panic!("inserted") };
        let mut out = Vec::new();
        encode_record(&mut out, 5, b"k", entry);
        let rec = decode_record(&out).expect("decodes");
        assert_eq!(
            rec,
            Record { db: 5, key: Bytes::from_static(b"k"), expire_at, version: 77, value: entry.value.clone() }
        );
        for cut in 0..out.len() {
            assert!(decode_record(&out[..cut]).is_err(), "truncated at {cut}");
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn every_kind_round_trips_with_its_form() {
        roundtrip(Value::Str(b("hello")), None);
        roundtrip(Value::Str(Bytes::new()), Some(1_700_000_000_000));
        roundtrip(Value::List(Box::new(ListValue { items: [b("a"), b(""), b("c")].into_iter().collect() })), None);
        let mut h = HashValue::default();
        h.insert(b("z"), b("1"));
        h.insert(b("a"), b("2"));
        roundtrip(Value::Hash(Box::new(h.clone())), None);
        h.insert(b("long"), Bytes::from(vec![b'x'; 100]));
        h.remove(b"long");
        assert_eq!(h.encoding(), "hashtable");
        roundtrip(Value::Hash(Box::new(h)), Some(5));
        let mut s = SetValue::from_members([b("1"), b("2")]);
        roundtrip(Value::Set(Box::new(s.clone())), None);
        s.insert(b("x"));
        s.remove(b"x");
        assert_eq!(s.encoding(), "hashtable");
        roundtrip(Value::Set(Box::new(s)), None);
    }

    #[test]
    fn streams_round_trip_with_nodes_tombstones_and_groups() {
        use crate::store::stream::{Group, StreamId, StreamValue};
        let mut s = StreamValue::default();
        for i in 1..=150u64 {
            let field = if i % 7 == 0 { b("other") } else { b("f") };
            s.append(StreamId::new(i, i % 3), &[field, b(&i.to_string())], Default::default());
        }
        s.delete(StreamId::new(3, 0));
        s.trim(crate::store::stream::Trim::MaxLen(140), false, 0);
        let mut g = Group::new(StreamId::new(20, 2), 17);
        g.create_consumer(&b("alice"), 5);
        g.create_consumer(&b("bob"), 6);
        g.deliver(StreamId::new(11, 2), &b("alice"), 1000);
        g.deliver(StreamId::new(12, 0), &b("bob"), 1001);
        s.groups.insert(b("g1"), g);
        s.groups.insert(b("g0"), Group::new(StreamId::MIN, -1));
        assert_eq!(s.node_count(), 2);
        roundtrip(Value::Stream(Box::new(s)), None);
        // An empty stream is kept (its last id and groups matter).
        let mut e = StreamValue::default();
        e.append(StreamId::new(1, 1), &[b("a"), b("b")], Default::default());
        e.delete(StreamId::new(1, 1));
        roundtrip(Value::Stream(Box::new(e)), Some(9));
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(decode_record(&[]).is_err());
        // db 0, key "k", no ttl, version 1, a list claiming 2^60 items.
        let mut out = vec![0, 1, b'k', 0, 1, TAG_LIST];
        put_varint(&mut out, 1 << 60);
        assert_eq!(decode_record(&out), Err("element count beyond the record"));
        // An unknown value type.
        assert_eq!(decode_record(&[0, 1, b'k', 0, 1, 9]), Err("unknown value type"));
        // An intset with a non-integer member.
        assert_eq!(
            decode_record(&[0, 1, b'k', 0, 1, TAG_SET, ENC_COMPACT, 1, 1, b'x']),
            Err("intset holds a member that is not an integer")
        );
        // An empty list.
        assert_eq!(decode_record(&[0, 1, b'k', 0, 1, TAG_LIST, 0]), Err("empty collection"));
    }
}
