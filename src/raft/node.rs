//! One Raft group of a node ([`Replica`]): opens the log store and the state machine on the
//! node's disk, starts `openraft::Raft` with the RPC network, serves the internal RPC port with
//! an [`RpcHandler`] that hands requests to Raft, and offers the server its two operations:
//! propose a write ([`Replica::write`]) and run a linearizable read ([`Replica::read`]).
//!
//! Errors a client can see (documented in docs/OPERATIONS.md):
//! - `-TRYAGAIN ...`: a write was proposed but its outcome is unknown (leader lost after the
//!   proposal, deadline passed); it may or may not be applied.
//! - `-CLUSTERDOWN ...`: nothing was done: no leader within a bounded wait, this node is not
//!   the leader and cannot forward (leader unknown), forwarding failed definitely, or Raft has
//!   stopped.
//!
//! A follower forwards writes to the leader over the RPC port: single commands as
//! [`ForwardRequest`], a pipeline's batch of writes or a MULTI/EXEC transaction (with its WATCH
//! versions) as [`ForwardBatch`]; the leader runs them with its own clock and seed and never
//! forwards again. A follower serves linearizable reads from its own copy once it has applied
//! the leader's read index (asked for over the RPC port, one round for every read waiting);
//! it forwards a read only when the leader gives no index or this node lags behind it.

use super::broadcast::{Broadcast, PublishSink};
use super::log_store::{IdleSync, LogMemory, LogStore, LogStoreError};
use super::network::{NetworkConfig, RpcNetworkFactory};
use super::notify::Notifier;
use super::proposer::{NoOutcome, ProposalCounts, Proposer};
use super::quiesce;
use super::read_batch::ReadBatcher;
use super::rpc::server::SniffedStream;
use super::rpc::{
    serve_rpc, ForwardBatch, ForwardFlags, ForwardRequest, GroupRouter, HandlerError, PubMessage, RpcClientConfig,
    RpcHandler, RpcPool, RpcServerConfig,
};
use super::snapshot::{SnapshotDir, SnapshotError};
use super::snapshot_file::SnapshotFile;
use super::state_machine::{SharedState, SmState, StateMachine};
use super::waiters::Waiters;
use super::{NodeId, NodeInfo, TypeConfig};
use crate::cmd::{Kind, ReadFn};
use crate::disk::Disk;
use crate::protocol::Frame;
use crate::rt::bugs::{self, Bug};
use crate::rt::Shutdown;
use crate::store::{Rng, WriteBatch};
use bytes::Bytes;
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ReadPolicy, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf, WatchReceiverOf};
use openraft::{Raft, RaftMetrics, SnapshotPolicy};
use rand::{RngCore, SeedableRng};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a follower's read waits for its state machine to reach the leader's read index
/// before forwarding the read instead.
const FOLLOWER_CATCH_UP: Duration = Duration::from_millis(500);
/// How long a request refused for want of a leader pauses before asking Raft again.
const LEADER_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// The client-facing deadlines of a replica (settings `raft-leader-wait-ms`,
/// `raft-write-timeout-ms`, `raft-read-timeout-ms`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long a request waits for a leader to be elected before `-CLUSTERDOWN`.
    pub leader_wait: Duration,
    /// Deadline of a proposal or a forwarded write; past it the outcome is unknown
    /// (`-TRYAGAIN`).
    pub write: Duration,
    /// Deadline of a read barrier (`-CLUSTERDOWN` past it).
    pub read: Duration,
}

impl Timeouts {
    /// How long a follower waits for the leader's reply to a write it forwarded: the leader's
    /// own deadline, then as long again, because the leader waits past its deadline for an
    /// entry committed by then (its apply, a long script's, is still to come; see
    /// `Propose::propose`). Past this the follower's client gets `-TRYAGAIN`.
    pub fn forwarded_write(&self) -> Duration {
        self.write.saturating_mul(2)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { leader_wait: Duration::from_secs(5), write: Duration::from_secs(10), read: Duration::from_secs(5) }
    }
}

/// Settings of a replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub id: NodeId,
    /// Where the internal RPC server listens (port 0 picks a free one).
    pub raft_addr: String,
    /// The client address other nodes learn for this node.
    pub client_addr: String,
    /// Databases of a fresh keyspace.
    pub databases: usize,
    /// Build a snapshot (and purge the log up to it) every this many applied entries.
    pub snapshot_logs: u64,
    /// Interval of the leader's heartbeats, in ms.
    pub heartbeat_ms: u64,
    /// Bounds of the randomized election timeout, in ms (openraft checks min > heartbeat and
    /// max > min).
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// A group idle this long goes quiet (`super::quiesce`); 0: never.
    pub quiesce_ms: u64,
    /// Client-facing deadlines.
    pub timeouts: Timeouts,
}

/// Why a replica cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("log store: {0}")]
    LogStore(#[from] LogStoreError),
    #[error("state machine: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("cannot listen for raft on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("raft: {0}")]
    Raft(String),
}

/// Serves the HTTP connections that arrive on the RPC port (the admin API, `crate::admin`).
pub trait HttpService: Send + Sync + 'static {
    /// Serves one connection until it closes.
    fn serve(&self, stream: SniffedStream) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Where the node installs its HTTP service once everything it reports on exists.
type HttpSlot = Arc<OnceLock<Arc<dyn HttpService>>>;

/// One Raft group of a node: its id, and whether it is a data group of a multi-raft cluster
/// (fenced: it refuses writes to slots it does not own).
#[derive(Debug, Clone, Copy)]
pub struct GroupSpec {
    pub id: u64,
    pub fenced: bool,
}

/// Where group `id` keeps its log and snapshots: `raft` for group 0 (the only group of a
/// node before multi-raft, so older data directories keep working), `raft/group-<id>` for
/// the others.
pub fn group_dir(id: u64) -> String {
    if id == 0 {
        "raft".to_string()
    } else {
        format!("raft/group-{id}")
    }
}

/// What the groups of one node share: its addresses, the connections to peers, the RPC
/// server's stop signal and the HTTP service.
struct NodeShared {
    info: NodeInfo,
    pool: RpcPool,
    stop_rpc: Arc<Shutdown>,
    http: HttpSlot,
    /// The groups the failure detector of quiet groups watches.
    quiet_groups: quiesce::Registry,
}

/// openraft's settings for every group of a node.
fn raft_config(cfg: &ReplicaConfig) -> Result<openraft::Config, ReplicaError> {
    openraft::Config {
        cluster_name: "raftis".into(),
        // Defaults (50, 300-600 ms) suit loopback and LAN: elections settle in well under a
        // second.
        heartbeat_interval: cfg.heartbeat_ms,
        election_timeout_min: cfg.election_timeout_min_ms,
        election_timeout_max: cfg.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs.max(1)),
        // Purge the log right after a snapshot covers it.
        max_in_snapshot_log_to_keep: 0,
        // A restarted leader must win an election again. Restoring leadership at once
        // (openraft's default) is unsafe here: an entry can commit on the followers' acks
        // before the leader's own sync, a crash then loses it from the leader's log, and
        // the restored leader would reuse its index in the same term (found by the chaos
        // simulation: a stale read, then diverging replicas).
        enable_leader_restore: Some(false),
        // The leader hands new entries to the replication streams as soon as its log store
        // has taken them (not at the end of the core's loop), so the followers' fsyncs start
        // sooner; Raft still counts the leader only once its own flush is done. Three nodes
        // at 50 clients: ahead in 6 of 6 A/B pairs, +2% to +43% (docs/PERFORMANCE.md).
        broadcast_submitted_on_append: Some(true),
        ..Default::default()
    }
    .validate()
    .map_err(|e| ReplicaError::Raft(e.to_string()))
}

