//! Stream values (`XADD` and friends). The representation follows Redis's: a sorted map from
//! each node's first id to a [`Node`] holding up to `stream-node-max-entries` entries (or a
//! listpack of about `stream-node-max-bytes`: [`NodeLimits`], replicated settings, see
//! `store::settings`), where entries sharing the node's first field names
//! keep one copy of them. Deleting marks a tombstone; a node goes when its last live entry
//! does. The node layout is replicated state, not a cache: approximate trimming (`MAXLEN ~`)
//! removes whole nodes only and `XINFO STREAM` shows the node count, so every replica (and a
//! replica restored from a snapshot) must cut nodes at the same places. It does, because the
//! cut depends only on the entries appended, never on timing or memory.
//!
//! The stream also carries its metadata (last id, first id, entries added, max deleted id) and
//! its consumer groups ([`group`]).

pub mod group;
mod lag;
pub mod listpack;
mod node;

pub use group::{Consumer, Group, Pending, ENTRIES_READ_UNKNOWN};
pub use node::{Item, Node};

use bytes::Bytes;
use std::collections::BTreeMap;

/// `STREAM_LISTPACK_MAX_SIZE`: an entry larger than this is refused.
pub const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// Where [`StreamValue::append`] starts a new node (`stream-node-max-entries` and
/// `stream-node-max-bytes`, replicated: `store::settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Entries per node, deleted ones included; 0: no limit.
    pub max_entries: u64,
    /// Listpack bytes per node; 0 (or more than a listpack holds): the listpack's limit.
    pub max_bytes: u64,
}

impl Default for NodeLimits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        NodeLimits { max_entries: 100, max_bytes: 4096 }
    }
}

impl NodeLimits {
    /// Whether an entry of `payload` bytes still goes into `tail` (Redis's
    /// `streamAppendItem`): below the byte limit, and below the entry limit if there is one.
    fn fits(&self, tail: &Node, payload: usize) -> bool {
        let max_bytes = match self.max_bytes {
            0 => LISTPACK_MAX_SIZE as u64,
            n => n.min(LISTPACK_MAX_SIZE as u64),
        };
        ((tail.lp_bytes + payload) as u64) < max_bytes
            && (self.max_entries == 0 || (tail.total() as u64) < self.max_entries)
    }
}

/// An entry id: milliseconds and a sequence number, ordered as a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next id, `None` after the last possible one (`streamIncrID`).
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The previous id, `None` before 0-0 (`streamDecrID`).
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    /// `ms-seq`, as replies show it.
    pub fn to_bytes(self) -> Bytes {
        // Not `format!`: every XADD replies with its id (~1.1k instructions that way).
        let mut digits = itoa::Buffer::new();
        let mut out = Vec::with_capacity(41);
        out.extend_from_slice(digits.format(self.ms).as_bytes());
        out.push(b'-');
        out.extend_from_slice(digits.format(self.seq).as_bytes());
        Bytes::from(out)
    }
}

/// How XADD / XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A live entry seen through an iterator: its node (for shared field names) and the item.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    pub node: &'a Node,
    pub item: &'a Item,
}

impl<'a> EntryRef<'a> {
    pub fn id(&self) -> StreamId {
        self.item.id
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&'a Bytes, &'a Bytes)> + 'a {
        self.node.pairs(self.item)
    }
}

/// A stream: entries in nodes, metadata and consumer groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamValue {
    pub(crate) nodes: BTreeMap<StreamId, Node>,
    pub(crate) length: u64,
    pub last_id: StreamId,
    /// The first live entry's id when the stream last changed at its head (0-0 when empty).
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    /// Groups by name (Redis keeps them in a radix tree, so replies list them in byte order).
    pub groups: BTreeMap<Bytes, Group>,
}

