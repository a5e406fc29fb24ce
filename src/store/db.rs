//! One logical database: keys, their values, their expiry times and their versions.
//!
//! Reads never mutate: an expired key is simply invisible to them (lazy expiry). Writes remove
//! an expired key they touch, and active expiry turns due keys into deletions proposed as
//! ordinary writes, so every replica deletes the same keys at the same log position.

use super::keymap::KeyMap;
use super::value::{own_small, Value};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::num::NonZeroU64;

/// A stored key: value, absolute expiry time in ms (if any), and the version of its last
/// change (WATCH compares versions). Every key's slot in the index holds one, so its size is
/// kept down (`entry_stays_small` checks it): 56 bytes, of which the value is 40 (a `Bytes` and
/// the tag: rustc does not put the tag in a niche of `Bytes`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    expiry: Expiry,
    version: u64,
}

/// An optional expiry time in 8 bytes instead of `Option<u64>`'s 16: time + 1, 0 for none
/// (a time of `u64::MAX` reads back as `u64::MAX - 1`; expiry times come from `i64`s, so none
/// is that large).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expiry(Option<NonZeroU64>);

impl Expiry {
    fn new(at: Option<u64>) -> Self {
        Expiry(at.and_then(|t| NonZeroU64::new(t.saturating_add(1))))
    }

    fn get(self) -> Option<u64> {
        self.0.map(|t| t.get() - 1)
    }
}

impl Entry {
    pub fn expire_at(&self) -> Option<u64> {
        self.expiry.get()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at().is_some_and(|t| t <= now_ms)
    }
}

/// One of the numbered databases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Db {
    keys: KeyMap<Entry>,
    /// (expiry time, key) for every key with a TTL: finds due keys without a full scan.
    expiries: BTreeSet<(u64, Bytes)>,
}

