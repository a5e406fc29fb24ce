//! The CLUSTER subcommands of atomic slot migration (Valkey 9's names):
//!
//! - `CLUSTER MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node-id> | GROUP <g>`
//!   starts a migration of the ranges (all in one data group) to group `g`, or to the lowest
//!   other data group that node leads; `+OK` once MetaRaft holds the record;
//! - `CLUSTER GETSLOTMIGRATIONS`: the running and the last finished migrations;
//! - `CLUSTER CANCELSLOTMIGRATIONS`: cancels every migration still copying.
//!
//! Each changes MetaRaft's map by compare-and-set, so it is retried if the map moved meanwhile.

use super::groups::Groups;
use super::map::ClusterMap;
use super::migration::MigrationState;
use super::mover::propose_to;
use crate::cmd::args;
use crate::protocol::Frame;
use crate::raft::{Control, NodeId};
use bytes::Bytes;
use std::time::Duration;

/// Attempts of a compare-and-set against a map that keeps changing.
const ATTEMPTS: usize = 20;
/// Longest a migration command takes (then `-TRYAGAIN`: the outcome is unknown).
const COMMAND_TIME: Duration = Duration::from_secs(8);

/// Runs a migration subcommand; `None` for any other subcommand.
pub async fn command(groups: &Groups, argv: &[Bytes]) -> Option<Frame> {
    let sub = String::from_utf8_lossy(argv.get(1)?).to_ascii_lowercase();
    Some(match sub.as_str() {
        "migrateslots" => match parse(groups, argv) {
            Ok(spec) => change(groups, |map| start(groups, map, &spec)).await,
            Err(e) => e,
        },
        "getslotmigrations" if argv.len() == 2 => list(groups),
        "cancelslotmigrations" if argv.len() == 2 => change(groups, cancel_all).await,
        "getslotmigrations" | "cancelslotmigrations" => {
            Frame::error(format!("ERR wrong number of arguments for 'cluster|{sub}' command"))
        }
        _ => return None,
    })
}

/// Where a migration goes.
enum Target {
    Node(NodeId),
    Group(u64),
}

/// A parsed MIGRATESLOTS.
struct Spec {
    ranges: Vec<(u16, u16)>,
    target: Target,
}

fn syntax() -> Frame {
    Frame::error("ERR syntax error: CLUSTER MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node-id> | GROUP <group>")
}

fn parse(groups: &Groups, argv: &[Bytes]) -> Result<Spec, Frame> {
    if argv.len() < 7 || !args::is(&argv[2], "slotsrange") {
        return Err(syntax());
    }
    let (pairs, tail) = argv[3..].split_at(argv.len() - 5);
    if pairs.len() % 2 != 0 {
        return Err(syntax());
    }
    let slot = |b: &Bytes| match args::int(b) {
        Ok(n) if (0..i64::from(crate::cmd::cluster::slot::SLOTS)).contains(&n) => Ok(n as u16),
        _ => Err(Frame::error("ERR Invalid or out of range slot")),
    };
    let ranges = pairs.chunks(2).map(|p| Ok((slot(&p[0])?, slot(&p[1])?))).collect::<Result<Vec<_>, Frame>>()?;
    let target = if args::is(&tail[0], "node") {
        Target::Node(node_id(groups, &tail[1])?)
    } else if args::is(&tail[0], "group") {
        match args::int(&tail[1]) {
            Ok(g) if g > 0 => Target::Group(g as u64),
            _ => return Err(Frame::error("ERR invalid group id")),
        }
    } else {
        return Err(syntax());
    };
    Ok(Spec { ranges, target })
}

/// A node named as `CLUSTER NODES` does (40 hex digits) or by its numeric id.
pub(super) fn node_id(groups: &Groups, arg: &[u8]) -> Result<NodeId, Frame> {
    let text = String::from_utf8_lossy(arg);
    let id = if text.len() == 40 { u64::from_str_radix(&text, 16).ok() } else { text.parse().ok() };
    match id.filter(|id| groups.map().is_some_and(|m| m.nodes.contains_key(id))) {
        Some(id) => Ok(id),
        None => Err(Frame::error(format!("ERR Unknown node {text}"))),
    }
}

/// The map with the migration of `spec` added.
fn start(groups: &Groups, map: &ClusterMap, spec: &Spec) -> Result<Option<ClusterMap>, Frame> {
    let target = match spec.target {
        Target::Group(g) => g,
        Target::Node(node) => {
            let source = spec.ranges.first().and_then(|r| map.group_of(r.0));
            let mut led = map.groups.keys().copied().filter(|g| groups.leader_of(*g).is_some_and(|(id, _)| id == node));
            match led.find(|g| Some(*g) != source) {
                Some(g) => g,
                None => {
                    return Err(Frame::error(format!(
                        "ERR node {node} leads no data group other than the slots' own; name one with GROUP <g>"
                    )))
                }
            }
        }
    };
    map.start_migration(&spec.ranges, target).map(Some).map_err(Frame::error)
}

