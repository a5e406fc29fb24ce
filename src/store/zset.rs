//! Sorted set values. Elements are kept ordered by (score, member) in a chunked sorted list:
//! a `Vec` of sorted chunks of at most [`MAX_CHUNK`] elements. While the set is small (at most
//! 128 members, none longer than 64 bytes: Redis's `zset-max-listpack-*` defaults) it is the
//! "listpack" encoding: one chunk, member lookups by linear scan, as Redis's listpack. Beyond
//! that it becomes the "skiplist" encoding: the chunks plus a [`KeyMap`] from member to score.
//!
//! A Fenwick tree over the chunk lengths turns positions into ranks and back in O(log n).
//! Costs in the skiplist encoding (n members, B = chunk size): lookup by member O(1) expected;
//! rank, element at rank, insert and remove O(log n + B), plus an O(n/B) index rebuild when a
//! chunk splits, merges or disappears (at most once per ~B/4 single-element changes); range
//! walks are linear in the number of elements returned.

use super::keymap::KeyMap;
use super::value::own_small;
use bytes::Bytes;
use std::cmp::Ordering;

/// Most members a listpack-encoded zset holds (`zset-max-listpack-entries`).
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Longest member a listpack-encoded zset holds (`zset-max-listpack-value`).
pub const MAX_LISTPACK_VALUE: usize = 64;
/// A chunk splits in two above this size. Larger than the listpack limit, so a listpack
/// is always a single chunk.
const MAX_CHUNK: usize = 256;

/// The order of a sorted set: by score (where -0 equals 0, as in Redis), then by member bytes.
/// Scores are never NaN.
pub fn cmp_entry(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score.partial_cmp(&b_score).unwrap_or(Ordering::Equal).then_with(|| a_member.cmp(b_member))
}

/// A sorted set value.
#[derive(Debug, Clone, Default)]
pub struct ZSetValue {
    /// Elements ordered by (score, member); no chunk is ever empty.
    chunks: Vec<Vec<(Bytes, f64)>>,
    len: usize,
    /// Total bytes of all members (keeps `approx_size` O(1)).
    member_bytes: usize,
    /// Member to score; present exactly when the encoding is "skiplist".
    dict: Option<KeyMap<f64>>,
    /// Prefix sums of the chunk lengths.
    index: Fenwick,
}

/// A Fenwick (binary indexed) tree over chunk lengths.
#[derive(Debug, Clone, Default)]
struct Fenwick {
    /// 1-based: `tree[i - 1]` covers the chunks `(i - lowbit(i), i]`.
    tree: Vec<usize>,
}

impl Fenwick {
    fn rebuild(&mut self, chunks: &[Vec<(Bytes, f64)>]) {
        self.tree.clear();
        self.tree.extend(chunks.iter().map(Vec::len));
        for i in 1..=self.tree.len() {
            let parent = i + (i & i.wrapping_neg());
            if parent <= self.tree.len() {
                self.tree[parent - 1] += self.tree[i - 1];
            }
        }
    }

    /// Chunk `ci` grew (`grow`) or shrank by `n`.
    fn adjust(&mut self, ci: usize, n: usize, grow: bool) {
        let mut i = ci + 1;
        while i <= self.tree.len() {
            if grow {
                self.tree[i - 1] += n;
            } else {
                self.tree[i - 1] -= n;
            }
            i += i & i.wrapping_neg();
        }
    }