/// The settings of quiescence (`None`: off): idle for `quiesce_ms`, a ping every half of the
/// shortest election timeout (at least two heartbeats), a failed peer after the shortest
/// election timeout.
fn quiesce_config(cfg: &ReplicaConfig) -> Option<quiesce::QuiesceConfig> {
    (cfg.quiesce_ms > 0).then(|| quiesce::QuiesceConfig {
        after: Duration::from_millis(cfg.quiesce_ms),
        ping_every: quiesce::ping_every(cfg.heartbeat_ms, cfg.election_timeout_min_ms),
        ping_timeout: Duration::from_millis(cfg.election_timeout_min_ms),
    })
}

/// A running Raft group of this node.
pub struct Replica {
    core: Core,
    info: NodeInfo,
    stop_rpc: Arc<Shutdown>,
    http: HttpSlot,
    idle_sync: IdleSync,
    log_memory: LogMemory,
    waiters: Arc<Waiters>,
    broadcast: Arc<Broadcast>,
    /// Keyspace notifications of applied entries (this node's subscribers only).
    notifier: Arc<Notifier>,
    /// Data groups a node must run to join this group (MetaRaft of a multi-raft cluster);
    /// 0: no check (see `membership::Replica::add_learner_at`).
    joiner_groups: std::sync::atomic::AtomicU64,
}

/// How often a read retries while a script's apply holds the state (see `Core::run_read`).
const READ_RETRY: Duration = Duration::from_millis(1);

/// How often a node looks for its orphaned blocked commands (see [`spawn_reconcile`]).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// What the server side and the RPC handler share: the Raft handle, the state machine's data,
/// the connections to peers (for forwarding) and a seeded random source for forwarded writes.
#[derive(Clone)]
struct Core {
    id: NodeId,
    /// The Raft group (0: MetaRaft, or the only group).
    group: u64,
    raft: Raft<TypeConfig, StateMachine>,
    /// Raft's metrics, subscribed once (each write looks up the leader here; subscribing per
    /// write cost a clone and a drop of the receiver).
    metrics: WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>,
    /// Every write is proposed through it, grouped with other clients' writes.
    proposer: Proposer<Raft<TypeConfig, StateMachine>>,
    state: SharedState,
    pool: RpcPool,
    rng: Arc<Mutex<Rng>>,
    /// Linearizable reads waiting for a ReadIndex round share it.
    reads: Arc<ReadBatcher<Result<(), Refusal>>>,
    timeouts: Timeouts,
    /// This node's registry of the group's running scripts.
    running: Arc<crate::store::running::Running>,
    /// Whether this node's ticks of the group are off, and the group's activity.
    quiet: Arc<quiesce::Quiet>,
    /// Quiescence is on (`quiesce_ms` > 0).
    quiescing: bool,
}

/// The read point of one batch of pipelined commands of a connection. Once a read barrier has
/// passed on this node, this node's copy holds every write acknowledged before the barrier
/// started, so reads received before it (the rest of the batch) may run without one of their
/// own. Reset it whenever anything else runs in between (a write may have gone to another
/// leader, leadership may have moved).
#[derive(Debug, Default)]
pub struct ReadPoint {
    confirmed: bool,
}

impl ReadPoint {
    /// The next read needs a barrier again.
    pub fn reset(&mut self) {
        self.confirmed = false;
    }
}

/// Why a read cannot run here now.
#[derive(Clone)]
enum Refusal {
    /// Another node leads: forward to it.
    Leader(NodeInfo),
    /// Nothing to forward to: reply this.
    Reply(Frame),
}

impl Replica {
    /// Opens the group's storage under `raft/` on `disk`, starts Raft and its RPC server.
    pub async fn start(disk: Arc<dyn Disk>, cfg: ReplicaConfig) -> Result<Arc<Replica>, ReplicaError> {
        let groups = Self::start_groups(disk, cfg, &[GroupSpec { id: 0, fenced: false }]).await?;
        groups.into_iter().next().ok_or_else(|| ReplicaError::Raft("no group started".into()))
    }

    /// Starts the Raft groups `specs` of one node (multi-raft): each with its own log and
    /// snapshots ([`group_dir`]) and its own `openraft::Raft`, all sharing one RPC listener, one
    /// connection per peer (requests carry their group's id) and the HTTP service. Each request
    /// runs in a task of its own, so one group's slow snapshot install never holds up another
    /// group's appends. Returned in the order of `specs`.
    pub async fn start_groups(
        disk: Arc<dyn Disk>,
        cfg: ReplicaConfig,
        specs: &[GroupSpec],
    ) -> Result<Vec<Arc<Replica>>, ReplicaError> {
        let listener = TcpListener::bind(&cfg.raft_addr)
            .await
            .map_err(|source| ReplicaError::Bind { addr: cfg.raft_addr.clone(), source })?;
        let raft_addr: SocketAddr =
            listener.local_addr().map_err(|source| ReplicaError::Bind { addr: cfg.raft_addr.clone(), source })?;
        let shared = NodeShared {
            info: NodeInfo { raft_addr: raft_addr.to_string(), client_addr: cfg.client_addr.clone() },
            pool: RpcPool::new(RpcClientConfig {
                stall_after: Duration::from_millis(cfg.election_timeout_min_ms),
                ..RpcClientConfig::default()
            }),
            stop_rpc: Arc::new(Shutdown::new()),
            http: HttpSlot::default(),
            quiet_groups: Default::default(),
        };
        let mut handlers = BTreeMap::new();
        let mut replicas = Vec::with_capacity(specs.len());
        for spec in specs {
            let (replica, handler) = Self::open_group(disk.clone(), &cfg, spec, &shared).await?;
            handlers.insert(spec.id, handler);
            replicas.push(replica);
        }
        let mut stop_rx = shared.stop_rpc.subscribe();
        let shutdown = async move { stop_rx.wait().await };
        if let Some(q) = quiesce_config(&cfg) {
            let stop = shared.stop_rpc.subscribe();
            quiesce::spawn_failure_detector(cfg.id, shared.quiet_groups.clone(), shared.pool.clone(), q, stop);
        }
        let router = Arc::new(GroupRouter { handlers });
        tokio::spawn(serve_rpc(listener, router, RpcServerConfig::default(), shutdown));
        tracing::info!(id = cfg.id, %raft_addr, groups = specs.len(), "raft groups started");
        Ok(replicas)
    }

