//! SORT and SORT_RO, as Redis 7.0's `sortCommandGeneric`: the options in its order and with
//! its errors, weights from BY patterns (`*` replaced by the element, `->field` for a hash
//! field), GET patterns (`#` for the element), LIMIT, ALPHA, DESC, and STORE into a list.
//! SORT is a write (STORE); it runs at apply like every write, reading the pattern keys of
//! the same state, so every replica computes the same result.

use super::args::{self, err, is, syntax};
use super::pqsort::pqsort;
use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::list::ListValue;
use crate::store::{notify, Value};
use bytes::Bytes;
use std::cmp::Ordering;

/// The SORT commands (arity, flags and key positions as Redis 7.0.15 reports them).
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, &["write", "denyoom", "movablekeys"], (1, 1, 1), Kind::Write(sort)),
    CommandSpec::new("sort_ro", -2, &["readonly", "movablekeys"], (1, 1, 1), Kind::Read(sort_ro)),
];

pub const BY_DENIED_IN_CLUSTER: &str = "ERR BY option of SORT denied in Cluster mode.";
pub const GET_DENIED_IN_CLUSTER: &str = "ERR GET option of SORT denied in Cluster mode.";

/// SORT's keys: the sorted key and the last STORE key (Redis's `sortGetKeys`, which skips
/// the arguments of LIMIT, GET and BY).
pub fn sort_keys(argv: &[Bytes]) -> Vec<usize> {
    let mut store = None;
    let mut i = 2;
    while i < argv.len() {
        let a = &argv[i];
        if is(a, "limit") {
            i += 2;
        } else if is(a, "get") || is(a, "by") {
            i += 1;
        } else if is(a, "store") && i + 1 < argv.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    std::iter::once(1).chain(store).collect()
}

/// The parsed options.
#[derive(Default)]
struct Options {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY with a pattern without `*`: keep the native order (sticky, as in Redis).
    dontsort: bool,
    get: Vec<Bytes>,
}

/// Parses the options; `cluster` refuses BY patterns and GET as Redis does in cluster mode.
fn parse(argv: &[Bytes], readonly: bool, cluster: bool) -> Result<Options, Frame> {
    let mut o = Options::default();
    let mut j = 2;
    while j < argv.len() {
        let (a, left) = (&argv[j], argv.len() - j - 1);
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            o.limit = Some((args::int(&argv[j + 1])?, args::int(&argv[j + 2])?));
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(argv[j + 1].clone());
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let pattern = &argv[j + 1];
            if !pattern.contains(&b'*') {
                o.dontsort = true;
            } else if cluster {
                return Err(err(BY_DENIED_IN_CLUSTER));
            }
            o.by = Some(pattern.clone());
            j += 1;
        } else if is(a, "get") && left >= 1 {
            if cluster {
                return Err(err(GET_DENIED_IN_CLUSTER));
            }
            o.get.push(argv[j + 1].clone());
            j += 1;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    Ok(o)
}

/// In cluster mode: the refusal SORT / SORT_RO `argv` gets before running, if any (BY with a
/// pattern, GET), in the order Redis meets its options. Other errors are left to the command.
pub fn refusal_in_cluster(argv: &[Bytes]) -> Option<Frame> {
    let readonly = argv.first().is_some_and(|n| is(n, "sort_ro"));
    match parse(argv, readonly, true) {
        Err(Frame::Error(e)) if e.starts_with(b"ERR BY option") || e.starts_with(b"ERR GET option") => {
            Some(Frame::Error(e))
        }
        _ => None,
    }
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]`
pub fn sort(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let o = match parse(argv, false, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let rows = match run(&ctx.read(), argv, &o) {
        Ok(rows) => rows,
        Err(e) => return e,
    };
    let Some(dest) = o.store else {
        return Frame::Array(rows.into_iter().map(|r| r.map_or(Frame::Null, Frame::Bulk)).collect());
    };
    let n = rows.len() as i64;
    if rows.is_empty() {
        ctx.delete(&dest);
    } else {
        let items = rows.into_iter().map(Option::unwrap_or_default).collect();
        ctx.set(dest.clone(), Value::List(Box::new(ListValue { items })), None);
        ctx.notify(notify::LIST, "sortstore", &dest);
    }
    Frame::Integer(n)
}

/// `SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]`
pub fn sort_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let rows = parse(argv, true, false).and_then(|o| run(ctx, argv, &o));
    match rows {
        Ok(rows) => Frame::Array(rows.into_iter().map(|r| r.map_or(Frame::Null, Frame::Bulk)).collect()),
        Err(e) => e,
    }
}

/// One element being sorted, with its weight.
struct Item {
    elem: Bytes,
    score: f64,
    /// The BY value for ALPHA with BY (`None`: missing, sorts first).
    cmpobj: Option<Bytes>,
}

/// The output rows: elements, or the GET values (`None` for a missing one).
fn run(ctx: &ReadCtx, argv: &[Bytes], o: &Options) -> Result<Vec<Option<Bytes>>, Frame> {
    let (elems, native_order) = match ctx.value(&argv[1]) {
        None => (Vec::new(), true),
        Some(Value::List(l)) => (l.items.iter().cloned().collect::<Vec<_>>(), true),
        Some(Value::Set(s)) => (s.iter().collect(), false),
        Some(Value::ZSet(z)) => (z.iter().map(|(m, _)| m.clone()).collect(), true),
        Some(_) => return Err(args::wrongtype()),
    };
    let mut dontsort = o.dontsort;
    let (mut alpha, mut by) = (o.alpha, o.by.as_ref());
    if dontsort && !native_order && o.store.is_some() {
        // A set has no order of its own: a stored result is sorted, as Redis forces it.
        (dontsort, alpha, by) = (false, true, None);
    }
    let len = elems.len() as i64;
    let (start, end) = limits(o.limit, len);
    let mut items: Vec<Item> = if dontsort && native_order {
        // The native order, from `start`, backwards for DESC (LIMIT applied here).
        let range = start.max(0) as usize..(end + 1).max(start).max(0) as usize;
        let it: Box<dyn Iterator<Item = Bytes>> =
            if o.desc { Box::new(elems.into_iter().rev()) } else { Box::new(elems.into_iter()) };
        it.skip(range.start).take(range.len()).map(|elem| Item { elem, score: 0.0, cmpobj: None }).collect()
    } else {
        elems.into_iter().map(|elem| Item { elem, score: 0.0, cmpobj: None }).collect()
    };
    let (start, end) = if dontsort && native_order { (0, end - start) } else { (start, end) };
    if !dontsort {
        let bad = weigh(ctx, &mut items, by, alpha);
        sort_items(&mut items, o, alpha, by.is_some(), start, end);
        if bad {
            return Err(err("ERR One or more scores can't be converted into double"));
        }
    }
    let mut rows = Vec::new();
    for item in items.iter().take((end + 1).max(0) as usize).skip(start.max(0) as usize) {
        if o.get.is_empty() {
            rows.push(Some(item.elem.clone()));
        }
        for pattern in &o.get {
            rows.push(lookup(ctx, pattern, &item.elem));
        }
    }
    Ok(rows)
}

/// Redis's LIMIT arithmetic: the first and last rank output (`end < start` for none).
fn limits(limit: Option<(i64, i64)>, len: i64) -> (i64, i64) {
    let (offset, count) = limit.unwrap_or((0, -1));
    let start = offset.max(0).min(len);
    let count = count.max(-1).min(len);
    let mut end = if count < 0 { len - 1 } else { start + count - 1 };
    if start >= len {
        return (len - 1, len - 2);
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

/// Loads the weights; true when one does not parse as a double.
fn weigh(ctx: &ReadCtx, items: &mut [Item], by: Option<&Bytes>, alpha: bool) -> bool {
    let mut bad = false;
    for item in items.iter_mut() {
        let value = match by {
            Some(pattern) => match lookup(ctx, pattern, &item.elem) {
                Some(v) => v,
                None => continue,
            },
            None => item.elem.clone(),
        };
        if alpha {
            if by.is_some() {
                item.cmpobj = Some(value);
            }
        } else {
            match crate::cnum::strtod(&value) {
                Some(s) => item.score = s,
                None => bad = true,
            }
        }
    }
    bad
}

/// Redis's `sortCompare`.
fn compare(a: &Item, b: &Item, alpha: bool, by_pattern: bool, store: bool) -> Ordering {
    if !alpha {
        return if a.score > b.score {
            Ordering::Greater
        } else if a.score < b.score {
            Ordering::Less
        } else {
            a.elem.as_ref().cmp(b.elem.as_ref())
        };
    }
    let (x, y) = if by_pattern {
        match (&a.cmpobj, &b.cmpobj) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        }
    } else {
        (&a.elem, &b.elem)
    };
    if store {
        x.as_ref().cmp(y.as_ref())
    } else {
        collate(x, y)
    }
}

/// `strcoll` in the C locale: a byte comparison of C strings (up to a NUL byte).
fn collate(a: &[u8], b: &[u8]) -> Ordering {
    crate::cnum::c_str(a).cmp(crate::cnum::c_str(b))
}

/// glibc's `qsort` (stable) of everything, or Redis's `pqsort` of the LIMIT range when
/// sorting by a pattern with a LIMIT.
fn sort_items(items: &mut [Item], o: &Options, alpha: bool, by_pattern: bool, start: i64, end: i64) {
    let store = o.store.is_some();
    let cmp = |a: &Item, b: &Item| {
        let c = compare(a, b, alpha, by_pattern, store);
        if o.desc {
            c.reverse()
        } else {
            c
        }
    };
    let whole = start == 0 && end == items.len() as i64 - 1;
    if by_pattern && !whole {
        if start <= end && start >= 0 {
            pqsort(items, &cmp, start as usize, end as usize);
        }
    } else {
        items.sort_by(cmp);
    }
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is
/// replaced by the element and the string at that key (or with `->field`, the field of the
/// hash at that key) is the value. `None` when missing, of another type, or without `*`.
fn lookup(ctx: &ReadCtx, pattern: &[u8], subst: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(subst.clone());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let arrow = pattern[star + 1..].windows(2).position(|w| w == b"->").map(|i| star + 1 + i);
    let (key_end, field) = match arrow {
        Some(f) if f + 2 < pattern.len() => (f, Some(&pattern[f + 2..])),
        _ => (pattern.len(), None),
    };
    let mut key = Vec::with_capacity(key_end + subst.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    match (ctx.value(&key)?, field) {
        (Value::Hash(h), Some(field)) => h.get(field).cloned(),
        (Value::Str(s), None) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn limits_follow_redis() {
        assert_eq!(limits(None, 5), (0, 4));
        assert_eq!(limits(Some((1, 2)), 5), (1, 2));
        assert_eq!(limits(Some((-3, 100)), 5), (0, 4));
        assert_eq!(limits(Some((7, 2)), 5), (4, 3));
        assert_eq!(limits(Some((0, 0)), 5), (0, -1));
        assert_eq!(limits(None, 0), (-1, -2));
    }

    #[test]
    fn keys_are_the_source_and_the_last_store() {
        assert_eq!(sort_keys(&argv("sort k store a store b")), vec![1, 5]);
        assert_eq!(sort_keys(&argv("sort k get store by store")), vec![1]);
        assert_eq!(sort_keys(&argv("sort k limit store x store d")), vec![1, 6]);
    }

    #[test]
    fn cluster_mode_refuses_patterns_in_option_order() {
        assert!(refusal_in_cluster(&argv("sort k by w_*")).is_some());
        assert!(refusal_in_cluster(&argv("sort k get #")).is_some());
        assert!(refusal_in_cluster(&argv("sort k by nosort")).is_none());
        assert!(refusal_in_cluster(&argv("sort k junk get #")).is_none());
    }
}
