//! The placement controller of a multi-raft cluster. Every node runs it; each part acts only
//! where this node leads:
//!
//! - **MetaRaft's leader** keeps the cluster map ([`ClusterMap`]) in step with MetaRaft's
//!   voters: it writes the first map (every data group founded on itself alone, the slots in
//!   even ranges), then places replicas ([`super::placement`]: new nodes get an even share,
//!   leaving nodes hand theirs over) by compare-and-set entries in MetaRaft's log, and removes
//!   a leaving node from MetaRaft once it holds no replica. A node MetaRaft dropped while it
//!   held replicas is added back as a learner of MetaRaft, so that it keeps following the map
//!   (which now moves its replicas away) until it holds none.
//! - **A data group's leader** makes its group match the map: writes the slots the map gives
//!   the group into the group's own log (`raft::Control::Own`), which is what its state
//!   machine fences writes with, then moves the group's membership to the map's voters
//!   ([`super::replicas`]: add as learner, catch up, promote, then remove the replaced ones).
//! - **The founder** (the only voter the first map gives a group) initializes that group's
//!   Raft when it has never been initialized.
//! - **Leader balance**: a data group's leader hands leadership (`transfer_leader`) to a
//!   caught-up voter when that evens out the numbers of groups the nodes lead
//!   ([`super::balance`]: every node ends with floor or ceil of N/n groups, and no transfer
//!   is ever undone), so a node that comes back after a crash gets groups back within a few
//!   seconds.
//!
//! - **Slot migrations** out of a data group are driven by that group's leader
//!   ([`super::mover`]).
//!
//! Each group has its own task, so a slow catch-up in one never delays another. The tasks
//! look every [`TICK`]; every change they make goes through a log, so a controller that dies
//! half-way leaves nothing the next leader cannot finish.

use super::groups::Groups;
use super::map::ClusterMap;
use crate::raft::control::Ownership;
use crate::raft::node::Replica;
use crate::raft::{Control, NodeId, NodeInfo};
use crate::rt::ShutdownSignal;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often each controller task looks at its group.
pub const TICK: Duration = Duration::from_millis(100);

/// Spawns the controller tasks of this node (one for MetaRaft, one per data group); they end
/// with `stop`.
pub fn spawn(groups: Arc<Groups>, num_groups: u32, stop: &impl Fn() -> ShutdownSignal) {
    let meta_groups = groups.clone();
    let warned = Arc::new(AtomicBool::new(false));
    every_tick(stop(), move || {
        let (groups, warned) = (meta_groups.clone(), warned.clone());
        async move { meta_round(&groups, num_groups, &warned).await }
    });
    let handed = Arc::new(Mutex::new(Vec::new()));
    for g in groups.data.keys().copied() {
        let groups = groups.clone();
        let task = Arc::new(GroupTask { node_transfer: handed.clone(), ..GroupTask::default() });
        every_tick(stop(), move || {
            let (groups, task) = (groups.clone(), task.clone());
            async move { group_round(&groups, g, &task).await }
        });
    }
}

fn every_tick<F, Fut>(mut stop: ShutdownSignal, round: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = stop.wait() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            round().await;
        }
    });
}

/// MetaRaft's voters with their addresses, and all its members (voters and learners), as
/// this node knows them: from one reading of the membership, so that a voter can never be
/// missing from the voters while present among the members (placement would take it for a
/// node MetaRaft dropped).
fn meta_nodes(meta: &Replica) -> (BTreeMap<NodeId, NodeInfo>, BTreeSet<NodeId>) {
    use crate::raft::membership::Role;
    let members = meta.status().members;
    let ids = members.iter().map(|m| m.id).collect();
    let voters = members
        .into_iter()
        .filter(|m| m.role == Role::Voter)
        .map(|m| (m.id, NodeInfo { raft_addr: m.raft_addr, client_addr: m.client_addr }))
        .collect();
    (voters, ids)
}

/// On MetaRaft's leader: writes the first map, or the map with new voters placed. On every
/// node: says once, loudly, if the cluster has another number of data groups than this node.
async fn meta_round(groups: &Groups, num_groups: u32, warned: &AtomicBool) {
    let meta = &groups.meta;
    if let Some(map) = groups.map() {
        if map.groups.len() != groups.data.len() && !warned.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "the cluster has {} data groups, this node was started with num-groups {}: it cannot serve the \
                 groups it lacks; restart it with --num-groups {}",
                map.groups.len(),
                groups.data.len(),
                map.groups.len()
            );
        }
    }
    if meta.leader_info().is_none_or(|(id, _)| id != groups.id) {
        return;
    }
    let (expect, next) = match groups.map() {
        None => {
            let me = (groups.id, meta.info().clone());
            (0, ClusterMap::initial(me, num_groups, groups.replicas))
        }
        Some(map) => {
            keep_following(groups, &map).await;
            let (voters, members) = meta_nodes(meta);
            match map.placed(&voters, &members) {
                Some(next) => (map.epoch, next),
                None => return remove_drained(meta, &map).await,
            }
        }
    };
    let control = Control::SetMap { expect, epoch: next.epoch, map: next.encode() };
    match meta.propose_control(control).await {
        Ok(reply) => tracing::info!(epoch = next.epoch, ?reply, "cluster map proposed"),
        Err(e) => tracing::debug!("proposing the cluster map: {e}"),
    }
}

