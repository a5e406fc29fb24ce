//! Set values, in the two forms Redis 7.0 uses: an "intset" (a sorted `Vec<i64>`) while every
//! member is an integer in Redis's sense and there are at most [`MAX_INTSET_ENTRIES`] of them,
//! and a "hashtable" (a [`KeyMap`]) otherwise. Redis 7.0 has no listpack sets.
//!
//! Conversion is one-way, as in Redis: adding a non-integer member or a 513th member turns an
//! intset into a hashtable, and removals never turn it back. Only a set built afresh
//! ([`SetValue::from_members`], [`SetValue::rebuild`]) starts over as an intset, which is what
//! Redis does for SINTERSTORE / SUNIONSTORE / SDIFFSTORE results, a new SMOVE destination, and
//! the set SPOP keeps when it pops most of the members.
//!
//! Every iteration order is deterministic (ascending integers, or the `KeyMap` hash order), and
//! random picks only use the caller's RNG, so replicas applying the same write agree.

use super::value::own_small;
use super::KeyMap;
use crate::protocol::parse_i64;
use bytes::Bytes;
use rand::Rng;
use std::collections::BTreeSet;

/// Redis's `set-max-intset-entries` default: above this many members an intset converts.
pub const MAX_INTSET_ENTRIES: usize = 512;

/// Up to this size a hashtable set is picked from uniformly by position (a walk of at most
/// this many entries); above it a random point on the hash ring is used instead, which is
/// O(log n) but favours members that follow a wide gap in hash order.
const UNIFORM_PICK_LIMIT: usize = 1024;

/// A set value.
#[derive(Debug, Clone, PartialEq)]
pub struct SetValue {
    repr: Repr,
}

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    /// Sorted, no duplicates.
    Ints(Vec<i64>),
    Table(KeyMap<()>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue { repr: Repr::Ints(Vec::new()) }
    }
}

impl FromIterator<Bytes> for SetValue {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        let mut set = SetValue::new();
        for m in iter {
            set.insert(m);
        }
        set
    }
}

impl SetValue {
    /// An empty set (in the intset form, as a fresh Redis set of integers starts).
    pub fn new() -> Self {
        Self::default()
    }

    /// A set built afresh from `members` (duplicates ignored): an intset when they allow it.
    pub fn from_members<I: IntoIterator<Item = Bytes>>(members: I) -> Self {
        members.into_iter().collect()
    }

    /// A set in the hashtable form whatever its members. Only for restoring a snapshot: the form
    /// is part of the replicated state (an intset that converted stays a hashtable), so a
    /// restored replica must keep it even where [`SetValue::from_members`] would pick an intset.
    pub fn from_table_members<I: IntoIterator<Item = Bytes>>(members: I) -> Self {
        let mut m = KeyMap::new();
        for member in members {
            m.insert(member, ());
        }
        SetValue { repr: Repr::Table(m) }
    }

