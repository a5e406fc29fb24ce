//! The latency monitor (LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR) and the
//! per-command latency histograms (LATENCY HISTOGRAM), per node as in Redis: each node
//! records the commands its own clients ran.
//!
//! The monitor keeps, per event (`command`, `fast-command`), the last 160 seconds that had a
//! spike of at least `latency-monitor-threshold` ms (the highest of each second) and the
//! highest ever. The histograms (`latency-tracking`) count every command's duration in the
//! buckets Redis 7.0 reports: Redis records nanoseconds in an HDR histogram (2 significant
//! digits, up to 1 s) and prints it with a logarithmic iterator from 1024 ns, doubling; a
//! value is in the bucket of 2^k ns when it is below 2^k + 2^(k-7) (the HDR sub-bucket that
//! holds 2^k ends there), and values from 2^29 + 2^22 ns on, which that iterator never
//! reaches, count in `calls` only.

use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Redis's `LATENCY_TS_LEN`.
const TS_LEN: usize = 160;
/// The reported buckets: 2^10 .. 2^29 ns.
const FIRST_LEVEL: u32 = 10;
const LEVELS: usize = 20;

#[derive(Clone, Copy, Default)]
pub struct Sample {
    /// Unix seconds; 0: an empty slot.
    pub time: u64,
    pub latency_ms: u64,
}

/// One event's time series (Redis's `latencyTimeSeries`).
pub struct Series {
    /// The next slot to write.
    idx: usize,
    pub max: u64,
    samples: [Sample; TS_LEN],
}

impl Series {
    fn new() -> Series {
        Series { idx: 0, max: 0, samples: [Sample::default(); TS_LEN] }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..TS_LEN).map(move |j| self.samples[(self.idx + j) % TS_LEN]).filter(|s| s.time != 0)
    }

    pub fn latest(&self) -> Sample {
        self.samples[(self.idx + TS_LEN - 1) % TS_LEN]
    }

    /// Redis's `latencyAddSample`: one sample per second, the highest of that second.
    fn add(&mut self, now: u64, latency_ms: u64) {
        self.max = self.max.max(latency_ms);
        let prev = &mut self.samples[(self.idx + TS_LEN - 1) % TS_LEN];
        if prev.time == now {
            prev.latency_ms = prev.latency_ms.max(latency_ms);
            return;
        }
        self.samples[self.idx] = Sample { time: now, latency_ms };
        self.idx = (self.idx + 1) % TS_LEN;
    }
}

/// One command's histogram.
#[derive(Clone, Default)]
pub struct Histogram {
    pub calls: u64,
    levels: [u64; LEVELS],
}

impl Histogram {
    fn record(&mut self, ns: u64) {
        self.calls += 1;
        let ns = ns.clamp(1, 1_000_000_000);
        let k = match ns < 1 << FIRST_LEVEL {
            true => FIRST_LEVEL,
            false => {
                let floor = 63 - ns.leading_zeros();
                floor + u32::from(ns >= (1u64 << floor) + (1u64 << (floor - 7)))
            }
        };
        if let Some(n) = self.levels.get_mut((k - FIRST_LEVEL) as usize) {
            *n += 1;
        }
    }

    fn add(&mut self, other: &Histogram) {
        self.calls += other.calls;
        self.levels.iter_mut().zip(other.levels).for_each(|(n, m)| *n += m);
    }

    /// The value (in µs) at or below which `percentile` % of the recorded calls fall: the
    /// upper bound of the bucket holding it, Redis's HDR sub-bucket end (0 when empty).
    pub fn value_at_percentile(&self, percentile: f64) -> f64 {
        let recorded: u64 = self.levels.iter().sum();
        let wanted = ((percentile / 100.0) * recorded as f64).ceil().max(1.0) as u64;
        let mut cumulative = 0;
        for (i, n) in self.levels.iter().enumerate() {
            cumulative += n;
            if *n > 0 && cumulative >= wanted {
                let k = FIRST_LEVEL + i as u32;
                return ((1u64 << k) + (1u64 << (k - 7)) - 1) as f64 / 1000.0;
            }
        }
        0.0
    }

