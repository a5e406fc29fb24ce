//! LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR / HISTOGRAM / HELP over this node's
//! latency monitor and histograms (`crate::server::latency`), with Redis 7.0.15's replies:
//! DOCTOR's report and GRAPH's sparkline are Redis's texts for the events raftis records.

use super::slowlog::syntax_error_of;
use super::{help_reply, sub_arity, Session};
use crate::cmd::args;
use crate::protocol::Frame;
use crate::server::latency::{Histogram, Latency, Series};
use crate::server::now_ms;
use bytes::Bytes;

const HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

/// LATENCY <subcommand> ...
pub fn latency(s: &mut Session, argv: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "doctor" | "latest" | "help" => 2,
        "graph" | "history" => 3,
        "reset" | "histogram" => -2,
        _ => return args::unknown_subcommand(&argv[1], "latency"),
    };
    if let Err(e) = sub_arity("latency", argv, arity) {
        return e;
    }
    let l = &s.shared.latency;
    match sub.as_str() {
        "help" => help_reply("LATENCY", HELP),
        "latest" => l.with_events(|events| Frame::Array(events.iter().map(|(name, ts)| latest(name, ts)).collect())),
        "history" => l.with_events(|events| match find(events, &argv[2]) {
            Some((_, ts)) => Frame::Array(ts.samples().map(|x| int_pair(x.time, x.latency_ms)).collect()),
            None => Frame::Array(vec![]),
        }),
        "graph" => l.with_events(|events| match find(events, &argv[2]) {
            Some((name, ts)) => Frame::Verbatim(*b"txt", Bytes::from(graph(name, ts, now_ms() / 1000))),
            None => Frame::error(format!("ERR No samples available for event '{}'", String::from_utf8_lossy(&argv[2]))),
        }),
        "reset" if argv.len() == 2 => Frame::Integer(l.reset(None) as i64),
        "reset" => Frame::Integer(argv[2..].iter().map(|e| l.reset(Some(e))).sum::<usize>() as i64),
        "doctor" => {
            let slowlog_us = s.shared.config().reported.get(slowlog_param());
            let report = doctor(l, slowlog_us.parse().unwrap_or(10_000), now_ms() / 1000);
            Frame::Verbatim(*b"txt", Bytes::from(report))
        }
        "histogram" => histogram(l, &argv[2..]),
        _ => syntax_error_of("LATENCY", &argv[1]),
    }
}

fn slowlog_param() -> &'static crate::config::reported::Reported {
    crate::config::reported::find(b"slowlog-log-slower-than").expect("a reported parameter")
}

/// The event named `name`: Redis looks events up by their exact (case-sensitive) name.
fn find<'a>(events: &'a std::collections::BTreeMap<String, Series>, name: &[u8]) -> Option<(&'a str, &'a Series)> {
    events.iter().find(|(k, _)| k.as_bytes() == name).map(|(k, v)| (k.as_str(), v))
}

fn int_pair(a: u64, b: u64) -> Frame {
    Frame::Array(vec![Frame::Integer(a as i64), Frame::Integer(b as i64)])
}

fn latest(name: &str, ts: &Series) -> Frame {
    let last = ts.latest();
    Frame::Array(vec![
        Frame::bulk(name.to_string()),
        Frame::Integer(last.time as i64),
        Frame::Integer(last.latency_ms as i64),
        Frame::Integer(ts.max as i64),
    ])
}

/// LATENCY HISTOGRAM [command ...]: every command with data, or the named ones (a container
/// names all its subcommands with data; unknown names are skipped; each name is answered
/// as often as it is given, as in Redis).
fn histogram(l: &Latency, names: &[Bytes]) -> Frame {
    let picked = if names.is_empty() {
        l.histograms(|_| true)
    } else {
        let mut out = Vec::new();
        for name in names {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            let prefix = format!("{name}|");
            out.extend(l.histograms(|k| k == name || (!name.contains('|') && k.starts_with(&prefix))));
        }
        out
    };
    Frame::Map(picked.into_iter().map(|(name, h)| (Frame::bulk(name), histogram_entry(&h))).collect())
}

fn histogram_entry(h: &Histogram) -> Frame {
    let buckets = h.buckets().into_iter().map(|(us, n)| (Frame::Integer(us as i64), Frame::Integer(n as i64)));
    Frame::Map(vec![
        (Frame::bulk("calls"), Frame::Integer(h.calls as i64)),
        (Frame::bulk("histogram_usec"), Frame::Map(buckets.collect())),
    ])
}

