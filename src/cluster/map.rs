//! The cluster map that MetaRaft (group 0) replicates: the nodes, the data groups with their
//! voters, the slot table (slot -> group) and the config epoch, bumped by every change. It is
//! changed only through MetaRaft's log (a compare-and-set control entry, see
//! `raft::Control::SetMap`); this module builds, changes and encodes it, with no I/O.
//!
//! Placement (which nodes are a group's voters) is a pure function of the map and the
//! MetaRaft members (`super::placement`): the same inputs give the same map on any node.

use crate::cmd::cluster::slot::SLOTS;
use crate::raft::{NodeId, NodeInfo};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A data group as the map describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPlacement {
    /// The voters the group should have (its leader drives its Raft membership there).
    pub voters: BTreeSet<NodeId>,
}

/// Slots `start..=end` belong to data group `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
    pub group: u64,
}

/// The whole map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// The config epoch: 1 for the first map, +1 per change.
    pub epoch: u64,
    /// Every node of the cluster (the MetaRaft voters) and how to reach it.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// The data groups (ids 1..=num_groups).
    pub groups: BTreeMap<u64, GroupPlacement>,
    /// The slot table, ordered by slot, covering every slot once.
    pub slots: Vec<SlotRange>,
    /// Voters per data group asked for (`group-replicas`; capped by the node count).
    pub replicas: u32,
    /// Slot migrations: the running ones and the last finished ones
    /// (`super::migration`). After the fields of the first version, so that maps written
    /// before it still decode.
    pub migrations: Vec<super::migration::Migration>,
    /// Nodes being removed (`CLUSTER METARAFT REMOVE`): they get no new replicas, their
    /// replicas move to other nodes, then they leave MetaRaft (`super::placement`).
    pub leaving: BTreeSet<NodeId>,
    /// Replica moves under way: each data group whose Raft membership has not reached its
    /// `voters` yet, with the nodes on their way out of it. Its leader drives the group there
    /// and then removes the entry (`super::replicas`).
    pub moves: BTreeMap<u64, BTreeSet<NodeId>>,
    /// The leaving nodes that leave because MetaRaft dropped them as voters (not by `CLUSTER
    /// METARAFT REMOVE`): one that is a MetaRaft voter again stays (`super::placement`, rule
    /// 1). A voter leaves only by an explicit removal, never by itself.
    pub dropped: BTreeSet<NodeId>,
    /// Redis Cluster's open slots (`CLUSTER SETSLOT <slot> IMPORTING|MIGRATING`,
    /// `super::setslot`): slot -> the move under way.
    pub open_slots: BTreeMap<u16, OpenSlot>,
}

/// A slot in Redis Cluster's migration states, moving from data group `source` (its owner)
/// to data group `target`: `importing` once the target's node was told (SETSLOT IMPORTING),
/// `migrating` once the source's was (SETSLOT MIGRATING).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSlot {
    pub source: u64,
    pub target: u64,
    pub importing: bool,
    pub migrating: bool,
}

/// The map as written before open slots.
#[derive(Deserialize)]
struct ClusterMapV4 {
    epoch: u64,
    nodes: BTreeMap<NodeId, NodeInfo>,
    groups: BTreeMap<u64, GroupPlacement>,
    slots: Vec<SlotRange>,
    replicas: u32,
    migrations: Vec<super::migration::Migration>,
    leaving: BTreeSet<NodeId>,
    moves: BTreeMap<u64, BTreeSet<NodeId>>,
    dropped: BTreeSet<NodeId>,
}

/// The map as written before the reason a node leaves was recorded.
#[derive(Deserialize)]
struct ClusterMapV3 {
    epoch: u64,
    nodes: BTreeMap<NodeId, NodeInfo>,
    groups: BTreeMap<u64, GroupPlacement>,
    slots: Vec<SlotRange>,
    replicas: u32,
    migrations: Vec<super::migration::Migration>,
    leaving: BTreeSet<NodeId>,
    moves: BTreeMap<u64, BTreeSet<NodeId>>,
}

/// The map as written before replica moves.
#[derive(Deserialize)]
struct ClusterMapV2 {
    epoch: u64,
    nodes: BTreeMap<NodeId, NodeInfo>,
    groups: BTreeMap<u64, GroupPlacement>,
    slots: Vec<SlotRange>,
    replicas: u32,
    migrations: Vec<super::migration::Migration>,
}

