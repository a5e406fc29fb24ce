//! Redis 7.0.15's own command table: what redis-server replies to `COMMAND INFO` and `COMMAND
//! DOCS` (RESP3, every command, subcommands sorted by name), captured by
//! `scripts/gen-redis-commands.py` into `redis_commands.resp` (Redis is BSD-3 licensed). COMMAND
//! INFO / DOCS answer from it for the commands raftis has, and COMMAND GETKEYS /
//! GETKEYSANDFLAGS find keys with its key specifications, as Redis's `getKeysUsingKeySpecs`.

use crate::protocol::{parse_frame, Frame, Limits};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &[u8] = include_bytes!("redis_commands.resp");

/// The captured replies, by lowercase command name (subcommands as `container|sub`).
struct Table {
    info: HashMap<String, Frame>,
    docs: HashMap<String, Frame>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let data = Bytes::from_static(DATA);
        let limits = Limits::default();
        let (info, used) = parse_frame(&data, &limits).unwrap_or((Frame::Array(Vec::new()), 0));
        let (docs, _) = parse_frame(&data.slice(used..), &limits).unwrap_or((Frame::Map(Vec::new()), 0));
        let mut t = Table { info: HashMap::new(), docs: HashMap::new() };
        if let Frame::Array(entries) = info {
            entries.into_iter().for_each(|e| add_info(&mut t.info, e));
        }
        if let Frame::Map(pairs) = docs {
            pairs.into_iter().for_each(|(n, d)| add_docs(&mut t.docs, n, d));
        }
        t
    })
}

fn add_info(map: &mut HashMap<String, Frame>, entry: Frame) {
    let Frame::Array(items) = &entry else { return };
    if let Some(Frame::Array(subs) | Frame::Set(subs)) = items.get(9) {
        subs.iter().for_each(|s| add_info(map, s.clone()));
    }
    if let Some(name) = items.first().and_then(text) {
        map.insert(name, entry);
    }
}

fn add_docs(map: &mut HashMap<String, Frame>, name: Frame, doc: Frame) {
    if let Some(Frame::Map(subs)) = field(&doc, "subcommands") {
        subs.iter().for_each(|(n, d)| add_docs(map, n.clone(), d.clone()));
    }
    if let Some(name) = text(&name) {
        map.insert(name, doc);
    }
}

/// A string frame's text, lowercase.
fn text(f: &Frame) -> Option<String> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => Some(String::from_utf8_lossy(b).to_ascii_lowercase()),
        _ => None,
    }
}

/// The value of `key` in a map frame.
fn field<'a>(map: &'a Frame, key: &str) -> Option<&'a Frame> {
    let Frame::Map(pairs) = map else { return None };
    pairs.iter().find(|(k, _)| text(k).as_deref() == Some(key)).map(|(_, v)| v)
}

fn int(f: Option<&Frame>) -> i64 {
    match f {
        Some(Frame::Integer(n)) => *n,
        _ => 0,
    }
}

/// Redis's COMMAND INFO entry for `name` (lowercase; `container|sub` for a subcommand).
pub fn info(name: &str) -> Option<&'static Frame> {
    table().info.get(name)
}

/// Every command and subcommand name of Redis's table (lowercase, `container|sub`).
pub fn names() -> impl Iterator<Item = &'static String> {
    table().info.keys()
}

/// Redis's COMMAND DOCS entry for `name`.
pub fn docs(name: &str) -> Option<&'static Frame> {
    table().docs.get(name)
}