/// On MetaRaft's leader: adds back as a learner of MetaRaft a node that the map still names
/// in a data group but that MetaRaft no longer has (a voter removed without `CLUSTER METARAFT
/// REMOVE`, which moves the replicas first). Such a node may lead a data group: out of
/// MetaRaft it would never see the map that moves its replicas away (it is leaving now) or
/// gives its group more slots, so its group would not follow the map and its routing would
/// send clients back and forth with `-MOVED`. As a learner it follows the committed map
/// again; once its replicas have moved, [`remove_drained`] removes it.
async fn keep_following(groups: &Groups, map: &ClusterMap) {
    let meta = &groups.meta;
    let (_, members) = meta.membership_ids();
    if !members.contains(&groups.id) {
        // A leader that has just removed itself: the next leader does it.
        return;
    }
    let lost = map.nodes.iter().find(|(id, _)| !members.contains(id) && !map.drained(**id));
    let Some((&id, info)) = lost else { return };
    match meta.add_learner(id, info.clone()).await {
        Ok(()) => tracing::info!(node = id, "a node holding replicas is a MetaRaft learner again, to follow the map"),
        Err(e) => tracing::debug!(node = id, "adding back a node holding replicas as a MetaRaft learner: {e}"),
    }
}

/// On MetaRaft's leader: removes from MetaRaft a leaving node whose replicas have all moved
/// (what `CLUSTER METARAFT REMOVE` waits for; done here too so that it completes whoever
/// leads MetaRaft by then).
async fn remove_drained(meta: &Replica, map: &ClusterMap) {
    let (_, members) = meta.membership_ids();
    let Some(&id) = map.leaving.iter().find(|id| members.contains(id) && map.drained(**id)) else { return };
    match meta.remove_node(id).await {
        Ok(()) => tracing::info!(node = id, "leaving node removed from MetaRaft"),
        Err(e) => tracing::debug!(node = id, "removing a leaving node from MetaRaft: {e}"),
    }
}

/// What a group's task keeps between its rounds.
#[derive(Default)]
struct GroupTask {
    /// When this node last handed the group's leadership away.
    last_transfer: Mutex<Option<tokio::time::Instant>>,
    /// The leadership transfers this node started lately (group, to whom, when), shared by
    /// its group tasks: each decides from this node's view of the leaders, which shows a
    /// transfer only once it is done, so without them the tasks would all hand their groups
    /// to the node leading fewest, which would then hand them back (tests/multiraft.rs saw a
    /// node go from three groups to none and back).
    node_transfer: Arc<Mutex<Vec<(u64, NodeId, tokio::time::Instant)>>>,
    /// Since when this node leads the group (as its rounds saw it).
    led_since: Mutex<Option<tokio::time::Instant>>,
    /// Rounds run.
    rounds: AtomicU64,
}

/// Rounds between two questions for the leader of a group this node does not serve (every
/// round while it knows none).
const HINT_ROUNDS: u64 = 10;

/// Data group `g`: found it, learn its leader (where this node does not serve it), or (on its
/// leader) drive its voters, ownership and leader to the map.
async fn group_round(groups: &Groups, g: u64, task: &GroupTask) {
    let (Some(map), Some(replica)) = (groups.map(), groups.group(g)) else { return };
    let Some(placement) = map.groups.get(&g) else { return };
    if placement.voters.len() == 1 && placement.voters.contains(&groups.id) && !replica.is_member() {
        found(replica).await;
        return;
    }
    let round = task.rounds.fetch_add(1, Ordering::Relaxed);
    if !groups.serves(&map, g) {
        if round.is_multiple_of(HINT_ROUNDS) || groups.leader_of(g).is_none() {
            groups.refresh_hint(&map, g).await;
        }
        return;
    }
    if replica.leader_info().is_none_or(|(id, _)| id != groups.id) {
        *lock(&task.led_since) = None;
        return;
    }
    let want = map.ranges_of(g);
    let owned = replica.control().owned;
    if owned.as_ref().map(|o| &o.ranges) != Some(&want) {
        if owned.as_ref().is_some_and(|o: &Ownership| o.epoch >= map.epoch) {
            // This node's copy of the map is older than the group's ownership: writing its
            // slots would give back slots a later map moved away (a slot migration), so
            // wait for the copy to catch up.
            return;
        }
        let epoch = map.epoch;
        match replica.propose_control(Control::Own { epoch, ranges: want }).await {
            Ok(reply) => tracing::info!(group = g, epoch, ?reply, "slot ownership written"),
            Err(e) => tracing::debug!(group = g, "writing slot ownership: {e}"),
        }
        return;
    }
    if !super::replicas::settled(replica, &map, g) {
        super::replicas::drive(groups, replica, &map, g).await;
        return;
    }
    super::mover::drive(groups, g).await;
    balance(groups, replica, &map, g, task).await;
}

