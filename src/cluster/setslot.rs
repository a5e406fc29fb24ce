//! Redis Cluster's slot migration protocol, for the tools that speak it (`redis-cli --cluster
//! reshard / rebalance`): `CLUSTER SETSLOT <slot> IMPORTING|MIGRATING|NODE <node-id>` and
//! `CLUSTER SETSLOT <slot> STABLE`.
//!
//! A node is a master for the slots of the data groups it leads, so a node id names a data
//! group: the one the slot's open record names as target if that node leads it, else the
//! group that node leads which already owns the slot, else the one owning a neighbouring
//! slot, else the lowest ([`group_of_node`]).
//! The states are cluster state: each is recorded in MetaRaft's map (`open_slots`, by
//! compare-and-set, config epoch + 1) and then written into the log of the group that acts on
//! it (`Control::AskIn` in the target, `Control::AskOut` in the source), whose state machine
//! decides `-ASK` / `-TRYAGAIN` / ASKING below the log (`raft::control`). `NODE` first asks
//! the source's log to seal the slot (`Control::Handoff`: refused while it holds keys of it,
//! as Redis refuses), then gives the slot to the target in the map (epoch + 1) and clears its
//! record; each group's controller then writes its new ownership (`Own`), which ends the
//! groups' states. See docs/ARCHITECTURE.md, "Redis Cluster's migration protocol".

use super::groups::Groups;
use super::map::{ClusterMap, OpenSlot};
use super::migrate_cmd::{change_map, node_id};
use super::mover::propose_to;
use crate::cmd::cluster::face::node_name;
use crate::cmd::cluster::slot::SLOTS;
use crate::protocol::Frame;
use crate::raft::{Control, NodeId};
use bytes::Bytes;
use std::time::Duration;

/// What a SETSLOT asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Importing(NodeId),
    Migrating(NodeId),
    Node(NodeId),
    Stable,
}

const INVALID: &str = "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP";
const NOT_MASTER: &str = "ERR Please use SETSLOT only with masters.";

/// Parses `CLUSTER SETSLOT <slot> <action> [<node-id>]` (`known`: the node a name denotes),
/// with Redis's checks in Redis's order.
pub fn parse(argv: &[Bytes], known: impl Fn(&[u8]) -> Option<NodeId>) -> Result<(u16, Action), Frame> {
    if argv.len() < 4 {
        return Err(Frame::error("ERR wrong number of arguments for 'cluster|setslot' command"));
    }
    let slot = match crate::cmd::args::int(&argv[2]) {
        Ok(n) if (0..i64::from(SLOTS)).contains(&n) => n as u16,
        _ => return Err(Frame::error("ERR Invalid or out of range slot")),
    };
    let action = String::from_utf8_lossy(&argv[3]).to_ascii_lowercase();
    if action == "stable" && argv.len() == 4 {
        return Ok((slot, Action::Stable));
    }
    if argv.len() != 5 || !matches!(action.as_str(), "importing" | "migrating" | "node") {
        return Err(Frame::error(INVALID));
    }
    let Some(node) = known(&argv[4]) else {
        return Err(Frame::error(format!("ERR I don't know about node {}", String::from_utf8_lossy(&argv[4]))));
    };
    Ok((
        slot,
        match action.as_str() {
            "importing" => Action::Importing(node),
            "migrating" => Action::Migrating(node),
            _ => Action::Node(node),
        },
    ))
}

/// The data group node `node` stands for when it receives or sends `slot`, among the groups it
/// leads (`leader`): the target of the slot's open record (a node leading both ends of a move
/// means its target), the slot's own group, the group owning a neighbouring slot, the lowest;
/// `None` when it leads none (not a master).
pub fn group_of_node(map: &ClusterMap, leader: &dyn Fn(u64) -> Option<NodeId>, node: NodeId, slot: u16) -> Option<u64> {
    let led: Vec<u64> = map.groups.keys().copied().filter(|g| leader(*g) == Some(node)).collect();
    let neighbours = [slot.checked_sub(1), slot.checked_add(1).filter(|s| *s < SLOTS)];
    let preferred = [map.open_slots.get(&slot).map(|o| o.target), map.group_of(slot)]
        .into_iter()
        .chain(neighbours.into_iter().map(|s| s.and_then(|s| map.group_of(s))));
    preferred.flatten().find(|g| led.contains(g)).or_else(|| led.first().copied())
}

/// What the map change of a SETSLOT decided: the new map (`None`: nothing to change) and the
/// record of the slot it acts on.
#[derive(Debug)]
pub struct Decision {
    pub map: Option<ClusterMap>,
    pub open: OpenSlot,
}

