//! The value kinds a key can hold, and what `TYPE` / `OBJECT ENCODING` say about them.

use super::hash::HashValue;
use super::list::ListValue;
use super::set::SetValue;
use super::stream::StreamValue;
use super::zset::ZSetValue;
use bytes::Bytes;

/// A key's value. Collection kinds pick a compact representation while small, as Redis does.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Bytes),
    // The collections are boxed so that a value (and so every key's slot in the index) is as
    // small as a string's `Bytes`: unboxed, the biggest of them set the size of every string key.
    List(Box<ListValue>),
    Hash(Box<HashValue>),
    Set(Box<SetValue>),
    ZSet(Box<ZSetValue>),
    Stream(Box<StreamValue>),
}

impl Value {
    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name `OBJECT ENCODING` replies with (Redis 7.0 names).
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => string_encoding(s),
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// True for a collection with no elements (such keys are deleted, never stored).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.items.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            // Redis keeps an empty stream (its last id and groups matter).
            Value::Stream(_) => false,
        }
    }

    /// How many elements the value holds (1 for a string), in constant time: what a command
    /// that walks the whole value visits.
    pub fn elements(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(s) => s.len() as usize,
        }
    }

    /// Estimated bytes a key holding this value costs: its name, the value and a per-key
    /// overhead (the entry, its hash-table slot, the key's header). MEMORY USAGE answers it.
    pub fn footprint(&self, key: &[u8]) -> usize {
        const PER_KEY: usize = 56;
        key.len() + self.approx_size() + PER_KEY
    }

    /// Rough memory footprint in bytes, for INFO and MEMORY USAGE.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l.approx_size(),
            Value::Hash(h) => h.approx_size(),
            Value::Set(s) => s.approx_size(),
            Value::ZSet(z) => z.approx_size(),
            Value::Stream(s) => s.approx_size(),
        }
    }
}

/// Bytes at or under which a stored key or string value gets its own allocation.
pub const OWN_COPY_MAX: usize = 256;

/// `b` itself, or for `b` of at most [`OWN_COPY_MAX`] bytes a copy in an allocation of its own.
/// Arguments arrive as slices of a bigger buffer (the connection's read buffer on the node that
/// took the write, a Raft message or a log read elsewhere), and a stored slice keeps that whole
/// buffer alive for as long as the key lives. Larger values are kept as they are: they are most
/// of what they pin, and copying them would cost the write path a memcpy per byte.
pub fn own_small(b: Bytes) -> Bytes {
    if b.len() <= OWN_COPY_MAX {
        Bytes::copy_from_slice(&b)
    } else {
        b
    }
}

fn string_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && crate::protocol::parse_i64(s).is_some() {
        "int"
    } else if s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}
