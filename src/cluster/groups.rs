//! The Raft groups of one node of a multi-raft cluster ([`Groups`]): MetaRaft (group 0) and
//! the data groups 1..=N, the committed cluster map as this node's MetaRaft copy holds it,
//! and routing: key slot -> group -> that group's leader, as Redis Cluster routes
//! (`-MOVED`, `-CROSSSLOT`, `-CLUSTERDOWN`). The server asks here where a command goes; the
//! fencing below the log (`raft::control`) makes a wrong answer harmless.

use super::map::ClusterMap;
use crate::cmd::cluster::slot::key_slot;
use crate::cmd::CommandSpec;
use crate::protocol::Frame;
use crate::raft::node::Replica;
use crate::raft::{NodeId, NodeInfo};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Deadline of asking a voter for its group's leader.
const HINT_TIMEOUT: Duration = Duration::from_secs(1);

/// Redis's reply to keys in different slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// The groups of this node.
pub struct Groups {
    /// This node's id.
    pub id: NodeId,
    /// MetaRaft.
    pub meta: Arc<Replica>,
    /// The data groups, by id.
    pub data: BTreeMap<u64, Arc<Replica>>,
    /// Voters per data group asked for (`group-replicas`).
    pub replicas: u32,
    /// How long a command waits for its group to elect a leader before `-CLUSTERDOWN`.
    pub leader_wait: Duration,
    /// The last map decoded, by epoch (decoding on every command would cost).
    cache: Mutex<Option<Arc<ClusterMap>>>,
    /// The leaders of the data groups this node does not serve, as their voters last told
    /// ([`refresh_hint`](Self::refresh_hint)).
    hints: Mutex<BTreeMap<u64, (NodeId, NodeInfo)>>,
}

impl Groups {
    pub fn new(meta: Arc<Replica>, data: Vec<Arc<Replica>>, replicas: u32, leader_wait: Duration) -> Groups {
        let data = data.into_iter().map(|r| (r.group(), r)).collect();
        let (cache, hints) = (Mutex::new(None), Mutex::new(BTreeMap::new()));
        Groups { id: meta.id(), meta, data, replicas, leader_wait, cache, hints }
    }

