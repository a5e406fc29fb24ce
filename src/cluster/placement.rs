//! Placement: which nodes are each data group's voters, as a pure function of the cluster map
//! and MetaRaft's voters ([`ClusterMap::placed`]). MetaRaft's leader writes the result into
//! the map (a compare-and-set `SetMap`); each data group's leader then moves the group's Raft
//! membership there (`super::replicas`). The same inputs give the same map on any node.
//!
//! Rules, in order (one step per map change, so that every change is small and resumable):
//! 1. Nodes: MetaRaft's voters are the nodes (addresses updated). A node that is no longer a
//!    MetaRaft voter but still holds replicas is treated as leaving, and recorded as `dropped`
//!    (MetaRaft's leader keeps it a learner of MetaRaft meanwhile, so that it follows the map
//!    that moves its replicas: see `super::controller`); one that holds none is dropped from
//!    the map, unless it is leaving and still a MetaRaft member (the leader removes it from
//!    MetaRaft first, as a decommissioned node). A dropped node that is a MetaRaft voter again
//!    stops leaving: a voter leaves only by `CLUSTER METARAFT REMOVE` (`with_leaving`), never
//!    because one reading of MetaRaft's voters missed it.
//! 2. Evacuation: every replica on a leaving node moves to the least loaded staying node that
//!    is not in the group yet (or is just dropped when every staying node already is).
//! 3. Only once no move is under way: groups short of `min(group-replicas, staying nodes)`
//!    voters get the least loaded staying nodes; then replicas move from the most to the least
//!    loaded nodes until any two nodes hold numbers of replicas that differ by at most one (at
//!    most one move per group per change).
//!
//! Ties go to the lowest node id and the lowest group id.

use super::map::ClusterMap;
use crate::raft::{NodeId, NodeInfo};
use std::collections::{BTreeMap, BTreeSet};

impl ClusterMap {
    /// The nodes that may host replicas: the map's nodes less the leaving ones.
    pub fn hosts(&self) -> BTreeSet<NodeId> {
        self.nodes.keys().filter(|id| !self.leaving.contains(id)).copied().collect()
    }

    /// Whether node `id` holds no replica and is on its way out of none.
    pub fn drained(&self, id: NodeId) -> bool {
        !self.groups.values().any(|g| g.voters.contains(&id)) && !self.moves.values().any(|out| out.contains(&id))
    }

    /// The groups that name node `id` as a voter or as on its way out.
    pub fn groups_of(&self, id: NodeId) -> Vec<u64> {
        let named = |g: &u64| self.groups[g].voters.contains(&id) || self.moves.get(g).is_some_and(|o| o.contains(&id));
        self.groups.keys().filter(|g| named(g)).copied().collect()
    }

    /// The map with node `id` leaving (`None` if it already is), or why it cannot leave: it is
    /// not a node of the map, or no other node could host its replicas.
    pub fn with_leaving(&self, id: NodeId) -> Result<Option<ClusterMap>, String> {
        if !self.nodes.contains_key(&id) {
            return Err(format!("node {id} is not a node of the cluster map"));
        }
        if self.leaving.contains(&id) {
            return Ok(None);
        }
        let others = self.hosts().into_iter().any(|h| h != id);
        if !others && !self.drained(id) {
            return Err(format!("node {id} is the last node able to host data-group replicas; add another node first"));
        }
        let mut next = self.clone();
        next.leaving.insert(id);
        next.epoch = self.epoch + 1;
        Ok(Some(next))
    }

    /// The map for the MetaRaft voters `voters`, with MetaRaft's members `members` (voters and
    /// learners), or `None` if it would not change (see the module's rules). The epoch grows
    /// by one.
    pub fn placed(&self, voters: &BTreeMap<NodeId, NodeInfo>, members: &BTreeSet<NodeId>) -> Option<ClusterMap> {
        let mut next = self.clone();
        next.update_nodes(voters, members);
        if !next.evacuate() && next.moves.is_empty() && !next.fill() {
            next.rebalance();
        }
        if next == *self {
            return None;
        }
        next.epoch = self.epoch + 1;
        Some(next)
    }

    /// [`placed`](Self::placed) with MetaRaft's voters as its only members.
    #[cfg(test)]
    pub(crate) fn placed_by_voters(&self, voters: &BTreeMap<NodeId, NodeInfo>) -> Option<ClusterMap> {
        self.placed(voters, &voters.keys().copied().collect())
    }

