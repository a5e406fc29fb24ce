//! The simulated cluster of the chaos scenario: `hosts` simulated hosts, each running a
//! production node (`node::start_with_disk`) on a `SimDisk` the harness owns, so the disk
//! outlives kill, crash and restart. Node 1 bootstraps; `form` makes the first `voters` hosts
//! the voters; the others wait, unstarted as members, until a membership fault adds them.
//! Also the harness's view of each host (up, down, paused) that the fault driver keeps.

use super::tuning::Tuning;
use madsim::runtime::{Handle, NodeHandle as SimNode};
use raftis::cluster::Groups;
use raftis::config::Config;
use raftis::disk::{CrashMode, CrashPoint, Disk, SimDisk, INJECTED_SYNC_FAILURE};
use raftis::raft::node::Replica;
use raftis::raft::NodeInfo;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Where a node's init closure publishes its current incarnation's Raft group (group 0) and,
/// in a sharded run, its groups.
type Slot = Arc<Mutex<Option<Arc<Replica>>>>;
type GroupsSlot = Arc<Mutex<Option<Arc<Groups>>>>;
/// Where node incarnations report what the harness turns into violations.
type Findings = Arc<Mutex<Vec<String>>>;
/// One WAL's segment files (path, contents) in sequence order.
pub type Segments = Vec<(String, Vec<u8>)>;

/// What the harness did to a host last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    Up,
    Down,
    Paused,
}

/// The hosts of one run.
pub struct Cluster {
    handle: Handle,
    hosts: Vec<SimNode>,
    disks: Vec<SimDisk>,
    slots: Vec<Slot>,
    groups: Vec<GroupsSlot>,
    /// Data groups of a sharded run (0: the classic one-group cluster).
    pub num_groups: u32,
    states: Mutex<Vec<HostState>>,
    /// Start failures of node incarnations (a node that cannot open its disk is a finding).
    pub start_errors: Findings,
    /// State a started incarnation found only in the page cache and did not make durable
    /// (recovery must sync what it replays before relying on it).
    pub unsynced_after_start: Findings,
}

/// Every simulated node's client (RESP) port and Raft (internal RPC) port, on its own host.
pub const CLIENT_PORT: u16 = 6379;
pub const RAFT_PORT: u16 = 7000;

/// Host `id`'s IP.
pub fn ip(id: u64) -> String {
    format!("10.0.0.{id}")
}

/// Host `id`'s client (RESP) address.
pub fn client_addr(id: u64) -> std::net::SocketAddr {
    format!("{}:{CLIENT_PORT}", ip(id)).parse().expect("addr")
}

/// The settings of simulated node `id` on host address `ip`: [`CLIENT_PORT`], [`RAFT_PORT`],
/// seeded with its id. The scenarios add what they need on top (`..sim_config(ip, id)`).
pub fn sim_config(ip: &str, id: u64) -> Config {
    Config {
        bind: ip.to_string(),
        port: CLIENT_PORT,
        node_id: id,
        seed: id,
        raft_addr: format!("{ip}:{RAFT_PORT}"),
        // The single-group cluster (group 0 holds every slot) unless a scenario asks for data
        // groups (the sharded chaos runs).
        num_groups: 0,
        ..Config::default()
    }
}

