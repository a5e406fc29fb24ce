//! On a data group's leader: moves the group's Raft membership to the voters the cluster map
//! names for it (placement, `super::placement`), then removes the map's record of the move.
//!
//! Each step is checked against the membership Raft has now, so whoever leads the group next
//! repeats only what is left: new nodes join as learners, become voters once they have caught
//! up with the leader's log (openraft's replication figures, bounded wait; never a sleep),
//! and only then do the replaced voters leave (joint consensus), then stray learners. So a
//! move adds the new replica before it removes the old one, and the group keeps its voter
//! count (or more) throughout.
//!
//! A leader whose copy of MetaRaft lags could drive the group back to an older placement.
//! So before it changes the membership for map epoch `e` the leader writes `e` into the
//! group's own log (an `Own` entry with the same slots), and a leader whose map is older than
//! the epoch the group's log holds waits for its copy to catch up.

use super::groups::Groups;
use super::map::ClusterMap;
use super::mover::propose_to;
use crate::protocol::Frame;
use crate::raft::membership::CATCH_UP_TIMEOUT;
use crate::raft::node::Replica;
use crate::raft::{Control, NodeId};
use std::collections::BTreeSet;

/// Whether group `g`'s Raft membership is the map's (voters, and no other member) and no
/// move of it is recorded.
pub fn settled(replica: &Replica, map: &ClusterMap, g: u64) -> bool {
    let Some(placement) = map.groups.get(&g) else { return true };
    let (voters, members) = replica.membership_ids();
    voters == placement.voters && members == placement.voters && !map.moves.contains_key(&g)
}

/// One step towards the map's placement of group `g`, on its leader (whose slot ownership
/// already follows the map).
pub async fn drive(groups: &Groups, replica: &Replica, map: &ClusterMap, g: u64) {
    let Some(placement) = map.groups.get(&g) else { return };
    let want = &placement.voters;
    let (voters, members) = replica.membership_ids();
    if voters == *want && members == *want {
        if map.moves.contains_key(&g) {
            finish(groups, map, g).await;
        }
        return;
    }
    if !fenced(replica, map, g).await {
        return;
    }
    for id in want.difference(&members) {
        let Some(info) = map.nodes.get(id) else { return };
        if let Err(e) = replica.add_learner(*id, info.clone()).await {
            tracing::debug!(group = g, node = id, "adding a learner: {e}");
            return;
        }
    }
    let result = if !want.is_subset(&voters) {
        // Add first: the new voters join the old ones once they have caught up.
        let all: BTreeSet<NodeId> = voters.union(want).copied().collect();
        replica.promote_voters(all, CATCH_UP_TIMEOUT).await
    } else if voters != *want {
        // Then remove: the replaced voters leave (joint consensus; this node too, if it is one).
        replica.change_membership(want.clone(), false).await
    } else {
        let stray = members.difference(want).next().copied();
        match stray {
            Some(id) => replica.remove_node(id).await,
            None => Ok(()),
        }
    };
    match result {
        Ok(()) => tracing::info!(group = g, voters = ?want, "data group membership changed"),
        Err(e) => tracing::debug!(group = g, "changing the data group's membership: {e}"),
    }
}

/// Whether the group's log holds map epoch `map.epoch` (so no leader with an older map
/// changes the membership again); writes it when it holds an older one.
async fn fenced(replica: &Replica, map: &ClusterMap, g: u64) -> bool {
    let Some(owned) = replica.control().owned else { return false };
    if owned.epoch > map.epoch {
        // This node's copy of MetaRaft is behind the group's: wait for it.
        return false;
    }
    if owned.epoch == map.epoch {
        return true;
    }
    let own = Control::Own { epoch: map.epoch, ranges: owned.ranges };
    match replica.propose_control(own).await {
        Ok(Frame::Error(e)) => tracing::debug!(group = g, "recording the map epoch: {}", String::from_utf8_lossy(&e)),
        Ok(_) => return replica.control().owned.is_some_and(|o| o.epoch == map.epoch),
        Err(e) => tracing::debug!(group = g, "recording the map epoch: {e}"),
    }
    false
}

/// Removes group `g`'s move record from MetaRaft's map (compare-and-set).
async fn finish(groups: &Groups, map: &ClusterMap, g: u64) {
    let mut next = map.clone();
    next.moves.remove(&g);
    next.epoch = map.epoch + 1;
    let control = Control::SetMap { expect: map.epoch, epoch: next.epoch, map: next.encode() };
    match propose_to(groups, 0, &control).await {
        Ok(Frame::Error(e)) => {
            tracing::debug!(group = g, "recording the finished move: {}", String::from_utf8_lossy(&e))
        }
        Ok(_) => tracing::info!(group = g, epoch = next.epoch, "replica move finished"),
        Err(e) => tracing::debug!(group = g, "recording the finished move: {e}"),
    }
}
