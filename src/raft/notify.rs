//! Delivery of keyspace notifications (`notify-keyspace-events`) to this node's subscribers.
//!
//! Events are recorded by the apply of each log entry (`store::notify`) and handed here right
//! after it, still under the state machine's lock, to the node's own Pub/Sub registry only:
//! never to the broadcast of PUBLISH. Every node applies every entry exactly once and in log
//! order, so a subscriber on any node gets each event once, in apply order, as a subscriber on
//! a Redis replica does. Two exceptions keep that "once": entries a restarted node re-applies
//! from its own log (up to the last index it held at start) emit nothing, since its
//! subscribers connected after they were first applied; and a snapshot install emits nothing
//! (the entries it skips are not replayed, as Redis emits nothing when loading an RDB).

use super::broadcast::PublishSink;
use super::rpc::PubMessage;
use crate::store::notify::KeyEvent;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// Where the commands scripts run go: this node's MONITOR clients (`[db lua]` lines).
pub trait MonitorSink: Send + Sync + 'static {
    /// Shows `calls` (database, command), in order.
    fn script_calls(&self, calls: Vec<(u32, Vec<Bytes>)>);
}

/// Where the keys touched by applied entries go: this node's client-side caching table
/// (`crate::server::tracking`), which sends the invalidations.
pub trait TrackingSink: Send + Sync + 'static {
    /// Whether any client of the node tracks keys (else nothing is recorded).
    fn active(&self) -> bool;
    /// The keys one applied entry touched, per write batch (tagged with the batch's seed,
    /// which tells the node's own writes apart for NOLOOP; 0 for internal entries), and
    /// whether it flushed a database (or a snapshot replaced the whole keyspace): every
    /// cached key is then invalid.
    fn touched(&self, batches: Vec<(u64, Vec<Bytes>)>, flushed: bool);
}

/// The node's flags and where events go.
pub struct Notifier {
    /// `notify-keyspace-events` (0: off).
    flags: AtomicU32,
    sink: OnceLock<Arc<dyn PublishSink>>,
    /// Whether the node has MONITOR clients, and where their script lines go.
    monitoring: AtomicBool,
    monitor_sink: OnceLock<Arc<dyn MonitorSink>>,
    /// Entries up to this index were in the log when the node started: replays, no events.
    replayed_until: u64,
    /// This node's tracking table (client-side caching).
    tracking: OnceLock<Arc<dyn TrackingSink>>,
}

impl Notifier {
    /// A notifier that stays silent for the entries up to `replayed_until`.
    pub fn new(replayed_until: u64) -> Notifier {
        Notifier {
            flags: AtomicU32::new(0),
            sink: OnceLock::new(),
            monitoring: AtomicBool::new(false),
            monitor_sink: OnceLock::new(),
            replayed_until,
            tracking: OnceLock::new(),
        }
    }

    /// Installs this node's tracking table (once).
    pub fn set_tracking_sink(&self, sink: Arc<dyn TrackingSink>) {
        let _ = self.tracking.set(sink);
    }

    /// Whether applies record the keys they touch: while any client of this node tracks keys.
    /// Read under the state machine's lock, before the entry: a client that turned tracking
    /// on before its read of a key is in the table before any later apply looks.
    pub fn tracking(&self) -> bool {
        self.tracking.get().is_some_and(|t| t.active())
    }

    /// Hands the keys an applied entry touched (and whether it flushed) to the tracking table.
    /// Replayed entries are not skipped: an extra invalidation is harmless, a missing one is
    /// a stale cache.
    pub fn deliver_touched(&self, batches: Vec<(u64, Vec<Bytes>)>, flushed: bool) {
        if let Some(t) = self.tracking.get() {
            t.touched(batches, flushed);
        }
    }

    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// Installs this node's Pub/Sub registry (once).
    pub fn set_sink(&self, sink: Arc<dyn PublishSink>) {
        let _ = self.sink.set(sink);
    }

    /// The flags the apply of the entry at `index` records events under: 0 (nothing recorded)
    /// for a replayed entry or before the registry is installed.
    pub fn flags_for(&self, index: u64) -> u32 {
        if index <= self.replayed_until || self.sink.get().is_none() {
            return 0;
        }
        self.flags.load(Ordering::Relaxed)
    }

    /// Installs where script commands are shown (once).
    pub fn set_monitor_sink(&self, sink: Arc<dyn MonitorSink>) {
        let _ = self.monitor_sink.set(sink);
    }

    pub fn set_monitoring(&self, on: bool) {
        self.monitoring.store(on, Ordering::Relaxed);
    }

    /// Whether the apply of the entry at `index` records the commands its scripts run: not
    /// for a replay, and only while the node has monitors.
    pub fn monitoring_for(&self, index: u64) -> bool {
        index > self.replayed_until && self.monitor_sink.get().is_some() && self.monitoring.load(Ordering::Relaxed)
    }

    /// Shows `calls` to this node's monitors.
    pub fn deliver_script_calls(&self, calls: Vec<(u32, Vec<Bytes>)>) {
        if let Some(sink) = self.monitor_sink.get() {
            sink.script_calls(calls);
        }
    }

    /// Publishes `events`, recorded under `flags`, to this node's subscribers, in order.
    pub fn deliver(&self, events: Vec<KeyEvent>, flags: u32) {
        let Some(sink) = self.sink.get() else { return };
        let msgs = events
            .iter()
            .flat_map(|e| e.messages(flags))
            .map(|(channel, payload)| PubMessage { shard: false, channel, payload })
            .collect();
        sink.deliver(msgs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<PubMessage>>);

    impl PublishSink for Collect {
        fn deliver(&self, msgs: Vec<PubMessage>) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).extend(msgs);
        }
    }

    #[test]
    fn replayed_entries_and_a_missing_registry_record_nothing() {
        let n = Notifier::new(10);
        n.set_flags(crate::store::notify::parse_flags("KEA").unwrap_or(0));
        assert_eq!(n.flags_for(11), 0, "no registry yet");
        let sink = Arc::new(Collect::default());
        n.set_sink(sink.clone());
        assert_eq!(n.flags_for(10), 0, "held in the log at start: a replay");
        let flags = n.flags_for(11);
        assert_ne!(flags, 0);
        let event = KeyEvent { db: 2, event: "del", key: Bytes::from("k") };
        n.deliver(vec![event], flags);
        let got = sink.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let channels: Vec<Bytes> = got.iter().map(|m| m.channel.clone()).collect();
        assert_eq!(channels, vec![Bytes::from("__keyspace@2__:k"), Bytes::from("__keyevent@2__:del")]);
        assert!(got.iter().all(|m| !m.shard));
    }
}
