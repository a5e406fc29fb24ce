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

/// Histograms recorded by one connection since its last [`Latency::merge`]: a pipeline's
/// commands are counted here, without the node's lock or a hash of the command's name per
/// command, and merged once before their replies go out (so whoever reads the histograms after
/// a reply sees its command counted).
#[derive(Default)]
pub struct HistogramBatch {
    entries: Vec<(Cow<'static, str>, Histogram)>,
}

impl HistogramBatch {
    /// Counts a run of `command` that took `ns`.
    pub fn record(&mut self, command: Cow<'static, str>, ns: u64) {
        // A pipeline repeats a few commands: names are mostly the same static string.
        let same = |k: &Cow<'static, str>| std::ptr::eq(k.as_ptr(), command.as_ptr()) || **k == *command;
        match self.entries.iter_mut().find(|(k, _)| same(k)) {
            Some((_, h)) => h.record(ns),
            None => {
                let mut h = Histogram::default();
                h.record(ns);
                self.entries.push((command, h));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The node's latency monitor and histograms.
pub struct Latency {
    events: Mutex<BTreeMap<String, Series>>,
    /// `latency-monitor-threshold` in ms; 0: off.
    threshold_ms: AtomicU64,
    /// `latency-tracking`.
    tracking: AtomicBool,
    histograms: Mutex<FxHashMap<Cow<'static, str>, Histogram>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            events: Mutex::default(),
            threshold_ms: AtomicU64::new(0),
            tracking: AtomicBool::new(true),
            histograms: Mutex::default(),
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

    /// Adds what `batch` counted to the node's histograms and empties it.
    pub fn merge(&self, batch: &mut HistogramBatch) {
        if batch.entries.is_empty() {
            return;
        }
        let mut map = lock(&self.histograms);
        for (command, h) in batch.entries.drain(..) {
            map.entry(command).or_default().add(&h);
        }
    }

    /// The histograms of the commands `pick` selects, in name order.
    pub fn histograms(&self, mut pick: impl FnMut(&str) -> bool) -> Vec<(String, Histogram)> {
        let map = lock(&self.histograms);
        let mut out: Vec<(String, Histogram)> =
            map.iter().filter(|(k, _)| pick(k)).map(|(k, h)| (k.to_string(), h.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// CONFIG RESETSTAT forgets the histograms, as Redis's `resetCommandTableStats`.
    pub fn reset_histograms(&self) {
        lock(&self.histograms).clear();
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
        let mut batch = HistogramBatch::default();
        batch.record(Cow::Borrowed("get"), 1000);
        batch.record(Cow::Borrowed("get"), 2000);
        // The same name built at run time (a container's `config|set`) counts as one entry.
        batch.record(Cow::Owned("config|set".to_string()), 1000);
        batch.record(Cow::Owned("config|set".to_string()), 1000);
        assert!(l.histograms(|_| true).is_empty(), "nothing reaches the node before the merge");
        l.merge(&mut batch);
        assert!(batch.is_empty());
        batch.record(Cow::Borrowed("get"), 5000);
        l.merge(&mut batch);
        let counts: Vec<(String, u64)> = l.histograms(|_| true).into_iter().map(|(k, h)| (k, h.calls)).collect();
        assert_eq!(counts, [("config|set".to_string(), 2), ("get".to_string(), 3)]);
        let get = l.histograms(|k| k == "get");
        assert_eq!(get[0].1.buckets(), [(1, 1), (2, 2), (8, 3)]);
    }
}
