//! Hash values. Like Redis, a small hash is a compact "listpack": a vector of
//! `(field, value)` pairs in insertion order. Once it holds more than
//! [`MAX_LISTPACK_ENTRIES`] fields or any field or value longer than [`MAX_LISTPACK_VALUE`]
//! bytes, it converts for good to a "hashtable" backed by [`KeyMap`] (it never converts back,
//! as in Redis). The encoding is observable: `OBJECT ENCODING`, reply order of HGETALL and
//! whether HSCAN returns everything at once all depend on it.

use super::keymap::KeyMap;
use super::value::own_small;
use bytes::Bytes;

/// Redis 7.0.15's default `hash-max-listpack-entries`.
pub const MAX_LISTPACK_ENTRIES: usize = 512;
/// Redis 7.0.15's default `hash-max-listpack-value`.
pub const MAX_LISTPACK_VALUE: usize = 64;

/// A hash value: field -> value.
#[derive(Debug, Clone, PartialEq)]
pub enum HashValue {
    /// Insertion-ordered pairs; lookups are linear, which is cheap at this size.
    Listpack(Vec<(Bytes, Bytes)>),
    /// Hash-ordered map for big hashes.
    Table(KeyMap<Bytes>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(Vec::new())
    }
}

impl HashValue {
    /// The name `OBJECT ENCODING` replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len(),
            HashValue::Table(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rough memory footprint in bytes.
    pub fn approx_size(&self) -> usize {
        let per_entry = match self {
            HashValue::Listpack(_) => 4,
            HashValue::Table(_) => 48,
        };
        self.iter().map(|(f, v)| f.len() + v.len() + per_entry).sum()
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        match self {
            HashValue::Listpack(v) => v.iter().find(|(f, _)| f.as_ref() == field).map(|(_, val)| val),
            HashValue::Table(m) => m.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to the hashtable encoding if the listpack would no longer fit one of
    /// `lengths` (bytes of fields/values about to be stored), as Redis's
    /// `hashTypeTryConversion` does before a write (even one that ends up not writing).
    pub fn prepare_for(&mut self, lengths: impl IntoIterator<Item = usize>) {
        if matches!(self, HashValue::Listpack(_)) && lengths.into_iter().any(|n| n > MAX_LISTPACK_VALUE) {
            self.convert();
        }
    }

    /// Sets `field` to `value`; true if the field is new.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        self.prepare_for([field.len(), value.len()]);
        let (field, value) = (own_small(field), own_small(value));
        let added = match self {
            HashValue::Listpack(v) => match v.iter_mut().find(|(f, _)| *f == field) {
                Some((_, old)) => {
                    *old = value;
                    false
                }
                None => {
                    v.push((field, value));
                    true
                }
            },
            HashValue::Table(m) => m.insert(field, value).is_none(),
        };
        if self.len() > MAX_LISTPACK_ENTRIES {
            self.convert();
        }
        added
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            // `remove`, not `swap_remove`: the listpack keeps insertion order.
            HashValue::Listpack(v) => match v.iter().position(|(f, _)| f.as_ref() == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            HashValue::Table(m) => m.remove(field).is_some(),
        }
    }

    /// Every pair: insertion order for a listpack, hash order for a hashtable (both are the
    /// same on every replica).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&Bytes, &Bytes)> + '_> {
        match self {
            HashValue::Listpack(v) => Box::new(v.iter().map(|(f, val)| (f, val))),
            HashValue::Table(m) => Box::new(m.iter()),
        }
    }

    /// A SCAN step: a listpack returns everything with cursor 0 (as Redis does); a
    /// hashtable walks [`KeyMap::scan`].
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<(&Bytes, &Bytes)>, u64) {
        match self {
            HashValue::Listpack(_) => (self.iter().collect(), 0),
            HashValue::Table(m) => m.scan(cursor, count),
        }
    }

    /// Moves the pairs into a hashtable (one way: Redis never converts back).
    fn convert(&mut self) {
        if let HashValue::Listpack(v) = self {
            let mut m = KeyMap::new();
            for (f, val) in std::mem::take(v) {
                m.insert(f, val);
            }
            *self = HashValue::Table(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn small_hash_is_a_listpack_in_insertion_order() {
        let mut h = HashValue::default();
        assert!(h.insert(b("z"), b("1")));
        assert!(h.insert(b("a"), b("2")));
        assert!(!h.insert(b("z"), b("3")));
        assert_eq!(h.encoding(), "listpack");
        let pairs: Vec<_> = h.iter().map(|(f, v)| (f.clone(), v.clone())).collect();
        assert_eq!(pairs, vec![(b("z"), b("3")), (b("a"), b("2"))]);
        assert!(h.remove(b"z"));
        assert!(!h.remove(b"z"));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn too_many_entries_convert_for_good() {
        let mut h = HashValue::default();
        for i in 0..MAX_LISTPACK_ENTRIES {
            h.insert(b(&format!("f{i}")), b("v"));
        }
        assert_eq!(h.encoding(), "listpack");
        h.insert(b("one-more"), b("v"));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), MAX_LISTPACK_ENTRIES + 1);
        assert_eq!(h.get(b"f7"), Some(&b("v")));
        for i in 0..MAX_LISTPACK_ENTRIES {
            h.remove(format!("f{i}").as_bytes());
        }
        assert_eq!(h.len(), 1);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn long_field_or_value_converts() {
        let long = "x".repeat(MAX_LISTPACK_VALUE + 1);
        let edge = "x".repeat(MAX_LISTPACK_VALUE);
        let mut h = HashValue::default();
        h.insert(b(&edge), b(&edge));
        assert_eq!(h.encoding(), "listpack");
        h.insert(b("f"), b(&long));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(edge.as_bytes()), Some(&b(&edge)));

        let mut h = HashValue::default();
        h.insert(b(&long), b("v"));
        assert_eq!(h.encoding(), "hashtable");

        let mut h = HashValue::default();
        h.prepare_for([3, MAX_LISTPACK_VALUE + 1]);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn scan_of_listpack_is_one_step_and_table_walks() {
        let mut h = HashValue::default();
        h.insert(b("a"), b("1"));
        assert_eq!(h.scan(12345, 1).1, 0);
        for i in 0..600 {
            h.insert(b(&format!("k{i}")), b("v"));
        }
        let (mut seen, mut cursor) = (0, 0);
        loop {
            let (items, next) = h.scan(cursor, 10);
            seen += items.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen, 601);
    }
}
