//! `start()`: brings a node up (its Raft group, the client listener, background tasks) and
//! returns a handle to stop it. `main` and the simulator both call this; nothing else starts a
//! node.

use crate::config::Config;
use crate::disk::Disk;
use crate::raft::node::{GroupSpec, Replica, ReplicaConfig, ReplicaError, Timeouts};
use crate::server::{self, Shared};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A running node.
pub struct NodeHandle {
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// The extra admin HTTP address (`admin-addr`), if one was configured.
    pub admin_addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    serve: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// The node's Raft group.
    pub fn replica(&self) -> &Arc<Replica> {
        self.shared.engine.replica()
    }

    /// Stops accepting, closes connections, waits for the listener to finish, then stops Raft
    /// (which flushes the log), every group of the node.
    pub async fn shutdown(self) {
        self.shared.shutdown();
        let _ = self.serve.await;
        for replica in self.shared.engine.groups().values() {
            replica.shutdown().await;
        }
    }

    /// Resolves when the node has been asked to stop (SHUTDOWN, signal, or `shutdown`).
    pub async fn stopped(&self) {
        self.shared.shutdown_signal().wait().await;
    }
}

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("cannot open the data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

/// Binds the extra admin address, if one is configured.
async fn bind_admin(addr: &str) -> Result<Option<TcpListener>, StartError> {
    if addr.is_empty() {
        return Ok(None);
    }
    let listener =
        TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr: addr.to_string(), source })?;
    Ok(Some(listener))
}

/// A fatal Raft error (a failed fsync, a storage error) stops Raft; then the whole node stops,
/// rather than answering every request with an error.
///
/// Waits for Raft's core to exit, seen as the close of its server-metrics channel (the core
/// owns the sender). Those metrics change only with leadership and membership, so the wait
/// costs nothing per write, unlike a wait on the full metrics, which change with every commit.
fn spawn_stop_on_raft_failure(replica: Arc<Replica>, shared: Arc<Shared>) {
    use openraft::rt::watch::WatchReceiver;
    tokio::spawn(async move {
        let mut server_metrics = replica.raft().server_metrics();
        while server_metrics.changed().await.is_ok() {}
        if shared.is_shutting_down() {
            return;
        }
        let running_state = replica.raft().metrics().borrow_watched().running_state.clone();
        tracing::error!("raft stopped: {running_state:?}; shutting the node down");
        shared.shutdown();
    });
}

/// Starts a node with `config` on the disk of its data directory ([`crate::disk::node_disk`]).
/// A node that has never been part of a cluster bootstraps itself as a one-member cluster if
/// [`Config::is_bootstrap`], and otherwise waits to be added to one.
pub async fn start(config: Config) -> Result<NodeHandle, StartError> {
    start_after(config, std::future::ready(())).await
}

/// [`start`], with the loading of the data held until `hold` resolves, the client port
/// already answering `-LOADING` meanwhile (`main` holds it for tests of the loading state).
pub async fn start_after(config: Config, hold: impl Future<Output = ()>) -> Result<NodeHandle, StartError> {
    let disk = crate::disk::node_disk(&config.data_dir)
        .map_err(|source| StartError::DataDir { dir: config.data_dir.display().to_string(), source })?;
    let bootstrap = config.is_bootstrap();
    start_on(config, disk, bootstrap, hold).await
}

/// Starts a node on `disk`. With `bootstrap`, a node whose log is empty initializes a
/// one-member cluster of itself; without it, it waits to be added to a cluster (through the
/// Raft handle of an existing member: `add_learner`, `change_membership`).
pub async fn start_with_disk(config: Config, disk: Arc<dyn Disk>, bootstrap: bool) -> Result<NodeHandle, StartError> {
    start_on(config, disk, bootstrap, std::future::ready(())).await
}

/// Binds the client port and serves it at once ([`server::loading`]: `-LOADING` until the
/// node has loaded), then loads the node (after `hold`) and hands the port to the server.
async fn start_on(
    config: Config,
    disk: Arc<dyn Disk>,
    bootstrap: bool,
    hold: impl Future<Output = ()>,
) -> Result<NodeHandle, StartError> {
    let addr = format!("{}:{}", config.bind, config.port);
    let listener = TcpListener::bind(&addr).await.map_err(|source| StartError::Bind { addr: addr.clone(), source })?;
    let client_addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
    let loading = server::loading::Loading::new(&config, client_addr.port());
    let serve = tokio::spawn(server::loading::serve(listener, loading.clone()));
    hold.await;
    match load(config, disk, bootstrap, client_addr).await {
        Ok((shared, admin_addr)) => {
            loading.finish(shared.clone());
            Ok(NodeHandle { client_addr, admin_addr, shared, serve })
        }
        Err(e) => {
            loading.abandon();
            Err(e)
        }
    }
}

