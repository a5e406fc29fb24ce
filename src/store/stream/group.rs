//! Consumer groups of a stream: the last delivered id, the read counter, the pending entries
//! list (PEL) and the consumers. As in Redis, a pending entry is listed both in the group's
//! PEL (with its delivery data) and in its consumer's own set; [`Group`] keeps the two in step.
//! Delivery and seen times are the stamped times of the log entries that delivered or looked
//! (never a clock read at apply), so every replica holds the same times.

use super::StreamId;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// `SCG_INVALID_ENTRIES_READ`: the group's read counter is unknown.
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// A delivered, not yet acknowledged entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub consumer: Bytes,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

/// A consumer: when it was last seen and the ids pending for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumer {
    pub seen_time: u64,
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group. Consumers are kept by name in byte order, as Redis's radix tree lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// Creates `name` seen at `now` unless it exists; true if created.
    pub fn create_consumer(&mut self, name: &Bytes, now: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(name.clone(), Consumer { seen_time: now, pending: BTreeSet::new() });
        true
    }

    /// Deletes a consumer and its pending entries; the number it had pending, `None` if absent.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        consumer.pending.iter().for_each(|id| {
            self.pel.remove(id);
        });
        Some(consumer.pending.len())
    }

    /// Records `id` as delivered to `consumer` at `now` (a new delivery: count 1), moving it
    /// from another consumer if it was pending there.
    pub fn deliver(&mut self, id: StreamId, consumer: &Bytes, now: u64) {
        let pending = Pending { consumer: consumer.clone(), delivery_time: now, delivery_count: 1 };
        if let Some(old) = self.pel.insert(id, pending) {
            if let Some(c) = self.consumers.get_mut(&old.consumer) {
                c.pending.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Gives the pending `id` to `consumer` (XCLAIM), keeping its delivery data.
    pub fn reassign(&mut self, id: StreamId, consumer: &Bytes) {
        let Some(p) = self.pel.get_mut(&id) else { return };
        if p.consumer != *consumer {
            let old = std::mem::replace(&mut p.consumer, consumer.clone());
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pending.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Acknowledges `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else { return false };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pending.remove(&id);
        }
        true
    }

    /// True when every pending entry is listed by its consumer and nothing else is listed
    /// (checked when a snapshot is restored).
    pub fn is_consistent(&self) -> bool {
        let listed: usize = self.consumers.values().map(|c| c.pending.len()).sum();
        listed == self.pel.len()
            && self.pel.iter().all(|(id, p)| self.consumers.get(&p.consumer).is_some_and(|c| c.pending.contains(id)))
    }
}
