//! Redis parameters raftis accepts in `CONFIG SET` / `CONFIG GET` and reports, without
//! acting on them: encoding thresholds (raftis keeps Redis 7.0's defaults, see
//! docs/COMMANDS.md), replication and persistence tuning that the Raft log replaces, SLOWLOG
//! and latency monitor settings. Clients and test harnesses (Redis's own TCL
//! suite sets `list-max-ziplist-size`, `lua-time-limit`, ... before its tests) get Redis's
//! names, aliases, defaults, validation and error texts, so their probes and saved/restored
//! settings work. Values are this node's (like every `CONFIG SET`), not replicated state.
//! One of them acts: `busy-reply-threshold` (`lua-time-limit`), read by the server's `BUSY`
//! check (`server::dispatch`).

use std::collections::BTreeMap;

/// How a value is checked (Redis's config types, with its ranges).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An integer in `[min, max]`.
    Int(i64, i64),
    /// A memory value (`10`, `1kb`, `2mb`, ...) in `[min, max]` bytes.
    Memory(i64, i64),
    /// `yes` or `no`.
    Bool,
    /// One of these words (case-insensitive, stored lower case).
    Enum(&'static [&'static str]),
    /// Space-separated percentiles in `[0, 100]` (`latency-tracking-info-percentiles`).
    Percentiles,
}

/// One reported-only parameter.
pub struct Reported {
    pub name: &'static str,
    /// Redis's other name for it (the pre-7.0 `*-ziplist-*`, `slave-*` ...), if any.
    pub alias: Option<&'static str>,
    pub default: &'static str,
    pub kind: Kind,
}

const LONG: i64 = i64::MAX;
const INT: i64 = i32::MAX as i64;

const fn p(name: &'static str, alias: Option<&'static str>, default: &'static str, kind: Kind) -> Reported {
    Reported { name, alias, default, kind }
}

/// Redis 7.0.15's definitions (name, alias, default, type and range from its `config.c`).
pub static REPORTED: &[Reported] = &[
    p("list-max-listpack-size", Some("list-max-ziplist-size"), "-2", Kind::Int(i32::MIN as i64, INT)),
    p("list-compress-depth", None, "0", Kind::Int(0, INT)),
    p("hash-max-listpack-entries", Some("hash-max-ziplist-entries"), "512", Kind::Int(0, LONG)),
    p("hash-max-listpack-value", Some("hash-max-ziplist-value"), "64", Kind::Memory(0, LONG)),
    p("zset-max-listpack-entries", Some("zset-max-ziplist-entries"), "128", Kind::Int(0, LONG)),
    p("zset-max-listpack-value", Some("zset-max-ziplist-value"), "64", Kind::Memory(0, LONG)),
    p("set-max-intset-entries", None, "512", Kind::Int(0, LONG)),
    p("stream-node-max-bytes", None, "4096", Kind::Memory(0, LONG)),
    p("stream-node-max-entries", None, "100", Kind::Int(0, LONG)),
    p("hll-sparse-max-bytes", None, "3000", Kind::Memory(0, LONG)),
    p("slowlog-log-slower-than", None, "10000", Kind::Int(-1, LONG)),
    p("slowlog-max-len", None, "128", Kind::Int(0, LONG)),
    p("latency-monitor-threshold", None, "0", Kind::Int(0, LONG)),
    p("latency-tracking", None, "yes", Kind::Bool),
    p("latency-tracking-info-percentiles", None, "50 99 99.9", Kind::Percentiles),
    p("busy-reply-threshold", Some("lua-time-limit"), "5000", Kind::Int(0, LONG)),
    p("min-replicas-to-write", Some("min-slaves-to-write"), "0", Kind::Int(0, INT)),
    p("min-replicas-max-lag", Some("min-slaves-max-lag"), "10", Kind::Int(0, INT)),
    p("replica-serve-stale-data", Some("slave-serve-stale-data"), "yes", Kind::Bool),
    p("replica-read-only", Some("slave-read-only"), "yes", Kind::Bool),
    p("replica-lazy-flush", Some("slave-lazy-flush"), "no", Kind::Bool),
    p("aof-use-rdb-preamble", None, "yes", Kind::Bool),
    p("stop-writes-on-bgsave-error", None, "yes", Kind::Bool),
    p("rdbcompression", None, "yes", Kind::Bool),
    p("rdbchecksum", None, "yes", Kind::Bool),
    p("activerehashing", None, "yes", Kind::Bool),
    p("active-expire-effort", None, "1", Kind::Int(1, 10)),
    p("lazyfree-lazy-eviction", None, "no", Kind::Bool),
    p("lazyfree-lazy-expire", None, "no", Kind::Bool),
    p("lazyfree-lazy-server-del", None, "no", Kind::Bool),
    p("lazyfree-lazy-user-del", None, "no", Kind::Bool),
    p("lazyfree-lazy-user-flush", None, "no", Kind::Bool),
    p("lfu-log-factor", None, "10", Kind::Int(0, INT)),
    p("lfu-decay-time", None, "1", Kind::Int(0, INT)),
    p("tcp-keepalive", None, "300", Kind::Int(0, INT)),
    p("acllog-max-len", None, "128", Kind::Int(0, LONG)),
    p("tracking-table-max-keys", None, "1000000", Kind::Int(0, LONG)),
    p("repl-diskless-sync", None, "yes", Kind::Bool),
    p("repl-backlog-size", None, "1048576", Kind::Memory(1, LONG)),
    p("propagation-error-behavior", None, "ignore", Kind::Enum(&["ignore", "panic", "panic-on-replicas"])),
];