/// The names of `name`'s subcommands, as `name|sub`.
pub fn subcommands(name: &str) -> Vec<String> {
    match info(name) {
        Some(Frame::Array(items)) => match items.get(9) {
            Some(Frame::Array(subs) | Frame::Set(subs)) => subs
                .iter()
                .filter_map(|s| if let Frame::Array(i) = s { i.first().and_then(text) } else { None })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The strings of the set at `index` of an INFO entry (flags: 2, ACL categories: 6).
pub fn info_strings(entry: &Frame, index: usize) -> Vec<String> {
    match entry {
        Frame::Array(items) => match items.get(index) {
            Some(Frame::Set(v) | Frame::Array(v)) => v.iter().filter_map(text).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Where a key spec starts looking.
enum Begin {
    Index(i64),
    Keyword { keyword: Bytes, startfrom: i64 },
    Unknown,
}

/// How a key spec finds its keys from there.
enum Find {
    Range { lastkey: i64, keystep: i64, limit: i64 },
    Keynum { keynumidx: i64, firstkey: i64, keystep: i64 },
    Unknown,
}

/// One key specification.
pub struct KeySpec {
    pub flags: Vec<String>,
    begin: Begin,
    find: Find,
}

/// The key specs of an INFO entry.
pub fn key_specs(entry: &Frame) -> Vec<KeySpec> {
    let Frame::Array(items) = entry else { return Vec::new() };
    let Some(Frame::Set(specs) | Frame::Array(specs)) = items.get(8) else { return Vec::new() };
    specs.iter().map(key_spec).collect()
}

fn key_spec(spec: &Frame) -> KeySpec {
    let flags = match field(spec, "flags") {
        Some(Frame::Set(v) | Frame::Array(v)) => v.iter().filter_map(|f| text(f).map(|t| original_case(&t))).collect(),
        _ => Vec::new(),
    };
    let kind = |part: &str| field(spec, part).and_then(|p| field(p, "type")).and_then(text).unwrap_or_default();
    let arg = |part: &str, name: &str| field(spec, part).and_then(|p| field(p, "spec")).and_then(|s| field(s, name));
    let begin = match kind("begin_search").as_str() {
        "index" => Begin::Index(int(arg("begin_search", "index"))),
        "keyword" => Begin::Keyword {
            keyword: match arg("begin_search", "keyword") {
                Some(Frame::Bulk(b) | Frame::Simple(b)) => b.clone(),
                _ => Bytes::new(),
            },
            startfrom: int(arg("begin_search", "startfrom")),
        },
        _ => Begin::Unknown,
    };
    let find = match kind("find_keys").as_str() {
        "range" => Find::Range {
            lastkey: int(arg("find_keys", "lastkey")),
            keystep: int(arg("find_keys", "keystep")),
            limit: int(arg("find_keys", "limit")),
        },
        "keynum" => Find::Keynum {
            keynumidx: int(arg("find_keys", "keynumidx")),
            firstkey: int(arg("find_keys", "firstkey")),
            keystep: int(arg("find_keys", "keystep")),
        },
        _ => Find::Unknown,
    };
    KeySpec { flags, begin, find }
}

/// Key flags are written `RO`, `RW`, `OW`, `RM` upper case, the others lower case.
fn original_case(flag: &str) -> String {
    match flag {
        "ro" | "rw" | "ow" | "rm" => flag.to_ascii_uppercase(),
        other => other.to_string(),
    }
}

/// Redis's `getKeysUsingKeySpecs`: the key positions of `argv` with their specs' flags, or
/// `None` when a spec is invalid for these arguments or incomplete (the caller then falls
/// back to the command's own key finder).
pub fn keys_by_specs<'a>(specs: &'a [KeySpec], argv: &[Bytes], arity: i64) -> Option<Vec<(usize, &'a [String])>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in specs.iter().filter(|s| !s.flags.iter().any(|f| f == "not_key")) {
        let first = match &spec.begin {
            Begin::Index(pos) => *pos,
            Begin::Keyword { keyword, startfrom } => match find_keyword(argv, keyword, *startfrom) {
                Some(first) => first,
                None => continue,
            },
            Begin::Unknown => return None,
        };
        let (first, last, step) = match spec.find {
            Find::Range { lastkey, keystep, limit } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (first, last, keystep)
            }
            Find::Keynum { keynumidx, firstkey, keystep } => {
                if keynumidx >= argc {
                    return None;
                }
                let numkeys = argv.get((first + keynumidx) as usize).and_then(|n| crate::protocol::parse_i64(n))?;
                if numkeys < 0 {
                    return None;
                }
                let first = first + firstkey;
                (first, first + numkeys - 1, keystep)
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            if i < argc || arity >= 0 {
                keys.push((i as usize, spec.flags.as_slice()));
            }
            i += step.max(1);
        }
        if spec.flags.iter().any(|f| f == "incomplete") {
            return None;
        }
    }
    Some(keys)
}

/// A keyword begin-search: the index after the keyword, searching from `startfrom` (from the
/// end backwards when negative).
fn find_keyword(argv: &[Bytes], keyword: &[u8], startfrom: i64) -> Option<i64> {
    let argc = argv.len() as i64;
    let start = if startfrom > 0 { startfrom } else { argc + startfrom };
    let end = if startfrom > 0 { argc - 1 } else { 1 };
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            break;
        }
        if argv[i as usize].eq_ignore_ascii_case(keyword) {
            return Some(i + 1);
        }
        i = if start <= end { i + 1 } else { i - 1 };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn the_captured_table_has_redis_commands_and_subcommands() {
        let get = info("get").expect("get");
        assert_eq!(info_strings(get, 2), vec!["readonly", "fast"]);
        assert!(info("config|get").is_some());
        assert!(docs("geosearch").is_some());
        assert!(subcommands("config").contains(&"config|get".to_string()));
    }

    #[test]
    fn key_specs_find_keys_as_redis() {
        let specs = key_specs(info("zunionstore").expect("zunionstore"));
        let keys = keys_by_specs(&specs, &argv("zunionstore d 2 a b WEIGHTS 1 2"), -4).expect("keys");
        assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(keys[0].1, ["OW", "update"]);
        let specs = key_specs(info("georadius").expect("georadius"));
        let keys = keys_by_specs(&specs, &argv("georadius k 1 2 3 km STORE s"), -6).expect("keys");
        assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 7]);
        let specs = key_specs(info("sort").expect("sort"));
        assert!(keys_by_specs(&specs, &argv("sort k"), -2).is_none(), "an unknown spec falls back");
    }
}
