//! MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP with Redis 7.0's replies. The
//! figures are the allocator's (see `crate::server::memory`); a key's usage is raftis's
//! estimate of what the key costs here (`Value::footprint`), computed over every element
//! (SAMPLES is checked as Redis does and otherwise changes nothing).

use super::{help_reply, sub_arity, Session};
use crate::cmd::args::{err, is, unknown_subcommand};
use crate::cmd::ReadCtx;
use crate::protocol::{parse_i64, Frame};
use crate::server::memory::{figures, MemoryFigures};
use crate::server::now_ms;
use crate::store::Value;
use bytes::Bytes;

const HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// The exact arity of each subcommand (negative: at least), as Redis 7.0's table.
fn arity(sub: &[u8]) -> Option<i32> {
    let table: [(&str, i32); 6] =
        [("usage", -3), ("stats", 2), ("doctor", 2), ("malloc-stats", 2), ("purge", 2), ("help", 2)];
    table.into_iter().find(|(n, _)| is(sub, n)).map(|(_, a)| a)
}

/// Checks the subcommand and its arity; `Err` is the reply.
pub fn check(argv: &[Bytes]) -> Result<(), Frame> {
    let Some(n) = arity(&argv[1]) else { return Err(unknown_subcommand(&argv[1], "memory")) };
    sub_arity("memory", argv, n)
}

/// Checks USAGE's options as Redis does (SAMPLES takes a count of at least 0).
fn usage_options(argv: &[Bytes]) -> Result<(), Frame> {
    check(argv)?;
    let mut rest = argv[3..].iter();
    while let Some(opt) = rest.next() {
        match rest.next() {
            Some(n) if is(opt, "samples") => match parse_i64(n) {
                None => return Err(err("ERR value is not an integer or out of range")),
                Some(n) if n < 0 => return Err(err("ERR syntax error")),
                Some(_) => {}
            },
            _ => return Err(err("ERR syntax error")),
        }
    }
    Ok(())
}

fn usage_reply(key: &[u8], value: Option<&Value>) -> Frame {
    value.map_or(Frame::Null, |v| Frame::Integer(v.footprint(key) as i64))
}

/// MEMORY USAGE key [SAMPLES count]: a keyspace read (run behind the read barrier).
pub fn usage(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match usage_options(argv) {
        Ok(()) => usage_reply(&argv[2], ctx.value(&argv[2])),
        Err(e) => e,
    }
}

/// The MEMORY subcommands; USAGE comes here only inside EXEC, where it reads this node's
/// copy (elsewhere it runs as a read, see [`usage`]).
pub fn memory(s: &mut Session, argv: &[Bytes]) -> Frame {
    if let Err(e) = check(argv) {
        return e;
    }
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    match sub.as_str() {
        "help" => help_reply("MEMORY", HELP),
        "stats" => stats(&figures(s.shared)),
        "doctor" => Frame::Verbatim(*b"txt", Bytes::from(doctor(&figures(s.shared)))),
        "malloc-stats" => {
            let report = crate::rt::memory::allocator_report()
                .unwrap_or_else(|| "Stats not supported for the current allocator".into());
            Frame::Verbatim(*b"txt", Bytes::from(report))
        }
        // jemalloc returns freed pages to the system on its own (decay); nothing to force.
        "purge" => Frame::ok(),
        _ => match usage_options(argv) {
            Err(e) => e,
            Ok(()) => {
                let (db, now, key) = (s.client.db, now_ms(), &argv[2]);
                s.shared.engine.with_keyspace(|ks| {
                    usage_reply(key, ks.dbs().get(db).and_then(|d| d.get(key, now)).map(|e| &e.value))
                })
            }
        },
    }
}

/// Redis's float ratios (`float` in C, shown through a double).
fn ratio(a: u64, b: u64) -> Frame {
    Frame::Double((a as f32 / b.max(1) as f32) as f64)
}

fn pair(name: &'static str, value: Frame) -> (Frame, Frame) {
    (Frame::bulk(name), value)
}

fn int(n: u64) -> Frame {
    Frame::Integer(n.min(i64::MAX as u64) as i64)
}

