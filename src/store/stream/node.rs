//! One stream node: the entries Redis keeps in one listpack of its radix tree. Entries are
//! stored with their own values; an entry whose field names are those of the node's first
//! entry (the "master fields") shares them instead of holding its own copy, as Redis's
//! `SAMEFIELDS` flag does. A deleted entry stays as a tombstone (flagged, its data kept, as in
//! Redis's listpack) until its whole node goes, because tombstones count towards the node's
//! size limits as they do in Redis.

use super::listpack::{int_len, str_len, EMPTY_BYTES};
use super::StreamId;
use bytes::Bytes;

/// Redis's entry flags (stream.h).
const FLAG_SAMEFIELDS: i64 = 2;

/// One entry of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: StreamId,
    pub deleted: bool,
    /// `None` when the field names are the node's master fields.
    pub fields: Option<Vec<Bytes>>,
    /// Values in field order (kept when the entry is deleted, as Redis keeps them).
    pub values: Vec<Bytes>,
}

/// A run of consecutive entries, and the size of the listpack Redis would use for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub master_fields: Vec<Bytes>,
    pub items: Vec<Item>,
    /// Entries not deleted.
    pub live: usize,
    /// `lpBytes` of the equivalent listpack.
    pub lp_bytes: usize,
}

impl Node {
    /// A node whose master entry has the field names of `pairs` (`field value ...`).
    pub fn new(pairs: &[Bytes]) -> Node {
        let master_fields: Vec<Bytes> = pairs.iter().step_by(2).cloned().collect();
        let lp_bytes = EMPTY_BYTES
            + int_len(0) // count, set to 1 by the first push
            + int_len(0) // deleted
            + int_len(master_fields.len() as i64)
            + master_fields.iter().map(|f| str_len(f)).sum::<usize>()
            + int_len(0); // master entry terminator
        Node { master_fields, items: Vec::new(), live: 0, lp_bytes }
    }

    /// The master id: the id of the first entry (the node's key in the stream).
    pub fn master_id(&self) -> StreamId {
        self.items.first().map_or(StreamId::MIN, |i| i.id)
    }

    /// Entries, deleted ones included (what counts against `stream-node-max-entries`).
    pub fn total(&self) -> usize {
        self.items.len()
    }

    /// The last id, a tombstone's included (Redis's `lpGetEdgeStreamID`).
    pub fn last_id(&self) -> StreamId {
        self.items.last().map_or(StreamId::MIN, |i| i.id)
    }

    /// Appends an entry (`pairs` is `field value ...`, its id above every id in the node).
    pub fn push(&mut self, id: StreamId, pairs: &[Bytes]) {
        let master = self.master_id_or(id);
        let same = pairs.len() / 2 == self.master_fields.len()
            && pairs.iter().step_by(2).zip(&self.master_fields).all(|(a, b)| a == b);
        let n = pairs.len() / 2;
        let mut bytes = int_len(if same { FLAG_SAMEFIELDS } else { 0 })
            + int_len(id.ms.wrapping_sub(master.ms) as i64)
            + int_len(id.seq.wrapping_sub(master.seq) as i64);
        let lp_count = if same { n + 3 } else { 2 * n + 4 };
        if !same {
            bytes += int_len(n as i64) + pairs.iter().step_by(2).map(|f| str_len(f)).sum::<usize>();
        }
        bytes += pairs.iter().skip(1).step_by(2).map(|v| str_len(v)).sum::<usize>();
        bytes += int_len(lp_count as i64);
        self.lp_bytes += bytes + int_len(self.live as i64 + 1) - int_len(self.live as i64);
        let fields = (!same).then(|| pairs.iter().step_by(2).cloned().collect());
        let values = pairs.iter().skip(1).step_by(2).cloned().collect();
        self.items.push(Item { id, deleted: false, fields, values });
        self.live += 1;
    }

    fn master_id_or(&self, id: StreamId) -> StreamId {
        if self.items.is_empty() {
            id
        } else {
            self.master_id()
        }
    }

    /// Marks the entry at `index` deleted (a tombstone); false if it already was.
    pub fn delete_at(&mut self, index: usize) -> bool {
        let Some(item) = self.items.get_mut(index) else { return false };
        if item.deleted {
            return false;
        }
        // The entry's data stays, as in Redis's listpack: DUMP writes tombstones whole.
        item.deleted = true;
        let dead = self.items.len() - self.live;
        // The master entry's live and deleted counters change size past 127.
        self.lp_bytes = self.lp_bytes + int_len(self.live as i64 - 1) + int_len(dead as i64 + 1)
            - int_len(self.live as i64)
            - int_len(dead as i64);
        self.live -= 1;
        true
    }

    /// The index of the live entry `id`, if any.
    pub fn find(&self, id: StreamId) -> Option<usize> {
        self.items.binary_search_by(|i| i.id.cmp(&id)).ok().filter(|&i| !self.items[i].deleted)
    }

    /// An entry's `field value` pairs.
    pub fn pairs<'a>(&'a self, item: &'a Item) -> impl Iterator<Item = (&'a Bytes, &'a Bytes)> + 'a {
        item.fields.as_ref().unwrap_or(&self.master_fields).iter().zip(item.values.iter())
    }
}