impl Db {
    /// Number of keys, counting expired ones not yet deleted (as Redis's DBSIZE does).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn expires_count(&self) -> usize {
        self.expiries.len()
    }

    /// A live entry.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.keys.get(key).filter(|e| !e.is_expired(now_ms))
    }

    /// The live value of `key` for mutation, stamping it with `version`. An expired key is
    /// deleted here and reported as absent.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64, version: u64) -> Option<&mut Value> {
        if self.keys.get(key)?.is_expired(now_ms) {
            self.remove(key);
            return None;
        }
        let entry = self.keys.get_mut(key)?;
        entry.version = version;
        Some(&mut entry.value)
    }

    /// Stores `value` under `key`, replacing any previous value and TTL. A small key or string
    /// value is copied first ([`own_small`]).
    pub fn insert(&mut self, key: Bytes, value: Value, expire_at: Option<u64>, version: u64) {
        let key = own_small(key);
        let value = match value {
            Value::Str(s) => Value::Str(own_small(s)),
            other => other,
        };
        if let Some(t) = expire_at {
            self.expiries.insert((t, key.clone()));
        }
        let entry = Entry { value, expiry: Expiry::new(expire_at), version };
        if let Some(old) = self.keys.insert(key.clone(), entry) {
            self.forget_expiry(&key, old.expire_at());
        }
    }

    /// The stored entry whatever its state (a script's undo log saves it before a change).
    pub fn raw(&self, key: &[u8]) -> Option<&Entry> {
        self.keys.get(key)
    }

    /// Puts back an entry saved with [`Db::raw`], or removes the key when there was none.
    pub fn restore(&mut self, key: Bytes, saved: Option<Entry>) {
        match saved {
            Some(e) => {
                let expire_at = e.expire_at();
                self.insert(key, e.value, expire_at, e.version)
            }
            None => {
                self.remove(&key);
            }
        }
    }

    /// Removes a key whatever its state; returns the entry if it was still live.
    pub fn remove_live(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        self.remove(key).filter(|e| !e.is_expired(now_ms))
    }

    /// Removes `key` if it exists and is expired at `now_ms` (active expiry).
    pub fn remove_if_expired(&mut self, key: &[u8], now_ms: u64) -> bool {
        if self.keys.get(key).is_some_and(|e| e.is_expired(now_ms)) {
            return self.remove(key).is_some();
        }
        false
    }

    /// Removes a key whatever its state.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (k, entry) = self.keys.remove_entry(key)?;
        self.forget_expiry(&k, entry.expire_at());
        Some(entry)
    }

    /// Sets or clears the TTL of a live key; false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>, now_ms: u64, version: u64) -> bool {
        let Some(entry) = self.keys.get_mut(key).filter(|e| !e.is_expired(now_ms)) else {
            return false;
        };
        let old = std::mem::replace(&mut entry.expiry, Expiry::new(expire_at)).get();
        entry.version = version;
        let k = Bytes::copy_from_slice(key);
        self.forget_expiry(&k, old);
        if let Some(t) = expire_at {
            self.expiries.insert((t, k));
        }
        true
    }

    fn forget_expiry(&mut self, key: &Bytes, expire_at: Option<u64>) {
        if let Some(t) = expire_at {
            self.expiries.remove(&(t, key.clone()));
        }
    }

    /// Up to `limit` keys whose expiry time is at or before `now_ms`, earliest first.
    pub fn due_keys(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        self.expiries.iter().take_while(|(t, _)| *t <= now_ms).take(limit).map(|(_, k)| k.clone()).collect()
    }

    /// All entries (live or not) in stable hash order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.keys.iter()
    }

    /// Live entries in stable hash order.
    pub fn iter_live(&self, now_ms: u64) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.keys.iter().filter(move |(_, e)| !e.is_expired(now_ms))
    }

    /// A SCAN step over live keys: see [`KeyMap::scan`].
    pub fn scan(&self, cursor: u64, count: usize, now_ms: u64) -> (Vec<(&Bytes, &Entry)>, u64) {
        let (mut items, next) = self.keys.scan(cursor, count);
        items.retain(|(_, e)| !e.is_expired(now_ms));
        (items, next)
    }

    /// A live key near `point` in hash order (a random key for a random `point`).
    pub fn pick_live(&self, point: u64, now_ms: u64) -> Option<&Bytes> {
        if let Some((k, e)) = self.keys.pick(point) {
            if !e.is_expired(now_ms) {
                return Some(k);
            }
        }
        // Fall back to a walk: only reached when expired keys sit at the picked spot.
        self.iter_live(now_ms).map(|(k, _)| k).next()
    }

    /// A key with a TTL near `point` in expiry-time order (a random one for a random `point`
    /// between the earliest and the latest expiry), or `None` without such keys.
    pub fn pick_volatile(&self, point: u64) -> Option<&Bytes> {
        let (first, last) = (self.expiries.first()?.0, self.expiries.last()?.0);
        let at = first + point % (last - first + 1);
        self.expiries.range((at, Bytes::new())..).next().or(self.expiries.first()).map(|(_, k)| k)
    }

    /// Keys with a TTL, the one that ends first first.
    pub fn soonest_expiring(&self) -> impl Iterator<Item = &Bytes> {
        self.expiries.iter().map(|(_, k)| k)
    }

    /// The entry of `key`, expired or not.
    pub fn entry(&self, key: &[u8]) -> Option<&Entry> {
        self.keys.get(key)
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.expiries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's slot in the index is its name (`Bytes`, 32 bytes) and an `Entry`: a string key
    /// should cost little more than that. Fails if a variant of `Value` or a field of `Entry`
    /// makes them grow back (an unboxed `ZSetValue` made `Value` 104 bytes, `Entry` 128).
    #[test]
    fn entry_stays_small() {
        assert_eq!(std::mem::size_of::<Value>(), 40);
        assert_eq!(std::mem::size_of::<Entry>(), 56);
    }

    #[test]
    fn expiry_packs_every_time() {
        for t in [None, Some(0), Some(1), Some(1_700_000_000_000), Some(u64::MAX - 1)] {
            assert_eq!(Expiry::new(t).get(), t);
        }
    }

    #[test]
    fn small_keys_and_strings_are_copied_out_of_their_buffer() {
        let buf = Bytes::from(vec![b'x'; 4096]);
        let mut db = Db::default();
        db.insert(buf.slice(0..8), Value::Str(buf.slice(8..24)), Some(5), 1);
        let (k, e) = db.iter().next().unwrap();
        let Value::Str(v) = &e.value else { panic!("not a string") };
        let inside = |s: &Bytes| buf.as_ptr_range().contains(&s.as_ptr());
        assert!(!inside(k) && !inside(v), "a stored key or small value still points into the buffer");
        assert_eq!((k.as_ref(), v.as_ref(), e.expire_at()), (&b"xxxxxxxx"[..], &[b'x'; 16][..], Some(5)));
        // A large value is kept as it is.
        db.insert(buf.slice(0..8), Value::Str(buf.slice(8..)), None, 2);
        let Value::Str(v) = &db.get(b"xxxxxxxx", 0).unwrap().value else { panic!("not a string") };
        assert!(inside(v));
    }
}