/// The map as written before slot migration.
#[derive(Deserialize)]
struct ClusterMapV1 {
    epoch: u64,
    nodes: BTreeMap<NodeId, NodeInfo>,
    groups: BTreeMap<u64, GroupPlacement>,
    slots: Vec<SlotRange>,
    replicas: u32,
}

impl From<ClusterMapV4> for ClusterMap {
    fn from(v4: ClusterMapV4) -> ClusterMap {
        let ClusterMapV4 { epoch, nodes, groups, slots, replicas, migrations, leaving, moves, dropped } = v4;
        let open_slots = BTreeMap::new();
        ClusterMap { epoch, nodes, groups, slots, replicas, migrations, leaving, moves, dropped, open_slots }
    }
}

impl From<ClusterMapV3> for ClusterMapV4 {
    fn from(v3: ClusterMapV3) -> ClusterMapV4 {
        let ClusterMapV3 { epoch, nodes, groups, slots, replicas, migrations, leaving, moves } = v3;
        // Written before the reason was recorded: its leaving nodes stay leaving as before.
        let dropped = BTreeSet::new();
        ClusterMapV4 { epoch, nodes, groups, slots, replicas, migrations, leaving, moves, dropped }
    }
}

impl From<ClusterMapV2> for ClusterMapV3 {
    fn from(v2: ClusterMapV2) -> ClusterMapV3 {
        let ClusterMapV2 { epoch, nodes, groups, slots, replicas, migrations } = v2;
        let (leaving, moves) = (BTreeSet::new(), BTreeMap::new());
        ClusterMapV3 { epoch, nodes, groups, slots, replicas, migrations, leaving, moves }
    }
}

impl From<ClusterMapV1> for ClusterMapV2 {
    fn from(v1: ClusterMapV1) -> ClusterMapV2 {
        let ClusterMapV1 { epoch, nodes, groups, slots, replicas } = v1;
        ClusterMapV2 { epoch, nodes, groups, slots, replicas, migrations: Vec::new() }
    }
}

impl ClusterMap {
    /// The first map: `num_groups` data groups of `founder` alone (it initializes them; the
    /// other nodes join through [`placed`](Self::placed)), and the slots split in even
    /// contiguous ranges, group 1 first.
    pub fn initial(founder: (NodeId, NodeInfo), num_groups: u32, replicas: u32) -> ClusterMap {
        let n = u64::from(num_groups.max(1));
        let slots = (1..=n)
            .map(|g| SlotRange {
                start: ((g - 1) * u64::from(SLOTS) / n) as u16,
                end: (g * u64::from(SLOTS) / n - 1) as u16,
                group: g,
            })
            .collect();
        let groups = (1..=n).map(|g| (g, GroupPlacement { voters: BTreeSet::from([founder.0]) })).collect();
        ClusterMap {
            epoch: 1,
            nodes: BTreeMap::from([founder]),
            groups,
            slots,
            replicas: replicas.max(1),
            migrations: Vec::new(),
            leaving: BTreeSet::new(),
            moves: BTreeMap::new(),
            dropped: BTreeSet::new(),
            open_slots: BTreeMap::new(),
        }
    }

    /// The node that should lead each data group, so that every node leads floor(N/n) or
    /// ceil(N/n) of the N groups among the n nodes (as far as the voters allow): groups in
    /// order, each to the voter that leads the fewest so far (ties: the one after the previous
    /// pick, so that equal placements spread). A pure function of the map.
    pub fn preferred_leaders(&self) -> BTreeMap<u64, NodeId> {
        let mut led: BTreeMap<NodeId, usize> = self.nodes.keys().map(|id| (*id, 0)).collect();
        let order: Vec<NodeId> = self.nodes.keys().copied().collect();
        let mut out = BTreeMap::new();
        for (i, (g, placement)) in self.groups.iter().enumerate() {
            let rank = |id: &NodeId| {
                let pos = order.iter().position(|o| o == id).unwrap_or(0);
                (led.get(id).copied().unwrap_or(0), (pos + order.len() - i % order.len().max(1)) % order.len().max(1))
            };
            // A leaving node leads only a group that has no other voter.
            let staying: Vec<&NodeId> = placement.voters.iter().filter(|v| !self.leaving.contains(v)).collect();
            let candidates = if staying.is_empty() { placement.voters.iter().collect() } else { staying };
            if let Some(pick) = candidates.into_iter().min_by_key(|id| rank(id)).copied() {
                *led.entry(pick).or_default() += 1;
                out.insert(*g, pick);
            }
        }
        out
    }