    /// The committed cluster map of this node's MetaRaft copy (`None` before the first one).
    pub fn map(&self) -> Option<Arc<ClusterMap>> {
        let (epoch, bytes) = {
            let st = self.meta.state().read().unwrap_or_else(|p| p.into_inner());
            (st.control.map_epoch, st.control.map.clone())
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = cache.as_ref().filter(|m| m.epoch == epoch) {
            return Some(map.clone());
        }
        let map = Arc::new(ClusterMap::decode(&bytes?)?);
        *cache = Some(map.clone());
        Some(map)
    }

    /// Data group `group` of this node.
    pub fn group(&self, group: u64) -> Option<&Arc<Replica>> {
        self.data.get(&group)
    }

    /// The leader of data group `group` and how to reach it: from this node's replica of the
    /// group if it serves the group, else as the group's voters last told; `None` while it
    /// knows none.
    pub fn leader_of(&self, group: u64) -> Option<(NodeId, NodeInfo)> {
        let replica = self.data.get(&group)?;
        match self.map() {
            Some(map) if !self.serves(&map, group) => self.hint(group),
            _ => replica.leader_info(),
        }
    }

    /// Whether this node serves data group `group`: its replica is a member and the map names
    /// it a voter (or a move of the group is under way). A node moved out of a group may never
    /// learn the membership that left it out (its copy then thinks it is still a member), so
    /// the map decides.
    pub fn serves(&self, map: &ClusterMap, group: u64) -> bool {
        let named =
            map.groups.get(&group).is_some_and(|p| p.voters.contains(&self.id)) || map.moves.contains_key(&group);
        named && self.data.get(&group).is_some_and(|r| r.is_member())
    }

    /// The data groups this node serves ([`serves`](Self::serves)) by the committed map.
    pub fn served_groups(&self) -> Vec<u64> {
        let Some(map) = self.map() else { return Vec::new() };
        self.data.keys().copied().filter(|g| self.serves(&map, *g)).collect()
    }

    fn hint(&self, group: u64) -> Option<(NodeId, NodeInfo)> {
        self.hints.lock().unwrap_or_else(|p| p.into_inner()).get(&group).cloned()
    }

    /// For a data group this node does not serve: asks the group's voters (the map's) in turn
    /// which node leads it, and keeps the first answer naming one.
    pub async fn refresh_hint(&self, map: &ClusterMap, group: u64) {
        let (Some(replica), Some(placement)) = (self.data.get(&group), map.groups.get(&group)) else { return };
        for v in placement.voters.iter().filter(|v| **v != self.id) {
            let Some(info) = map.nodes.get(v) else { continue };
            let asked = replica.pool().get(&info.raft_addr).leader(group, HINT_TIMEOUT).await;
            if let Ok(Some((id, leader))) = asked {
                if id != self.id {
                    self.hints.lock().unwrap_or_else(|p| p.into_inner()).insert(group, (id, leader));
                    return;
                }
            }
        }
        self.hints.lock().unwrap_or_else(|p| p.into_inner()).remove(&group);
    }

    /// The data groups this node leads.
    pub fn led_groups(&self) -> Vec<u64> {
        let led = self.data.iter().filter(|(_, r)| r.leader_info().is_some_and(|(id, _)| id == self.id));
        led.map(|(g, _)| *g).collect()
    }

    /// The group a keyless keyspace command runs on: the lowest data group this node leads,
    /// else group 1 (which forwards to its leader).
    pub fn keyless_group(&self) -> u64 {
        let led = self.data.iter().find(|(_, r)| r.leader_info().is_some_and(|(id, _)| id == self.id));
        led.map_or_else(|| self.data.keys().next().copied().unwrap_or(0), |(g, _)| *g)
    }

    /// The one slot of the keys `spec` names in `argv`: `Ok(None)` for a keyless command,
    /// `Err(CROSSSLOT)` for keys in different slots.
    pub fn slot_of(spec: &CommandSpec, argv: &[Bytes]) -> Result<Option<u16>, Frame> {
        let mut slot = None;
        let mut cross = false;
        crate::cmd::for_each_key_index(spec, argv, |i| {
            if let Some(key) = argv.get(i) {
                let s = key_slot(key);
                cross |= slot.is_some_and(|prev| prev != s);
                slot = Some(s);
            }
        });
        if cross {
            return Err(Frame::error(CROSSSLOT));
        }
        Ok(slot)
    }

    /// Routes `slot`: the data group to run on here, or the reply (`-MOVED slot host:port`
    /// to the group's leader, `-CLUSTERDOWN` when the group has no leader within the leader
    /// wait or the slot is not served). `stale_ok` (a READONLY read) lets any member of the
    /// group answer from its own copy.
    pub async fn route(&self, slot: u16, stale_ok: bool) -> Result<u64, Frame> {
        let Some(map) = self.map() else {
            return Err(Frame::error("CLUSTERDOWN The cluster is not formed yet: no slot table"));
        };
        let Some(group) = map.group_of(slot) else {
            return Err(Frame::error("CLUSTERDOWN Hash slot not served"));
        };
        let Some(replica) = self.data.get(&group) else {
            return Err(Frame::error(format!("CLUSTERDOWN Hash slot {slot} belongs to group {group}, unknown here")));
        };
        let member = self.serves(&map, group);
        if stale_ok && member {
            return Ok(group);
        }
        let mut leader = if member { replica.leader_info() } else { self.hint(group) };
        if leader.is_none() && member {
            replica.await_leader(self.leader_wait).await;
            leader = replica.leader_info();
        }
        match leader {
            // Given to this group by the map (a migration's hand-over, SETSLOT NODE), but its
            // log has not made it the owner yet.
            Some((id, _)) if id == self.id => match replica.owns_slot(slot) {
                Some(false) => {
                    Err(Frame::error(format!("TRYAGAIN Hash slot {slot} is being handed over to this Raft group")))
                }
                _ => Ok(group),
            },
            Some((_, info)) => Err(moved(slot, &info.client_addr)),
            // Not a member of the group: send the client to one of its voters, which knows
            // (and redirects again to) the leader.
            None => match map.groups.get(&group).and_then(|g| g.voters.iter().find(|v| **v != self.id)) {
                Some(v) if !member => match map.nodes.get(v) {
                    Some(info) => Err(moved(slot, &info.client_addr)),
                    None => Err(no_leader(group)),
                },
                _ => Err(no_leader(group)),
            },
        }
    }

    /// Routes a command sent with ASKING (or RESTORE-ASKING) for `slot`: `Some(Ok(g))` when
    /// this node leads data group `g` and `g`'s log has the slot importing (`CLUSTER SETSLOT
    /// IMPORTING`); `Some(-ASK)` to the leader of the importing group when that is another
    /// node; `None`: route as usual (the slot is not importing anywhere).
    pub async fn route_asking(&self, slot: u16) -> Option<Result<u64, Frame>> {
        let map = self.map()?;
        for (g, replica) in &self.data {
            let leads = replica.leader_info().is_some_and(|(id, _)| id == self.id);
            if leads && self.serves(&map, *g) && replica.with_control(|c| c.ask_in.contains(&slot)) {
                return Some(Ok(*g));
            }
        }
        let open = map.open_slots.get(&slot).filter(|o| o.importing)?;
        match self.leader_of(open.target) {
            Some((id, info)) if id != self.id => Some(Err(Frame::error(format!("ASK {slot} {}", info.client_addr)))),
            _ => None,
        }
    }

    /// Whether every data group has a leader this node knows (CLUSTER INFO's `cluster_state`).
    pub fn all_led(&self) -> bool {
        self.map().is_some() && self.data.keys().all(|g| self.leader_of(*g).is_some())
    }
}

fn moved(slot: u16, addr: &str) -> Frame {
    Frame::error(format!("MOVED {slot} {addr}"))
}

fn no_leader(group: u64) -> Frame {
    Frame::error(format!("CLUSTERDOWN The cluster is down: Raft group {group} has no leader"))
}