/// The map change of `action` on `slot`, asked of node `me` (pure: the unit tests drive it).
/// `NODE` to another group is decided here only once the source holds no keys of the slot
/// (the caller asked the source's log first).
pub fn decide(
    map: &ClusterMap,
    leader: &dyn Fn(u64) -> Option<NodeId>,
    me: NodeId,
    slot: u16,
    action: Action,
) -> Result<Decision, Frame> {
    if !map.groups.keys().any(|g| leader(*g) == Some(me)) {
        return Err(Frame::error(NOT_MASTER));
    }
    let Some(owner) = map.group_of(slot) else { return Err(Frame::error("CLUSTERDOWN Hash slot not served")) };
    if let Some(m) = map.migrating(slot) {
        return Err(Frame::error(format!("ERR slot {slot} is in slot migration {} (CLUSTER MIGRATESLOTS)", m.id)));
    }
    let current = map.open_slots.get(&slot).copied();
    let empty = OpenSlot { source: owner, target: owner, importing: false, migrating: false };
    let group_of = |node: NodeId| {
        group_of_node(map, leader, node, slot).ok_or_else(|| Frame::error("ERR Target node is not a master"))
    };
    let other = |target: u64| {
        if target == owner {
            return Err(Frame::error(format!("ERR the node leads no data group other than slot {slot}'s own")));
        }
        match current {
            Some(c) if c.target != target => Err(Frame::error(format!(
                "ERR slot {slot} is already open towards group {}: CLUSTER SETSLOT {slot} STABLE first",
                c.target
            ))),
            _ => Ok(target),
        }
    };
    let open = match action {
        Action::Stable => {
            return Ok(Decision { map: current.map(|_| without(map, slot)), open: current.unwrap_or(empty) })
        }
        Action::Importing(from) => {
            if leader(owner) == Some(me) {
                return Err(Frame::error(format!("ERR I'm already the owner of hash slot {slot}")));
            }
            group_of(from)?;
            let target = other(group_of(me)?)?;
            OpenSlot { source: owner, target, importing: true, migrating: current.is_some_and(|c| c.migrating) }
        }
        Action::Migrating(to) => {
            if leader(owner) != Some(me) {
                return Err(Frame::error(format!("ERR I'm not the owner of hash slot {slot}")));
            }
            let target = other(group_of(to)?)?;
            OpenSlot { source: owner, target, importing: current.is_some_and(|c| c.importing), migrating: true }
        }
        Action::Node(to) => {
            let target = group_of(to)?;
            let open = OpenSlot { target, ..current.unwrap_or(empty) };
            if target == owner {
                // Already there (redis-cli sends NODE to every master): only the record goes.
                return Ok(Decision { map: current.map(|_| without(map, slot)), open });
            }
            let mut next = without(map, slot);
            next.assign(slot, slot, target);
            return Ok(Decision { map: Some(next), open });
        }
    };
    if current == Some(open) {
        return Ok(Decision { map: None, open });
    }
    let mut next = map.clone();
    next.epoch = map.epoch + 1;
    next.open_slots.insert(slot, open);
    Ok(Decision { map: Some(next), open })
}

/// The map without `slot`'s open record, at the next epoch.
fn without(map: &ClusterMap, slot: u16) -> ClusterMap {
    let mut next = map.clone();
    next.epoch = map.epoch + 1;
    next.open_slots.remove(&slot);
    next
}

/// Runs `CLUSTER SETSLOT` on a multi-raft node; `None` for any other subcommand.
pub async fn command(groups: &Groups, argv: &[Bytes]) -> Option<Frame> {
    if !argv.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"setslot")) {
        return None;
    }
    let parsed = parse(argv, |name| node_id(groups, name).ok());
    Some(match parsed {
        Ok((slot, action)) => run(groups, slot, action).await.unwrap_or_else(|e| e),
        Err(e) => e,
    })
}

fn leader_fn(groups: &Groups) -> impl Fn(u64) -> Option<NodeId> + '_ {
    |g| groups.leader_of(g).map(|(id, _)| id)
}

/// The client address of `node`, as `-ASK` names it.
fn addr_of(groups: &Groups, node: NodeId) -> String {
    groups.map().and_then(|m| m.nodes.get(&node).map(|n| n.client_addr.clone())).unwrap_or_default()
}

