//! The replicated queue of clients blocked on keys (BLPOP, BZPOPMIN, BLMOVE, ... and what else
//! registers with `cmd::blocking`). It is part of the keyspace, so every replica holds the
//! same waiters in the same arrival order and, applying the same log, serves the same waiter
//! with the same element: a pop is decided by the log entry whose write made a key ready, never
//! by the node a client happens to be connected to.
//!
//! Besides the replicated waiters it carries two transient lists, empty between applies: the
//! keys made ready by the command being applied (`signal`), and the outcomes of waiters served
//! or removed during the apply (`take_outcomes`), which the node holding each waiting client
//! delivers to it.

use crate::protocol::Frame;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Names one blocked command cluster-wide: the node holding its client, that node's boot (so
/// a restarted node never mistakes an old waiter for one of its own), and a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockId {
    pub node: u64,
    pub boot: u64,
    pub seq: u64,
}

/// A blocked command waiting for one of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    pub id: BlockId,
    /// The database the command runs in.
    pub db: u32,
    /// The command as it is retried (`argv[0]` is the blocking command's name).
    pub argv: Vec<Bytes>,
    /// The keys it waits on, each once, in argument order.
    pub keys: Vec<Bytes>,
    /// Absolute time (ms) past which it is not served; 0 waits forever.
    pub deadline_ms: u64,
}

/// Waiters keyed by their place in the arrival order.
type Arrivals = BTreeMap<u64, BlockId>;

/// Every waiter of the keyspace, and the transient state of one apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blocked {
    /// The next arrival number (replicated: it orders waiters on every replica alike).
    next_arrival: u64,
    waiters: BTreeMap<BlockId, (u64, Waiter)>,
    /// Per database and key, the waiters on it in arrival order.
    by_key: BTreeMap<u32, BTreeMap<Bytes, Arrivals>>,
    /// Keys signalled during this apply, in signal order, each once.
    ready: VecDeque<(u32, Bytes)>,
    ready_set: BTreeSet<(u32, Bytes)>,
    /// Waiters served or removed during this apply, with the reply their client gets.
    outcomes: Vec<(BlockId, Frame)>,
}

/// What snapshots hold of the queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockedImage {
    pub next_arrival: u64,
    /// With their arrival numbers, in arrival order.
    pub waiters: Vec<(u64, Waiter)>,
}

impl Blocked {
    /// No client is blocked (the write path's only cost when nobody blocks is this check).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Like a fresh keyspace's queue: nobody waits and nobody ever did (arrival numbers start
    /// at 0). A queue that emptied still carries its next arrival number, which is replicated.
    pub fn is_fresh(&self) -> bool {
        self.waiters.is_empty() && self.next_arrival == 0
    }

    /// The arrival number the next waiter gets.
    pub fn next_arrival(&self) -> u64 {
        self.next_arrival
    }