/// Opens the node's groups (the log's recovery, the newest snapshot, the replay of committed
/// entries) and builds the server state around them, with the background tasks.
async fn load(
    config: Config,
    disk: Arc<dyn Disk>,
    bootstrap: bool,
    client_addr: SocketAddr,
) -> Result<(Arc<Shared>, Option<SocketAddr>), StartError> {
    let raft_addr = if config.raft_addr.is_empty() { format!("{}:0", config.bind) } else { config.raft_addr.clone() };
    let replica_config = ReplicaConfig {
        id: config.node_id,
        raft_addr,
        client_addr: if config.raft_resp_addr.is_empty() {
            client_addr.to_string()
        } else {
            config.raft_resp_addr.clone()
        },
        databases: config.databases,
        snapshot_logs: config.snapshot_logs,
        heartbeat_ms: config.raft_heartbeat_ms,
        quiesce_ms: config.raft_quiesce_ms,
        election_timeout_min_ms: config.raft_election_timeout_min_ms,
        election_timeout_max_ms: config.raft_election_timeout_max_ms,
        timeouts: Timeouts {
            leader_wait: Duration::from_millis(config.raft_leader_wait_ms),
            write: Duration::from_millis(config.raft_write_timeout_ms),
            read: Duration::from_millis(config.raft_read_timeout_ms),
        },
    };
    // Group 0 (MetaRaft, or the only group), then the data groups of a multi-raft cluster.
    let specs: Vec<GroupSpec> = std::iter::once(GroupSpec { id: 0, fenced: false })
        .chain((1..=u64::from(config.data_groups())).map(|id| GroupSpec { id, fenced: true }))
        .collect();
    let groups = Replica::start_groups(disk, replica_config, &specs).await?;
    let replica = groups[0].clone();
    if bootstrap {
        replica.bootstrap_single().await?;
    }
    let cluster = (groups.len() > 1).then(|| {
        Arc::new(crate::cluster::Groups::new(
            replica.clone(),
            groups[1..].to_vec(),
            config.group_replicas,
            Duration::from_millis(config.raft_leader_wait_ms),
        ))
    });
    if cluster.is_some() {
        // A node joining MetaRaft must run the same data groups.
        replica.set_joiner_groups(u64::from(config.data_groups()));
    }
    let admin_listener = bind_admin(&config.admin_addr).await?;
    let banner = Banner::of(&config, &replica);
    for group in &groups {
        group.set_notify_flags(config.notify_keyspace_events);
    }
    let num_groups = config.data_groups();
    let shared = Shared::new(config, client_addr.port(), groups.clone(), cluster.clone());
    // Every group's keyspace notifications reach this node's subscribers; Pub/Sub between
    // nodes goes through group 0 (every node of the cluster is its member).
    for group in &groups {
        group.set_publish_sink(shared.pubsub.clone());
        group.set_monitor_sink(Arc::new(crate::server::monitor::ScriptLines::of(&shared)));
        group.set_tracking_sink(shared.tracking.clone());
    }
    let admin = crate::admin::Admin::new(&replica, &shared);
    replica.set_http_service(admin.clone());
    let admin_addr =
        admin_listener.and_then(|listener| crate::admin::serve_extra(listener, admin, shared.shutdown_signal()));
    for group in &groups {
        spawn_stop_on_raft_failure(group.clone(), shared.clone());
    }
    if let Some(cluster) = cluster {
        crate::cluster::controller::spawn(cluster, num_groups, &|| shared.shutdown_signal());
    }
    crate::server::spawn_active_expiry(shared.clone());
    banner.log(client_addr, admin_addr);
    Ok((shared, admin_addr))
}

/// The start-up lines, as Redis's: what runs, where, with which data.
struct Banner {
    node_id: u64,
    mode: &'static str,
    raft_addr: String,
    data_dir: String,
    groups: u32,
}

impl Banner {
    fn of(config: &Config, replica: &Replica) -> Self {
        Banner {
            node_id: config.node_id,
            mode: if config.cluster_enabled { "cluster" } else { "standalone" },
            raft_addr: replica.info().raft_addr.clone(),
            data_dir: config.data_dir.display().to_string(),
            groups: 1 + config.data_groups(),
        }
    }

    fn log(&self, client_addr: SocketAddr, admin_addr: Option<SocketAddr>) {
        let version = env!("CARGO_PKG_VERSION");
        tracing::info!(
            "raftis {version} node {} in {} mode: clients on {client_addr}, Raft and HTTP admin on {}{}, data in {}, {} Raft group{}",
            self.node_id,
            self.mode,
            self.raft_addr,
            admin_addr.map(|a| format!(", HTTP admin also on {a}")).unwrap_or_default(),
            self.data_dir,
            self.groups,
            if self.groups == 1 { "" } else { "s" },
        );
        tracing::info!(%client_addr, "raftis ready to accept connections");
    }
}