/// The parameter named `name` (its name or alias, case-insensitive).
pub fn find(name: &[u8]) -> Option<&'static Reported> {
    REPORTED.iter().find(|r| {
        name.eq_ignore_ascii_case(r.name.as_bytes()) || r.alias.is_some_and(|a| name.eq_ignore_ascii_case(a.as_bytes()))
    })
}

/// Values set so far, by canonical name; a parameter not in it has its default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportedValues(BTreeMap<&'static str, String>);

impl ReportedValues {
    pub fn get(&self, r: &Reported) -> String {
        self.0.get(r.name).cloned().unwrap_or_else(|| r.default.to_string())
    }

    /// Checks `value` as Redis would and stores it in the form `CONFIG GET` shows.
    pub fn set(&mut self, r: &'static Reported, value: &str) -> Result<(), String> {
        let shown = check(r.kind, value)?;
        self.0.insert(r.name, shown);
        Ok(())
    }
}

/// The stored form of a valid `value`, or Redis's reason to refuse it.
fn check(kind: Kind, value: &str) -> Result<String, String> {
    let in_range = |n: i64, min: i64, max: i64| {
        if n < min || n > max {
            Err(format!("argument must be between {min} and {max} inclusive"))
        } else {
            Ok(n.to_string())
        }
    };
    match kind {
        Kind::Int(min, max) => {
            let n = value.parse::<i64>().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            in_range(n, min, max)
        }
        Kind::Memory(min, max) => {
            let n = memory(value).ok_or_else(|| "argument must be a memory value".to_string())?;
            in_range(n, min, max)
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            v @ ("yes" | "no") => Ok(v.to_string()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(words) => {
            let lower = value.to_ascii_lowercase();
            if words.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!("argument(s) must be one of the following: {}", words.join(", ")))
            }
        }
        Kind::Percentiles => percentiles(value),
    }
}

/// Redis's setter of `latency-tracking-info-percentiles`: the value split at each space
/// (so two spaces make an empty, invalid, item), each a `string2d` double in `[0, 100]`,
/// shown as `%f` with trailing zeros trimmed. An empty value is the empty list.
fn percentiles(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let mut shown = Vec::new();
    for item in value.split(' ') {
        let p = crate::cnum::string2d(item.as_bytes())
            .ok_or_else(|| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
        if !(0.0..=100.0).contains(&p) {
            return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
        }
        let fixed = format!("{p:.6}");
        shown.push(fixed.trim_end_matches('0').trim_end_matches('.').to_string());
    }
    Ok(shown.join(" "))
}

/// Redis's `memtoull` for a signed config: an optional `-`, digits, an optional unit.
fn memory(v: &str) -> Option<i64> {
    let lower = v.to_ascii_lowercase();
    let (neg, rest) = match lower.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, lower.as_str()),
    };
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (num, unit) = rest.split_at(digits_end);
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n = num.parse::<i64>().ok()?.checked_mul(mul)?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_redis() {
        let ok = |v: &str| percentiles(v).unwrap();
        assert_eq!(ok("50 99 99.9"), "50 99 99.9");
        assert_eq!(ok(""), "");
        assert_eq!(ok("1e2 0x10 .5 +50 -0"), "100 16 0.5 50 -0");
        assert_eq!(ok("99.123456789 1e-7 33.3333335"), "99.123457 0 33.333334");
        for bad in ["abc", "nan", "1e400", "1e-400", " 50", "1  2", "50 abc"] {
            assert_eq!(percentiles(bad), Err("Invalid latency-tracking-info-percentiles parameters".into()), "{bad}");
        }
        for out in ["100.1", "-1", "inf"] {
            assert!(percentiles(out).unwrap_err().contains("should sit between"), "{out}");
        }
    }

    #[test]
    fn aliases_find_the_same_parameter() {
        let a = find(b"LIST-MAX-ZIPLIST-SIZE").map(|r| r.name);
        assert_eq!(a, Some("list-max-listpack-size"));
        assert_eq!(find(b"lua-time-limit").map(|r| r.name), Some("busy-reply-threshold"));
        assert!(find(b"no-such-thing").is_none());
    }

    #[test]
    fn values_are_checked_as_redis_does() {
        let mut v = ReportedValues::default();
        let r = find(b"hash-max-ziplist-value").expect("known");
        assert_eq!(v.get(r), "64");
        assert!(v.set(r, "1kb").is_ok());
        assert_eq!(v.get(r), "1024");
        assert_eq!(v.set(r, "-1"), Err("argument must be between 0 and 9223372036854775807 inclusive".into()));
        assert_eq!(v.set(r, "x"), Err("argument must be a memory value".into()));
        let b = find(b"slave-read-only").expect("known");
        assert_eq!(v.set(b, "maybe"), Err("argument must be 'yes' or 'no'".into()));
        assert!(v.set(b, "NO").is_ok());
        assert_eq!(v.get(b), "no");
        let i = find(b"list-max-ziplist-size").expect("known");
        assert_eq!(v.set(i, "abc"), Err("argument couldn't be parsed into an integer".into()));
        assert!(v.set(i, "-5").is_ok());
        assert_eq!(v.get(i), "-5");
    }
}