async fn run(groups: &Groups, slot: u16, action: Action) -> Result<Frame, Frame> {
    groups.meta.catch_up().await;
    let map = groups.map().ok_or_else(|| Frame::error("CLUSTERDOWN The cluster is not formed yet: no slot table"))?;
    let leader = leader_fn(groups);
    let first = decide(&map, &leader, groups.id, slot, action)?;
    if let Action::Node(to) = action {
        if map.group_of(slot).is_some_and(|owner| owner != first.open.target) {
            let owner = map.group_of(slot).unwrap_or_default();
            handoff(groups, slot, owner, &addr_of(groups, to)).await?;
        }
    }
    let (me, want) = (groups.id, first.open);
    let reply = change_map(
        groups,
        |map| decide(map, &leader, me, slot, action).map(|d| d.map),
        |map, sent| {
            map.open_slots.get(&slot) == sent.open_slots.get(&slot) && map.group_of(slot) == sent.group_of(slot)
        },
    )
    .await;
    if matches!(reply, Frame::Error(_)) {
        return Err(reply);
    }
    // The group whose log acts on the state (the map records it; the state machine decides).
    let entries: Vec<(u64, Control)> = match action {
        Action::Importing(_) => vec![(want.target, Control::AskIn { slot })],
        Action::Migrating(to) => vec![(want.source, Control::AskOut { slot, addr: addr_of(groups, to) })],
        Action::Stable => {
            let mut v = vec![(want.source, Control::AskEnd { slot })];
            if want.target != want.source {
                v.push((want.target, Control::AskEnd { slot }));
            }
            v
        }
        // The groups' new ownership (`Own`, written by their controllers) ends their states.
        Action::Node(_) => vec![],
    };
    for (g, control) in entries {
        match propose_retrying(groups, g, &control).await {
            Ok(Frame::Error(e)) => return Err(Frame::Error(e)),
            Ok(_) => {}
            Err(e) => return Err(Frame::error(format!("TRYAGAIN group {g} did not take the slot state: {e}"))),
        }
    }
    Ok(Frame::ok())
}

/// How long a SETSLOT retries an entry a group did not take (an election, a slow disk).
const RETRY_FOR: Duration = Duration::from_secs(8);