    /// `(microseconds, cumulative count)` of each bucket where the count grew, as Redis
    /// prints `histogram_usec`.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut cumulative = 0;
        for (i, n) in self.levels.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            cumulative += n;
            let k = FIRST_LEVEL + i as u32;
            out.push((((1u64 << k) + (1u64 << (k - 7)) - 1) / 1000, cumulative));
        }
        out
    }
}

/// One command's statistics (INFO commandstats) and latency histogram (LATENCY HISTOGRAM,
/// counted only while `latency-tracking` is on).
#[derive(Clone, Default)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
    /// Refused before running (arity, authentication, cluster redirection ...).
    pub rejected: u64,
    /// Ran and answered an error.
    pub failed: u64,
    pub histogram: Histogram,
}

impl CommandStat {
    fn add(&mut self, other: &CommandStat) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.histogram.add(&other.histogram);
    }
}

/// What a command that ran gave to its statistics (see [`StatsBatch::record`]).
#[derive(Clone, Copy)]
pub struct Ran {
    pub ns: u64,
    /// It answered an error.
    pub failed: bool,
    /// `latency-tracking` was on: it counts in the histogram too.
    pub tracked: bool,
}

/// Statistics recorded by one connection since its last [`Latency::merge`]: a pipeline's
/// commands are counted here, without the node's lock or a hash of the command's name per
/// command, and merged once before their replies go out (so whoever reads the statistics
/// after a reply sees its command counted).
#[derive(Default)]
pub struct StatsBatch {
    entries: Vec<(Cow<'static, str>, CommandStat)>,
}

impl StatsBatch {
    /// Counts a run of `command`.
    pub fn record(&mut self, command: Cow<'static, str>, ran: Ran) {
        // A pipeline repeats a few commands: names are mostly the same static string.
        let same = |k: &Cow<'static, str>| std::ptr::eq(k.as_ptr(), command.as_ptr()) || **k == *command;
        let stat = match self.entries.iter().position(|(k, _)| same(k)) {
            Some(i) => &mut self.entries[i].1,
            None => {
                self.entries.push((command, CommandStat::default()));
                &mut self.entries.last_mut().expect("just pushed").1
            }
        };
        stat.calls += 1;
        stat.usec += ran.ns / 1000;
        stat.failed += u64::from(ran.failed);
        if ran.tracked {
            stat.histogram.record(ran.ns);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The node's latency monitor, command statistics, histograms and error counts.
pub struct Latency {
    events: Mutex<BTreeMap<String, Series>>,
    /// `latency-monitor-threshold` in ms; 0: off.
    threshold_ms: AtomicU64,
    /// `latency-tracking`.
    tracking: AtomicBool,
    /// Each command's statistics and histogram, by its Redis name.
    commands: Mutex<FxHashMap<Cow<'static, str>, CommandStat>>,
    errors: Mutex<ErrorStats>,
    /// Error replies sent (INFO's `total_error_replies`).
    error_replies: AtomicU64,
}

/// Redis's `errors` table: error replies by their code (the first word), at most
/// [`MAX_ERROR_CODES`] codes; past that Redis stops counting them until CONFIG RESETSTAT.
#[derive(Default)]
struct ErrorStats {
    by_code: BTreeMap<String, u64>,
    disabled: bool,
}

/// Redis's `ERROR_STATS_NUMBER`.
const MAX_ERROR_CODES: usize = 128;

impl Default for Latency {
    fn default() -> Self {
        Latency {
            events: Mutex::default(),
            threshold_ms: AtomicU64::new(0),
            tracking: AtomicBool::new(true),
            commands: Mutex::default(),
            errors: Mutex::default(),
            error_replies: AtomicU64::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Latency {
    pub fn configure(&self, threshold_ms: u64, tracking: bool) {
        self.threshold_ms.store(threshold_ms, Ordering::Relaxed);
        self.tracking.store(tracking, Ordering::Relaxed);
    }

    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    pub fn tracking(&self) -> bool {
        self.tracking.load(Ordering::Relaxed)
    }

    /// Redis's `latencyAddSampleIfNeeded`.
    pub fn add_sample_if_needed(&self, event: &str, latency_ms: u64) {
        let threshold = self.threshold_ms();
        if threshold == 0 || latency_ms < threshold {
            return;
        }
        let now = crate::server::now_ms() / 1000;
        lock(&self.events).entry(event.to_string()).or_insert_with(Series::new).add(now, latency_ms);
    }

    /// Runs `f` over the events (name order).
    pub fn with_events<R>(&self, f: impl FnOnce(&BTreeMap<String, Series>) -> R) -> R {
        f(&lock(&self.events))
    }

    /// LATENCY RESET: forgets `event` (case-insensitive), or every event for `None`; how many.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = lock(&self.events);
        let before = events.len();
        events.retain(|name, _| event.is_some_and(|e| !name.as_bytes().eq_ignore_ascii_case(e)));
        before - events.len()
    }

    /// Adds what `batch` counted to the node's statistics and empties it.
    pub fn merge(&self, batch: &mut StatsBatch) {
        if batch.entries.is_empty() {
            return;
        }
        let mut map = lock(&self.commands);
        for (command, stat) in batch.entries.drain(..) {
            map.entry(command).or_default().add(&stat);
        }
    }

    /// Counts a call of `command` refused before it ran.
    pub fn reject(&self, command: Cow<'static, str>) {
        lock(&self.commands).entry(command).or_default().rejected += 1;
    }

    /// Counts an error reply `message` (without its `-`) sent to a client, by its code.
    pub fn error_reply(&self, message: &[u8]) {
        self.error_replies.fetch_add(1, Ordering::Relaxed);
        let code = message.split(|&c| c == b' ').next().unwrap_or_default();
        let code = String::from_utf8_lossy(code);
        let mut errors = lock(&self.errors);
        if errors.disabled {
            return;
        }
        if let Some(n) = errors.by_code.get_mut(code.as_ref()) {
            *n += 1;
        } else if errors.by_code.len() >= MAX_ERROR_CODES {
            tracing::warn!(
                "errorstats stopped: more than {MAX_ERROR_CODES} error codes (CONFIG RESETSTAT restarts it)"
            );
            *errors = ErrorStats { by_code: BTreeMap::new(), disabled: true };
        } else {
            errors.by_code.insert(code.into_owned(), 1);
        }
    }

    /// Error replies sent so far.
    pub fn error_replies(&self) -> u64 {
        self.error_replies.load(Ordering::Relaxed)
    }

    /// Error replies by code, in code order.
    pub fn error_codes(&self) -> Vec<(String, u64)> {
        lock(&self.errors).by_code.iter().map(|(k, n)| (k.clone(), *n)).collect()
    }

    /// The histograms of the commands `pick` selects, in name order.
    pub fn histograms(&self, mut pick: impl FnMut(&str) -> bool) -> Vec<(String, Histogram)> {
        let map = lock(&self.commands);
        let mut out: Vec<(String, Histogram)> = map
            .iter()
            .filter(|(k, s)| s.histogram.calls > 0 && pick(k))
            .map(|(k, s)| (k.to_string(), s.histogram.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every command's statistics, in name order (those with a call or a refusal).
    pub fn command_stats(&self) -> Vec<(String, CommandStat)> {
        let mut out: Vec<(String, CommandStat)> =
            lock(&self.commands).iter().map(|(k, s)| (k.to_string(), s.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// CONFIG RESETSTAT forgets the commands' statistics and the error counts, as Redis's
    /// `resetCommandTableStats` and `resetErrorTableStats`.
    pub fn reset_stats(&self) {
        lock(&self.commands).clear();
        *lock(&self.errors) = ErrorStats::default();
        self.error_replies.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_those_of_redis_hdr_log_iteration() {
        let mut h = Histogram::default();
        // Redis records microseconds * 1000: 1 µs and 2 µs.
        for ns in [1000, 1000, 2000, 5000, 1_000_000_000, 600_000_000] {
            h.record(ns);
        }
        assert_eq!(h.calls, 6);
        // 1 µs: 1031/1000; 2 µs: 2063/1000 (2000 < 2048+16); 5 µs: 8191+64 -> 8.
        assert_eq!(h.buckets(), [(1, 2), (2, 3), (8, 4)]);
        let mut edge = Histogram::default();
        edge.record(1032);
        edge.record(536_000_000);
        edge.record(541_065_216);
        // 1032 is past 1024's sub-bucket; 2^29 + 2^22 and above are never reported.
        assert_eq!(edge.buckets(), [(2, 1), (541_065, 2)]);
        assert_eq!(edge.calls, 3);
    }

    #[test]
    fn a_series_keeps_the_highest_sample_of_each_second_and_160_seconds() {
        let mut s = Series::new();
        s.add(5, 10);
        s.add(5, 30);
        s.add(5, 20);
        assert_eq!(s.samples().map(|x| (x.time, x.latency_ms)).collect::<Vec<_>>(), [(5, 30)]);
        for t in 6..200 {
            s.add(t, t);
        }
        let all: Vec<u64> = s.samples().map(|x| x.time).collect();
        assert_eq!(all.len(), TS_LEN);
        assert_eq!((all[0], s.latest().time, s.max), (40, 199, 199));
    }

    #[test]
    fn the_monitor_records_at_or_over_its_threshold_only() {
        let l = Latency::default();
        l.add_sample_if_needed("command", 500);
        assert_eq!(l.with_events(|e| e.len()), 0, "threshold 0: off");
        l.configure(10, true);
        l.add_sample_if_needed("command", 9);
        l.add_sample_if_needed("fast-command", 10);
        assert_eq!(l.with_events(|e| e.keys().cloned().collect::<Vec<_>>()), ["fast-command"]);
        assert_eq!(l.reset(Some(b"FAST-COMMAND")), 1);
        assert_eq!(l.reset(None), 0);
    }

    #[test]
    fn a_connection_batch_adds_up_into_the_node_histograms_once_merged() {
        let l = Latency::default();
        let mut batch = StatsBatch::default();
        let ran = |ns| Ran { ns, failed: false, tracked: true };
        batch.record(Cow::Borrowed("get"), ran(1000));
        batch.record(Cow::Borrowed("get"), ran(2000));
        // The same name built at run time (a container's `config|set`) counts as one entry.
        batch.record(Cow::Owned("config|set".to_string()), ran(1000));
        batch.record(Cow::Owned("config|set".to_string()), Ran { failed: true, ..ran(1000) });
        assert!(l.histograms(|_| true).is_empty(), "nothing reaches the node before the merge");
        l.merge(&mut batch);
        assert!(batch.is_empty());
        batch.record(Cow::Borrowed("get"), ran(5000));
        batch.record(Cow::Borrowed("get"), Ran { tracked: false, ..ran(7000) });
        l.merge(&mut batch);
        l.reject(Cow::Borrowed("set"));
        let stats: Vec<(String, u64, u64, u64, u64)> =
            l.command_stats().into_iter().map(|(k, s)| (k, s.calls, s.usec, s.rejected, s.failed)).collect();
        assert_eq!(stats, [("config|set".into(), 2, 2, 0, 1), ("get".into(), 4, 15, 0, 0), ("set".into(), 0, 0, 1, 0)]);
        let counts: Vec<(String, u64)> = l.histograms(|_| true).into_iter().map(|(k, h)| (k, h.calls)).collect();
        assert_eq!(counts, [("config|set".to_string(), 2), ("get".to_string(), 3)]);
        let get = l.histograms(|k| k == "get");
        assert_eq!(get[0].1.buckets(), [(1, 1), (2, 2), (8, 3)], "the untracked call is not in the histogram");
        let at = |p| get[0].1.value_at_percentile(p);
        assert_eq!((at(0.0), at(33.0), at(50.0), at(100.0)), (1.031, 1.031, 2.063, 8.255));
    }

    #[test]
    fn error_replies_count_by_code_up_to_redis_limit() {
        let l = Latency::default();
        l.error_reply(b"ERR wrong number of arguments");
        l.error_reply(b"ERR syntax error");
        l.error_reply(b"WRONGTYPE Operation against a key");
        l.error_reply(b"NOSPACE");
        assert_eq!(l.error_codes(), [("ERR".into(), 2), ("NOSPACE".into(), 1), ("WRONGTYPE".into(), 1)]);
        for i in 0..200 {
            l.error_reply(format!("E{i} x").as_bytes());
        }
        assert!(l.error_codes().is_empty(), "past 128 codes Redis stops counting them");
        assert_eq!(l.error_replies(), 204, "the total goes on");
        l.reset_stats();
        l.error_reply(b"ERR x");
        assert_eq!((l.error_codes(), l.error_replies()), (vec![("ERR".into(), 1)], 1));
    }
}