/// Redis's `latencyCommandGenSparkeline`: a title line, 80 dashes, and the sparkline of the
/// samples (4 rows) with how long ago each was as its label.
fn graph(event: &str, ts: &Series, now: u64) -> String {
    let samples: Vec<_> = ts.samples().collect();
    let min = samples.iter().map(|s| s.latency_ms).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.latency_ms).max().unwrap_or(0);
    let mut out = format!("{event} - high {max} ms, low {min} ms (all time high {} ms)\n", ts.max);
    out.push_str(&"-".repeat(80));
    out.push('\n');
    let seq: Vec<(f64, String)> = samples
        .iter()
        .map(|s| {
            let elapsed = now.saturating_sub(s.time);
            let label = match elapsed {
                e if e < 60 => format!("{e}s"),
                e if e < 3600 => format!("{}m", e / 60),
                e if e < 86400 => format!("{}h", e / 3600),
                e => format!("{}d", e / 86400),
            };
            (s.latency_ms as f64, label)
        })
        .collect();
    out.push_str(&super::sparkline::render(&seq, 80, 4));
    out
}

/// Redis's `createLatencyReport` for the events raftis records (`command`, `fast-command`).
fn doctor(l: &Latency, slowlog_us: i64, now: u64) -> String {
    let threshold = l.threshold_ms();
    let stats: Vec<(String, Stats, u64)> =
        l.with_events(|events| events.iter().map(|(name, ts)| (name.clone(), Stats::of(ts, now), ts.max)).collect());
    if stats.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    let mut report = String::new();
    let mut advice = Advice::default();
    for (i, (event, ls, max)) in stats.iter().enumerate() {
        if i == 0 {
            report.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        report.push_str(&format!(
            "{}. {event}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {max}ms.\n",
            i + 1,
            ls.samples,
            ls.avg,
            ls.mad,
            ls.period as f64 / ls.samples as f64,
        ));
        advice.note(event, slowlog_us, threshold);
    }
    advice.thp = anon_huge_pages() > 0;
    advice.count += usize::from(advice.thp);
    report.push_str(&advice.text(stats.len(), threshold));
    report
}

/// Redis's `latencyStats` of one event.
struct Stats {
    samples: u64,
    avg: u64,
    mad: u64,
    period: u64,
}

impl Stats {
    fn of(ts: &Series, now: u64) -> Stats {
        let samples: Vec<_> = ts.samples().collect();
        let n = samples.len() as u64;
        let sum: u64 = samples.iter().map(|s| s.latency_ms).sum();
        let avg = sum.checked_div(n).unwrap_or(0);
        let oldest = samples.iter().map(|s| s.time).min().unwrap_or(0);
        let period = if n > 0 { now.saturating_sub(oldest).max(1) } else { 0 };
        let mad_sum: u64 = samples.iter().map(|s| (avg as i64 - s.latency_ms as i64).unsigned_abs()).sum();
        Stats { samples: n, avg, mad: mad_sum.checked_div(n).unwrap_or(0), period }
    }
}

/// The advice DOCTOR gives for `command` and `fast-command` spikes and huge pages.
#[derive(Default)]
struct Advice {
    count: usize,
    slowlog_enabled: bool,
    slowlog_tuning: bool,
    slowlog_inspect: bool,
    scheduler: bool,
    large_objects: bool,
    thp: bool,
}

impl Advice {
    fn note(&mut self, event: &str, slowlog_us: i64, threshold: u64) {
        if event.eq_ignore_ascii_case("command") {
            if slowlog_us < 0 {
                self.slowlog_enabled = true;
                self.count += 1;
            } else if (slowlog_us / 1000) as u64 > threshold {
                self.slowlog_tuning = true;
                self.count += 1;
            }
            self.slowlog_inspect = true;
            self.large_objects = true;
            self.count += 2;
        }
        if event.eq_ignore_ascii_case("fast-command") {
            self.scheduler = true;
            self.count += 1;
        }
    }

    fn text(&self, events: usize, threshold: u64) -> String {
        if events == 0 && self.count == 0 {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
        }
        if self.count == 0 {
            return "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n".into();
        }
        let mut out = String::from("\nI have a few advices for you:\n\n");
        if self.slowlog_enabled {
            out.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", threshold * 1000));
        }
        if self.slowlog_tuning {
            out.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", threshold * 1000));
        }
        if self.slowlog_inspect {
            out.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if self.scheduler {
            out.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if self.large_objects {
            out.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        if self.thp {
            out.push_str("- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Redis is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Redis process to get rid of the huge pages already created.\n");
        }
        out
    }
}

/// The process's anonymous huge pages in kB (Redis's `THPGetAnonHugePagesSize`, Linux only).
fn anon_huge_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps_rollup") else { return 0 };
    smaps
        .lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .sum()
}