    /// Opens one group's storage and starts its Raft; returns it with its RPC handler.
    async fn open_group(
        disk: Arc<dyn Disk>,
        cfg: &ReplicaConfig,
        spec: &GroupSpec,
        shared: &NodeShared,
    ) -> Result<(Arc<Replica>, Arc<Handler>), ReplicaError> {
        let dir = group_dir(spec.id);
        let mut log = LogStore::open(disk.clone(), &format!("{dir}/log")).await?;
        log.raise_committed_to_membership().map_err(LogStoreError::Recovery)?;
        // The newest snapshot loads off the runtime thread (its whole keyspace: seconds for
        // millions of keys), so the client port answers `-LOADING` meanwhile.
        let (snapshot_dir, databases) = (format!("{dir}/snapshots"), cfg.databases);
        let mut sm = crate::rt::run_long(move || StateMachine::open(disk, &snapshot_dir, databases))
            .await
            .map_err(|e| ReplicaError::Raft(format!("loading the snapshot: {e}")))??;
        if spec.fenced {
            sm.fence();
        }
        // This run of the node: its blocked commands are told apart from an earlier run's.
        let boot = crate::server::now_ms();
        let waiters = Arc::new(Waiters::new(cfg.id, boot));
        sm.attach_waiters(waiters.clone());
        // Entries already in the log were applied (and announced) before the restart.
        let held = openraft::storage::RaftLogStorage::get_log_state(&mut log)
            .await
            .map_err(LogStoreError::Recovery)?
            .last_log_id;
        let notifier = Arc::new(Notifier::new(held.map_or(0, |id| id.index)));
        sm.attach_notifier(notifier.clone());
        let state = sm.shared();
        let running = sm.running();
        // Taken before the state machine moves into Raft: the RPC side receives snapshots
        // into files of this directory.
        let snapshots = sm.snapshot_dir();

        let appends = log.appends();
        let idle_sync = log.idle_sync();
        let log_memory = log.memory();
        let config = raft_config(cfg)?;
        let pool = shared.pool.clone();
        let network = RpcNetworkFactory::new(cfg.id, spec.id, pool.clone(), NetworkConfig::default());
        let raft = Raft::new(cfg.id, Arc::new(config), network, log, sm)
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))?;
        // Forwarded writes draw their seeds here; seeded by the node id (and the group) for
        // reproducibility.
        let rng = Arc::new(Mutex::new(Rng::seed_from_u64(cfg.id ^ 0x7261_6674_6973 ^ spec.id.rotate_left(32))));
        let proposer = Proposer::start(raft.clone(), appends);
        spawn_sync_mode(raft.clone(), idle_sync.clone());
        super::events::spawn_event_log(raft.clone());
        let metrics = raft.metrics();
        let reads = Default::default();
        let timeouts = cfg.timeouts;
        let quiet = Arc::new(quiesce::Quiet::default());
        let quiesce = quiesce_config(cfg);
        let quiescing = quiesce.is_some();
        let core = Core {
            id: cfg.id,
            group: spec.id,
            raft,
            metrics,
            proposer,
            state,
            pool,
            rng,
            reads,
            timeouts,
            running,
            quiet,
            quiescing,
        };
        if let Some(q) = quiesce {
            let watched = quiesce::Watched {
                group: spec.id,
                raft: core.raft.clone(),
                metrics: core.metrics.clone(),
                quiet: core.quiet.clone(),
            };
            shared.quiet_groups.lock().unwrap_or_else(|p| p.into_inner()).push(watched.clone());
            quiesce::spawn_idle_watch(watched, core.pool.clone(), q, shared.stop_rpc.subscribe());
        }

        let info = shared.info.clone();
        let broadcast = Arc::new(Broadcast::new(spec.id, core.pool.clone()));
        let handler = Arc::new(Handler {
            core: core.clone(),
            snapshots,
            info: info.clone(),
            http: shared.http.clone(),
            broadcast: broadcast.clone(),
        });
        spawn_reconcile(core.clone(), waiters.clone(), shared.stop_rpc.subscribe());
        let (stop_rpc, http) = (shared.stop_rpc.clone(), shared.http.clone());
        let replica = Arc::new(Replica {
            core,
            info,
            stop_rpc,
            http,
            idle_sync,
            log_memory,
            waiters,
            broadcast,
            notifier,
            joiner_groups: Default::default(),
        });
        Ok((replica, handler))
    }

    /// The Raft group this replica runs (0: MetaRaft, or the only group).
    pub fn group(&self) -> u64 {
        self.core.group
    }

    /// Installs the service that answers HTTP on the RPC port (once; later calls are ignored).
    /// Until then an HTTP connection is closed unanswered.
    pub fn set_http_service(&self, service: Arc<dyn HttpService>) {
        let _ = self.http.set(service);
    }

    /// Installs where Pub/Sub messages published on other nodes go (once).
    pub fn set_publish_sink(&self, sink: Arc<dyn PublishSink>) {
        self.broadcast.set_sink(sink.clone());
        self.notifier.set_sink(sink);
    }

    /// Where the commands scripts run are shown (this node's MONITOR clients).
    pub fn set_monitor_sink(&self, sink: Arc<dyn super::notify::MonitorSink>) {
        self.notifier.set_monitor_sink(sink);
    }

    /// Where the keys applied entries touch go: this node's tracking table (client-side
    /// caching).
    pub fn set_tracking_sink(&self, sink: Arc<dyn super::notify::TrackingSink>) {
        self.notifier.set_tracking_sink(sink);
    }

    /// Whether this node has MONITOR clients (scripts then record their commands).
    pub fn set_monitoring(&self, on: bool) {
        self.notifier.set_monitoring(on);
    }

    /// Makes [`add_learner_at`](Self::add_learner_at) refuse a node that does not run exactly
    /// data groups 1..=`n` (a node started with another `num-groups` than its cluster's).
    pub fn set_joiner_groups(&self, n: u64) {
        self.joiner_groups.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// See [`set_joiner_groups`](Self::set_joiner_groups).
    pub fn joiner_groups(&self) -> u64 {
        self.joiner_groups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets this node's `notify-keyspace-events` flags (`store::notify`).
    pub fn set_notify_flags(&self, flags: u32) {
        self.notifier.set_flags(flags);
    }

    /// Sends a Pub/Sub message to every other node of the group's membership (learners
    /// included), at most once, in publishing order per peer (see [`Broadcast`]).
    pub fn publish(&self, msg: &PubMessage) {
        use openraft::rt::watch::WatchReceiver;
        let peers: Vec<String> = {
            let m = self.core.metrics.borrow_watched();
            let members = m.membership_config.membership();
            members.nodes().filter(|(id, _)| **id != self.core.id).map(|(_, n)| n.raft_addr.clone()).collect()
        };
        self.broadcast.send(peers.iter().map(String::as_str), msg);
    }

    /// Pub/Sub messages dropped on their way to other nodes.
    pub fn publish_dropped(&self) -> u64 {
        self.broadcast.dropped()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.core.id
    }

    /// How other nodes reach this one.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// The Raft handle (membership changes, metrics).
    pub fn raft(&self) -> &Raft<TypeConfig, StateMachine> {
        &self.core.raft
    }

    /// The connections to peers (shared with Raft's network).
    pub(crate) fn pool(&self) -> &RpcPool {
        &self.core.pool
    }

    /// The state machine's data (this node's copy, not linearizable on its own).
    pub fn state(&self) -> &SharedState {
        &self.core.state
    }

    /// This node's scripts running in the group now (for `BUSY` and the KILLs).
    pub fn running(&self) -> &Arc<crate::store::running::Running> {
        &self.core.running
    }

    /// This node's clients blocked in the group's queue of waiters.
    pub fn waiters(&self) -> &Arc<Waiters> {
        &self.waiters
    }

    /// Makes this node a one-member cluster if it has never been part of one (empty log, no
    /// vote). A node that has state keeps it: restarting never re-initializes.
    pub async fn bootstrap_single(&self) -> Result<(), ReplicaError> {
        let raft = &self.core.raft;
        let initialized = raft.is_initialized().await.map_err(|e| ReplicaError::Raft(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        let members = BTreeMap::from([(self.core.id, self.info.clone())]);
        raft.initialize(members).await.map_err(|e| ReplicaError::Raft(e.to_string()))
    }

    /// How many writes this node proposed, in how many entries.
    pub fn proposal_counts(&self) -> ProposalCounts {
        self.core.proposer.counts()
    }

    /// Log flusher rounds the runtime thread ran in its idle time (INFO
    /// `raft_log_idle_rounds`): counts while this node is alone in its group, on the default
    /// single-threaded runtime.
    pub fn log_idle_rounds(&self) -> u64 {
        self.idle_sync.rounds()
    }

    /// Bytes the Raft log holds in memory (left out of `maxmemory`'s count).
    pub fn log_memory_bytes(&self) -> u64 {
        self.log_memory.bytes()
    }

    /// Whether Raft has stopped on a fatal error (a failed fsync, a storage error).
    pub fn has_failed(&self) -> bool {
        use openraft::rt::watch::WatchReceiver;
        self.core.metrics.borrow_watched().running_state.is_err()
    }

    /// The leader this node's metrics name (itself included) and how to reach it; `None`
    /// while no leader is known. Cheap: no call into Raft's core.
    pub fn leader_info(&self) -> Option<(NodeId, NodeInfo)> {
        leader_info(&self.core, &self.info)
    }

    /// Waits up to `timeout` for a leader to be known; false if none was.
    pub async fn await_leader(&self, timeout: Duration) -> bool {
        self.core.raft.wait(Some(timeout)).metrics(|m| m.current_leader.is_some(), "a leader").await.is_ok()
    }

    /// Whether this node is a member (voter or learner) of the group, as far as it knows.
    pub fn is_member(&self) -> bool {
        use openraft::rt::watch::WatchReceiver;
        let m = self.core.metrics.borrow_watched();
        let member = m.membership_config.membership().get_node(&self.core.id).is_some();
        member
    }

    /// The voters of the group's membership as this node knows it, and every member.
    pub fn membership_ids(&self) -> (std::collections::BTreeSet<NodeId>, std::collections::BTreeSet<NodeId>) {
        use openraft::rt::watch::WatchReceiver;
        let m = self.core.metrics.borrow_watched();
        let membership = m.membership_config.membership();
        (membership.voter_ids().collect(), membership.nodes().map(|(id, _)| *id).collect())
    }

    /// On the leader: whether member `id` has acknowledged everything in this node's log (a
    /// leadership transfer to it then costs no catch-up).
    pub fn caught_up(&self, id: NodeId) -> bool {
        use openraft::rt::watch::WatchReceiver;
        let m = self.core.metrics.borrow_watched();
        let last = m.last_log_index;
        let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned()).flatten().map(|l| l.index);
        // A dead voter stays "caught up" while nothing is written: it must also have answered
        // lately (a leadership transfer to it would leave the group leaderless until an
        // election). Lately: within three heartbeats, and less than the shortest election
        // timeout, so that by the time an election after a node's death changes who leads
        // what, the dead node no longer counts.
        let answered = m.heartbeat.as_ref().and_then(|h| h.get(&id).cloned()).flatten();
        let config = self.core.raft.config();
        let recent = Duration::from_millis((config.heartbeat_interval * 3).min(config.election_timeout_min / 2));
        let live = answered.is_some_and(|at| openraft::Instant::elapsed(&*at) <= recent) || {
            // A quiet group sends no heartbeats: the failure detector's pings tell instead
            // (one missed round allowed; a failed ping wakes the group, and heartbeats decide).
            let every = quiesce::ping_every(config.heartbeat_interval, config.election_timeout_min);
            self.core.quiet.is_quiet() && self.core.quiet.answered_within(id, every * 2 + recent)
        };
        last.is_some() && matched >= last && live
    }

    /// On the leader: asks Raft to hand leadership to `to` (ignored if this node no longer
    /// leads). The transfer happens asynchronously.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), String> {
        self.core.touch().await;
        self.core.raft.trigger().transfer_leader(to).await.map_err(|e| e.to_string())
    }

    /// Proposes a cluster-control entry (this node must lead the group) and returns its
    /// reply once applied, or why it was not.
    pub async fn propose_control(&self, control: super::Control) -> Result<Frame, String> {
        self.core.touch().await;
        let proposal = self.core.raft.client_write(super::Request::Control(Arc::new(control)));
        match tokio::time::timeout(self.core.timeouts.write, proposal).await {
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Sends a cluster-control entry to member `node` of the group, which proposes it if it
    /// leads the group (it never forwards again), and returns the entry's reply.
    pub async fn forward_control(&self, node: &NodeInfo, control: &super::Control) -> Result<Frame, String> {
        let encoded = postcard::to_allocvec(control).map_err(|e| e.to_string())?;
        let req = ForwardRequest { db: 0, argv: vec![Bytes::from(encoded)], flags: ForwardFlags::CONTROL };
        let client = self.core.pool.get(&node.raft_addr);
        match client.forward(self.core.group, req, self.core.timeouts.write).await {
            Ok(Frame::Error(e)) if e.starts_with(b"CLUSTERDOWN not the leader") => {
                Err(String::from_utf8_lossy(&e).into_owned())
            }
            Ok(frame) => Ok(frame),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The group's cluster-control state (this node's copy).
    pub fn control(&self) -> super::control::ControlState {
        self.core.state.read().unwrap_or_else(|p| p.into_inner()).control.clone()
    }

    /// Counts an operation of the group; wakes a quiet leader (see `super::quiesce`).
    pub(crate) async fn touch(&self) {
        self.core.touch().await;
    }

    /// Whether this node's ticks of the group are off (`super::quiesce`).
    pub fn is_quiet(&self) -> bool {
        self.core.quiet.is_quiet()
    }

    /// How many times this node's ticks of the group stopped.
    pub fn times_quiet(&self) -> u64 {
        self.core.quiet.times_quiet()
    }

    /// `f` of the group's control state, read in place (no copy).
    pub fn with_control<R>(&self, f: impl FnOnce(&super::control::ControlState) -> R) -> R {
        f(&self.core.state.read().unwrap_or_else(|p| p.into_inner()).control)
    }

    /// Whether the group's log gives it `slot` (`None`: no ownership recorded, unfenced, or
    /// the state is being applied to: routing asks on the runtime thread, which must not wait
    /// for a long apply, and the fence at apply decides anyway).
    pub fn owns_slot(&self, slot: u16) -> Option<bool> {
        let st = match self.core.state.try_read() {
            Ok(st) => st,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        st.control.owned.as_ref().map(|o| o.owns(slot))
    }

    /// Whether this node currently believes it is the leader.
    pub async fn is_leader(&self) -> bool {
        self.core.raft.current_leader().await == Some(self.core.id)
    }

    /// Proposes `batch` and returns its reply once applied, or an error frame. On a follower,
    /// a single command (not a transaction) is forwarded to the leader.
    pub async fn write(&self, batch: WriteBatch) -> Frame {
        self.core.write(batch, true).await
    }

    /// Sends `batch` to member `node` of the group, which proposes it if it leads the group
    /// and answers `-CLUSTERDOWN not the leader ...` otherwise (it never forwards again): how a
    /// node that is not a member of the group writes to it.
    pub async fn write_at(&self, node: &NodeInfo, batch: WriteBatch) -> Frame {
        self.core.forward_write(node, batch).await
    }

    /// Runs the read `f` linearizably (ReadIndex on the leader; a follower forwards it), or on
    /// this node's copy as it is with `stale_ok` (READONLY clients). A read point that is
    /// already confirmed lets the read skip the barrier.
    #[allow(clippy::too_many_arguments)]
    pub async fn read(
        &self,
        db: usize,
        now_ms: u64,
        seed: u64,
        f: ReadFn,
        argv: &[Bytes],
        stale_ok: bool,
        point: &mut ReadPoint,
    ) -> Frame {
        if !stale_ok && !point.confirmed {
            match self.core.linearize().await {
                Ok(()) => point.confirmed = true,
                Err(Refusal::Reply(frame)) => return frame,
                Err(Refusal::Leader(node)) => {
                    let req = ForwardRequest { db: db as u32, argv: argv.to_vec(), flags: ForwardFlags::READ };
                    return self.core.forward(&node, req).await;
                }
            }
        }
        self.core.run_read(db, now_ms, seed, f, argv).await
    }

    /// Waits until this node's copy holds every write acknowledged before the call (the
    /// barrier of a linearizable read, shared with the reads waiting now). False when that
    /// could not be confirmed (no leader, leader unreachable, this node lagging).
    pub async fn catch_up(&self) -> bool {
        self.core.linearize().await.is_ok()
    }

    /// Stops Raft (flushing the log) and the RPC server.
    pub async fn shutdown(&self) {
        if let Err(e) = self.core.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
        self.stop_rpc.trigger();
        self.broadcast.stop();
    }
}

/// The time a read of the state as it is now runs at: the caller's reading of the clock
/// (taken before the read barrier, or cached for a batch of reads) or, when later, the clock
/// now. The state may hold writes applied after the caller's reading, stamped later than it;
/// a read at the earlier time would see them from the past (a PTTL above the TTL just set,
/// a key alive past the deadline its write fixed), which no instant of the read explains.
/// Found by the chaos simulation's TTL check (docs/SIMULATION.md, "Found by it").
fn read_clock(caller_ms: u64) -> u64 {
    caller_ms.max(crate::server::now_ms())
}

impl Core {
    /// Runs a read on this node's copy: here, or, when it may run long (`cmd::may_run_long`:
    /// a big keyspace or value, a script, DEBUG), on a blocking-pool thread, so that Raft's
    /// heartbeats go on meanwhile (`crate::rt::run_long`; ARCHITECTURE.md, "Slow commands").
    ///
    /// While a script's apply holds the state exclusively (on a blocking-pool thread, see
    /// `StateMachine::apply`), the read waits asynchronously: the runtime thread never blocks
    /// on the lock, so Raft and the `BUSY` replies of other clients go on.
    ///
    /// The read runs at the time it reads the state, never earlier ([`read_clock`]).
    async fn run_read(&self, db: usize, now_ms: u64, seed: u64, f: ReadFn, argv: &[Bytes]) -> Frame {
        loop {
            // A poisoned lock means a panic mid-apply; the state machine reports it on the
            // write path. The attempt's guard is gone before the await (it is not Send).
            let now_ms = read_clock(now_ms);
            let ran = match self.state.try_read() {
                Ok(st) => Some(Self::read_inline(&st, db, now_ms, seed, f, argv)),
                Err(TryLockError::Poisoned(p)) => Some(Self::read_inline(&p.into_inner(), db, now_ms, seed, f, argv)),
                Err(TryLockError::WouldBlock) => None,
            };
            match ran {
                Some(Some(reply)) => return reply,
                Some(None) => break,
                None => tokio::time::sleep(READ_RETRY).await,
            }
        }
        let (state, argv) = (self.state.clone(), argv.to_vec());
        let long = crate::rt::run_long(move || {
            let st = state.read().unwrap_or_else(|p| p.into_inner());
            if let Some(refusal) = st.control.refuse_read(&st.keyspace, db, read_clock(now_ms), &argv) {
                return refusal;
            }
            crate::cmd::run_read(&st.keyspace, db, read_clock(now_ms), seed, f, &argv)
        });
        long.await.unwrap_or_else(|e| Frame::error(format!("ERR the command failed: {e}")))
    }

    /// The read's reply if it is short enough to run here on the runtime thread. A read of a
    /// slot this group's applied state does not serve (moved away, or frozen by a migration)
    /// is refused (`ControlState::refuse_read`): routing chose this group by this node's copy
    /// of the map, which may be older than the group's own log. Found by the chaos simulation
    /// (seed 2037, docs/SIMULATION.md "Found by it").
    fn read_inline(st: &SmState, db: usize, now_ms: u64, seed: u64, f: ReadFn, argv: &[Bytes]) -> Option<Frame> {
        if let Some(refusal) = st.control.refuse_read(&st.keyspace, db, now_ms, argv) {
            return Some(refusal);
        }
        let short = !crate::cmd::may_run_long(&st.keyspace, db, argv);
        short.then(|| crate::cmd::run_read(&st.keyspace, db, now_ms, seed, f, argv))
    }

    /// The leader Raft's metrics name, when it is another node whose address is known.
    fn known_leader(&self) -> Option<NodeInfo> {
        use openraft::rt::watch::WatchReceiver;
        let m = self.metrics.borrow_watched();
        let leader = m.current_leader.filter(|&id| id != self.id)?;
        m.membership_config.membership().get_node(&leader).cloned()
    }

    /// After a refusal that named no usable leader: waits (until `deadline`) for one to be
    /// known, then a moment more, because the metrics can name a new leader before Raft's
    /// core acts on it (retrying at once would be refused again). False once `deadline` passed.
    async fn await_leader(&self, deadline: tokio::time::Instant) -> bool {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = self.raft.wait(Some(left)).metrics(|m| m.current_leader.is_some(), "a leader").await;
        tokio::time::sleep(LEADER_RETRY_PAUSE.min(left)).await;
        tokio::time::Instant::now() < deadline
    }

    /// Counts an operation of the group (`super::quiesce`); on a quiet leader, restarts its
    /// ticks and renews its lease (one heartbeat round) before the caller goes on: openraft
    /// refuses the writes of a leader whose lease ran out. A quiet follower stays quiet: its
    /// operation reaches the leader, whose heartbeats it answers.
    async fn touch(&self) {
        if !self.quiet.count() {
            return;
        }
        let leads = {
            use openraft::rt::watch::WatchReceiver;
            self.metrics.borrow_watched().current_leader == Some(self.id)
        };
        if leads {
            self.quiet.wake(&self.raft);
            let renew = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
            let _ = tokio::time::timeout(self.timeouts.read, renew).await;
        }
    }

    async fn write(&self, batch: WriteBatch, may_forward: bool) -> Frame {
        if may_forward {
            // A follower that knows the leader forwards at once instead of learning it from a
            // refused proposal (one pass through Raft's core less per write).
            if let Some(leader) = self.known_leader() {
                return self.forward_write(&leader, batch).await;
            }
        }
        self.touch().await;
        // One clock read for the first attempt (they cost ~1% of a write's CPU).
        let mut now = tokio::time::Instant::now();
        let leader_deadline = now + self.timeouts.leader_wait;
        // Shared with the proposal (a retry or a forward needs it after a refusal).
        let batch = Arc::new(batch);
        loop {
            let deadline = now + self.timeouts.write;
            let err = match self.proposer.propose(batch.clone(), deadline).await {
                Ok(Ok(reply)) => return reply,
                Err(NoOutcome::TimedOut) => {
                    return unknown_write("TRYAGAIN write timed out; it may or may not have been applied".into())
                }
                Err(NoOutcome::Stopped) => {
                    return unknown_write(
                        "TRYAGAIN the node is stopping; the write may or may not have been applied".into(),
                    )
                }
                Ok(Err(e)) => e,
            };
            match err {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                    // Not proposed, so retrying is safe while an election settles.
                    let no_leader = f.leader_id.is_none_or(|id| id == self.id);
                    if no_leader && self.await_leader(leader_deadline).await {
                        now = tokio::time::Instant::now();
                        continue;
                    }
                    if let (true, Some(id), Some(node)) = (may_forward, f.leader_id, &f.leader_node) {
                        if id != self.id {
                            // The refused proposal has let go of its share by now.
                            let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
                            return self.forward_write(node, batch).await;
                        }
                    }
                    return not_leader(f.leader_id, f.leader_node.as_ref());
                }
                RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => {
                    return unknown_write("TRYAGAIN leader changed; the write may or may not have been applied".into())
                }
                RaftError::APIError(e) => return Frame::error(format!("ERR raft: {e}")),
                RaftError::Fatal(e) => {
                    return unknown_write(format!(
                        "TRYAGAIN raft stopped ({e}); the write may or may not have been applied"
                    ))
                }
            }
        }
    }

    /// Waits until reading the local state is linearizable: joins the next ReadIndex round,
    /// shared with every read that waits at the same moment (see [`ReadBatcher`]).
    async fn linearize(&self) -> Result<(), Refusal> {
        let core = self.clone();
        let round = move || {
            let core = core.clone();
            async move { core.read_barrier().await }
        };
        let outcome = self.reads.wait(round).await;
        outcome.unwrap_or_else(|| Err(Refusal::Reply(Frame::error("CLUSTERDOWN read barrier abandoned"))))
    }

    /// One ReadIndex round: leadership confirmed by a quorum, then the state machine caught up
    /// to the read index.
    async fn read_barrier(&self) -> Result<(), Refusal> {
        if self.skips_read_index().await {
            return Ok(());
        }
        self.touch().await;
        let leader_deadline = tokio::time::Instant::now() + self.timeouts.leader_wait;
        let mut deadline = tokio::time::Instant::now() + self.timeouts.read;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let res = if bugs::enabled(Bug::ReadBeforeApply) {
                let linearizer = self.raft.get_read_linearizer(ReadPolicy::ReadIndex);
                tokio::time::timeout(left, linearizer).await.map(|r| r.map(|_| ()))
            } else {
                let barrier = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
                tokio::time::timeout(left, barrier).await.map(|r| r.map(|_| ()))
            };
            let err = match res {
                Ok(Ok(())) => return Ok(()),
                Err(_) => return Err(Refusal::Reply(Frame::error("CLUSTERDOWN read barrier timed out"))),
                Ok(Err(e)) => e,
            };
            return Err(match err {
                RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
                    let no_leader = f.leader_id.is_none_or(|id| id == self.id);
                    if no_leader && self.await_leader(leader_deadline).await {
                        deadline = tokio::time::Instant::now() + self.timeouts.read;
                        continue;
                    }
                    match (f.leader_id, f.leader_node) {
                        (Some(id), Some(node)) if id != self.id => return self.follower_barrier(node, deadline).await,
                        (id, node) => Refusal::Reply(not_leader(id, node.as_ref())),
                    }
                }
                // No quorum acknowledged the round within openraft's wait (one leader lease):
                // slow followers or a partition. Ask again until the deadline.
                RaftError::APIError(LinearizableReadError::QuorumNotEnough(e))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!("read barrier: {e}; retrying");
                    continue;
                }
                RaftError::APIError(e) => Refusal::Reply(Frame::error(format!("CLUSTERDOWN {e}"))),
                RaftError::Fatal(e) => Refusal::Reply(Frame::error(format!("CLUSTERDOWN raft stopped: {e}"))),
            });
        }
    }

    /// A follower's read barrier (Raft's follower read): the leader confirms its leadership
    /// and names a read index, then this node waits until its own state machine has applied
    /// that far; its copy then holds every write acknowledged before the read began. When the
    /// leader gives no index, or this node does not catch up within [`FOLLOWER_CATCH_UP`] (it
    /// lags, or waits for a snapshot), the read is forwarded to the leader instead.
    async fn follower_barrier(&self, leader: NodeInfo, deadline: tokio::time::Instant) -> Result<(), Refusal> {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let index = match self.pool.get(&leader.raft_addr).read_index(self.group, left).await {
            Ok(index) => index,
            Err(e) => {
                tracing::debug!("read index from the leader: {e}; forwarding the read");
                return Err(Refusal::Leader(leader));
            }
        };
        if bugs::enabled(Bug::ReadBeforeApply) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now()).min(FOLLOWER_CATCH_UP);
        match self.raft.wait(Some(left)).applied_index_at_least(Some(index), "the read index").await {
            Ok(_) => Ok(()),
            Err(_) => Err(Refusal::Leader(leader)),
        }
    }

    /// The planted bug SkipReadIndex (simulation only): a node that believes it leads answers
    /// reads without confirming its leadership with a quorum.
    async fn skips_read_index(&self) -> bool {
        bugs::enabled(Bug::SkipReadIndex) && self.raft.current_leader().await == Some(self.id)
    }

    /// On the leader, for a follower's read: confirms leadership with a quorum (one ReadIndex
    /// round) and returns the index to have applied.
    async fn leader_read_index(&self) -> Result<u64, HandlerError> {
        if self.skips_read_index().await {
            use openraft::rt::watch::WatchReceiver;
            // A (maybe deposed) leader's own applied index, unconfirmed.
            let applied = self.metrics.borrow_watched().last_applied.as_ref().map_or(0, |l| l.index);
            return Ok(applied);
        }
        self.touch().await;
        let linearizer = self.raft.get_read_linearizer(ReadPolicy::ReadIndex);
        match tokio::time::timeout(self.timeouts.read, linearizer).await {
            Ok(Ok(linearizer)) => Ok(linearizer.read_log_id().index()),
            Ok(Err(e)) => Err(HandlerError::new(format!("no read index: {e}"))),
            Err(_) => Err(HandlerError::new("no read index: timed out")),
        }
    }

    /// Sends a command to the leader and relays its reply.
    async fn forward(&self, leader: &NodeInfo, req: ForwardRequest) -> Frame {
        let write = req.flags.is_write();
        let client = self.pool.get(&leader.raft_addr);
        let timeout = if write { self.timeouts.forwarded_write() } else { self.timeouts.write };
        forwarded_reply(client.forward(self.group, req, timeout).await, write)
    }

    /// Sends a write batch to the leader and relays its reply: a single command as a plain
    /// forwarded command, several (a pipeline's, a transaction) as one forwarded batch.
    async fn forward_write(&self, leader: &NodeInfo, batch: WriteBatch) -> Frame {
        let WriteBatch { db, cmds, transaction, .. } = batch;
        if transaction.is_none() && cmds.len() == 1 {
            let argv = cmds.into_iter().next().unwrap_or_default();
            return self.forward(leader, ForwardRequest { db, argv, flags: ForwardFlags::WRITE }).await;
        }
        let client = self.pool.get(&leader.raft_addr);
        forwarded_reply(
            client
                .forward_batch(self.group, ForwardBatch { db, cmds, transaction }, self.timeouts.forwarded_write())
                .await,
            true,
        )
    }

    /// Runs a write batch a follower forwarded here, with this node's clock and seed. Never
    /// forwards again. Outside a transaction only write commands may come this way.
    async fn serve_forwarded_batch(&self, req: ForwardBatch) -> Result<Frame, HandlerError> {
        if req.cmds.is_empty() {
            return Err(HandlerError::new("empty forwarded batch"));
        }
        if req.transaction.is_none() {
            for argv in &req.cmds {
                let spec = argv.first().and_then(|name| crate::cmd::lookup(name));
                if !spec.is_some_and(|s| matches!(s.kind, Kind::Write(_))) {
                    return Err(HandlerError::new("a forwarded batch outside a transaction holds only writes"));
                }
            }
        }
        let now_ms = crate::server::now_ms();
        let seed = self.rng.lock().unwrap_or_else(|p| p.into_inner()).next_u64();
        let batch = WriteBatch { db: req.db, now_ms, seed, cmds: req.cmds, transaction: req.transaction };
        Ok(self.write(batch, false).await)
    }

    /// Runs a command a follower forwarded here. Never forwards again: if this node is no
    /// longer the leader the follower gets a definite refusal.
    async fn serve_forwarded(&self, req: ForwardRequest) -> Result<Frame, HandlerError> {
        if req.flags.is_control() {
            return self.serve_forwarded_control(req).await;
        }
        let spec = req
            .argv
            .first()
            .and_then(|name| crate::cmd::lookup(name))
            .ok_or_else(|| HandlerError::new("unknown or missing command"))?;
        let now = crate::server::now_ms();
        let seed = self.rng.lock().unwrap_or_else(|p| p.into_inner()).next_u64();
        match (spec.kind, req.flags.is_write()) {
            (Kind::Write(_), true) => {
                let batch = WriteBatch { db: req.db, now_ms: now, seed, cmds: vec![req.argv], transaction: None };
                Ok(self.write(batch, false).await)
            }
            (Kind::Read(f), false) => match self.linearize().await {
                Ok(()) => Ok(self.run_read(req.db as usize, now, seed, f, &req.argv).await),
                Err(Refusal::Reply(frame)) => Ok(frame),
                Err(Refusal::Leader(_)) => Err(HandlerError::new("not the leader")),
            },
            _ => Err(HandlerError::new(format!("{} cannot be forwarded", spec.name))),
        }
    }
}

