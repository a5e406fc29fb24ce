//! RDB objects to values, for every type Redis 7.0 loads. The value gets the encoding Redis
//! gives it after loading (`rdbLoadObject`): a general-form hash, set or sorted set small
//! enough for the compact form becomes compact, a compact one too big becomes general.
//! Duplicates, empty collections, NaN scores and malformed blobs are [`Bad`].

use super::legacy;
use super::listpack::{self, Item};
use super::{stream, types, Bad, Reader};
use crate::store::hash::{self, HashValue};
use crate::store::list::ListValue;
use crate::store::set::SetValue;
use crate::store::zset::ZSetValue;
use crate::store::{KeyMap, Value};
use bytes::Bytes;
use std::collections::{HashSet, VecDeque};

/// Reads one object: its type byte, then its body.
pub fn load_object(r: &mut Reader) -> Result<Value, Bad> {
    let t = r.u8()?;
    let value = match t {
        types::STRING => Value::Str(Bytes::from(r.string()?)),
        types::LIST => {
            let n = r.count(1)?;
            let items = (0..n).map(|_| r.string().map(Bytes::from)).collect::<Result<VecDeque<_>, _>>()?;
            non_empty(Value::List(Box::new(ListValue { items })))?
        }
        types::LIST_ZIPLIST => list_of_blobs(vec![r.string()?], false)?,
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => read_quicklist(r, t == types::LIST_QUICKLIST_2)?,
        types::SET => {
            let n = r.count(1)?;
            let members = (0..n).map(|_| r.string().map(Bytes::from)).collect::<Result<Vec<_>, _>>()?;
            set_of(members)?
        }
        types::SET_INTSET => {
            let ints = legacy::intset(&r.string()?)?;
            set_of(ints.into_iter().map(|n| Bytes::from(n.to_string())).collect())?
        }
        types::HASH => {
            let n = r.count(2)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((Bytes::from(r.string()?), Bytes::from(r.string()?)));
            }
            hash_of(pairs, true)?
        }
        types::HASH_ZIPMAP => hash_of(legacy::zipmap(&r.string()?)?, true)?,
        types::HASH_ZIPLIST => hash_of(pairs_of(legacy::ziplist(&r.string()?)?)?, false)?,
        types::HASH_LISTPACK => hash_of(pairs_of(listpack::parse(&r.string()?)?)?, false)?,
        types::ZSET | types::ZSET_2 => {
            let n = r.count(2)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let member = Bytes::from(r.string()?);
                let score = if t == types::ZSET_2 { f64::from_le_bytes(le8(r)?) } else { string_double(r)? };
                entries.push((member, score));
            }
            zset_of(entries)?
        }
        types::ZSET_ZIPLIST => zset_of(scored(legacy::ziplist(&r.string()?)?)?)?,
        types::ZSET_LISTPACK => zset_of(scored(listpack::parse(&r.string()?)?)?)?,
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => stream::read(r, t)?,
        _ => return Err(Bad),
    };
    Ok(value)
}

fn le8(r: &mut Reader) -> Result<[u8; 8], Bad> {
    let mut a = [0u8; 8];
    a.copy_from_slice(r.take(8)?);
    Ok(a)
}

/// A score of the old `ZSET` type: a length byte (253 NaN, 254 +inf, 255 -inf) and text.
fn string_double(r: &mut Reader) -> Result<f64, Bad> {
    match r.u8()? {
        253 => Err(Bad),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        n => parse_score(r.take(n as usize)?),
    }
}

fn parse_score(text: &[u8]) -> Result<f64, Bad> {
    let v: f64 = std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()).ok_or(Bad)?;
    if v.is_nan() {
        return Err(Bad);
    }
    Ok(v)
}

/// A quicklist: nodes that are ziplists (version 1) or, in version 2, listpacks (packed) or
/// single elements (plain).
fn read_quicklist(r: &mut Reader, v2: bool) -> Result<Value, Bad> {
    let n = r.count(2)?;
    let mut items = VecDeque::new();
    for _ in 0..n {
        let container = if v2 { r.len()? } else { 2 };
        let blob = r.string()?;
        match container {
            1 => items.push_back(Bytes::from(blob)),
            2 => {
                let elements = if v2 { listpack::parse(&blob)? } else { legacy::ziplist(&blob)? };
                items.extend(elements.into_iter().map(Item::into_bytes));
            }
            _ => return Err(Bad),
        }
    }
    non_empty(Value::List(Box::new(ListValue { items })))
}

fn list_of_blobs(blobs: Vec<Vec<u8>>, listpacks: bool) -> Result<Value, Bad> {
    let mut items = VecDeque::new();
    for blob in blobs {
        let elements = if listpacks { listpack::parse(&blob)? } else { legacy::ziplist(&blob)? };
        items.extend(elements.into_iter().map(Item::into_bytes));
    }
    non_empty(Value::List(Box::new(ListValue { items })))
}

fn non_empty(v: Value) -> Result<Value, Bad> {
    if v.is_empty_collection() {
        Err(Bad)
    } else {
        Ok(v)
    }
}

fn distinct<'a>(keys: impl Iterator<Item = &'a Bytes>) -> bool {
    let mut seen = HashSet::new();
    keys.into_iter().all(|k| seen.insert(k))
}

fn set_of(members: Vec<Bytes>) -> Result<Value, Bad> {
    if !distinct(members.iter()) {
        return Err(Bad);
    }
    non_empty(Value::Set(Box::new(SetValue::from_members(members))))
}

/// Alternating elements as (first, second) pairs; an odd count is [`Bad`].
fn pairs_of(items: Vec<Item>) -> Result<Vec<(Bytes, Bytes)>, Bad> {
    if !items.len().is_multiple_of(2) {
        return Err(Bad);
    }
    let mut it = items.into_iter();
    let mut pairs = Vec::new();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        pairs.push((a.into_bytes(), b.into_bytes()));
    }
    Ok(pairs)
}

/// A hash keeping the pairs' order while compact. A general-form payload (`general`) is
/// compact when Redis would make it so; a compact one stays compact unless it has too many
/// fields.
fn hash_of(pairs: Vec<(Bytes, Bytes)>, general: bool) -> Result<Value, Bad> {
    if !distinct(pairs.iter().map(|(f, _)| f)) {
        return Err(Bad);
    }
    let long = |pairs: &[(Bytes, Bytes)]| {
        pairs.iter().any(|(f, v)| f.len() > hash::MAX_LISTPACK_VALUE || v.len() > hash::MAX_LISTPACK_VALUE)
    };
    let compact = pairs.len() <= hash::MAX_LISTPACK_ENTRIES && !(general && long(&pairs));
    let value = if compact {
        HashValue::Listpack(pairs)
    } else {
        let mut map = KeyMap::new();
        for (f, v) in pairs {
            map.insert(f, v);
        }
        HashValue::Table(map)
    };
    non_empty(Value::Hash(Box::new(value)))
}

fn scored(items: Vec<Item>) -> Result<Vec<(Bytes, f64)>, Bad> {
    pairs_of(items)?.into_iter().map(|(m, s)| Ok((m, parse_score(&s)?))).collect()
}

fn zset_of(entries: Vec<(Bytes, f64)>) -> Result<Value, Bad> {
    if entries.iter().any(|(_, s)| s.is_nan()) || !distinct(entries.iter().map(|(m, _)| m)) {
        return Err(Bad);
    }
    non_empty(Value::ZSet(Box::new(ZSetValue::from_entries(entries))))
}