/// MEMORY STATS: Redis's fields in its order (buffers raftis does not have report 0).
fn stats(m: &MemoryFigures) -> Frame {
    let a = m.allocator.unwrap_or_default();
    let net = m.used.saturating_sub(m.startup);
    let fields = vec![
        pair("peak.allocated", int(m.peak)),
        pair("total.allocated", int(m.used)),
        pair("startup.allocated", int(m.startup)),
        pair("replication.backlog", int(0)),
        pair("clients.slaves", int(0)),
        pair("clients.normal", int(0)),
        pair("cluster.links", int(0)),
        pair("aof.buffer", int(0)),
        pair("lua.caches", int(0)),
        pair("functions.caches", int(0)),
        pair("overhead.total", int(m.startup)),
        pair("keys.count", int(m.keys)),
        pair("keys.bytes-per-key", int(net / m.keys.max(1))),
        pair("dataset.bytes", int(m.dataset())),
        pair("dataset.percentage", Frame::Double((m.dataset() as f32 * 100.0 / net.max(1) as f32) as f64)),
        pair("peak.percentage", Frame::Double((m.used as f32 * 100.0 / m.peak.max(1) as f32) as f64)),
        pair("allocator.allocated", int(a.allocated)),
        pair("allocator.active", int(a.active)),
        pair("allocator.resident", int(a.resident)),
        pair("allocator-fragmentation.ratio", ratio(a.active, a.allocated)),
        pair("allocator-fragmentation.bytes", int(a.active.saturating_sub(a.allocated))),
        pair("allocator-rss.ratio", ratio(a.resident, a.active)),
        pair("allocator-rss.bytes", int(a.resident.saturating_sub(a.active))),
        pair("rss-overhead.ratio", ratio(m.rss, a.resident)),
        pair("rss-overhead.bytes", int(m.rss.saturating_sub(a.resident))),
        pair("fragmentation", ratio(m.rss, m.used)),
        pair("fragmentation.bytes", int(m.rss.saturating_sub(m.used))),
    ];
    Frame::Map(fields)
}

const EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
const HEALTHY: &str =
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";
const BIG_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n";
const HIGH_ALLOC_FRAG: &str = " * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n";
const HIGH_ALLOC_RSS: &str = " * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n";
const HIGH_PROC_RSS: &str = " * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n";

/// The total-fragmentation finding, which names the allocator.
fn high_frag(allocator: &str) -> String {
    format!(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"{allocator}\".\n\n")
}

/// Over `ratio` and more than 10 MiB apart: Redis's test for each overhead.
fn over(num: u64, den: u64, ratio: f32) -> bool {
    den > 0 && num as f32 / den as f32 > ratio && num.saturating_sub(den) > 10 << 20
}

/// MEMORY DOCTOR: Redis's report, from Redis's thresholds applied to these figures.
fn doctor(m: &MemoryFigures) -> String {
    if m.used < 5 << 20 {
        return EMPTY.into();
    }
    let mut findings = Vec::new();
    if m.peak as f32 / m.used as f32 > 1.5 {
        findings.push(BIG_PEAK.to_string());
    }
    if over(m.rss, m.used, 1.4) {
        findings.push(high_frag(&crate::rt::memory::allocator_name()));
    }
    if let Some(a) = m.allocator {
        if over(a.active, a.allocated, 1.1) {
            findings.push(HIGH_ALLOC_FRAG.into());
        }
        if over(a.resident, a.active, 1.1) {
            findings.push(HIGH_ALLOC_RSS.into());
        }
        if over(m.rss, a.resident, 1.1) {
            findings.push(HIGH_PROC_RSS.into());
        }
    }
    if findings.is_empty() {
        return HEALTHY.into();
    }
    let mut s = String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    findings.iter().for_each(|f| s.push_str(f));
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(used: u64, peak: u64, rss: u64) -> MemoryFigures {
        MemoryFigures { used, rss, peak, startup: 1 << 20, allocator: None, keys: 10, not_counted: 0 }
    }

    #[test]
    fn the_doctor_applies_redis_thresholds() {
        assert_eq!(doctor(&figures(1 << 20, 1 << 20, 1 << 20)), EMPTY);
        assert_eq!(doctor(&figures(100 << 20, 120 << 20, 110 << 20)), HEALTHY);
        let peaked = doctor(&figures(100 << 20, 200 << 20, 110 << 20));
        assert!(peaked.starts_with("Sam, I detected") && peaked.contains("Peak memory"), "{peaked}");
        assert!(peaked.ends_with("I want to help you.\n"));
        let fragmented = doctor(&figures(100 << 20, 100 << 20, 200 << 20));
        assert!(fragmented.contains("High total RSS") && !fragmented.contains("Peak memory"), "{fragmented}");
    }

    #[test]
    fn stats_fields_are_redis_names_in_redis_order() {
        let Frame::Map(fields) = stats(&figures(3 << 20, 4 << 20, 5 << 20)) else { panic!("a map") };
        let names: Vec<String> = fields.iter().map(|(k, _)| format!("{k:?}")).collect();
        assert_eq!(fields.len(), 27);
        assert!(names[0].contains("peak.allocated") && names[26].contains("fragmentation.bytes"), "{names:?}");
        assert_eq!(fields[11].1, Frame::Integer(10), "keys.count");
        assert_eq!(fields[12].1, Frame::Integer((2 << 20) / 10), "keys.bytes-per-key");
    }
}