impl Core {
    /// Proposes a control entry another member of the group forwarded here, if this node
    /// leads the group (a control entry is never forwarded twice).
    async fn serve_forwarded_control(&self, req: ForwardRequest) -> Result<Frame, HandlerError> {
        let control: super::Control = req
            .argv
            .first()
            .and_then(|b| postcard::from_bytes(b).ok())
            .ok_or_else(|| HandlerError::new("bad forwarded control entry"))?;
        if self.raft.current_leader().await != Some(self.id) {
            return Err(HandlerError::new("not the leader"));
        }
        let proposal = self.raft.client_write(super::Request::Control(Arc::new(control)));
        match tokio::time::timeout(self.timeouts.write, proposal).await {
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(HandlerError::new(e.to_string())),
            Err(_) => Err(HandlerError::new("timed out")),
        }
    }
}

/// Keeps the log syncing in the runtime's idle time exactly while this node is the only
/// member (voter or learner) of its group: with peers, the runtime must go on replicating
/// while a sync runs. Follows membership through the server metrics, which change only with
/// leadership and membership (nothing per write); ends when Raft does.
fn spawn_sync_mode(raft: Raft<TypeConfig, StateMachine>, idle_sync: IdleSync) {
    use openraft::rt::watch::WatchReceiver;
    tokio::spawn(async move {
        let mut metrics = raft.server_metrics();
        loop {
            let alone = {
                let m = metrics.borrow_watched();
                m.membership_config.membership().nodes().map(|(id, _)| *id).eq([m.id])
            };
            idle_sync.set(alone);
            if metrics.changed().await.is_err() {
                idle_sync.set(false);
                return;
            }
        }
    });
}