    /// The data group that owns `slot`.
    pub fn group_of(&self, slot: u16) -> Option<u64> {
        let i = self.slots.partition_point(|r| r.end < slot);
        self.slots.get(i).filter(|r| r.start <= slot).map(|r| r.group)
    }

    /// The slot ranges of data group `group`, as inclusive pairs.
    pub fn ranges_of(&self, group: u64) -> Vec<(u16, u16)> {
        self.slots.iter().filter(|r| r.group == group).map(|r| (r.start, r.end)).collect()
    }

    /// The encoding kept in MetaRaft's state machine.
    pub fn encode(&self) -> bytes::Bytes {
        postcard::to_allocvec(self).map(bytes::Bytes::from).unwrap_or_default()
    }

    /// Decodes a map kept by MetaRaft (`None` if it is not one): the current layout, else
    /// each older one, newest first, brought up to date one version at a time.
    pub fn decode(bytes: &[u8]) -> Option<ClusterMap> {
        fn read<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
            postcard::from_bytes(bytes).ok()
        }
        let v4 = || {
            read::<ClusterMapV4>(bytes)
                .or_else(|| read::<ClusterMapV3>(bytes).map(Into::into))
                .or_else(|| read::<ClusterMapV2>(bytes).map(|v2| ClusterMapV3::from(v2).into()))
                .or_else(|| read::<ClusterMapV1>(bytes).map(|v1| ClusterMapV3::from(ClusterMapV2::from(v1)).into()))
        };
        read::<ClusterMap>(bytes).or_else(|| v4().map(Into::into))
    }

    /// Gives slots `start..=end` to `group` (the table stays ordered, covering, coalesced).
    pub fn assign(&mut self, start: u16, end: u16, group: u64) {
        let mut owner: Vec<u64> = vec![0; usize::from(SLOTS)];
        for r in &self.slots {
            owner[usize::from(r.start)..=usize::from(r.end)].fill(r.group);
        }
        owner[usize::from(start)..=usize::from(end)].fill(group);
        let mut slots: Vec<SlotRange> = Vec::new();
        for (slot, g) in owner.into_iter().enumerate() {
            match slots.last_mut() {
                Some(last) if last.group == g && usize::from(last.end) + 1 == slot => last.end = slot as u16,
                _ => slots.push(SlotRange { start: slot as u16, end: slot as u16, group: g }),
            }
        }
        // Slots never served before (none in a formed map) stay unserved.
        slots.retain(|r| r.group != 0);
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: NodeId) -> NodeInfo {
        NodeInfo { raft_addr: format!("127.0.0.1:{}", 8000 + id), client_addr: format!("127.0.0.1:{}", 7000 + id) }
    }

    #[test]
    fn the_first_map_splits_the_slots_evenly_among_the_founders_groups() {
        let map = ClusterMap::initial((1, info(1)), 4, 3);
        assert_eq!(map.epoch, 1);
        assert_eq!(map.ranges_of(1), vec![(0, 4095)]);
        assert_eq!(map.ranges_of(4), vec![(12288, 16383)]);
        assert_eq!(map.group_of(0), Some(1));
        assert_eq!(map.group_of(4096), Some(2));
        assert_eq!(map.group_of(16383), Some(4));
        assert_eq!(map.group_of(16384), None);
        let three = ClusterMap::initial((1, info(1)), 3, 3);
        let covered: u32 = three.slots.iter().map(|r| u32::from(r.end - r.start) + 1).sum();
        assert_eq!(covered, 16384);
        assert!(map.groups.values().all(|g| g.voters == BTreeSet::from([1])));
        assert_eq!(ClusterMap::decode(&map.encode()), Some(map.clone()));
        #[derive(Serialize)]
        struct V1<'a>(u64, &'a BTreeMap<NodeId, NodeInfo>, &'a BTreeMap<u64, GroupPlacement>, &'a [SlotRange], u32);
        let old = postcard::to_allocvec(&V1(map.epoch, &map.nodes, &map.groups, &map.slots, map.replicas)).expect("v1");
        assert_eq!(ClusterMap::decode(&old), Some(map.clone()), "a map written before migrations decodes");
        #[derive(Serialize)]
        struct V2<'a>(
            u64,
            &'a BTreeMap<NodeId, NodeInfo>,
            &'a BTreeMap<u64, GroupPlacement>,
            &'a [SlotRange],
            u32,
            &'a [super::super::migration::Migration],
        );
        let v2 = V2(map.epoch, &map.nodes, &map.groups, &map.slots, map.replicas, &map.migrations);
        let old = postcard::to_allocvec(&v2).expect("v2");
        assert_eq!(ClusterMap::decode(&old), Some(map.clone()), "a map written before replica moves decodes");
        #[derive(Serialize)]
        struct V3<'a>(
            u64,
            &'a BTreeMap<NodeId, NodeInfo>,
            &'a BTreeMap<u64, GroupPlacement>,
            &'a [SlotRange],
            u32,
            &'a [super::super::migration::Migration],
            &'a BTreeSet<NodeId>,
            &'a BTreeMap<u64, BTreeSet<NodeId>>,
        );
        let v3 =
            V3(map.epoch, &map.nodes, &map.groups, &map.slots, map.replicas, &map.migrations, &map.leaving, &map.moves);
        let old = postcard::to_allocvec(&v3).expect("v3");
        assert_eq!(ClusterMap::decode(&old), Some(map.clone()), "a map written before the leaving reason decodes");
        #[derive(Serialize)]
        struct V4<'a>(
            u64,
            &'a BTreeMap<NodeId, NodeInfo>,
            &'a BTreeMap<u64, GroupPlacement>,
            &'a [SlotRange],
            u32,
            &'a [super::super::migration::Migration],
            &'a BTreeSet<NodeId>,
            &'a BTreeMap<u64, BTreeSet<NodeId>>,
            &'a BTreeSet<NodeId>,
        );
        let v4 = V4(
            map.epoch,
            &map.nodes,
            &map.groups,
            &map.slots,
            map.replicas,
            &map.migrations,
            &map.leaving,
            &map.moves,
            &map.dropped,
        );
        let old = postcard::to_allocvec(&v4).expect("v4");
        assert_eq!(ClusterMap::decode(&old), Some(map), "a map written before open slots decodes");
    }

    #[test]
    fn assigning_slots_keeps_the_table_ordered_and_coalesced() {
        let mut map = ClusterMap::initial((1, info(1)), 2, 3);
        map.assign(100, 199, 2);
        assert_eq!(map.ranges_of(1), vec![(0, 99), (200, 8191)]);
        assert_eq!(map.ranges_of(2), vec![(100, 199), (8192, 16383)]);
        map.assign(100, 199, 1);
        assert_eq!(map.ranges_of(1), vec![(0, 8191)]);
        map.assign(16383, 16383, 1);
        assert_eq!(map.group_of(16383), Some(1));
        assert_eq!(map.group_of(16382), Some(2));
    }

    #[test]
    fn preferred_leaders_spread_the_groups_evenly() {
        let nodes: BTreeMap<NodeId, NodeInfo> = (1..=3).map(|i| (i, info(i))).collect();
        let map = ClusterMap::initial((1, info(1)), 4, 3).placed_by_voters(&nodes).expect("changed");
        let leaders = map.preferred_leaders();
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![1, 2, 3, 1]);
        let eight = ClusterMap::initial((1, info(1)), 8, 3).placed_by_voters(&nodes).expect("changed");
        let mut counts = BTreeMap::new();
        for l in eight.preferred_leaders().values() {
            *counts.entry(*l).or_insert(0) += 1;
        }
        assert!(counts.values().all(|c| (2..=3).contains(c)), "{counts:?}");
        // With two voters per group out of four nodes, every node still leads one or two of six.
        let four: BTreeMap<NodeId, NodeInfo> = (1..=4).map(|i| (i, info(i))).collect();
        let six = ClusterMap::initial((1, info(1)), 6, 2).placed_by_voters(&four).expect("changed");
        let mut counts = BTreeMap::new();
        for (g, l) in six.preferred_leaders() {
            assert!(six.groups[&g].voters.contains(&l));
            *counts.entry(l).or_insert(0) += 1;
        }
        assert!(counts.len() == 4 && counts.values().all(|c| (1..=2).contains(c)), "{counts:?}");
        assert!(map.preferred_leaders() == leaders, "deterministic");
    }
}
