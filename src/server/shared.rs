//! State shared by every connection of a node: settings, statistics, the client registry,
//! the engine and the shutdown signal.

use super::client::ClientHandle;
use super::engine::Engine;
use super::latency::Latency;
use super::memory::MemoryTracker;
use super::monitor::Monitors;
use super::pubsub::PubSub;
use super::slowlog::SlowLog;
use crate::config::Config;
use crate::raft::node::Replica;
use crate::rt::{Shutdown, ShutdownSignal};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Milliseconds since the Unix epoch (virtual time under madsim).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Counters reported by INFO stats (reset by CONFIG RESETSTAT where Redis resets them).
#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub expired_keys: AtomicU64,
    pub evicted_keys: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for c in [
            &self.connections_received,
            &self.commands_processed,
            &self.rejected_connections,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.expired_keys,
            &self.evicted_keys,
            &self.net_input_bytes,
            &self.net_output_bytes,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Everything a connection task can reach.
pub struct Shared {
    config: Mutex<Config>,
    pub engine: Engine,
    /// The groups of a multi-raft cluster, the slot table and routing (`None` outside one).
    pub cluster: Option<Arc<crate::cluster::Groups>>,
    pub stats: Stats,
    /// This node's Pub/Sub subscriptions.
    pub pubsub: Arc<PubSub>,
    /// Memory at start and the peak (INFO memory, MEMORY STATS).
    pub memory: MemoryTracker,
    /// The clients in MONITOR mode.
    pub monitors: Arc<Monitors>,
    /// SLOWLOG's entries and settings.
    pub slowlog: SlowLog,
    /// The latency monitor's events and the commands' latency histograms.
    pub latency: Latency,
    /// CLIENT PAUSE.
    pub pause: super::pause::Pause,
    /// Client-side caching: the tracking table (CLIENT TRACKING).
    pub tracking: Arc<super::tracking::Tracking>,
    /// The ACL users (replicated state: changed by applied log entries; read here before
    /// every command) and this node's ACL LOG.
    pub acl: Arc<crate::acl::AclView>,
    pub acl_log: crate::acl::log::AclLog,
    clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    next_client_id: AtomicU64,
    pub started_ms: u64,
    /// Port the client listener is bound to (after binding port 0, the real one).
    pub port: u16,
    shutdown: Shutdown,
}

impl Shared {
    /// The shared state of a node whose Raft groups are `groups` (group 0 first), routed by
    /// `cluster` in a multi-raft cluster.
    pub fn new(
        config: Config,
        port: u16,
        groups: Vec<Arc<Replica>>,
        cluster: Option<Arc<crate::cluster::Groups>>,
    ) -> Arc<Self> {
        let seed = if config.seed == 0 { rand::random() } else { config.seed };
        let engine = Engine::new(groups, seed);
        let pubsub_limit = config.output_limits.pubsub;
        let (slowlog, latency) = (SlowLog::default(), Latency::default());
        let pubsub = Arc::new(PubSub::new(pubsub_limit));
        let tracking = Arc::new(super::tracking::Tracking::new(pubsub.clone(), tracking_max_keys(&config)));
        configure_introspection(&config, &slowlog, &latency);
        let acl = Arc::new(crate::acl::AclView::new(&config.requirepass));
        for group in engine.keyspace_groups() {
            // Every group that holds keys gets each ACL change (`server::fanout`), and each
            // publishes the table it applies: a node of a cluster holds only some data groups,
            // and which ones changes as replicas move.
            let mut st = group.state().write().unwrap_or_else(|p| p.into_inner());
            st.keyspace.acl.view = acl.clone();
            st.keyspace.acl.publish();
        }
        Arc::new(Shared {
            acl,
            acl_log: Default::default(),
            config: Mutex::new(config),
            engine,
            cluster,
            stats: Stats::default(),
            pubsub,
            tracking,
            memory: MemoryTracker::new(),
            monitors: Arc::default(),
            slowlog,
            latency,
            pause: Default::default(),
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            started_ms: now_ms(),
            port,
            shutdown: Shutdown::new(),
        })
    }

    /// The settings (CONFIG SET changes them at run time).
    pub fn config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the settings (CONFIG SET) and hands the ones other parts keep to them.
    pub fn set_config(&self, next: Config) {
        self.pubsub.set_limit(next.output_limits.pubsub);
        for group in self.engine.groups().values() {
            group.set_notify_flags(next.notify_keyspace_events);
        }
        configure_introspection(&next, &self.slowlog, &self.latency);
        self.tracking.set_max_keys(tracking_max_keys(&next));
        if next.requirepass != self.config().requirepass {
            // `requirepass` is the default user's password (Redis 6+).
            self.acl.set_requirepass(&next.requirepass);
        }
        *self.config() = next;
    }

    /// The users this node checks commands against (`crate::acl::AclView`).
    pub fn acl(&self) -> std::sync::RwLockReadGuard<'_, crate::acl::Acl> {
        self.acl.read()
    }

    pub fn clients(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<ClientHandle>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A receiver that changes once, when the node shuts down.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// Asks the listener and every connection to stop.
    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }
}

/// Hands the slow log and the latency monitor their settings (kept as Redis parameters in
/// `config::reported`).
fn configure_introspection(config: &Config, slowlog: &SlowLog, latency: &Latency) {
    let value = |name: &[u8]| crate::config::reported::find(name).map(|r| config.reported.get(r)).unwrap_or_default();
    let int = |name: &[u8], default: i64| value(name).parse::<i64>().unwrap_or(default);
    slowlog.configure(int(b"slowlog-log-slower-than", 10_000), int(b"slowlog-max-len", 128).max(0) as u64);
    latency.configure(int(b"latency-monitor-threshold", 0).max(0) as u64, value(b"latency-tracking") != "no");
}

/// `tracking-table-max-keys` (kept as a Redis parameter in `config::reported`; 0: no limit).
fn tracking_max_keys(config: &Config) -> usize {
    crate::config::reported::find(b"tracking-table-max-keys")
        .and_then(|r| config.reported.get(r).parse::<usize>().ok())
        .unwrap_or(1_000_000)
}