/// The map with every copying migration cancelled (`None`: nothing to cancel).
fn cancel_all(map: &ClusterMap) -> Result<Option<ClusterMap>, Frame> {
    let copying: Vec<u64> =
        map.migrations.iter().filter(|m| m.state == MigrationState::Copying).map(|m| m.id).collect();
    let mut next: Option<ClusterMap> = None;
    for id in copying {
        let from = next.as_ref().unwrap_or(map);
        if let Some(mut changed) = from.advance_migration(id, MigrationState::Copying, MigrationState::Cancelling, 0) {
            changed.epoch = map.epoch + 1;
            next = Some(changed);
        }
    }
    Ok(next)
}

/// Writes `change(map)` into MetaRaft by compare-and-set (see [`try_change`]), giving up
/// after [`COMMAND_TIME`] so that a client never waits longer than that.
async fn change(groups: &Groups, change: impl Fn(&ClusterMap) -> Result<Option<ClusterMap>, Frame>) -> Frame {
    change_map(groups, change, took_effect).await
}

/// Writes `change(map)` into MetaRaft by compare-and-set (see [`try_change`]; `took(map,
/// sent)`: whether `map` holds the change `sent` made), giving up after [`COMMAND_TIME`].
pub(super) async fn change_map(
    groups: &Groups,
    change: impl Fn(&ClusterMap) -> Result<Option<ClusterMap>, Frame>,
    took: impl Fn(&ClusterMap, &ClusterMap) -> bool,
) -> Frame {
    match tokio::time::timeout(COMMAND_TIME, try_change(groups, change, took)).await {
        Ok(reply) => reply,
        Err(_) => Frame::error(
            "TRYAGAIN MetaRaft did not confirm the change in time; it may or may not have been made (see CLUSTER GETSLOTMIGRATIONS)",
        ),
    }
}

/// Writes `change(map)` into MetaRaft by compare-and-set, from the newest map this node has,
/// retrying while other changes win the race.
async fn try_change(
    groups: &Groups,
    change: impl Fn(&ClusterMap) -> Result<Option<ClusterMap>, Frame>,
    took: impl Fn(&ClusterMap, &ClusterMap) -> bool,
) -> Frame {
    let mut last = String::new();
    let mut sent: Vec<ClusterMap> = Vec::new();
    for _ in 0..ATTEMPTS {
        // Decide on a map at least as new as any acknowledged change (a follower's copy may
        // lag): a cancel must see the migration the client just started.
        groups.meta.catch_up().await;
        let Some(map) = groups.map() else {
            return Frame::error("CLUSTERDOWN The cluster is not formed yet: no slot table");
        };
        if sent.iter().any(|n| took(&map, n)) {
            // An earlier attempt committed although its reply was lost.
            return Frame::ok();
        }
        let next = match change(&map) {
            Ok(Some(next)) => next,
            Ok(None) => return Frame::ok(),
            Err(e) => return e,
        };
        sent.push(next.clone());
        let control = Control::SetMap { expect: map.epoch, epoch: next.epoch, map: next.encode() };
        match propose_to(groups, 0, &control).await {
            Ok(Frame::Error(e)) => last = String::from_utf8_lossy(&e).into_owned(),
            Ok(_) => return Frame::ok(),
            Err(e) => last = e,
        }
        tracing::info!("cluster map change not taken, retrying: {last}");
        // The map moved (or MetaRaft is electing): wait for this node's copy to catch up.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Frame::error(format!("TRYAGAIN the cluster map kept changing: {last}"))
}

/// Whether `map` holds the change of `sent` (a map this command proposed): every migration
/// of `sent` is in `map`, in the state `sent` gave it or a later one.
fn took_effect(map: &ClusterMap, sent: &ClusterMap) -> bool {
    use MigrationState::*;
    let reached = |now: MigrationState, then: MigrationState| {
        now == then || matches!((then, now), (Copying, _) | (Handover, Done) | (Cancelling, Cancelled))
    };
    map.epoch >= sent.epoch
        && sent.migrations.iter().all(|s| {
            map.migration(s.id)
                .is_some_and(|m| m.ranges == s.ranges && m.target == s.target && reached(m.state, s.state))
        })
}

/// GETSLOTMIGRATIONS: one entry per migration, as field-value pairs.
fn list(groups: &Groups) -> Frame {
    let Some(map) = groups.map() else { return Frame::Array(Vec::new()) };
    let entry = |m: &super::migration::Migration| {
        let leader =
            |g: u64| groups.leader_of(g).map_or_else(String::new, |(id, _)| crate::cmd::cluster::face::node_name(id));
        Frame::Array(vec![
            Frame::bulk("id"),
            Frame::Integer(m.id as i64),
            Frame::bulk("slot_ranges"),
            Frame::bulk(m.ranges_text()),
            Frame::bulk("source_group"),
            Frame::Integer(m.source as i64),
            Frame::bulk("target_group"),
            Frame::Integer(m.target as i64),
            Frame::bulk("source_node"),
            Frame::bulk(leader(m.source)),
            Frame::bulk("target_node"),
            Frame::bulk(leader(m.target)),
            Frame::bulk("state"),
            Frame::bulk(m.state.as_str()),
            Frame::bulk("keys"),
            Frame::Integer(m.keys as i64),
        ])
    };
    Frame::Array(map.migrations.iter().map(entry).collect())
}
