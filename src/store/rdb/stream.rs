//! Streams in RDB form (`STREAM_LISTPACKS_2` of Redis 7.0, and reading the older
//! `STREAM_LISTPACKS`): each node as its 16-byte big-endian master id and its listpack (master
//! entry, then entries with their ids relative to the master, tombstones included), then the
//! length, last / first / max-deleted ids, entries added, and the consumer groups with their
//! pending entries and consumers.

use super::listpack::{self, Item as LpItem, Writer};
use super::{put_len, put_string, types, Bad, Reader};
use crate::store::stream::{Consumer, Group, Item, Node, Pending, StreamId, StreamValue};
use crate::store::Value;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn key_id(k: &[u8]) -> Result<StreamId, Bad> {
    if k.len() != 16 {
        return Err(Bad);
    }
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&k[..8]);
    seq.copy_from_slice(&k[8..]);
    Ok(StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq)))
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_len(out, id.ms);
    put_len(out, id.seq);
}

pub fn write(out: &mut Vec<u8>, s: &StreamValue) {
    out.push(types::STREAM_LISTPACKS_2);
    put_len(out, s.node_count() as u64);
    for node in s.nodes() {
        put_string(out, &id_key(node.master_id()));
        put_string(out, &node_listpack(node));
    }
    put_len(out, s.len());
    put_id(out, s.last_id);
    put_id(out, s.first_id);
    put_id(out, s.max_deleted_id);
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name);
        put_id(out, g.last_id);
        put_len(out, g.entries_read as u64);
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            out.extend_from_slice(&id_key(*id));
            out.extend_from_slice(&p.delivery_time.to_le_bytes());
            put_len(out, p.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_string(out, cname);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            put_len(out, c.pending.len() as u64);
            c.pending.iter().for_each(|id| out.extend_from_slice(&id_key(*id)));
        }
    }
}

/// The listpack Redis holds for a node.
fn node_listpack(node: &Node) -> Vec<u8> {
    let mut w = Writer::default();
    let master = node.master_id();
    w.push_int(node.live as i64);
    w.push_int((node.items.len() - node.live) as i64);
    w.push_int(node.master_fields.len() as i64);
    node.master_fields.iter().for_each(|f| w.push_str(f));
    w.push_int(0);
    for item in &node.items {
        let same = item.fields.is_none();
        let flags = if item.deleted { FLAG_DELETED } else { 0 } | if same { FLAG_SAMEFIELDS } else { 0 };
        w.push_int(flags);
        w.push_int(item.id.ms.wrapping_sub(master.ms) as i64);
        w.push_int(item.id.seq.wrapping_sub(master.seq) as i64);
        let fields = item.fields.as_ref().unwrap_or(&node.master_fields);
        let empty = Bytes::new();
        // A tombstone kept without its values (one deleted before values were kept) gets
        // empty ones, so the entry still has its shape.
        let value = |i: usize| item.values.get(i).unwrap_or(&empty);
        if same {
            (0..fields.len()).for_each(|i| w.push_str(value(i)));
            w.push_int(fields.len() as i64 + 3);
        } else {
            w.push_int(fields.len() as i64);
            for (i, f) in fields.iter().enumerate() {
                w.push_str(f);
                w.push_str(value(i));
            }
            w.push_int(2 * fields.len() as i64 + 4);
        }
    }
    w.finish()
}

pub fn read(r: &mut Reader, rdb_type: u8) -> Result<Value, Bad> {
    let node_count = r.count(2)?;
    let mut nodes = Vec::with_capacity(node_count);
    for _ in 0..node_count {
        let master = key_id(&r.string()?)?;
        let blob = r.string()?;
        nodes.push(read_node(master, &blob)?);
    }
    let length = r.len()?;
    let mut meta = StreamValue { last_id: read_id(r)?, ..Default::default() };
    let v2 = rdb_type == types::STREAM_LISTPACKS_2;
    if v2 {
        meta.first_id = read_id(r)?;
        meta.max_deleted_id = read_id(r)?;
        meta.entries_added = r.len()?;
    }
    let last_entry = nodes.last().map(Node::last_id);
    if last_entry.is_some_and(|id| id > meta.last_id) {
        return Err(Bad);
    }
    let mut s = StreamValue::from_parts(nodes, meta).ok_or(Bad)?;
    if s.len() != length {
        return Err(Bad);
    }
    if !v2 {
        s.entries_added = s.len();
        s.first_id = s.edge(true).map_or(StreamId::MIN, |e| e.id());
    }
    let group_count = r.count(4)?;
    for _ in 0..group_count {
        let name = Bytes::from(r.string()?);
        let last_id = read_id(r)?;
        let entries_read = if v2 { r.len()? as i64 } else { s.estimate_distance(last_id) };
        let group = read_group(r, Group::new(last_id, entries_read))?;
        if s.groups.insert(name, group).is_some() {
            return Err(Bad);
        }
    }
    Ok(Value::Stream(Box::new(s)))
}

