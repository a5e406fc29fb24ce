//! Leader balance: whether a data group's leader should hand its leadership to another voter,
//! and to which ([`target`], a pure function; the controller acts on it).
//!
//! The goal is that every node leads floor(N/n) or ceil(N/n) of the N data groups, with as
//! few leadership transfers as possible: each transfer costs an election (a term) and a
//! pause of the group's writes. So leadership moves only when it strictly evens the counts
//! out, never towards a merely "preferred" node:
//! - from a node that leads at least two groups more than the target (any balanced state is
//!   left alone, whoever holds the extra groups);
//! - from MetaRaft's leader, which also carries MetaRaft's work, to a node that leads one
//!   group fewer (the extra groups go to the other nodes; the target then leads one more
//!   than MetaRaft's leader and no rule moves it back);
//! - away from a leaving node, to any voter.
//!
//! The target is the candidate that leads the fewest groups (ties: the map's preferred
//! leader of the group, then the lowest id). A transfer never makes the counts less even, so
//! leadership cannot go back and forth between two nodes (the flapping seen before, when a
//! group's leader always handed it to a fixed preferred node: an overloaded preferred node
//! that lost it by election got it back at once, again and again).

use crate::raft::NodeId;
use std::collections::BTreeMap;

/// What the leader of one group knows when it decides.
pub struct View<'a> {
    /// This node (the group's leader).
    pub me: NodeId,
    /// Data groups each node leads, as this node knows them (every staying node, 0 included).
    pub led: &'a BTreeMap<NodeId, usize>,
    /// MetaRaft's leader, if known.
    pub meta_leader: Option<NodeId>,
    /// Voters of the group that could take over: caught up, not leaving, not this node.
    pub candidates: &'a [NodeId],
    /// The map's preferred leader of the group (a tie-break).
    pub preferred: Option<NodeId>,
    /// Whether this node is leaving the cluster.
    pub leaving: bool,
}

/// The voter to hand the group's leadership to, if any.
pub fn target(v: &View) -> Option<NodeId> {
    let count = |id: &NodeId| v.led.get(id).copied().unwrap_or(0);
    let pick = v.candidates.iter().copied().min_by_key(|c| (count(c), Some(*c) != v.preferred, *c))?;
    let (mine, theirs) = (count(&v.me), count(&pick));
    let meta_relief = v.meta_leader == Some(v.me) && v.meta_leader != Some(pick) && mine == theirs + 1;
    (v.leaving || mine >= theirs + 2 || meta_relief).then_some(pick)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(me: NodeId, led: &'a BTreeMap<NodeId, usize>, candidates: &'a [NodeId]) -> View<'a> {
        View { me, led, meta_leader: None, candidates, preferred: None, leaving: false }
    }

    #[test]
    fn balanced_counts_are_left_alone() {
        let led = BTreeMap::from([(1, 2), (2, 1), (3, 1)]);
        assert_eq!(target(&view(1, &led, &[2, 3])), None, "2-1-1 of four groups is balanced");
        let led = BTreeMap::from([(1, 1), (2, 1), (3, 1)]);
        assert_eq!(target(&view(1, &led, &[2, 3])), None);
    }

    #[test]
    fn a_node_with_two_more_groups_hands_one_to_the_least_loaded() {
        let led = BTreeMap::from([(1, 3), (2, 1), (3, 0)]);
        assert_eq!(target(&view(1, &led, &[2, 3])), Some(3));
        // Only caught-up voters count.
        assert_eq!(target(&view(1, &led, &[2])), Some(2));
        assert_eq!(target(&view(1, &led, &[])), None);
        // Ties go to the preferred leader, then the lowest id.
        let led = BTreeMap::from([(1, 4), (2, 0), (3, 0)]);
        assert_eq!(target(&View { preferred: Some(3), ..view(1, &led, &[2, 3]) }), Some(3));
        assert_eq!(target(&view(1, &led, &[3, 2])), Some(2));
    }

    #[test]
    fn metaraft_s_leader_sheds_its_extra_group_and_nobody_hands_it_back() {
        let led = BTreeMap::from([(1, 2), (2, 1), (3, 1)]);
        let meta = View { meta_leader: Some(1), ..view(1, &led, &[2, 3]) };
        assert_eq!(target(&meta), Some(2));
        // After the transfer node 2 leads two, node 1 one: node 2 keeps them.
        let after = BTreeMap::from([(1, 1), (2, 2), (3, 1)]);
        assert_eq!(target(&View { meta_leader: Some(1), ..view(2, &after, &[1, 3]) }), None);
    }

    #[test]
    fn no_transfer_is_ever_undone() {
        // Every state and every choice: after a transfer, the target never hands back.
        for a in 0..5usize {
            for b in 0..5usize {
                for meta in [None, Some(1), Some(2)] {
                    let led = BTreeMap::from([(1, a), (2, b)]);
                    let first = View { meta_leader: meta, ..view(1, &led, &[2]) };
                    if target(&first) == Some(2) && a > 0 {
                        let after = BTreeMap::from([(1, a - 1), (2, b + 1)]);
                        let back = View { meta_leader: meta, ..view(2, &after, &[1]) };
                        assert_eq!(target(&back), None, "{a} {b} {meta:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_leaving_node_hands_over_whatever_the_counts() {
        let led = BTreeMap::from([(1, 1), (2, 2), (3, 2)]);
        assert_eq!(target(&View { leaving: true, ..view(1, &led, &[2, 3]) }), Some(2));
    }
}
