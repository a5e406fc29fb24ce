//! `KeyMap`: a map from binary keys ordered by a fixed 64-bit hash. The order is the same on
//! every replica and stable under inserts and removals, which gives SCAN cursors (a cursor is
//! a hash value: everything present for the whole scan is returned at least once) and cheap
//! random picks, with no nondeterministic iteration anywhere.

use bytes::Bytes;
use siphasher::sip::SipHasher13;
use std::collections::BTreeMap;
use std::hash::Hasher;

/// The fixed hash of a key (same on every node and every run).
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x7261_6674_6973_0001, 0x6b65_7973_7061_6365);
    h.write(key);
    h.finish()
}

#[derive(Debug, Clone, PartialEq)]
enum Bucket<V> {
    One(Bytes, V),
    Many(Vec<(Bytes, V)>),
}

/// Ordered-by-hash map of binary keys to `V`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap<V> {
    buckets: BTreeMap<u64, Bucket<V>>,
    len: usize,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap { buckets: BTreeMap::new(), len: 0 }
    }
}

impl<V> KeyMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
        self.len = 0;
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        match self.buckets.get(&key_hash(key))? {
            Bucket::One(k, v) => (k.as_ref() == key).then_some(v),
            Bucket::Many(items) => items.iter().find(|(k, _)| k.as_ref() == key).map(|(_, v)| v),
        }
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        match self.buckets.get_mut(&key_hash(key))? {
            Bucket::One(k, v) => (k.as_ref() == key).then_some(v),
            Bucket::Many(items) => items.iter_mut().find(|(k, _)| k.as_ref() == key).map(|(_, v)| v),
        }
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: Bytes, value: V) -> Option<V> {
        use std::collections::btree_map::Entry;
        match self.buckets.entry(key_hash(&key)) {
            Entry::Vacant(e) => {
                e.insert(Bucket::One(key, value));
                self.len += 1;
                None
            }
            Entry::Occupied(mut e) => {
                let bucket = e.get_mut();
                if let Bucket::One(k, v) = bucket {
                    if *k == key {
                        return Some(std::mem::replace(v, value));
                    }
                    let Bucket::One(k, v) = std::mem::replace(bucket, Bucket::Many(Vec::new())) else {
                        unreachable!("matched One above")
                    };
                    *bucket = Bucket::Many(vec![(k, v)]);
                }
                let Bucket::Many(items) = bucket else { unreachable!("converted to Many above") };
                if let Some((_, v)) = items.iter_mut().find(|(k, _)| *k == key) {
                    return Some(std::mem::replace(v, value));
                }
                items.push((key, value));
                self.len += 1;
                None
            }
        }
    }

    /// Removes a key, returning its stored name and value.
    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(Bytes, V)> {
        let hash = key_hash(key);
        let bucket = self.buckets.get_mut(&hash)?;
        let removed = match bucket {
            Bucket::One(k, _) if k.as_ref() == key => match self.buckets.remove(&hash) {
                Some(Bucket::One(k, v)) => Some((k, v)),
                _ => None,
            },
            Bucket::One(..) => None,
            Bucket::Many(items) => {
                let pos = items.iter().position(|(k, _)| k.as_ref() == key)?;
                let kv = items.swap_remove(pos);
                if items.is_empty() {
                    self.buckets.remove(&hash);
                }
                Some(kv)
            }
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Every entry in hash order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &V)> {
        self.buckets.values().flat_map(bucket_items)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.iter().map(|(k, _)| k)
    }

    /// Entries from `cursor` on, whole buckets at a time, until at least `count` are taken.
    /// Returns them and the next cursor (0 when the walk is complete).
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<(&Bytes, &V)>, u64) {
        let mut out = Vec::new();
        for (&hash, bucket) in self.buckets.range(cursor..) {
            if out.len() >= count.max(1) {
                return (out, hash);
            }
            out.extend(bucket_items(bucket));
        }
        (out, 0)
    }

    /// The first entry at or after `point` in hash order, wrapping around: with a uniform
    /// random `point` this is a random pick.
    pub fn pick(&self, point: u64) -> Option<(&Bytes, &V)> {
        let bucket = self.buckets.range(point..).next().or_else(|| self.buckets.iter().next())?.1;
        bucket_items(bucket).next()
    }
}

fn bucket_items<V>(b: &Bucket<V>) -> Box<dyn Iterator<Item = (&Bytes, &V)> + '_> {
    match b {
        Bucket::One(k, v) => Box::new(std::iter::once((k, v))),
        Bucket::Many(items) => Box::new(items.iter().map(|(k, v)| (k, v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let mut m = KeyMap::new();
        assert_eq!(m.insert(Bytes::from_static(b"a"), 1), None);
        assert_eq!(m.insert(Bytes::from_static(b"a"), 2), Some(1));
        assert_eq!(m.get(b"a"), Some(&2));
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove(b"a"), Some(2));
        assert!(m.is_empty());
        assert_eq!(m.remove(b"a"), None);
    }

    #[test]
    fn scan_visits_every_key_once_even_with_small_counts() {
        let mut m = KeyMap::new();
        for i in 0..1000 {
            m.insert(Bytes::from(format!("k{i}")), i);
        }
        let (mut seen, mut cursor) = (Vec::new(), 0);
        loop {
            let (items, next) = m.scan(cursor, 7);
            seen.extend(items.into_iter().map(|(_, v)| *v));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn pick_wraps_around() {
        let mut m = KeyMap::new();
        m.insert(Bytes::from_static(b"only"), ());
        assert!(m.pick(u64::MAX).is_some());
        assert!(m.pick(0).is_some());
    }
}
