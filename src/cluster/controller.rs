//! The placement controller of a multi-raft cluster. Every node runs it; each part acts only
//! where this node leads:
//!
//! - **MetaRaft's leader** keeps the cluster map ([`ClusterMap`]) in step with MetaRaft's
//!   voters: it writes the first map (every data group founded on itself alone, the slots in
//!   even ranges), then adds nodes that became voters and fills the data groups' voters up to
//!   `group-replicas` (compare-and-set entries in MetaRaft's log).
//! - **A data group's leader** makes its group match the map: adds the voters the map names
//!   (as learners first, promoted once caught up, through openraft) and writes the slots the
//!   map gives the group into the group's own log (`raft::Control::Own`), which is what its
//!   state machine fences writes with.
//! - **The founder** (the only voter the first map gives a group) initializes that group's
//!   Raft when it has never been initialized.
//! - **Leader balance**: a data group's leader hands leadership (`transfer_leader`) to the
//!   group's preferred leader ([`ClusterMap::preferred_leaders`]: every node leads floor or
//!   ceil of N/n groups) once that node is a voter and has acknowledged the whole log, so a
//!   node that comes back after a crash gets its groups back within a few ticks.
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
use crate::raft::membership::CATCH_UP_TIMEOUT;
use crate::raft::node::Replica;
use crate::raft::{Control, NodeId, NodeInfo};
use crate::rt::ShutdownSignal;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
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
    for g in groups.data.keys().copied() {
        let groups = groups.clone();
        let last_transfer = Arc::new(Mutex::new(None));
        every_tick(stop(), move || {
            let (groups, last_transfer) = (groups.clone(), last_transfer.clone());
            async move { group_round(&groups, g, &last_transfer).await }
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

/// MetaRaft's voters and their addresses, as this node knows them.
fn meta_voters(meta: &Replica) -> BTreeMap<NodeId, NodeInfo> {
    let (voters, _) = meta.membership_ids();
    meta.status()
        .members
        .into_iter()
        .filter(|m| voters.contains(&m.id))
        .map(|m| (m.id, NodeInfo { raft_addr: m.raft_addr, client_addr: m.client_addr }))
        .collect()
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
        Some(map) => match map.with_nodes(&meta_voters(meta)) {
            Some(next) => (map.epoch, next),
            None => return,
        },
    };
    let control = Control::SetMap { expect, epoch: next.epoch, map: next.encode() };
    match meta.propose_control(control).await {
        Ok(reply) => tracing::info!(epoch = next.epoch, ?reply, "cluster map proposed"),
        Err(e) => tracing::debug!("proposing the cluster map: {e}"),
    }
}

/// Data group `g`: found it, or (on its leader) drive its voters, ownership and leader to
/// the map.
async fn group_round(groups: &Groups, g: u64, last_transfer: &Mutex<Option<tokio::time::Instant>>) {
    let (Some(map), Some(replica)) = (groups.map(), groups.group(g)) else { return };
    let Some(placement) = map.groups.get(&g) else { return };
    if placement.voters.len() == 1 && placement.voters.contains(&groups.id) && !replica.is_member() {
        found(replica).await;
        return;
    }
    if replica.leader_info().is_none_or(|(id, _)| id != groups.id) {
        return;
    }
    drive_voters(replica, &map, &placement.voters).await;
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
    super::mover::drive(groups, g).await;
    balance(replica, &map, g, last_transfer).await;
}

/// Least time between two leadership transfers of one group (a transfer takes an election).
const TRANSFER_PAUSE: Duration = Duration::from_secs(2);

/// On data group `g`'s leader: hands leadership to the group's preferred leader if that is
/// another voter that has the whole log.
async fn balance(replica: &Replica, map: &ClusterMap, g: u64, last_transfer: &Mutex<Option<tokio::time::Instant>>) {
    let Some(&preferred) = map.preferred_leaders().get(&g) else { return };
    if preferred == replica.id() || !replica.membership_ids().0.contains(&preferred) || !replica.caught_up(preferred) {
        return;
    }
    let now = tokio::time::Instant::now();
    {
        let mut last = last_transfer.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < TRANSFER_PAUSE) {
            return;
        }
        *last = Some(now);
    }
    match replica.transfer_leader(preferred).await {
        Ok(()) => tracing::info!(group = g, to = preferred, "leadership handed to the preferred leader"),
        Err(e) => tracing::debug!(group = g, "transferring leadership: {e}"),
    }
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

/// On a data group's leader: adds the map's voters that are not members yet as learners,
/// then makes the map's voters the voters once they have caught up.
async fn drive_voters(replica: &Replica, map: &ClusterMap, want: &BTreeSet<NodeId>) {
    let (voters, members) = replica.membership_ids();
    if voters == *want {
        return;
    }
    for id in want.difference(&members) {
        let Some(info) = map.nodes.get(id) else { return };
        if let Err(e) = replica.add_learner(*id, info.clone()).await {
            tracing::debug!(group = replica.group(), node = id, "adding a learner: {e}");
            return;
        }
    }
    if !voters.is_subset(want) {
        // The map never takes voters away (moving replicas is not built yet).
        return;
    }
    match replica.promote_voters(want.clone(), CATCH_UP_TIMEOUT).await {
        Ok(()) => tracing::info!(group = replica.group(), voters = ?want, "data group voters changed"),
        Err(e) => tracing::debug!(group = replica.group(), "promoting voters: {e}"),
    }
}