/// Every [`RECONCILE_EVERY`], cancels through the log this node's waiters that no client here
/// waits for any more: left by an earlier run of the node, or by a client that disconnected or
/// gave up while the cluster could not confirm its timeout. Without it such a waiter could be
/// served an element nobody receives. Ends with the node's RPC server.
fn spawn_reconcile(core: Core, waiters: Arc<Waiters>, mut stop: crate::rt::ShutdownSignal) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = stop.wait() => return,
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
            }
            let held = {
                // Skipped while a script's apply holds the state (the runtime must not block).
                let Ok(st) = core.state.try_read() else { continue };
                if st.keyspace.blocked.is_empty() {
                    continue;
                }
                st.keyspace.blocked.held_by(core.id)
            };
            let orphans = waiters.orphans(held);
            if orphans.is_empty() {
                continue;
            }
            let argv = crate::cmd::blocking::unblock_argv(crate::cmd::blocking::UnblockReason::Cancel, &orphans);
            let seed = core.rng.lock().unwrap_or_else(|p| p.into_inner()).next_u64();
            let batch =
                WriteBatch { db: 0, now_ms: crate::server::now_ms(), seed, cmds: vec![argv], transaction: None };
            let reply = core.write(batch, true).await;
            tracing::debug!(orphans = orphans.len(), ?reply, "cancelled orphaned blocked commands");
        }
    });
}