    /// Total length of chunks `0..ci`.
    fn prefix(&self, ci: usize) -> usize {
        let (mut i, mut sum) = (ci.min(self.tree.len()), 0);
        while i > 0 {
            sum += self.tree[i - 1];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// The chunk holding `rank` and the rank's offset in it (past the end: (chunks, rest)).
    fn find(&self, mut rank: usize) -> (usize, usize) {
        let (mut pos, mut step) = (0, self.tree.len().checked_next_power_of_two().unwrap_or(0));
        while step > 0 {
            if pos + step <= self.tree.len() && self.tree[pos + step - 1] <= rank {
                pos += step;
                rank -= self.tree[pos - 1];
            }
            step /= 2;
        }
        (pos, rank)
    }
}

impl PartialEq for ZSetValue {
    /// Same encoding and the same elements in order (how they are chunked does not matter).
    fn eq(&self, other: &Self) -> bool {
        self.dict.is_some() == other.dict.is_some()
            && self.len == other.len
            && self.iter().zip(other.iter()).all(|((a, x), (b, y))| a == b && x.to_bits() == y.to_bits())
    }
}

impl ZSetValue {
    /// An empty zset in the listpack encoding.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty zset for about `n` members: skiplist from the start when `n` exceeds the
    /// listpack limit (Redis's `zsetTypeCreate`), which decides whether -0 scores keep their sign.
    pub fn with_size_hint(n: usize) -> Self {
        let mut z = ZSetValue::new();
        if n > MAX_LISTPACK_ENTRIES {
            z.dict = Some(KeyMap::new());
        }
        z
    }

    /// Builds a zset from distinct members, choosing the encoding Redis gives a freshly stored
    /// result (listpack when small enough).
    pub fn from_entries(mut entries: Vec<(Bytes, f64)>) -> Self {
        entries.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
        let mut z = ZSetValue::new();
        if entries.len() > MAX_LISTPACK_ENTRIES || entries.iter().any(|(m, _)| m.len() > MAX_LISTPACK_VALUE) {
            z.dict = Some(KeyMap::new());
        }
        z.len = entries.len();
        z.member_bytes = entries.iter().map(|(m, _)| m.len()).sum();
        if let Some(dict) = z.dict.as_mut() {
            for (m, s) in &entries {
                dict.insert(m.clone(), *s);
            }
        } else {
            entries.iter_mut().for_each(|e| e.1 = normalize_zero(e.1));
        }
        let mut rest = entries;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MAX_CHUNK / 2));
            z.chunks.push(rest);
            rest = tail;
        }
        z.index.rebuild(&z.chunks);
        z
    }

    /// "listpack" or "skiplist", as `OBJECT ENCODING` reports it.
    pub fn encoding(&self) -> &'static str {
        if self.dict.is_some() {
            "skiplist"
        } else {
            "listpack"
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no members (such a key is deleted, never stored).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rough memory footprint in bytes.
    pub fn approx_size(&self) -> usize {
        let per_entry = if self.dict.is_some() { 80 } else { 24 };
        self.member_bytes + per_entry * self.len
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.dict {
            Some(d) => d.get(member).copied(),
            None => self.iter().find(|(m, _)| m.as_ref() == member).map(|(_, s)| s),
        }
    }

    /// Sets `member`'s score, adding it if new; returns the previous score. Converts to the
    /// skiplist encoding when the listpack limits would be exceeded.
    pub fn insert(&mut self, member: Bytes, score: f64) -> Option<f64> {
        let old = self.remove(&member);
        let member = own_small(member);
        if self.dict.is_none() && (self.len + 1 > MAX_LISTPACK_ENTRIES || member.len() > MAX_LISTPACK_VALUE) {
            self.convert_to_skiplist();
        }
        let score = match &mut self.dict {
            Some(d) => {
                d.insert(member.clone(), score);
                score
            }
            // The listpack stores scores as text, which loses the sign of -0.
            None => normalize_zero(score),
        };
        self.insert_ordered(member, score);
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.score(member)?;
        let (ci, pos) = self.find(member, score)?;
        self.remove_at(ci, pos);
        if let Some(d) = &mut self.dict {
            d.remove(member);
        }
        Some(score)
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let (ci, pos) = self.find(member, score)?;
        Some(self.index.prefix(ci) + pos)
    }

    /// The element at `rank` (ascending).
    pub fn get(&self, rank: usize) -> Option<(&Bytes, f64)> {
        let (ci, pos) = self.locate(rank)?;
        self.chunks.get(ci)?.get(pos).map(|(m, s)| (m, *s))
    }

    /// Every element in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> + '_ {
        self.chunks.iter().flatten().map(|(m, s)| (m, *s))
    }

    /// Elements in ascending order starting at `rank`.
    pub fn iter_from(&self, rank: usize) -> impl Iterator<Item = (&Bytes, f64)> + '_ {
        let (ci, pos) = self.locate(rank).unwrap_or((self.chunks.len(), 0));
        let first = self.chunks.get(ci).map_or(&[][..], |c| &c[pos.min(c.len())..]);
        first.iter().chain(self.chunks.iter().skip(ci + 1).flatten()).map(|(m, s)| (m, *s))
    }

    /// Elements in descending order starting at `rank` (inclusive) and going down.
    pub fn iter_rev_from(&self, rank: usize) -> impl Iterator<Item = (&Bytes, f64)> + '_ {
        let (ci, pos) = match self.locate(rank) {
            Some(p) => (p.0, p.1 + 1),
            None => (self.chunks.len().saturating_sub(1), self.chunks.last().map_or(0, Vec::len)),
        };
        let first = self.chunks.get(ci).map_or(&[][..], |c| &c[..pos.min(c.len())]);
        let before = self.chunks[..ci.min(self.chunks.len())].iter().rev().flat_map(|c| c.iter().rev());
        first.iter().rev().chain(before).map(|(m, s)| (m, *s))
    }

    /// How many leading elements (in ascending order) satisfy `pred`, which must hold for a
    /// prefix of the set and not after it (a binary search, like `slice::partition_point`).
    pub fn partition_point(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(|(m, s)| pred(m, *s)));
        self.index.prefix(ci) + self.chunks.get(ci).map_or(0, |c| c.partition_point(|(m, s)| pred(m, *s)))
    }

    /// Removes the elements with ranks in `start..end` and returns them in ascending order.
    pub fn remove_range(&mut self, start: usize, end: usize) -> Vec<(Bytes, f64)> {
        let end = end.min(self.len);
        let Some((mut ci, mut pos)) = self.locate(start).filter(|_| start < end) else { return Vec::new() };
        let mut out = Vec::with_capacity(end - start);
        let mut emptied = false;
        while out.len() < end - start && ci < self.chunks.len() {
            let take = (end - start - out.len()).min(self.chunks[ci].len() - pos);
            out.extend(self.chunks[ci].drain(pos..pos + take));
            self.index.adjust(ci, take, false);
            emptied |= self.chunks[ci].is_empty();
            ci += 1;
            pos = 0;
        }
        if emptied {
            self.chunks.retain(|c| !c.is_empty());
            self.index.rebuild(&self.chunks);
        }
        self.len -= out.len();
        self.member_bytes -= out.iter().map(|(m, _)| m.len()).sum::<usize>();
        if let Some(d) = &mut self.dict {
            out.iter().for_each(|(m, _)| {
                d.remove(m);
            });
        }
        out
    }

    /// SCAN over the members: the listpack is returned whole with cursor 0; the skiplist
    /// encoding walks its member map by hash from `cursor`.
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<(&Bytes, f64)>, u64) {
        match &self.dict {
            Some(d) => {
                let (items, next) = d.scan(cursor, count);
                (items.into_iter().map(|(m, s)| (m, *s)).collect(), next)
            }
            None => (self.iter().collect(), 0),
        }
    }

    fn convert_to_skiplist(&mut self) {
        let mut dict = KeyMap::new();
        for (m, s) in self.chunks.iter().flatten() {
            dict.insert(m.clone(), *s);
        }
        self.dict = Some(dict);
    }

    /// (chunk, position) of the element with rank `rank`.
    fn locate(&self, rank: usize) -> Option<(usize, usize)> {
        Some(self.index.find(rank)).filter(|_| rank < self.len)
    }

    /// The chunk where (score, member) belongs: the first whose last element is not smaller.
    fn chunk_for(&self, member: &[u8], score: f64) -> usize {
        self.chunks.partition_point(|c| c.last().is_some_and(|(m, s)| cmp_entry(*s, m, score, member).is_lt()))
    }

    /// (chunk, position) of an element known by member and score.
    fn find(&self, member: &[u8], score: f64) -> Option<(usize, usize)> {
        let ci = self.chunk_for(member, score);
        let pos = self.chunks.get(ci)?.binary_search_by(|(m, s)| cmp_entry(*s, m, score, member)).ok()?;
        Some((ci, pos))
    }

    fn insert_ordered(&mut self, member: Bytes, score: f64) {
        let ci = self.chunk_for(&member, score).min(self.chunks.len().saturating_sub(1));
        if self.chunks.is_empty() {
            self.chunks.push(Vec::new());
            self.index.rebuild(&self.chunks);
        }
        self.member_bytes += member.len();
        let chunk = &mut self.chunks[ci];
        let pos = chunk.partition_point(|(m, s)| cmp_entry(*s, m, score, &member).is_lt());
        chunk.insert(pos, (member, score));
        if chunk.len() > MAX_CHUNK {
            let tail = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(ci + 1, tail);
            self.index.rebuild(&self.chunks);
        } else {
            self.index.adjust(ci, 1, true);
        }
        self.len += 1;
    }

    fn remove_at(&mut self, ci: usize, pos: usize) {
        let (member, _) = self.chunks[ci].remove(pos);
        self.member_bytes -= member.len();
        self.len -= 1;
        if self.chunks[ci].is_empty() {
            self.chunks.remove(ci);
            self.index.rebuild(&self.chunks);
        } else if ci + 1 < self.chunks.len() && self.chunks[ci].len() + self.chunks[ci + 1].len() <= MAX_CHUNK / 4 {
            // Merge small neighbours so deletions cannot leave many tiny chunks behind.
            let next = self.chunks.remove(ci + 1);
            self.chunks[ci].extend(next);
            self.index.rebuild(&self.chunks);
        } else {
            self.index.adjust(ci, 1, false);
        }
    }
}