    /// Rule 1.
    fn update_nodes(&mut self, voters: &BTreeMap<NodeId, NodeInfo>, members: &BTreeSet<NodeId>) {
        for (id, info) in voters {
            self.nodes.insert(*id, info.clone());
            // Dropped from MetaRaft, then made a voter again (re-promoted): it stays. Only
            // `CLUSTER METARAFT REMOVE` makes a voter leave.
            if self.dropped.remove(id) {
                self.leaving.remove(id);
            }
        }
        let gone: Vec<NodeId> = self.nodes.keys().filter(|id| !voters.contains_key(id)).copied().collect();
        for id in gone {
            // A leaving node still in MetaRaft (a learner kept while its replicas moved) stays
            // leaving until MetaRaft's leader has removed it (`remove_drained`).
            let removing = self.leaving.contains(&id) && members.contains(&id);
            if self.drained(id) && !removing {
                self.nodes.remove(&id);
                self.leaving.remove(&id);
                self.dropped.remove(&id);
            } else if self.leaving.insert(id) {
                self.dropped.insert(id);
            }
        }
    }

    /// Replicas per staying node, under the voters the map names now.
    fn load(&self) -> BTreeMap<NodeId, usize> {
        let mut load: BTreeMap<NodeId, usize> = self.hosts().into_iter().map(|id| (id, 0)).collect();
        for g in self.groups.values() {
            for v in &g.voters {
                if let Some(n) = load.get_mut(v) {
                    *n += 1;
                }
            }
        }
        load
    }

    /// The least loaded staying node not in group `g` (ties: lowest id).
    fn least_loaded_outside(&self, load: &BTreeMap<NodeId, usize>, g: u64) -> Option<NodeId> {
        let voters = &self.groups[&g].voters;
        load.iter().filter(|(id, _)| !voters.contains(id)).min_by_key(|(id, n)| (**n, **id)).map(|(id, _)| *id)
    }

    /// Replaces `from` by `to` (if any) among group `g`'s voters and records the move.
    fn move_replica(&mut self, g: u64, from: Option<NodeId>, to: Option<NodeId>) {
        let Some(placement) = self.groups.get_mut(&g) else { return };
        let out = self.moves.entry(g).or_default();
        if let Some(from) = from {
            placement.voters.remove(&from);
            out.insert(from);
        }
        if let Some(to) = to {
            placement.voters.insert(to);
            out.remove(&to);
        }
    }

    /// Rule 2; whether anything moved.
    fn evacuate(&mut self) -> bool {
        let mut moved = false;
        let groups: Vec<u64> = self.groups.keys().copied().collect();
        for g in groups {
            let leaving: Vec<NodeId> = self.groups[&g].voters.intersection(&self.leaving).copied().collect();
            for from in leaving {
                let load = self.load();
                let to = self.least_loaded_outside(&load, g);
                // A group never loses its last voter: with no staying node it waits.
                if to.is_none() && self.groups[&g].voters.len() == 1 {
                    continue;
                }
                self.move_replica(g, Some(from), to);
                moved = true;
            }
        }
        moved
    }

    /// Rule 3, first part; whether any group got voters.
    fn fill(&mut self) -> bool {
        let want = (self.replicas as usize).min(self.hosts().len());
        let mut filled = false;
        let groups: Vec<u64> = self.groups.keys().copied().collect();
        for g in groups {
            while self.groups[&g].voters.len() < want {
                let load = self.load();
                let Some(to) = self.least_loaded_outside(&load, g) else { break };
                self.move_replica(g, None, Some(to));
                filled = true;
            }
        }
        filled
    }