/// The client's reply for a forwarding attempt: the leader's reply, or why there is none.
fn forwarded_reply(res: Result<Frame, super::rpc::RpcError>, write: bool) -> Frame {
    match res {
        Ok(frame) => frame,
        Err(e) if write && e.outcome_unknown() => {
            unknown_write(format!("TRYAGAIN forwarded write got no reply ({e}); it may or may not have been applied"))
        }
        Err(e) => Frame::error(format!("CLUSTERDOWN forwarding to the leader failed: {e}")),
    }
}

/// The reply to a write whose outcome is unknown: `-TRYAGAIN` (`msg`), or a planted bug's
/// wrong answer in a simulation that switched one on.
fn unknown_write(msg: String) -> Frame {
    if bugs::enabled(Bug::OkOnDroppedWrite) {
        return Frame::ok();
    }
    if bugs::enabled(Bug::ClusterdownOnUnknownWrite) {
        return Frame::error("CLUSTERDOWN (planted bug) an unknown outcome reported as not done");
    }
    Frame::error(msg)
}

fn not_leader(leader: Option<NodeId>, node: Option<&NodeInfo>) -> Frame {
    match (leader, node) {
        (Some(id), Some(n)) => {
            Frame::error(format!("CLUSTERDOWN not the leader; the leader is node {id} at {}", n.client_addr))
        }
        (Some(id), None) => Frame::error(format!("CLUSTERDOWN not the leader; the leader is node {id}")),
        _ => Frame::error("CLUSTERDOWN no leader elected"),
    }
}

