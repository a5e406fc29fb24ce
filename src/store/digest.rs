//! Content digests of the keyspace, as Redis's `DEBUG DIGEST` / `DEBUG DIGEST-VALUE` compute
//! them (debug.c, `computeDatasetDigest` / `xorObjectDigest`), so the hex strings are the same
//! as a real Redis holding the same data. Replicas compare them to check they agree.
//!
//! Per key: `mix(key)`, then `mix(type id)`, then the value (strings and list elements are
//! mixed in order; set members, hash pairs and zset pairs are XORed, so their order does not
//! matter), then the marker `!!expire!!` if the key has a TTL. The SHA-1s of the per-key
//! digests are XORed together, so the result does not depend on insertion order. Redis only marks *that* a key has a TTL; the
//! [`Keyspace::state_digest`] variant also mixes in the exact expiry time.
//!
//! Like Redis, the digest covers every stored key, including one that is logically expired
//! but not yet deleted: at a given log position every replica stores the same keys, whereas
//! "live" depends on each node's clock.

use super::db::Entry;
use super::hash::HashValue;
use super::set::SetValue;
use super::stream::{StreamId, StreamValue};
use super::zset::ZSetValue;
use super::{Keyspace, Value};

/// A 20-byte SHA-1 sized digest.
pub type Digest = [u8; 20];