fn read_id(r: &mut Reader) -> Result<StreamId, Bad> {
    Ok(StreamId::new(r.len()?, r.len()?))
}

fn read_group(r: &mut Reader, mut g: Group) -> Result<Group, Bad> {
    let n = r.count(16 + 8 + 1)?;
    let mut pel = BTreeMap::new();
    for _ in 0..n {
        let id = key_id(r.take(16)?)?;
        let delivery_time = r.u64_le()?;
        let delivery_count = r.len()?;
        if pel.insert(id, (delivery_time, delivery_count)).is_some() {
            return Err(Bad);
        }
    }
    let n = r.count(1 + 8 + 1)?;
    for _ in 0..n {
        let name = Bytes::from(r.string()?);
        let seen_time = r.u64_le()?;
        let k = r.count(16)?;
        let mut pending = BTreeSet::new();
        for _ in 0..k {
            let id = key_id(r.take(16)?)?;
            // Every entry a consumer holds is in the group's list, and only once.
            let (delivery_time, delivery_count) = pel.remove(&id).ok_or(Bad)?;
            g.pel.insert(id, Pending { consumer: name.clone(), delivery_time, delivery_count });
            pending.insert(id);
        }
        if g.consumers.insert(name, Consumer { seen_time, pending }).is_some() {
            return Err(Bad);
        }
    }
    if !pel.is_empty() {
        return Err(Bad);
    }
    Ok(g)
}

/// A node from its master id and listpack, every count and id checked.
fn read_node(master: StreamId, blob: &[u8]) -> Result<Node, Bad> {
    let mut it = listpack::parse(blob)?.into_iter();
    let live = usize::try_from(int(&mut it)?).map_err(|_| Bad)?;
    let dead = usize::try_from(int(&mut it)?).map_err(|_| Bad)?;
    let nfields = usize::try_from(int(&mut it)?).map_err(|_| Bad)?;
    if nfields > blob.len() {
        return Err(Bad);
    }
    let master_fields = (0..nfields).map(|_| it.next().map(LpItem::into_bytes).ok_or(Bad)).collect::<Result<_, _>>()?;
    if int(&mut it)? != 0 {
        return Err(Bad);
    }
    let mut node = Node { master_fields, items: Vec::new(), live: 0, lp_bytes: blob.len() };
    while let Some(flags) = it.next() {
        let flags = flags.as_int().ok_or(Bad)?;
        let item = read_entry(&mut it, flags, master, &node.master_fields)?;
        if node.items.last().is_some_and(|prev: &Item| prev.id >= item.id) {
            return Err(Bad);
        }
        node.live += usize::from(!item.deleted);
        node.items.push(item);
    }
    // The master id is the first entry's (Redis writes the first entry with zero offsets).
    let first_is_master = node.items.first().is_some_and(|i| i.id == master);
    if node.live != live || node.items.len() - node.live != dead || !first_is_master {
        return Err(Bad);
    }
    Ok(node)
}

type Items = std::vec::IntoIter<LpItem>;

/// The next element, which must be an integer.
fn int(it: &mut Items) -> Result<i64, Bad> {
    it.next().and_then(|i| i.as_int()).ok_or(Bad)
}

fn read_entry(it: &mut Items, flags: i64, master: StreamId, master_fields: &[Bytes]) -> Result<Item, Bad> {
    if !(0..=3).contains(&flags) {
        return Err(Bad);
    }
    let ms = master.ms.wrapping_add(int(it)? as u64);
    let seq = master.seq.wrapping_add(int(it)? as u64);
    let mut next = || it.next().map(LpItem::into_bytes).ok_or(Bad);
    let (fields, values, count) = if flags & FLAG_SAMEFIELDS != 0 {
        let values = (0..master_fields.len()).map(|_| next()).collect::<Result<Vec<_>, _>>()?;
        (None, values, master_fields.len() as i64 + 3)
    } else {
        let n = usize::try_from(int(it)?).map_err(|_| Bad)?;
        if n > it.len() {
            return Err(Bad);
        }
        let mut fields = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(it.next().map(LpItem::into_bytes).ok_or(Bad)?);
            values.push(it.next().map(LpItem::into_bytes).ok_or(Bad)?);
        }
        (Some(fields), values, 2 * n as i64 + 4)
    };
    if int(it)? != count {
        return Err(Bad);
    }
    Ok(Item { id: StreamId::new(ms, seq), deleted: flags & FLAG_DELETED != 0, fields, values })
}