/// Serves the RPC port on top of the Raft handle.
/// The leader `core`'s metrics name (`info`: this node's addresses) and how to reach it.
fn leader_info(core: &Core, info: &NodeInfo) -> Option<(NodeId, NodeInfo)> {
    use openraft::rt::watch::WatchReceiver;
    let m = core.metrics.borrow_watched();
    let leader = m.current_leader?;
    if leader == core.id {
        return Some((leader, info.clone()));
    }
    m.membership_config.membership().get_node(&leader).map(|n| (leader, n.clone()))
}

struct Handler {
    core: Core,
    snapshots: SnapshotDir,
    /// This node's addresses, for [`RpcHandler::node_info`].
    info: NodeInfo,
    http: HttpSlot,
    broadcast: Arc<Broadcast>,
}

impl Handler {
    fn check_group(&self, group: u64) -> Result<(), HandlerError> {
        if group == self.core.group {
            Ok(())
        } else {
            Err(HandlerError::new(format!("unknown raft group {group}")))
        }
    }
}

fn raft_err(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new(e)
}

impl RpcHandler for Handler {
    async fn append_entries(
        &self,
        group: u64,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<TypeConfig>, HandlerError> {
        self.check_group(group)?;
        // Entries mean the group is in use again (and may change its membership, e.g. remove
        // its leader): a quiet member's timers run again once it has taken them, so that its
        // election timer starts from this contact with the leader (`super::quiesce`).
        let entries = !req.entries.is_empty();
        let reply = self.core.raft.append_entries(req).await.map_err(raft_err);
        if entries {
            self.core.quiet.wake(&self.core.raft);
        }
        reply
    }

    async fn vote(&self, group: u64, req: VoteRequest<TypeConfig>) -> Result<VoteResponse<TypeConfig>, HandlerError> {
        self.check_group(group)?;
        // Someone campaigns: this member's timers must run (`super::quiesce`).
        self.core.quiet.wake(&self.core.raft);
        self.core.raft.vote(req).await.map_err(raft_err)
    }

    async fn pre_vote(
        &self,
        group: u64,
        req: VoteRequest<TypeConfig>,
    ) -> Result<VoteResponse<TypeConfig>, HandlerError> {
        self.check_group(group)?;
        self.core.quiet.wake(&self.core.raft);
        self.core.raft.pre_vote(req).await.map_err(raft_err)
    }

    async fn transfer_leader(
        &self,
        group: u64,
        req: TransferLeaderRequest<TypeConfig>,
    ) -> Result<TransferLeaderResponse<TypeConfig>, HandlerError> {
        self.check_group(group)?;
        self.core.quiet.wake(&self.core.raft);
        self.core.raft.handle_transfer_leader(req).await.map_err(raft_err)
    }

    async fn begin_snapshot(&self, group: u64) -> Result<SnapshotFile, HandlerError> {
        self.check_group(group)?;
        self.snapshots.begin_receiving().map_err(raft_err)
    }

    async fn install_snapshot(
        &self,
        group: u64,
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
        file: SnapshotFile,
    ) -> Result<SnapshotResponse<TypeConfig>, HandlerError> {
        self.check_group(group)?;
        let snapshot = openraft::storage::Snapshot { meta, snapshot: file };
        self.core.raft.install_full_snapshot(vote, snapshot).await.map_err(raft_err)
    }

    async fn forward(&self, group: u64, req: ForwardRequest) -> Result<Frame, HandlerError> {
        self.check_group(group)?;
        self.core.serve_forwarded(req).await
    }

    async fn membership(
        &self,
        group: u64,
        op: super::membership::MembershipOp,
    ) -> Result<Result<(), super::membership::MembershipError>, HandlerError> {
        self.check_group(group)?;
        self.core.touch().await;
        Ok(super::membership::run_on_leader(&self.core.raft, &op).await)
    }

    async fn quiesce(&self, group: u64, req: quiesce::QuiesceRequest) -> Result<bool, HandlerError> {
        self.check_group(group)?;
        let agreed = self.core.quiescing && {
            use openraft::rt::watch::WatchReceiver;
            quiesce::may_quiesce(&self.core.metrics.borrow_watched(), &req)
        };
        if agreed {
            self.core.quiet.sleep(&self.core.raft);
        }
        Ok(agreed)
    }

    async fn read_index(&self, group: u64) -> Result<u64, HandlerError> {
        self.check_group(group)?;
        self.core.leader_read_index().await
    }

    async fn node_info(&self, group: u64) -> Result<(NodeId, NodeInfo), HandlerError> {
        self.check_group(group)?;
        Ok((self.core.id, self.info.clone()))
    }

    async fn leader(&self, group: u64) -> Result<Option<(NodeId, NodeInfo)>, HandlerError> {
        self.check_group(group)?;
        Ok(leader_info(&self.core, &self.info))
    }

    async fn forward_batch(&self, group: u64, req: ForwardBatch) -> Result<Frame, HandlerError> {
        self.check_group(group)?;
        self.core.serve_forwarded_batch(req).await
    }

    fn publish(&self, group: u64, msgs: Vec<PubMessage>) {
        if self.check_group(group).is_ok() {
            self.broadcast.deliver(msgs);
        }
    }

    async fn serve_http(&self, stream: SniffedStream) {
        // Cloned out of the slot so the connection does not borrow the handler.
        let service = self.http.get().cloned();
        match service {
            Some(service) => service.serve(stream).await,
            None => tracing::debug!("http connection on the rpc port before the admin api is up; closed"),
        }
    }
}