impl StreamValue {
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of nodes (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node count of Redis's radix tree over the nodes' 16-byte big-endian keys (XINFO's
    /// `radix-tree-nodes`): the compressed trie those keys make, as `rax.c` builds it.
    pub fn radix_tree_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .nodes
            .keys()
            .map(|id| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&id.ms.to_be_bytes());
                k[8..].copy_from_slice(&id.seq.to_be_bytes());
                k
            })
            .collect();
        if keys.is_empty() {
            1
        } else {
            trie_nodes(&keys, 0)
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Rebuilds a stream from its parts (snapshot restore); `None` if they disagree. A node
    /// may hold tombstones only: exact trimming can leave one, as in Redis.
    pub fn from_parts(nodes: Vec<Node>, meta: StreamValue) -> Option<StreamValue> {
        let mut s = meta;
        s.nodes.clear();
        let mut length = 0u64;
        let mut prev: Option<StreamId> = None;
        for node in nodes {
            let sorted = node.items.windows(2).all(|w| w[0].id < w[1].id);
            let live = node.items.iter().filter(|i| !i.deleted).count();
            if node.items.is_empty() || !sorted || live != node.live {
                return None;
            }
            if prev.is_some_and(|p| node.master_id() <= p) {
                return None;
            }
            prev = Some(node.last_id());
            length += live as u64;
            s.nodes.insert(node.master_id(), node);
        }
        s.length = length;
        Some(s)
    }

    /// Metadata only (for [`from_parts`](Self::from_parts)).
    pub fn meta(&self) -> StreamValue {
        StreamValue { nodes: BTreeMap::new(), groups: self.groups.clone(), ..*self }
    }

    /// Appends an entry with `id` (greater than `last_id`, checked by the caller) and `pairs`
    /// (`field value ...`, a non-empty even count), starting a node where Redis would with
    /// `limits`.
    pub fn append(&mut self, id: StreamId, pairs: &[Bytes], limits: NodeLimits) {
        let payload: usize = pairs.iter().map(|p| p.len()).sum();
        let fits = self.nodes.values().next_back().is_some_and(|tail| limits.fits(tail, payload));
        if !fits {
            self.nodes.insert(id, Node::new(pairs));
        }
        if let Some(tail) = self.nodes.values_mut().next_back() {
            tail.push(id, pairs);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// Live entries with ids in `start..=end`, in order (reversible).
    pub fn range(&self, start: StreamId, end: StreamId) -> impl DoubleEndedIterator<Item = EntryRef<'_>> + '_ {
        let first = self.nodes.range(..=start).next_back().map_or(start, |(k, _)| *k);
        (start <= end).then(|| self.nodes.range(first..=end)).into_iter().flatten().flat_map(move |(_, node)| {
            node.items
                .iter()
                .filter(move |i| !i.deleted && i.id >= start && i.id <= end)
                .map(move |item| EntryRef { node, item })
        })
    }

    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        let (_, node) = self.nodes.range(..=id).next_back()?;
        node.find(id).map(|i| EntryRef { node, item: &node.items[i] })
    }

    /// The first or last live entry.
    pub fn edge(&self, first: bool) -> Option<EntryRef<'_>> {
        let mut all = self.range(StreamId::MIN, StreamId::MAX);
        if first {
            all.next()
        } else {
            all.next_back()
        }
    }

    /// The last live id (Redis's `streamLastValidID`), 0-0 when empty.
    pub fn last_valid_id(&self) -> StreamId {
        self.edge(false).map_or(StreamId::MIN, |e| e.id())
    }

    /// Deletes the live entry `id`; false if there is none. Updates the max deleted id and
    /// the first id as XDEL does.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, node)) = self.nodes.range_mut(..=id).next_back() else { return false };
        let Some(index) = node.find(id) else { return false };
        node.delete_at(index);
        if node.live == 0 {
            self.nodes.remove(&key);
        }
        self.length -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.edge(true).map_or(StreamId::MIN, |e| e.id());
        }
        true
    }

    /// Redis's `streamTrim`: removes entries from the head; `approx` removes whole nodes only,
    /// `limit` (0: none) caps the entries removed. Returns how many went.
    pub fn trim(&mut self, trim: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some((&key, node)) = self.nodes.iter_mut().next() {
            if let Trim::MaxLen(max) = trim {
                if self.length <= max {
                    break;
                }
            }
            let entries = node.live as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let whole = match trim {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.last_id() < min,
            };
            if whole {
                self.nodes.remove(&key);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            for index in 0..node.items.len() {
                let stop = match trim {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => node.items[index].id >= min,
                };
                if stop {
                    break;
                }
                if node.delete_at(index) {
                    self.length -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.edge(true).map_or(StreamId::MIN, |e| e.id());
        }
        deleted
    }

    /// Whether [`trim`](Self::trim) with these arguments would delete anything (it mirrors
    /// its walk without changing the stream, so a trim that removes nothing stays a read).
    pub fn trim_would_delete(&self, trim: Trim, approx: bool, limit: u64) -> bool {
        let (mut length, mut deleted) = (self.length, 0u64);
        for node in self.nodes.values() {
            if matches!(trim, Trim::MaxLen(max) if length <= max) {
                break;
            }
            let entries = node.live as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let whole = match trim {
                Trim::MaxLen(max) => length - entries >= max,
                Trim::MinId(min) => node.last_id() < min,
            };
            if whole {
                length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            return deleted > 0
                || match trim {
                    Trim::MaxLen(max) => length > max,
                    Trim::MinId(min) => node.items.iter().any(|i| !i.deleted && i.id < min),
                };
        }
        deleted > 0
    }

    /// Rough memory footprint in bytes.
    pub fn approx_size(&self) -> usize {
        self.nodes.values().map(|n| n.lp_bytes + 64).sum::<usize>() + self.groups.len() * 128
    }
}

/// Nodes of the compressed trie of sorted, distinct, equal-length `keys` below `depth`: a
/// leaf at the end, a compressed node over a shared prefix, else a branching node with one
/// subtree per next byte.
fn trie_nodes(keys: &[[u8; 16]], depth: usize) -> usize {
    if depth == 16 {
        return 1;
    }
    let (first, last) = (&keys[0], &keys[keys.len() - 1]);
    let shared = (depth..16).take_while(|&i| first[i] == last[i]).count();
    if shared > 0 {
        return 1 + trie_nodes(keys, depth + shared);
    }
    let mut total = 1;
    let mut rest = keys;
    while let Some(head) = rest.first() {
        let n = rest.iter().take_while(|k| k[depth] == head[depth]).count();
        total += trie_nodes(&rest[..n], depth + 1);
        rest = &rest[n..];
    }
    total
}

#[cfg(test)]
mod tests;