/// Lowercase hex, as DEBUG DIGEST replies.
pub fn to_hex(d: &Digest) -> String {
    // Not `format!` per byte: EVAL hashes every script it runs (~11k instructions that way).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * d.len());
    for b in d {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Redis's `xorDigest`: `d ^= sha1(data)`.
pub fn xor_digest(d: &mut Digest, data: &[u8]) {
    let h = sha1(data);
    d.iter_mut().zip(h).for_each(|(a, b)| *a ^= b);
}

/// Redis's `mixDigest`: `d = sha1(d ^ sha1(data))`; order-sensitive.
pub fn mix_digest(d: &mut Digest, data: &[u8]) {
    xor_digest(d, data);
    *d = sha1(d);
}

/// Redis's object type ids (`OBJ_STRING` ...), mixed in big-endian.
fn type_id(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// The digest of one value and its TTL marker (`DEBUG DIGEST-VALUE`), without the key name.
pub fn value_digest(entry: &Entry) -> Digest {
    let mut d = [0u8; 20];
    mix_object(&mut d, entry);
    d
}

/// Redis's `xorObjectDigest`: mixes the type, the value and the TTL marker into `d`.
fn mix_object(d: &mut Digest, entry: &Entry) {
    mix_digest(d, &type_id(&entry.value).to_be_bytes());
    match &entry.value {
        Value::Str(s) => mix_digest(d, s),
        Value::List(l) => l.items.iter().for_each(|item| mix_digest(d, item)),
        Value::Set(s) => set_items(s, d),
        Value::Hash(h) => hash_items(h, d),
        Value::ZSet(z) => zset_items(z, d),
        Value::Stream(s) => stream_items(s, d),
    }
    if entry.expire_at().is_some() {
        xor_digest(d, b"!!expire!!");
    }
}

/// Set members: XOR of each member's hash.
pub fn xor_members<M: AsRef<[u8]>>(d: &mut Digest, members: impl IntoIterator<Item = M>) {
    members.into_iter().for_each(|m| xor_digest(d, m.as_ref()));
}

/// Hash fields: XOR of `sha1(mix(mix(0, field), value))` per pair.
pub fn xor_pairs<A: AsRef<[u8]>, B: AsRef<[u8]>>(d: &mut Digest, pairs: impl IntoIterator<Item = (A, B)>) {
    for (a, b) in pairs {
        let mut e = [0u8; 20];
        mix_digest(&mut e, a.as_ref());
        mix_digest(&mut e, b.as_ref());
        xor_digest(d, &e);
    }
}

/// Sorted set entries: like hash pairs, the score written as C's `%.17g`.
pub fn xor_scored<M: AsRef<[u8]>>(d: &mut Digest, entries: impl IntoIterator<Item = (M, f64)>) {
    xor_pairs(d, entries.into_iter().map(|(m, score)| (m, crate::protocol::format_double(score))));
}

// The three collection hooks below are where the set / hash / zset families plug in their
// element iteration when their value types are merged (the types are placeholders on this
// branch). With the APIs on the families' branches each is one line, given in its comment.

/// Members in any order.
fn set_items(s: &SetValue, d: &mut Digest) {
    xor_members(d, s.iter());
}

/// (field, value) pairs in any order.
fn hash_items(h: &HashValue, d: &mut Digest) {
    xor_pairs(d, h.iter());
}

/// (member, score) pairs in any order.
fn zset_items(z: &ZSetValue, d: &mut Digest) {
    xor_scored(d, z.iter());
}

/// Stream entries in order: each id as `ms.seq` (debug.c's format), then its fields and
/// values. Consumer groups are not covered, as in Redis.
fn stream_items(s: &StreamValue, d: &mut Digest) {
    for entry in s.range(StreamId::MIN, StreamId::MAX) {
        let id = entry.id();
        mix_digest(d, format!("{}.{}", id.ms, id.seq).as_bytes());
        for (field, value) in entry.pairs() {
            mix_digest(d, field);
            mix_digest(d, value);
        }
    }
}

/// What a stream holds beyond its entries, for comparing replicas: its metadata, node layout
/// and consumer groups (pending entries with delivery times and counts, consumers).
fn stream_state(s: &StreamValue, d: &mut Digest) {
    let num = |d: &mut Digest, n: u64| mix_digest(d, &n.to_be_bytes());
    for id in [s.last_id, s.first_id, s.max_deleted_id] {
        num(d, id.ms);
        num(d, id.seq);
    }
    num(d, s.entries_added);
    s.nodes().for_each(|n| num(d, n.lp_bytes as u64 * 1000 + n.items.len() as u64));
    for (name, g) in &s.groups {
        mix_digest(d, name);
        for n in [g.last_id.ms, g.last_id.seq, g.entries_read as u64] {
            num(d, n);
        }
        for (id, p) in &g.pel {
            for n in [id.ms, id.seq, p.delivery_time, p.delivery_count] {
                num(d, n);
            }
            mix_digest(d, &p.consumer);
        }
        for (name, c) in &g.consumers {
            mix_digest(d, name);
            num(d, c.seen_time);
        }
    }
}

impl Keyspace {
    /// Redis's `DEBUG DIGEST`: all zeros for an empty keyspace.
    pub fn digest(&self) -> Digest {
        self.dataset_digest(false)
    }

    /// Like [`Keyspace::digest`] but also covering each key's exact expiry time, the queue of
    /// blocked clients (with its next arrival number) and the script cache, for comparing
    /// replicas (Redis's own digest only records that a key has a TTL).
    pub fn state_digest(&self) -> Digest {
        let mut d = self.dataset_digest(true);
        if !self.blocked.is_fresh() {
            // The next arrival number (replicated, even once the queue is empty), then the
            // waiters in arrival order, each as its id, database, deadline and command.
            mix_digest(&mut d, &self.blocked.next_arrival().to_be_bytes());
            for (arrival, w) in self.blocked.iter() {
                mix_digest(&mut d, &arrival.to_be_bytes());
                for n in [w.id.node, w.id.boot, w.id.seq, u64::from(w.db), w.deadline_ms] {
                    mix_digest(&mut d, &n.to_be_bytes());
                }
                w.argv.iter().for_each(|a| mix_digest(&mut d, a));
            }
        }
        if !self.scripts.is_default() {
            // The script cache (by SHA-1, in order) and the step budget.
            mix_digest(&mut d, &self.scripts.max_steps.to_be_bytes());
            for (sha, _) in self.scripts.image().bodies {
                mix_digest(&mut d, &sha);
            }
        }
        for lib in self.functions.libraries() {
            mix_digest(&mut d, &lib.code);
        }
        if !self.settings.is_default() {
            mix_digest(&mut d, &self.settings.stream_node_max_entries.to_be_bytes());
            mix_digest(&mut d, &self.settings.stream_node_max_bytes.to_be_bytes());
        }
        if !self.acl.is_fresh() {
            // Every user's rules, in name order.
            let image = self.acl.image();
            mix_digest(&mut d, &[image.default_set as u8]);
            for (name, rules) in &image.users {
                mix_digest(&mut d, name);
                mix_digest(&mut d, rules);
            }
        }
        d
    }

    fn dataset_digest(&self, exact_ttl: bool) -> Digest {
        let mut out = [0u8; 20];
        for (id, db) in self.dbs().iter().enumerate().filter(|(_, db)| !db.is_empty()) {
            // The db id is mixed in so the same data in another db digests differently.
            mix_digest(&mut out, &(id as u32).to_be_bytes());
            for (key, entry) in db.iter() {
                let mut d = [0u8; 20];
                mix_digest(&mut d, key);
                mix_object(&mut d, entry);
                if let (true, Some(t)) = (exact_ttl, entry.expire_at()) {
                    mix_digest(&mut d, t.to_string().as_bytes());
                }
                if let (true, Value::Stream(s)) = (exact_ttl, &entry.value) {
                    stream_state(s, &mut d);
                }
                xor_digest(&mut out, &d);
            }
        }
        out
    }
}

/// SHA-1 (FIPS 180-4) of `data`: the hash Redis's digests are built from.
pub fn sha1(data: &[u8]) -> Digest {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        sha1_block(&mut h, block);
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn sha1_block(h: &mut [u32; 5], block: &[u8]) {
    let mut w = [0u32; 80];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (i, wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
        *x = x.wrapping_add(y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::list::ListValue;
    use bytes::Bytes;

    fn hex(d: Digest) -> String {
        to_hex(&d)
    }

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        assert_eq!(hex(sha1(&[b'a'; 1000])), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    }

    #[test]
    fn g17_matches_printf() {
        assert_eq!(crate::protocol::format_double(2.0), "2");
        assert_eq!(crate::protocol::format_double(1.5), "1.5");
        assert_eq!(crate::protocol::format_double(0.1), "0.10000000000000001");
        assert_eq!(crate::protocol::format_double(1e100), "1e+100");
        assert_eq!(crate::protocol::format_double(1e-7), "9.9999999999999995e-08");
        assert_eq!(crate::protocol::format_double(-0.0), "-0");
        assert_eq!(crate::protocol::format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(crate::protocol::format_double(1e16), "10000000000000000");
        assert_eq!(crate::protocol::format_double(1e17), "1e+17");
        assert_eq!(crate::protocol::format_double(0.0001), "0.0001");
        assert_eq!(crate::protocol::format_double(123456789012345678.0), "1.2345678901234568e+17");
    }

    fn ks_with(entries: &[(&'static [u8], Value, Option<u64>)]) -> Keyspace {
        let mut ks = Keyspace::default();
        for (i, (k, v, t)) in entries.iter().enumerate() {
            ks.db_mut(0).insert(Bytes::from_static(k), v.clone(), *t, i as u64 + 1);
        }
        ks
    }

    fn str_value(s: &'static [u8]) -> Value {
        Value::Str(Bytes::from_static(s))
    }

    // Expected values were read from redis-server 7.0.15 holding the same data.
    #[test]
    fn matches_redis_digests() {
        assert_eq!(hex(Keyspace::default().digest()), "0".repeat(40));
        let ks = ks_with(&[(b"a", str_value(b"1"), None)]);
        assert_eq!(hex(ks.digest()), "943d800368fb9c0e951138f1bc0e313ac769d91f");
        let entry = ks.db(0).get(b"a", 0).cloned().expect("a");
        assert_eq!(hex(value_digest(&entry)), "b4fc66738120fba0b5aa500ab5c2bf89cea1c5da");

        let b = ks_with(&[(b"b", str_value(b"hello"), Some(u64::MAX / 4))]);
        let entry = b.db(0).get(b"b", 0).cloned().expect("b");
        assert_eq!(hex(value_digest(&entry)), "d037c4eb8a8b36b602fbced4000daeab0714c1e3");

        let list = Value::List(Box::new(ListValue { items: [b"x", b"y", b"z"].map(|s| Bytes::from_static(s)).into() }));
        let l = ks_with(&[(b"l", list, None)]);
        let entry = l.db(0).get(b"l", 0).cloned().expect("l");
        assert_eq!(hex(value_digest(&entry)), "048e07d5a045cd715a87e264ec663043b62ad0a8");
    }

    #[test]
    fn collection_helpers_match_redis() {
        let with_type = |t: u32| {
            let mut d = [0u8; 20];
            mix_digest(&mut d, &t.to_be_bytes());
            d
        };
        let mut s = with_type(2);
        xor_members(&mut s, [b"m2".as_slice(), b"m1"]);
        assert_eq!(hex(s), "2e49426fc24ed562077e18d57bed4371b6e63eb8");
        let mut h = with_type(4);
        xor_pairs(&mut h, [(b"f2".as_slice(), b"v2".as_slice()), (b"f", b"v")]);
        assert_eq!(hex(h), "e10e1521ae1a86ad572969ec981152f56b33afcf");
        let mut z = with_type(3);
        xor_scored(&mut z, [(b"m".as_slice(), 1.5), (b"n", 2.0), (b"o", 0.1)]);
        assert_eq!(hex(z), "a7506e755f909a6a91b1bbcda614b185016b1348");
        let mut z = with_type(3);
        xor_scored(&mut z, [(b"a".as_slice(), 1e-7)]);
        assert_eq!(hex(z), "a049077da06331731f8b46cbfb2a620535025c2d");
    }

    #[test]
    fn order_independent_and_db_sensitive() {
        let a = ks_with(&[(b"x", str_value(b"1"), None), (b"y", str_value(b"2"), Some(5))]);
        let b = ks_with(&[(b"y", str_value(b"2"), Some(5)), (b"x", str_value(b"1"), None)]);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.state_digest(), b.state_digest());
        let c = ks_with(&[(b"y", str_value(b"2"), Some(6)), (b"x", str_value(b"1"), None)]);
        assert_eq!(a.digest(), c.digest());
        assert_ne!(a.state_digest(), c.state_digest());
        let mut d = a.clone();
        d.swap_dbs(0, 1);
        assert_ne!(a.digest(), d.digest());
        // db0 {a: "1"} + db1 {a: "1" with a TTL}, from Redis.
        let mut e = ks_with(&[(b"a", str_value(b"1"), None)]);
        e.db_mut(1).insert(Bytes::from_static(b"a"), str_value(b"1"), Some(1 << 50), 9);
        assert_eq!(hex(e.digest()), "5eef8d4e92a88050959c55f17dd3e70734dbe83e");
    }
}