/// Least time between two leadership transfers of one group by this node, and least time a
/// node leads a group before it may hand it on (its view of the other groups' leaders, which
/// the decision rests on, settles meanwhile).
const TRANSFER_PAUSE: Duration = Duration::from_secs(2);

/// On data group `g`'s leader: hands leadership to another voter when that evens out the
/// numbers of groups the nodes lead ([`super::balance`]).
async fn balance(groups: &Groups, replica: &Replica, map: &ClusterMap, g: u64, task: &GroupTask) {
    let now = tokio::time::Instant::now();
    let since = *lock(&task.led_since).get_or_insert(now);
    if now.duration_since(since) < TRANSFER_PAUSE
        || lock(&task.last_transfer).is_some_and(|t| now.duration_since(t) < TRANSFER_PAUSE)
    {
        return;
    }
    let Some((to, led)) = decide(groups, replica, map, g, task, now) else { return };
    *lock(&task.last_transfer) = Some(now);
    match replica.transfer_leader(to).await {
        Ok(()) => tracing::info!(group = g, to, ?led, "leadership handed over to even out the leaders"),
        Err(e) => tracing::debug!(group = g, "transferring leadership: {e}"),
    }
}

/// The voter to hand group `g`'s leadership to, with the counts of led groups it was decided
/// from, recorded among the node's started transfers.
fn decide(
    groups: &Groups,
    replica: &Replica,
    map: &ClusterMap,
    g: u64,
    task: &GroupTask,
    now: tokio::time::Instant,
) -> Option<(NodeId, BTreeMap<NodeId, usize>)> {
    let hosts = map.hosts();
    let mut led: BTreeMap<NodeId, usize> = hosts.iter().map(|id| (*id, 0)).collect();
    for h in map.groups.keys() {
        if let Some((id, _)) = groups.leader_of(*h) {
            *led.entry(id).or_default() += 1;
        }
    }
    let (voters, _) = replica.membership_ids();
    let me = replica.id();
    // Held until the decision is recorded (no await meanwhile): the group tasks decide one
    // after the other, each counting the transfers the others started and the view does not
    // show yet.
    let mut started = lock(&task.node_transfer);
    started.retain(|(_, _, at)| now.duration_since(*at) < TRANSFER_PAUSE);
    for (h, to, _) in started.iter() {
        // Still here, or under way (no leader known while the target is elected): count it
        // at its target.
        match groups.leader_of(*h).map(|(id, _)| id) {
            Some(id) if id == me => {
                led.entry(me).and_modify(|n| *n = n.saturating_sub(1));
                *led.entry(*to).or_default() += 1;
            }
            None => *led.entry(*to).or_default() += 1,
            Some(_) => {}
        }
    }
    let candidates: Vec<NodeId> =
        voters.into_iter().filter(|v| *v != me && hosts.contains(v) && replica.caught_up(*v)).collect();
    let view = super::balance::View {
        me,
        led: &led,
        meta_leader: groups.meta.leader_info().map(|(id, _)| id),
        candidates: &candidates,
        preferred: map.preferred_leaders().get(&g).copied(),
        leaving: map.leaving.contains(&me),
    };
    let to = super::balance::target(&view)?;
    started.push((g, to, now));
    Some((to, led))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Initializes a data group of this node alone, if its Raft has never been initialized.
async fn found(replica: &Replica) {
    if replica.raft().is_initialized().await.unwrap_or(true) {
        return;
    }
    let members = BTreeMap::from([(replica.id(), replica.info().clone())]);
    match replica.initialize(members).await {
        Ok(()) => tracing::info!(group = replica.group(), "data group founded"),
        Err(e) => tracing::debug!(group = replica.group(), "founding the data group: {e}"),
    }
}