/// How the other nodes reach node `id`.
pub fn node_info(id: u64) -> NodeInfo {
    NodeInfo { raft_addr: format!("{}:{RAFT_PORT}", ip(id)), client_addr: format!("{}:{CLIENT_PORT}", ip(id)) }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    /// Creates `hosts` hosts (ids 1..=hosts); node 1 bootstraps a one-member cluster on its
    /// first start. Every node runs with the settings of `tuning`, and `num_groups` data groups
    /// of three voters (0: one group holds every slot).
    pub fn build(hosts: u64, tuning: Tuning, num_groups: u32) -> Arc<Cluster> {
        let handle = Handle::current();
        let start_errors = Arc::new(Mutex::new(Vec::new()));
        let unsynced_after_start = Arc::new(Mutex::new(Vec::new()));
        let disks: Vec<SimDisk> = (0..hosts).map(|_| SimDisk::new()).collect();
        let slots: Vec<Slot> = (0..hosts).map(|_| Slot::default()).collect();
        let groups: Vec<GroupsSlot> = (0..hosts).map(|_| GroupsSlot::default()).collect();
        let nodes = (1..=hosts)
            .map(|id| {
                let i = id as usize - 1;
                let slots = (slots[i].clone(), groups[i].clone());
                let findings = (start_errors.clone(), unsynced_after_start.clone());
                build_node(&handle, id, disks[i].clone(), slots, (tuning.clone(), num_groups), findings)
            })
            .collect();
        Arc::new(Cluster {
            handle,
            hosts: nodes,
            disks,
            slots,
            groups,
            num_groups,
            states: Mutex::new(vec![HostState::Up; hosts as usize]),
            start_errors,
            unsynced_after_start,
        })
    }

    /// All host ids.
    pub fn ids(&self) -> Vec<u64> {
        (1..=self.hosts.len() as u64).collect()
    }

    /// madsim's id of host `id` (for the network simulator).
    pub fn sim_id(&self, id: u64) -> madsim::task::NodeId {
        self.hosts[id as usize - 1].id()
    }

    /// The current incarnation's Raft group of node `id`, if it is running.
    pub fn replica(&self, id: u64) -> Option<Arc<Replica>> {
        lock(&self.slots[id as usize - 1]).clone()
    }

    /// The current incarnation's groups of node `id` in a sharded run, if it is running.
    pub fn groups(&self, id: u64) -> Option<Arc<Groups>> {
        lock(&self.groups[id as usize - 1]).clone()
    }

    /// What the harness did to host `id` last.
    pub fn state(&self, id: u64) -> HostState {
        lock(&self.states)[id as usize - 1]
    }

    fn set_state(&self, id: u64, s: HostState) {
        lock(&self.states)[id as usize - 1] = s;
    }

    /// Hosts in state `s`.
    pub fn in_state(&self, s: HostState) -> Vec<u64> {
        self.ids().into_iter().filter(|&id| self.state(id) == s).collect()
    }

    /// The node that leads in the highest term among the running ones, as their own metrics say.
    pub fn leader(&self) -> Option<u64> {
        self.in_state(HostState::Up)
            .into_iter()
            .filter_map(|id| {
                let st = self.replica(id)?.status();
                st.is_leader().then_some((st.current_term, id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Members (voters and learners) as the leader sees them, or None without a leader.
    pub fn members(&self) -> Option<(BTreeSet<u64>, BTreeSet<u64>)> {
        let st = self.replica(self.leader()?)?.status();
        let voters = st.members.iter().filter(|m| m.role == raftis::raft::membership::Role::Voter).map(|m| m.id);
        Some((voters.collect(), st.members.iter().map(|m| m.id).collect()))
    }

    /// Makes hosts 1..=voters the voters (node 1 bootstrapped alone); panics if the healthy
    /// fault-free start does not settle within a minute of virtual time.
    pub async fn form(&self, voters: u64) {
        wait_until("node 1 to lead", 60, || self.leader() == Some(1)).await;
        let leader = self.replica(1).expect("node 1");
        for id in 2..=voters {
            wait_until("a node to start", 60, || self.replica(id).is_some()).await;
            leader.add_learner(id, node_info(id)).await.expect("add learner");
        }
        leader.change_membership((1..=voters).collect(), false).await.expect("change membership");
        if self.num_groups > 0 {
            wait_until("the data groups to be placed", 60, || self.groups_placed(voters)).await;
        }
    }

    /// Whether node 1 sees every data group with `voters.min(3)` voters, a leader, and its
    /// slots recorded in its log.
    fn groups_placed(&self, voters: u64) -> bool {
        let Some(groups) = self.groups(1) else { return false };
        let want = voters.min(3) as usize;
        groups.map().is_some_and(|m| m.groups.len() == self.num_groups as usize)
            && groups
                .data
                .values()
                .all(|r| r.membership_ids().0.len() == want && r.leader_info().is_some() && r.control().owned.is_some())
    }

    /// Stops host `id` at once (its tasks vanish; its disk keeps unsynced writes).
    pub fn kill(&self, id: u64) {
        *lock(&self.slots[id as usize - 1]) = None;
        *lock(&self.groups[id as usize - 1]) = None;
        self.handle.kill(self.sim_id(id));
        self.set_state(id, HostState::Down);
    }

    /// Kills host `id` and cuts the power of its disk.
    pub fn crash(&self, id: u64, mode: CrashMode) {
        self.kill(id);
        self.disks[id as usize - 1].crash(mode);
    }

    /// Arms a crash point on host `id`'s disk (see `SimDisk::crash_after`).
    pub fn crash_after(&self, id: u64, point: CrashPoint, skip: u32) {
        self.disks[id as usize - 1].crash_after(point, skip);
    }

    /// Kills host `id` as if only its process had died at the disk's crash point: the machine
    /// stays up, so its page cache keeps every write made before that point.
    pub fn kill_at_crash_point(&self, id: u64) {
        self.kill(id);
        self.disks[id as usize - 1].revive();
    }

    /// Whether host `id`'s disk died at a crash point.
    pub fn disk_is_dead(&self, id: u64) -> bool {
        self.disks[id as usize - 1].is_dead()
    }

    /// The WAL segments (name, page-cache contents) of every Raft group on host `id`'s disk,
    /// by group directory, in sequence order (for the WAL-records check after a run).
    pub fn wal_segments(&self, id: u64) -> Vec<(String, Segments)> {
        let disk = &self.disks[id as usize - 1];
        (0..=u64::from(self.num_groups))
            .filter_map(|g| {
                // The log store's directory (`open_group` in src/raft/node.rs), then its WAL's.
                let dir = format!("{}/log/wal", raftis::raft::node::group_dir(g));
                let mut seqs: Vec<(u64, String)> = disk
                    .list(&dir)
                    .ok()?
                    .into_iter()
                    .filter_map(|n| Some((n.strip_suffix(".wal")?.parse().ok()?, n)))
                    .collect();
                seqs.sort_unstable();
                let files = seqs
                    .into_iter()
                    .filter_map(|(_, name)| {
                        let path = raftis::disk::join(&dir, &name);
                        Some((path.clone(), disk.read(&path).ok()?))
                    })
                    .collect();
                Some((dir, files))
            })
            .collect()
    }

    /// Makes the next `n` syncs of host `id`'s disk fail.
    pub fn fail_syncs(&self, id: u64, n: u64) {
        self.disks[id as usize - 1].fail_next_syncs(n);
    }

    /// Starts a new incarnation of host `id` on its disk.
    pub fn restart(&self, id: u64) {
        *lock(&self.slots[id as usize - 1]) = None;
        *lock(&self.groups[id as usize - 1]) = None;
        // madsim's restart kills the old tasks but, unlike kill, does not close the host's
        // sockets, so the new incarnation could find its ports still bound.
        self.handle.kill(self.sim_id(id));
        self.handle.restart(self.sim_id(id));
        self.set_state(id, HostState::Up);
    }

    pub fn pause(&self, id: u64) {
        self.handle.pause(self.sim_id(id));
        self.set_state(id, HostState::Paused);
    }

    pub fn resume(&self, id: u64) {
        self.handle.resume(self.sim_id(id));
        self.set_state(id, HostState::Up);
    }

    /// Resumes paused hosts and restarts stopped ones (and nodes that stopped themselves on
    /// a failed sync).
    pub fn revive_all(&self) {
        for id in self.ids() {
            // A disk that died at a crash point comes back only through a crash.
            if self.disks[id as usize - 1].is_dead() {
                self.crash(id, CrashMode::LoseUnsynced);
                self.restart(id);
                continue;
            }
            match self.state(id) {
                HostState::Paused => self.resume(id),
                HostState::Down => self.restart(id),
                HostState::Up if self.replica(id).is_none_or(|r| r.has_failed()) => self.restart(id),
                HostState::Up => {}
            }
        }
    }
}

/// Builds node `id` on its host; every incarnation starts on (a clone of) `disk`.
/// With `SIM_TRACE`, says why a node stopped on its own (Raft's fatal error).
fn trace_stop(id: u64, node: &raftis::node::NodeHandle) {
    if std::env::var_os("SIM_TRACE").is_some() {
        use openraft::rt::watch::WatchReceiver;
        let state = node.replica().raft().metrics().borrow_watched().running_state.clone();
        eprintln!("node {id} stopped on its own: {state:?}");
    }
}

fn build_node(
    handle: &Handle,
    id: u64,
    disk: SimDisk,
    (slot, groups_slot): (Slot, GroupsSlot),
    (tuning, num_groups): (Tuning, u32),
    (errors, unsynced): (Findings, Findings),
) -> SimNode {
    // Only the very first incarnation of node 1 may bootstrap.
    let first = Arc::new(AtomicBool::new(id == 1));
    handle
        .create_node()
        .name(format!("node-{id}"))
        .ip(ip(id).parse().expect("ip"))
        .init(move || {
            let (disk, slot, errors, tuning) = (disk.clone(), slot.clone(), errors.clone(), tuning.clone());
            let (groups_slot, unsynced) = (groups_slot.clone(), unsynced.clone());
            let bootstrap = first.swap(false, Ordering::SeqCst);
            async move {
                let base = Config { cluster_enabled: true, num_groups, group_replicas: 3, ..sim_config(&ip(id), id) };
                let config = tuning.apply(base);
                // What a killed incarnation left only in the page cache: once started, the node
                // may rely on it, so recovery must have made it durable (else a power cut now
                // takes back what it acknowledged or voted for).
                let left_over = disk.unsynced();
                match start(config, disk.clone(), bootstrap).await {
                    Ok(node) => {
                        let relied = disk.still_unsynced(&left_over);
                        if !relied.is_empty() {
                            lock(&unsynced).push(format!("node {id} started on unsynced state: {}", relied.join("; ")));
                        }
                        *lock(&slot) = Some(node.replica().clone());
                        *lock(&groups_slot) = node.shared.cluster.clone();
                        node.stopped().await;
                        trace_stop(id, &node);
                        // Stopped on its own (a failed sync): the harness restarts it later.
                        *lock(&slot) = None;
                        *lock(&groups_slot) = None;
                        node.shutdown().await;
                    }
                    // The fault `FailSync` hit the sync a starting node makes of the log it
                    // recovered: refusing to start is what it must do, and the fault's undo
                    // (or the heal) restarts it on a crashed disk. Any other error is a finding.
                    Err(e) if e.contains(INJECTED_SYNC_FAILURE) => {
                        if std::env::var_os("SIM_TRACE").is_some() {
                            eprintln!("node {id} refused to start on the injected sync failure: {e}");
                        }
                    }
                    Err(e) => lock(&errors).push(format!("node {id} failed to start: {e}")),
                }
            }
        })
        .build()
}

/// Starts the node, retrying for a while if its ports are still bound: the sockets of a killed
/// incarnation are released when madsim drops its tasks, which may be a moment later.
async fn start(config: Config, disk: SimDisk, bootstrap: bool) -> Result<raftis::node::NodeHandle, String> {
    let mut tries = 0;
    loop {
        match raftis::node::start_with_disk(config.clone(), Arc::new(disk.clone()), bootstrap).await {
            Ok(node) => return Ok(node),
            Err(e) if tries < 50 && e.to_string().contains("in use") => tries += 1,
            Err(e) => return Err(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `f` every 50 ms of virtual time until it holds; panics after `secs` virtual seconds.
pub async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