    /// The name `OBJECT ENCODING` replies with: `intset` or `hashtable`.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Table(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rough memory footprint in bytes, for INFO and MEMORY USAGE.
    pub fn approx_size(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => 16 + 8 * v.len(),
            Repr::Table(m) => 64 + m.keys().map(|k| k.len() + 48).sum::<usize>(),
        }
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => parse_i64(member).is_some_and(|n| v.binary_search(&n).is_ok()),
            Repr::Table(m) => m.contains_key(member),
        }
    }

    /// Adds `member`; true if it was not there. Converts to a hashtable when the intset form
    /// can no longer hold the set.
    pub fn insert(&mut self, member: Bytes) -> bool {
        if let Repr::Ints(v) = &mut self.repr {
            if let Some(n) = parse_i64(&member) {
                let Err(pos) = v.binary_search(&n) else { return false };
                v.insert(pos, n);
                if v.len() > MAX_INTSET_ENTRIES {
                    self.convert_to_table();
                }
                return true;
            }
            self.convert_to_table();
        }
        match &mut self.repr {
            Repr::Table(m) => m.insert(own_small(member), ()).is_none(),
            Repr::Ints(_) => false, // converted just above
        }
    }

    /// Removes `member`; true if it was there. Never changes the form.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => match parse_i64(member).map(|n| v.binary_search(&n)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            Repr::Table(m) => m.remove(member).is_some(),
        }
    }

    /// Every member, in a deterministic order: ascending for an intset, hash order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(v) => Iter::Ints(v.iter()),
            Repr::Table(m) => Iter::Table(Box::new(m.keys())),
        }
    }

    /// SSCAN step: members from `cursor` on, at least `count` of them when that many remain,
    /// and the next cursor (0 when done). An intset returns everything at once with cursor 0,
    /// as Redis does for its compact encodings.
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<Bytes>, u64) {
        match &self.repr {
            Repr::Ints(_) => (self.iter().collect(), 0),
            Repr::Table(m) => {
                let (items, next) = m.scan(cursor, count);
                (items.into_iter().map(|(k, _)| k.clone()).collect(), next)
            }
        }
    }

    /// A random member (None when empty).
    pub fn random_member<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Bytes> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        match &self.repr {
            Repr::Ints(v) => v.get(rng.gen_range(0..len)).map(|n| int_bytes(*n)),
            Repr::Table(m) if len <= UNIFORM_PICK_LIMIT => m.keys().nth(rng.gen_range(0..len)).cloned(),
            Repr::Table(m) => m.pick(rng.gen()).map(|(k, _)| k.clone()),
        }
    }

    /// `count` distinct random members (the whole set, in iteration order, when `count`
    /// reaches its size). The order of the result is random too.
    pub fn random_distinct<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<Bytes> {
        let len = self.len();
        if count >= len {
            return self.iter().collect();
        }
        match &self.repr {
            Repr::Table(m) if len > UNIFORM_PICK_LIMIT && count.saturating_mul(4) < len => {
                // Few picks from a big table: random points with de-duplication, no full walk.
                let mut seen = BTreeSet::new();
                let mut out = Vec::with_capacity(count);
                while out.len() < count {
                    if let Some((k, _)) = m.pick(rng.gen()) {
                        if seen.insert(k.clone()) {
                            out.push(k.clone());
                        }
                    }
                }
                out
            }
            _ => {
                let all: Vec<Bytes> = self.iter().collect();
                rand::seq::index::sample(rng, len, count).into_iter().filter_map(|i| all.get(i).cloned()).collect()
            }
        }
    }

    /// `count` random members, repeats allowed (SRANDMEMBER with a negative count).
    pub fn random_with_repeats<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<Bytes> {
        let len = self.len();
        if len == 0 {
            return Vec::new();
        }
        match &self.repr {
            Repr::Ints(v) => (0..count).filter_map(|_| v.get(rng.gen_range(0..len)).map(|n| int_bytes(*n))).collect(),
            Repr::Table(m) if len > UNIFORM_PICK_LIMIT => {
                (0..count).filter_map(|_| m.pick(rng.gen()).map(|(k, _)| k.clone())).collect()
            }
            _ => {
                // One walk, then uniform picks by position.
                let all: Vec<Bytes> = self.iter().collect();
                (0..count).filter_map(|_| all.get(rng.gen_range(0..len)).cloned()).collect()
            }
        }
    }

    /// Re-encodes the set from scratch, as Redis does when it copies one: a hashtable whose
    /// members all fit an intset becomes an intset again.
    pub fn rebuild(&mut self) {
        if matches!(self.repr, Repr::Table(_)) {
            *self = SetValue::from_members(self.iter());
        }
    }

    fn convert_to_table(&mut self) {
        if let Repr::Ints(v) = &self.repr {
            let mut m = KeyMap::new();
            for n in v {
                m.insert(int_bytes(*n), ());
            }
            self.repr = Repr::Table(m);
        }
    }
}