    /// Rule 3, second part.
    fn rebalance(&mut self) {
        loop {
            let load = self.load();
            let mut by_load: Vec<(usize, NodeId)> = load.iter().map(|(id, n)| (*n, *id)).collect();
            by_load.sort();
            let pick = by_load.iter().find_map(|&(low, to)| {
                by_load.iter().rev().filter(|&&(high, _)| high > low + 1).find_map(|&(_, from)| {
                    let free = |(g, p): (&u64, &super::map::GroupPlacement)| {
                        (!self.moves.contains_key(g) && p.voters.contains(&from) && !p.voters.contains(&to))
                            .then_some(*g)
                    };
                    self.groups.iter().find_map(free).map(|g| (g, from, to))
                })
            });
            let Some((g, from, to)) = pick else { return };
            self.move_replica(g, Some(from), Some(to));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: NodeId) -> NodeInfo {
        NodeInfo { raft_addr: format!("127.0.0.1:{}", 8000 + id), client_addr: format!("127.0.0.1:{}", 7000 + id) }
    }

    fn nodes(ids: impl IntoIterator<Item = NodeId>) -> BTreeMap<NodeId, NodeInfo> {
        ids.into_iter().map(|i| (i, info(i))).collect()
    }

    /// The map once every recorded move has finished (what the group leaders do).
    fn settled(mut map: ClusterMap) -> ClusterMap {
        if !map.moves.is_empty() {
            map.moves.clear();
            map.epoch += 1;
        }
        map
    }

    /// Places `voters` until nothing changes, settling moves in between.
    fn converge(mut map: ClusterMap, voters: &BTreeMap<NodeId, NodeInfo>) -> ClusterMap {
        for _ in 0..64 {
            match map.placed_by_voters(voters) {
                Some(next) => map = settled(next),
                None if map.moves.is_empty() => return map,
                None => map = settled(map),
            }
        }
        panic!("placement never settled: {map:?}");
    }

    fn loads(map: &ClusterMap) -> BTreeMap<NodeId, usize> {
        map.load()
    }

    #[test]
    fn joining_nodes_fill_the_groups_up_to_the_replica_count_evenly() {
        let map = ClusterMap::initial((1, info(1)), 4, 2);
        let three = nodes(1..=3);
        let next = map.placed_by_voters(&three).expect("changed");
        assert_eq!(next.epoch, 2);
        assert_eq!(next.nodes.len(), 3);
        // Every group keeps node 1 and gets one more voter, nodes 2 and 3 taking turns.
        let seconds: Vec<NodeId> =
            next.groups.values().map(|g| *g.voters.iter().find(|v| **v != 1).expect("two voters")).collect();
        assert_eq!(seconds, vec![2, 3, 2, 3]);
        assert_eq!(next.moves.len(), 4, "each group records its move");
        assert_eq!(next.placed_by_voters(&three), None, "nothing new while moves are under way");
        assert_eq!(next.slots, map.slots, "placement never moves slots");
        // Settled, node 1's fourth replica moves: 8 replicas over 3 nodes are 3, 3, 2.
        let done = converge(next, &three);
        let mut counts: Vec<usize> = loads(&done).into_values().collect();
        counts.sort();
        assert_eq!(counts, vec![2, 3, 3]);
        assert!(done.groups.values().all(|g| g.voters.len() == 2));
    }

    #[test]
    fn a_promoted_node_gets_an_even_share_of_the_replicas() {
        let three = converge(ClusterMap::initial((1, info(1)), 4, 3), &nodes(1..=3));
        assert!(three.groups.values().all(|g| g.voters == BTreeSet::from([1, 2, 3])));
        let next = three.placed_by_voters(&nodes(1..=4)).expect("node 4 joins");
        // 12 replicas over 4 nodes: 3 each; node 4 takes one from each of three groups.
        assert_eq!(loads(&next).into_values().collect::<Vec<_>>(), vec![3, 3, 3, 3]);
        assert_eq!(next.moves.len(), 3);
        assert!(next.moves.values().all(|out| out.len() == 1));
        assert!(next.groups.values().all(|g| g.voters.len() == 3));
        let five = converge(next, &nodes(1..=5));
        let counts: Vec<usize> = loads(&five).into_values().collect();
        assert!(counts.iter().all(|c| (2..=3).contains(c)), "{counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), 12);
    }

    #[test]
    fn a_leaving_node_hands_its_replicas_to_the_others() {
        let four = converge(ClusterMap::initial((1, info(1)), 4, 3), &nodes(1..=4));
        let leaving = four.with_leaving(2).expect("may leave").expect("changed");
        assert_eq!(four.with_leaving(9), Err("node 9 is not a node of the cluster map".into()));
        assert_eq!(leaving.with_leaving(2), Ok(None), "already leaving");
        let next = leaving.placed_by_voters(&nodes(1..=4)).expect("node 2 is evacuated");
        assert!(!next.groups.values().any(|g| g.voters.contains(&2)));
        assert!(next.groups.values().all(|g| g.voters.len() == 3), "every replica moved elsewhere");
        assert!(!next.drained(2), "still on its way out of its groups");
        assert_eq!(next.groups_of(2), next.moves.keys().copied().collect::<Vec<_>>());
        let done = settled(next);
        assert!(done.drained(2));
        // Once MetaRaft no longer has it, it leaves the map.
        let gone = done.placed_by_voters(&nodes([1, 3, 4])).expect("dropped");
        assert!(!gone.nodes.contains_key(&2) && gone.leaving.is_empty());
    }

    #[test]
    fn groups_shrink_when_too_few_nodes_stay_and_never_lose_their_last_voter() {
        let three = converge(ClusterMap::initial((1, info(1)), 2, 3), &nodes(1..=3));
        let next = three.with_leaving(3).expect("ok").expect("changed").placed_by_voters(&nodes(1..=3)).expect("moved");
        assert!(next.groups.values().all(|g| g.voters == BTreeSet::from([1, 2])));
        let one = converge(ClusterMap::initial((1, info(1)), 2, 3), &nodes([1]));
        assert_eq!(
            one.with_leaving(1),
            Err("node 1 is the last node able to host data-group replicas; add another node first".into())
        );
        // A node MetaRaft dropped while it still held replicas is evacuated all the same.
        let dropped = three.placed_by_voters(&nodes([1, 2])).expect("evacuated");
        assert!(dropped.leaving.contains(&3) && !dropped.groups.values().any(|g| g.voters.contains(&3)));
        let mut alone = one.clone();
        alone.leaving.insert(1);
        assert_eq!(alone.placed_by_voters(&nodes([1])), None, "the last voter stays");
    }

    #[test]
    fn a_dropped_node_kept_a_learner_leaves_the_map_only_once_out_of_metaraft() {
        let four = converge(ClusterMap::initial((1, info(1)), 4, 3), &nodes(1..=4));
        assert!(!four.drained(2));
        // MetaRaft dropped voter 2, which its leader keeps a learner (following the map) while
        // its replicas move: it is leaving, and its replicas go to the others.
        let with_learner = BTreeSet::from([1, 2, 3, 4]);
        let next = four.placed(&nodes([1, 3, 4]), &with_learner).expect("evacuated");
        assert!(next.leaving.contains(&2) && next.nodes.contains_key(&2));
        assert!(!next.groups.values().any(|g| g.voters.contains(&2)));
        // Drained but still a learner: it stays leaving (MetaRaft's leader removes it next).
        let done = settled(next);
        assert!(done.drained(2));
        assert_eq!(done.placed(&nodes([1, 3, 4]), &with_learner), None);
        // Out of MetaRaft, it leaves the map.
        let gone = done.placed(&nodes([1, 3, 4]), &BTreeSet::from([1, 3, 4])).expect("dropped");
        assert!(!gone.nodes.contains_key(&2) && gone.leaving.is_empty() && gone.dropped.is_empty());
    }

    #[test]
    fn a_voter_leaves_only_when_removed_explicitly() {
        let four = converge(ClusterMap::initial((1, info(1)), 4, 3), &nodes(1..=4));
        let all = BTreeSet::from([1, 2, 3, 4]);
        // Dropped by MetaRaft (kept a learner), then a voter again before it drained: it stays,
        // and gets replicas again.
        let dropped = four.placed(&nodes([1, 3, 4]), &all).expect("evacuated");
        assert!(dropped.leaving.contains(&2) && dropped.dropped.contains(&2));
        let back = settled(dropped).placed(&nodes(1..=4), &all).expect("back");
        assert!(!back.leaving.contains(&2) && back.dropped.is_empty());
        let back = converge(back, &nodes(1..=4));
        assert!(back.groups.values().any(|g| g.voters.contains(&2)), "it hosts replicas again");
        // Marked leaving by CLUSTER METARAFT REMOVE: it stays leaving while still a voter.
        let removed = four.with_leaving(2).expect("may leave").expect("changed");
        let next = removed.placed(&nodes(1..=4), &all).expect("evacuated");
        assert!(next.leaving.contains(&2) && next.dropped.is_empty());
        let done = settled(next);
        assert!(done.drained(2) && done.placed(&nodes(1..=4), &all).is_none(), "left for remove_drained");
    }
}
