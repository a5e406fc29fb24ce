//! The snapshot form of a stream: metadata, then its nodes as they are (master field names,
//! the listpack size Redis would have, entries with tombstones), then its consumer groups
//! with their pending entries and consumers. Nodes are written as they are, not re-cut, so a
//! restored replica trims approximately and reports `XINFO STREAM` as one that applied the log.

use super::{put_bytes, put_varint, Cursor};
use crate::store::stream::{Consumer, Group, Item, Node, Pending, StreamId, StreamValue};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

const ITEM_DELETED: u8 = 1;
const ITEM_OWN_FIELDS: u8 = 2;

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_varint(out, id.ms);
    put_varint(out, id.seq);
}

pub fn encode(out: &mut Vec<u8>, s: &StreamValue) {
    for id in [s.last_id, s.first_id, s.max_deleted_id] {
        put_id(out, id);
    }
    put_varint(out, s.entries_added);
    put_varint(out, s.node_count() as u64);
    for node in s.nodes() {
        encode_node(out, node);
    }
    put_varint(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_bytes(out, name);
        encode_group(out, g);
    }
}

fn encode_node(out: &mut Vec<u8>, node: &Node) {
    put_varint(out, node.lp_bytes as u64);
    put_varint(out, node.master_fields.len() as u64);
    node.master_fields.iter().for_each(|f| put_bytes(out, f));
    put_varint(out, node.items.len() as u64);
    for item in &node.items {
        put_id(out, item.id);
        let flags =
            (if item.deleted { ITEM_DELETED } else { 0 }) | (if item.fields.is_some() { ITEM_OWN_FIELDS } else { 0 });
        out.push(flags);
        if let Some(fields) = &item.fields {
            put_varint(out, fields.len() as u64);
            fields.iter().for_each(|f| put_bytes(out, f));
        }
        put_varint(out, item.values.len() as u64);
        item.values.iter().for_each(|v| put_bytes(out, v));
    }
}

fn encode_group(out: &mut Vec<u8>, g: &Group) {
    put_id(out, g.last_id);
    // entries_read is -1 when unknown: stored shifted by one.
    put_varint(out, (g.entries_read + 1) as u64);
    put_varint(out, g.pel.len() as u64);
    for (id, p) in &g.pel {
        put_id(out, *id);
        put_bytes(out, &p.consumer);
        put_varint(out, p.delivery_time);
        put_varint(out, p.delivery_count);
    }
    put_varint(out, g.consumers.len() as u64);
    for (name, c) in &g.consumers {
        put_bytes(out, name);
        put_varint(out, c.seen_time);
        put_varint(out, c.pending.len() as u64);
        c.pending.iter().for_each(|id| put_id(out, *id));
    }
}

impl Cursor<'_> {
    fn id(&mut self) -> Result<StreamId, &'static str> {
        Ok(StreamId::new(self.varint()?, self.varint()?))
    }

    fn byte_list(&mut self) -> Result<Vec<Bytes>, &'static str> {
        let n = self.count(1)?;
        (0..n).map(|_| self.bytes()).collect()
    }
}

pub fn decode(c: &mut Cursor<'_>) -> Result<StreamValue, &'static str> {
    let mut meta = StreamValue { last_id: c.id()?, first_id: c.id()?, max_deleted_id: c.id()?, ..Default::default() };
    meta.entries_added = c.varint()?;
    let n = c.count(3)?;
    let nodes = (0..n).map(|_| decode_node(c)).collect::<Result<Vec<_>, _>>()?;
    let groups = c.count(3)?;
    for _ in 0..groups {
        let name = c.bytes()?;
        let group = decode_group(c)?;
        if !group.is_consistent() {
            return Err("stream group pending lists disagree");
        }
        meta.groups.insert(name, group);
    }
    StreamValue::from_parts(nodes, meta).ok_or("stream nodes out of order")
}

fn decode_node(c: &mut Cursor<'_>) -> Result<Node, &'static str> {
    let lp_bytes = usize::try_from(c.varint()?).map_err(|_| "node size out of range")?;
    let master_fields = c.byte_list()?;
    let n = c.count(4)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let id = c.id()?;
        let flags = c.u8()?;
        let fields = if flags & ITEM_OWN_FIELDS != 0 { Some(c.byte_list()?) } else { None };
        let values = c.byte_list()?;
        let width = fields.as_ref().map_or(master_fields.len(), Vec::len);
        let deleted = flags & ITEM_DELETED != 0;
        if flags > 3 || (!deleted && values.len() != width) {
            return Err("stream entry fields and values disagree");
        }
        items.push(Item { id, deleted, fields, values });
    }
    let live = items.iter().filter(|i| !i.deleted).count();
    Ok(Node { master_fields, items, live, lp_bytes })
}

fn decode_group(c: &mut Cursor<'_>) -> Result<Group, &'static str> {
    let last_id = c.id()?;
    let entries_read = i64::try_from(c.varint()?).map_err(|_| "group counter out of range")? - 1;
    let mut g = Group::new(last_id, entries_read);
    let n = c.count(5)?;
    for _ in 0..n {
        let id = c.id()?;
        let p = Pending { consumer: c.bytes()?, delivery_time: c.varint()?, delivery_count: c.varint()? };
        g.pel.insert(id, p);
    }
    let n = c.count(3)?;
    let mut consumers = BTreeMap::new();
    for _ in 0..n {
        let name = c.bytes()?;
        let seen_time = c.varint()?;
        let k = c.count(2)?;
        let pending = (0..k).map(|_| c.id()).collect::<Result<BTreeSet<_>, _>>()?;
        consumers.insert(name, Consumer { seen_time, pending });
    }
    g.consumers = consumers;
    Ok(g)
}
