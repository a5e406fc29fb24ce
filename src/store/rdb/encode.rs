//! Values to RDB objects, in the encodings redis-server 7.0 saves: the compact form
//! (listpack, intset) for a value held compactly, the general form otherwise.

use super::listpack::Writer;
use super::{legacy, put_len, put_string, stream, types};
use crate::protocol::format_double;
use crate::store::hash::HashValue;
use crate::store::list::ListValue;
use crate::store::set::SetValue;
use crate::store::zset::ZSetValue;
use crate::store::Value;

/// `list-max-listpack-size -2`: a list node's listpack stays within 8 KiB.
const LIST_NODE_MAX_BYTES: usize = 8192;

/// Appends the type byte and the body of `value`.
pub fn write_object(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => {
            out.push(types::STRING);
            put_string(out, s);
        }
        Value::List(l) => write_list(out, l),
        Value::Hash(h) => write_hash(out, h),
        Value::Set(s) => write_set(out, s),
        Value::ZSet(z) => write_zset(out, z),
        Value::Stream(s) => stream::write(out, s),
    }
}

/// A quicklist of listpack nodes, cut where Redis 7.0's `_quicklistNodeAllowInsert` cuts a
/// list built by pushing its elements at the tail in order: an element joins the tail node
/// while the node's size, the element's and an 8-byte estimate of its overhead stay within
/// the limit (checked against redis-server 7.0.15's payloads).
fn write_list(out: &mut Vec<u8>, list: &ListValue) {
    const SIZE_ESTIMATE_OVERHEAD: usize = 8;
    let mut nodes: Vec<Writer> = Vec::new();
    for item in &list.items {
        let fits =
            nodes.last().is_some_and(|node| node.bytes() + item.len() + SIZE_ESTIMATE_OVERHEAD <= LIST_NODE_MAX_BYTES);
        if !fits {
            nodes.push(Writer::default());
        }
        if let Some(node) = nodes.last_mut() {
            node.push_str(item);
        }
    }
    out.push(types::LIST_QUICKLIST_2);
    put_len(out, nodes.len() as u64);
    for node in nodes {
        put_len(out, 2); // QUICKLIST_NODE_CONTAINER_PACKED
        put_string(out, &node.finish());
    }
}

fn write_hash(out: &mut Vec<u8>, hash: &HashValue) {
    match hash {
        HashValue::Listpack(pairs) => {
            let mut w = Writer::default();
            for (f, v) in pairs {
                w.push_str(f);
                w.push_str(v);
            }
            out.push(types::HASH_LISTPACK);
            put_string(out, &w.finish());
        }
        HashValue::Table(map) => {
            out.push(types::HASH);
            put_len(out, map.len() as u64);
            for (f, v) in map.iter() {
                put_string(out, f);
                put_string(out, v);
            }
        }
    }
}

fn write_set(out: &mut Vec<u8>, set: &SetValue) {
    if set.encoding() == "intset" {
        let ints: Vec<i64> = set.iter().filter_map(|m| crate::protocol::parse_i64(&m)).collect();
        out.push(types::SET_INTSET);
        put_string(out, &legacy::write_intset(&ints));
        return;
    }
    out.push(types::SET);
    put_len(out, set.len() as u64);
    for m in set.iter() {
        put_string(out, &m);
    }
}

fn write_zset(out: &mut Vec<u8>, zset: &ZSetValue) {
    if zset.encoding() == "listpack" {
        let mut w = Writer::default();
        for (m, score) in zset.iter() {
            w.push_str(m);
            w.push_str(format_double(score).as_bytes());
        }
        out.push(types::ZSET_LISTPACK);
        put_string(out, &w.finish());
        return;
    }
    // Redis saves a skiplist from the greatest element down, so loading appends at the head.
    out.push(types::ZSET_2);
    put_len(out, zset.len() as u64);
    for (m, score) in zset.iter().rev() {
        put_string(out, m);
        out.extend_from_slice(&score.to_le_bytes());
    }
}