    /// Queues `w` behind every waiter already on its keys. A waiter whose id is already
    /// queued is refused (false): a log entry applied twice must not block twice.
    pub fn add(&mut self, w: Waiter) -> bool {
        if self.waiters.contains_key(&w.id) {
            return false;
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.insert(arrival, w);
        true
    }

    fn insert(&mut self, arrival: u64, w: Waiter) {
        for key in &w.keys {
            self.by_key.entry(w.db).or_default().entry(key.clone()).or_default().insert(arrival, w.id);
        }
        self.waiters.insert(w.id, (arrival, w));
    }

    /// Removes a waiter from every key it waits on.
    pub fn remove(&mut self, id: &BlockId) -> Option<Waiter> {
        let (arrival, w) = self.waiters.remove(id)?;
        if let Some(keys) = self.by_key.get_mut(&w.db) {
            for key in &w.keys {
                if let Some(arrivals) = keys.get_mut(key) {
                    arrivals.remove(&arrival);
                    if arrivals.is_empty() {
                        keys.remove(key);
                    }
                }
            }
            if keys.is_empty() {
                self.by_key.remove(&w.db);
            }
        }
        Some(w)
    }

    pub fn get(&self, id: &BlockId) -> Option<&Waiter> {
        self.waiters.get(id).map(|(_, w)| w)
    }

    /// Whether anyone waits on `key` of database `db`.
    pub fn has_waiters(&self, db: u32, key: &[u8]) -> bool {
        self.by_key.get(&db).is_some_and(|keys| keys.contains_key(key))
    }

    /// The waiters on `key` of `db`, first arrived first.
    pub fn waiters_on(&self, db: u32, key: &[u8]) -> Vec<BlockId> {
        self.by_key.get(&db).and_then(|keys| keys.get(key)).map_or_else(Vec::new, |a| a.values().copied().collect())
    }

    /// Marks `key` of `db` ready if anyone waits on it (a write changed or created it).
    pub fn signal(&mut self, db: u32, key: &[u8]) {
        if !self.has_waiters(db, key) {
            return;
        }
        let k = (db, Bytes::copy_from_slice(key));
        if self.ready_set.insert(k.clone()) {
            self.ready.push_back(k);
        }
    }

    /// Marks every waited-on key of `db` ready (SWAPDB brought in a whole other keyspace).
    pub fn signal_db(&mut self, db: u32) {
        let keys: Vec<Bytes> = self.by_key.get(&db).map_or_else(Vec::new, |k| k.keys().cloned().collect());
        for key in keys {
            self.signal(db, &key);
        }
    }

    /// Whether a key was signalled since the last [`pop_ready`](Self::pop_ready) emptied the list.
    #[inline]
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The next ready key, in signal order; it may be signalled again from now on.
    pub fn pop_ready(&mut self) -> Option<(u32, Bytes)> {
        let k = self.ready.pop_front()?;
        self.ready_set.remove(&k);
        Some(k)
    }

    /// Records the reply the client of waiter `id` gets.
    pub fn push_outcome(&mut self, id: BlockId, reply: Frame) {
        self.outcomes.push((id, reply));
    }

    /// The outcomes recorded since the last call.
    pub fn take_outcomes(&mut self) -> Vec<(BlockId, Frame)> {
        std::mem::take(&mut self.outcomes)
    }

    /// Every waiter with its arrival number, first arrived first.
    pub fn iter(&self) -> impl Iterator<Item = &(u64, Waiter)> {
        let mut all: Vec<&(u64, Waiter)> = self.waiters.values().collect();
        all.sort_by_key(|(arrival, _)| *arrival);
        all.into_iter()
    }

    /// The ids of the waiters held by `node`, in id order.
    pub fn held_by(&self, node: u64) -> Vec<BlockId> {
        self.waiters.keys().filter(|id| id.node == node).copied().collect()
    }

    /// Removes the waiters whose holder `keep` refuses; returns them.
    pub fn retain_holders(&mut self, keep: impl Fn(u64) -> bool) -> Vec<BlockId> {
        let gone: Vec<BlockId> = self.waiters.keys().filter(|id| !keep(id.node)).copied().collect();
        for id in &gone {
            self.remove(id);
        }
        gone
    }

    /// The queue as a snapshot holds it.
    pub fn image(&self) -> BlockedImage {
        BlockedImage { next_arrival: self.next_arrival, waiters: self.iter().cloned().collect() }
    }

    /// The queue of a snapshot. A damaged image (an id or an arrival number twice, an
    /// arrival number not below the next one) is refused.
    pub fn from_image(image: BlockedImage) -> Result<Blocked, String> {
        let mut b = Blocked { next_arrival: image.next_arrival, ..Blocked::default() };
        let mut arrivals = BTreeSet::new();
        for (arrival, w) in image.waiters {
            if arrival >= image.next_arrival || !arrivals.insert(arrival) || b.waiters.contains_key(&w.id) {
                return Err(format!("blocked client {:?} listed twice or out of order", w.id));
            }
            b.insert(arrival, w);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(seq: u64, keys: &[&str]) -> Waiter {
        Waiter {
            id: BlockId { node: 1, boot: 7, seq },
            db: 0,
            argv: vec![Bytes::from_static(b"blpop")],
            keys: keys.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect(),
            deadline_ms: 0,
        }
    }

    #[test]
    fn waiters_are_kept_in_arrival_order_per_key() {
        let mut b = Blocked::default();
        assert!(b.add(waiter(5, &["a", "b"])));
        assert!(b.add(waiter(2, &["b"])));
        assert!(!b.add(waiter(2, &["b"])), "an id is queued once");
        let ids = |v: Vec<BlockId>| v.into_iter().map(|id| id.seq).collect::<Vec<_>>();
        assert_eq!(ids(b.waiters_on(0, b"b")), vec![5, 2]);
        assert_eq!(ids(b.waiters_on(0, b"a")), vec![5]);
        assert!(b.remove(&BlockId { node: 1, boot: 7, seq: 5 }).is_some());
        assert_eq!(ids(b.waiters_on(0, b"b")), vec![2]);
        assert!(!b.has_waiters(0, b"a"), "a key nobody waits on is forgotten");
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn signals_are_deduplicated_until_taken() {
        let mut b = Blocked::default();
        b.add(waiter(1, &["a", "b"]));
        b.signal(0, b"x");
        b.signal(0, b"b");
        b.signal(0, b"a");
        b.signal(0, b"b");
        assert_eq!(b.pop_ready(), Some((0, Bytes::from_static(b"b"))));
        b.signal(0, b"b");
        assert_eq!(b.pop_ready(), Some((0, Bytes::from_static(b"a"))));
        assert_eq!(b.pop_ready(), Some((0, Bytes::from_static(b"b"))));
        assert_eq!(b.pop_ready(), None);
    }

    #[test]
    fn an_image_restores_the_same_queue() {
        let mut b = Blocked::default();
        b.add(waiter(9, &["a"]));
        b.add(waiter(3, &["a", "c"]));
        b.remove(&BlockId { node: 1, boot: 7, seq: 9 });
        b.add(waiter(4, &["c"]));
        let restored = Blocked::from_image(b.image()).expect("valid image");
        assert_eq!(restored, b);
        let mut other = restored.clone();
        other.retain_holders(|n| n != 1);
        assert!(other.is_empty());
        let mut twice = b.image();
        twice.waiters.push(twice.waiters[0].clone());
        assert!(Blocked::from_image(twice).is_err());
    }
}