/// [`propose_to`], retried while the group cannot take it (no leader, a lost connection, a
/// timed-out proposal) for up to [`RETRY_FOR`]: every entry of this module is idempotent, and
/// redis-cli gives up a whole reshard at the first error.
async fn propose_retrying(groups: &Groups, g: u64, control: &Control) -> Result<Frame, String> {
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    loop {
        let reply = propose_to(groups, g, control).await;
        let transient = match &reply {
            Err(_) => true,
            Ok(Frame::Error(e)) => e.starts_with(b"TRYAGAIN") || e.starts_with(b"CLUSTERDOWN"),
            Ok(_) => false,
        };
        if !transient || tokio::time::Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks the source group's log to seal `slot` (`Control::Handoff`): Redis's refusal while
/// it still holds keys of it.
async fn handoff(groups: &Groups, slot: u16, source: u64, addr: &str) -> Result<(), Frame> {
    let control = Control::Handoff { slot, addr: addr.to_string() };
    match propose_retrying(groups, source, &control).await {
        Ok(Frame::Integer(0)) => Ok(()),
        Ok(Frame::Integer(_)) => Err(Frame::error(format!(
            "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
        ))),
        Ok(Frame::Error(e)) => Err(Frame::Error(e)),
        Ok(other) => Err(Frame::error(format!("ERR unexpected hand-off reply {other:?}"))),
        Err(e) => Err(Frame::error(format!("TRYAGAIN group {source} did not take the hand-off: {e}"))),
    }
}

/// The open-slot marks of `me`'s line in CLUSTER NODES: `[slot->-<target node>]` for a slot
/// migrating from a group it leads, `[slot-<-<source node>]` for one importing into one.
pub fn nodes_marks(map: &ClusterMap, leader: &dyn Fn(u64) -> Option<NodeId>, me: NodeId) -> String {
    let mut out = String::new();
    for (slot, o) in &map.open_slots {
        let name = |g: u64| leader(g).map_or_else(|| "-".repeat(40), node_name);
        if o.migrating && leader(o.source) == Some(me) {
            out.push_str(&format!(" [{slot}->-{}]", name(o.target)));
        }
        if o.importing && leader(o.target) == Some(me) {
            out.push_str(&format!(" [{slot}-<-{}]", name(o.source)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::NodeInfo;
    use std::collections::BTreeMap;

    /// Four groups over nodes 1..=3: node n leads group n, node 1 also leads group 4.
    fn map() -> ClusterMap {
        let mut m = ClusterMap::initial((1, NodeInfo::default()), 4, 3);
        m.nodes = (1..=4).map(|i| (i, NodeInfo::default())).collect::<BTreeMap<_, _>>();
        m
    }

    fn leader(g: u64) -> Option<NodeId> {
        Some(if g == 4 { 1 } else { g })
    }

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn setslot_parses_as_redis_checks() {
        let known = |n: &[u8]| (n == b"abc").then_some(7);
        assert_eq!(parse(&argv("cluster setslot 5 importing abc"), known), Ok((5, Action::Importing(7))));
        assert_eq!(parse(&argv("cluster setslot 5 NODE abc"), known), Ok((5, Action::Node(7))));
        assert_eq!(parse(&argv("cluster setslot 16383 stable"), known), Ok((16383, Action::Stable)));
        let err = |line: &str| match parse(&argv(line), known) {
            Err(Frame::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(err("cluster setslot 16384 stable"), "ERR Invalid or out of range slot");
        assert_eq!(err("cluster setslot -1 stable"), "ERR Invalid or out of range slot");
        assert_eq!(err("cluster setslot x stable"), "ERR Invalid or out of range slot");
        assert_eq!(err("cluster setslot 1 stable abc"), INVALID);
        assert_eq!(err("cluster setslot 1 moving abc"), INVALID);
        assert_eq!(err("cluster setslot 1 node"), INVALID);
        assert_eq!(err("cluster setslot 1 node zzz"), "ERR I don't know about node zzz");
        assert!(err("cluster setslot 1").contains("wrong number of arguments"));
    }

    #[test]
    fn a_node_id_names_the_group_it_leads_next_to_the_slot() {
        let m = map();
        // Slot 4095 is group 1's last; node 1 leads groups 1 and 4.
        assert_eq!(group_of_node(&m, &leader, 1, 4095), Some(1));
        assert_eq!(group_of_node(&m, &leader, 1, 12288), Some(4), "the group owning the slot");
        assert_eq!(group_of_node(&m, &leader, 1, 8191), Some(1), "none adjacent: the lowest");
        assert_eq!(group_of_node(&m, &leader, 2, 4095), Some(2), "the neighbouring slot 4096 is group 2's");
        assert_eq!(group_of_node(&m, &leader, 4, 1), None, "node 4 leads nothing");
    }

    fn refused(r: Result<Decision, Frame>) -> String {
        match r {
            Err(Frame::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn the_states_go_through_the_map_and_node_hands_the_slot_over() {
        let m = map();
        let slot = 100; // group 1, led by node 1
        assert_eq!(refused(decide(&m, &leader, 4, slot, Action::Stable)), NOT_MASTER);
        assert!(refused(decide(&m, &leader, 1, slot, Action::Importing(2))).contains("already the owner"));
        assert!(refused(decide(&m, &leader, 2, slot, Action::Migrating(1))).contains("not the owner"));
        assert!(refused(decide(&m, &leader, 2, slot, Action::Importing(4))).contains("not a master"));
        let imp = decide(&m, &leader, 2, slot, Action::Importing(1)).expect("importing");
        let m1 = imp.map.expect("changed");
        assert_eq!(m1.epoch, m.epoch + 1);
        assert_eq!(imp.open, OpenSlot { source: 1, target: 2, importing: true, migrating: false });
        assert!(decide(&m1, &leader, 2, slot, Action::Importing(1)).expect("again").map.is_none(), "idempotent");
        assert!(refused(decide(&m1, &leader, 1, slot, Action::Migrating(3))).contains("STABLE first"));
        let mig = decide(&m1, &leader, 1, slot, Action::Migrating(2)).expect("migrating");
        let m2 = mig.map.expect("changed");
        assert_eq!(m2.open_slots[&slot], OpenSlot { source: 1, target: 2, importing: true, migrating: true });
        assert!(nodes_marks(&m2, &leader, 1).contains(&format!("[{slot}->-{}]", node_name(2))));
        assert!(nodes_marks(&m2, &leader, 2).contains(&format!("[{slot}-<-{}]", node_name(1))));
        assert!(m2.start_migration(&[(slot, slot)], 3).is_err(), "no atomic migration of an open slot");
        let node = decide(&m2, &leader, 3, slot, Action::Node(2)).expect("node");
        let m3 = node.map.expect("changed");
        assert_eq!((m3.group_of(slot), m3.open_slots.get(&slot), m3.epoch), (Some(2), None, m2.epoch + 1));
        assert!(decide(&m3, &leader, 1, slot, Action::Node(2)).expect("repeat").map.is_none(), "already there");
        assert_eq!(nodes_marks(&m3, &leader, 1), "");
        // STABLE drops the record; with none it changes nothing.
        let stable = decide(&m2, &leader, 1, slot, Action::Stable).expect("stable");
        assert!(stable.map.expect("changed").open_slots.is_empty());
        assert!(decide(&m, &leader, 1, slot, Action::Stable).expect("stable").map.is_none());
    }
}