fn normalize_zero(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// The Fenwick index agrees with the chunks.
    fn check_index(z: &ZSetValue) {
        let mut sum = 0;
        for (ci, c) in z.chunks.iter().enumerate() {
            assert_eq!(z.index.prefix(ci), sum);
            assert_eq!(z.index.find(sum), (ci, 0));
            assert!(!c.is_empty());
            sum += c.len();
        }
        assert_eq!(sum, z.len());
        assert_eq!(z.index.prefix(z.chunks.len()), sum);
        assert_eq!(z.member_bytes, z.iter().map(|(m, _)| m.len()).sum::<usize>());
    }

    fn members(z: &ZSetValue) -> Vec<String> {
        z.iter().map(|(m, _)| String::from_utf8_lossy(m).into_owned()).collect()
    }

    #[test]
    fn orders_by_score_then_member() {
        let mut z = ZSetValue::new();
        z.insert(b("b"), 1.0);
        z.insert(b("a"), 1.0);
        z.insert(b("c"), 0.5);
        assert_eq!(members(&z), ["c", "a", "b"]);
        assert_eq!(z.insert(b("c"), 2.0), Some(0.5));
        assert_eq!(members(&z), ["a", "b", "c"]);
        assert_eq!(z.rank(b"c"), Some(2));
        assert_eq!(z.remove(b"a"), Some(1.0));
        assert_eq!(z.remove(b"a"), None);
        assert_eq!(z.len(), 2);
        assert_eq!(z.encoding(), "listpack");
    }

    #[test]
    fn negative_zero_is_zero_in_listpack_and_kept_in_skiplist() {
        let mut z = ZSetValue::new();
        z.insert(b("a"), -0.0);
        assert!(z.score(b"a").unwrap().is_sign_positive());
        z.insert(Bytes::from(vec![b'x'; 65]), -0.0);
        assert_eq!(z.encoding(), "skiplist");
        assert!(z.score(&[b'x'; 65]).unwrap().is_sign_negative());
        z.insert(b("0"), 0.0);
        // -0 and 0 compare equal, so members decide the order.
        assert_eq!(z.rank(b"0"), Some(0));
    }

    #[test]
    fn converts_beyond_listpack_limits() {
        let mut z = ZSetValue::new();
        for i in 0..128 {
            z.insert(b(&format!("m{i:03}")), i as f64);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b("m128"), 128.0);
        assert_eq!(z.encoding(), "skiplist");
        // Removing does not convert back, as in Redis.
        z.remove(b"m128");
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.score(b"m005"), Some(5.0));
        assert_eq!(ZSetValue::from_entries(vec![(b("a"), 1.0)]).encoding(), "listpack");
        let big = ZSetValue::from_entries((0..1000).rev().map(|i| (b(&format!("e{i}")), f64::from(i % 7))).collect());
        assert_eq!(big.encoding(), "skiplist");
        check_index(&big);
        assert_eq!(big.rank(b"e0"), Some(0));
        assert_eq!(big.score(b"e999"), Some(5.0));
    }

    #[test]
    fn ranks_and_ranges_across_chunks() {
        let mut z = ZSetValue::new();
        // Insert out of order so chunks split in the middle.
        for i in (0..2000).rev().step_by(2).chain((0..2000).step_by(2)) {
            z.insert(b(&format!("m{i:05}")), (i / 3) as f64);
        }
        assert_eq!(z.len(), 2000);
        assert!(z.chunks.len() > 1 && z.chunks.iter().all(|c| !c.is_empty() && c.len() <= MAX_CHUNK));
        let all: Vec<_> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
        assert!(all.windows(2).all(|w| cmp_entry(w[0].1, &w[0].0, w[1].1, &w[1].0).is_lt()));
        for (rank, (m, s)) in all.iter().enumerate().step_by(37) {
            assert_eq!(z.rank(m), Some(rank));
            assert_eq!(z.get(rank), Some((m, *s)));
            assert_eq!(z.iter_from(rank).next(), Some((m, *s)));
            assert_eq!(z.iter_rev_from(rank).next(), Some((m, *s)));
        }
        check_index(&z);
        assert_eq!(z.iter_from(1990).count(), 10);
        assert_eq!(z.iter_rev_from(9).count(), 10);
        assert_eq!(z.iter_rev_from(5000).count(), 2000);
        assert_eq!(z.partition_point(|_, s| s < 10.0), 30);
        assert_eq!(z.partition_point(|_, s| s <= 10.0), 33);
    }

    #[test]
    fn remove_range_keeps_the_index_consistent() {
        let mut z = ZSetValue::new();
        for i in 0..1000 {
            z.insert(b(&format!("m{i:04}")), i as f64);
        }
        let removed = z.remove_range(100, 900);
        assert_eq!(removed.len(), 800);
        check_index(&z);
        assert_eq!(removed[0].0, b("m0100"));
        assert_eq!(z.len(), 200);
        assert_eq!(z.score(b"m0500"), None);
        assert_eq!(z.rank(b"m0900"), Some(100));
        assert!(z.remove_range(300, 400).is_empty());
        assert_eq!(z.iter().count(), 200);
        for i in 0..1000 {
            z.remove(format!("m{i:04}").as_bytes());
            if i % 97 == 0 {
                check_index(&z);
            }
        }
        assert!(z.is_empty() && z.chunks.is_empty());
    }

    #[test]
    fn random_operations_match_a_sorted_vec_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut z = ZSetValue::new();
        let mut model: Vec<(Bytes, f64)> = Vec::new();
        for step in 0..20_000 {
            let member = b(&format!("k{}", rng.gen_range(0..900)));
            match rng.gen_range(0..10) {
                0..=5 => {
                    let score = f64::from(rng.gen_range(-20..20)) / 2.0;
                    model.retain(|(m, _)| *m != member);
                    model.push((member.clone(), score));
                    z.insert(member, score);
                }
                6..=8 => {
                    model.retain(|(m, _)| *m != member);
                    z.remove(&member);
                }
                _ => {
                    let start = rng.gen_range(0..=model.len());
                    let end = (start + rng.gen_range(0..40)).min(model.len());
                    model.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
                    let expected: Vec<_> = model.drain(start..end).collect();
                    assert_eq!(z.remove_range(start, end), expected);
                }
            }
            if step % 500 == 0 {
                model.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
                let got: Vec<_> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
                assert_eq!(got, model);
                check_index(&z);
                for (rank, (m, _)) in model.iter().enumerate().step_by(13) {
                    assert_eq!(z.rank(m), Some(rank));
                }
            }
        }
    }
}