/// The decimal text of an intset member.
fn int_bytes(n: i64) -> Bytes {
    Bytes::from(n.to_string())
}

/// Iterator over a set's members (see [`SetValue::iter`]).
pub enum Iter<'a> {
    Ints(std::slice::Iter<'a, i64>),
    Table(Box<dyn Iterator<Item = &'a Bytes> + 'a>),
}

impl Iterator for Iter<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        match self {
            Iter::Ints(it) => it.next().map(|n| int_bytes(*n)),
            Iter::Table(it) => it.next().cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    fn ints(range: std::ops::Range<i64>) -> SetValue {
        range.map(|i| Bytes::from(i.to_string())).collect()
    }

    #[test]
    fn integers_stay_an_intset_sorted() {
        let s = SetValue::from_members([b("3"), b("-1"), b("2"), b("3")]);
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.len(), 3);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![b("-1"), b("2"), b("3")]);
        assert!(s.contains(b"2"));
        assert!(!s.contains(b"02"));
        assert!(!s.contains(b"x"));
    }

    #[test]
    fn non_integer_member_converts_for_good() {
        let mut s = SetValue::from_members([b("1"), b("2")]);
        assert!(s.insert(b("a")));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"1") && s.contains(b"a"));
        assert!(s.remove(b"a"));
        assert_eq!(s.encoding(), "hashtable", "removals never convert back");
        s.rebuild();
        assert_eq!(s.encoding(), "intset", "a fresh copy does");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![b("1"), b("2")]);
    }

    #[test]
    fn redis_integer_syntax_decides() {
        for m in ["01", "-0", " 1", "+1", "9223372036854775808", "1.0"] {
            assert_eq!(SetValue::from_members([b(m)]).encoding(), "hashtable", "{m}");
        }
        for m in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
            assert_eq!(SetValue::from_members([b(m)]).encoding(), "intset", "{m}");
        }
    }

    #[test]
    fn more_than_512_integers_convert() {
        let mut s = ints(0..512);
        assert_eq!(s.encoding(), "intset");
        assert!(!s.insert(b("5")), "duplicate does not count");
        assert_eq!(s.encoding(), "intset");
        assert!(s.insert(b("512")));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 513);
        assert!((0..513).all(|i| s.contains(i.to_string().as_bytes())));
        s.remove(b"0");
        s.rebuild();
        assert_eq!(s.encoding(), "intset");
    }

    #[test]
    fn scan_of_intset_is_one_step() {
        let s = ints(0..100);
        let (items, next) = s.scan(12345, 5);
        assert_eq!((items.len(), next), (100, 0));
    }

    #[test]
    fn scan_of_table_visits_everything() {
        let s: SetValue = (0..700).map(|i| Bytes::from(format!("m{i}"))).collect();
        let (mut seen, mut cursor) = (Vec::new(), 0);
        loop {
            let (items, next) = s.scan(cursor, 10);
            seen.extend(items);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 700);
    }

    #[test]
    fn random_picks_are_members_and_distinct() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for s in [ints(0..50), (0..3000).map(|i| Bytes::from(format!("m{i}"))).collect()] {
            for count in [0, 1, 10, 40, 49] {
                let picked = s.random_distinct(count, &mut rng);
                let mut sorted = picked.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), count);
                assert!(picked.iter().all(|m| s.contains(m)));
            }
            assert!(s.contains(&s.random_member(&mut rng).unwrap_or_default()));
        }
        assert_eq!(ints(0..5).random_distinct(9, &mut rng).len(), 5);
        assert_eq!(SetValue::new().random_member(&mut rng), None);
    }

    #[test]
    fn same_seed_same_picks() {
        let s: SetValue = (0..300).map(|i| Bytes::from(format!("m{i}"))).collect();
        let run = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (s.random_distinct(20, &mut rng), s.random_member(&mut rng))
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
