//! Redis Cluster's legacy slot migration in the sharded chaos runs, as `redis-cli --cluster
//! reshard` runs it for one slot, over the nodes' client ports: `CLUSTER SETSLOT <slot>
//! IMPORTING <source node>` on the target group's leader, `SETSLOT <slot> MIGRATING <target
//! node>` on the source group's leader, `CLUSTER GETKEYSINSLOT` + `MIGRATE ... KEYS` on the
//! source until it holds no key of the slot, then `SETSLOT <slot> NODE <target node>`. The
//! faults go on meanwhile; a step that fails ends the sequence, leaving the slot open (keys
//! split between the groups, clients sent on with `-ASK`), and the finale completes every slot
//! left open ([`complete_open_slots`]) before the ownership check, as an operator would with
//! `redis-cli --cluster fix`: `STABLE` would hide the keys already moved.

use super::faults::Timeline;
use super::nodes::{client_addr, ip, Cluster, HostState};
use crate::check::Violation;
use crate::client::SimClient;
use raftis::protocol::Frame;
use std::time::Duration;
use tokio::time::Instant;

/// How long one command of the sequence may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys per GETKEYSINSLOT / MIGRATE round (redis-cli's default pipeline is 10).
const BATCH: usize = 10;
/// Rounds of MIGRATE before the sequence gives up (the workload keeps creating keys).
const MAX_ROUNDS: usize = 20;
/// How long the finale tries to complete the slots left open.
const COMPLETE_BOUND: Duration = Duration::from_secs(60);

/// The leaders of `source` and `target` as the first running node that knows both sees
/// them, if both are up and distinct (a node leading both ends of a move cannot name both).
pub fn ends(cluster: &Cluster, source: u64, target: u64) -> Option<(u64, u64)> {
    let up = cluster.in_state(HostState::Up);
    let (s, t) = up.iter().find_map(|id| {
        let groups = cluster.groups(*id)?;
        Some((groups.leader_of(source)?.0, groups.leader_of(target)?.0))
    })?;
    (s != t && up.contains(&s) && up.contains(&t)).then_some((s, t))
}

/// One command to `node`'s client port, within [`STEP_TIMEOUT`]; the reply as text.
async fn send(node: u64, args: &[&str]) -> Result<Frame, String> {
    let mut c =
        SimClient::connect(client_addr(node), Duration::from_secs(1)).await.map_err(|e| format!("connect: {e}"))?;
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    match tokio::time::timeout(STEP_TIMEOUT, c.cmd(&argv)).await {
        Ok(Ok(frame)) => Ok(frame),
        Ok(Err(e)) => Err(format!("connection: {e}")),
        Err(_) => Err("timed out".into()),
    }
}

fn is_ok(reply: &Result<Frame, String>) -> bool {
    matches!(reply, Ok(f) if *f == Frame::ok())
}

fn show(reply: &Result<Frame, String>) -> String {
    match reply {
        Ok(Frame::Error(e)) => format!("-{}", String::from_utf8_lossy(e)),
        Ok(f) if *f == Frame::ok() => "OK".into(),
        Ok(f) => format!("{f:?}"),
        Err(e) => e.clone(),
    }
}

/// The keys of `slot` the source node's copy holds (up to [`BATCH`]).
async fn keys_in_slot(node: u64, slot: u16) -> Result<Vec<String>, String> {
    match send(node, &["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), &BATCH.to_string()]).await? {
        Frame::Array(items) => Ok(items
            .into_iter()
            .filter_map(|f| match f {
                Frame::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                _ => None,
            })
            .collect()),
        other => Err(format!("GETKEYSINSLOT: {other:?}")),
    }
}

/// MIGRATE of the source's keys of `slot` to `to`, a batch at a time, until none is left;
/// `Err` with what stopped it.
async fn move_keys(from: u64, to: u64, slot: u16) -> Result<usize, String> {
    let mut moved = 0;
    for _ in 0..MAX_ROUNDS {
        let keys = keys_in_slot(from, slot).await?;
        if keys.is_empty() {
            return Ok(moved);
        }
        let port = client_addr(to).port().to_string();
        let mut args: Vec<String> = vec!["MIGRATE".into(), ip(to), port, String::new(), "0".into(), "5000".into()];
        args.push("KEYS".into());
        args.extend(keys.iter().cloned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = send(from, &argv).await;
        if !(is_ok(&reply) || matches!(&reply, Ok(Frame::Simple(s)) if s.as_ref() == b"NOKEY")) {
            return Err(format!("MIGRATE {keys:?}: {}", show(&reply)));
        }
        moved += keys.len();
    }
    Err(format!("keys of slot {slot} still at the source after {MAX_ROUNDS} rounds"))
}

/// The whole sequence for `slot` from node `from` (leading its group) to node `to`: whether
/// it ended with the hand-over, and a text for the timeline. Every step may be sent again
/// (the finale completing a slot a fault left open).
pub async fn reshard(from: u64, to: u64, slot: u16) -> (bool, String) {
    let s = slot.to_string();
    let (fs, ts) = (from.to_string(), to.to_string());
    let importing = send(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &fs]).await;
    if !is_ok(&importing) {
        return (false, format!("IMPORTING on {to}: {}", show(&importing)));
    }
    let migrating = send(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &ts]).await;
    if !is_ok(&migrating) {
        return (false, format!("MIGRATING on {from}: {}", show(&migrating)));
    }
    let moved = match move_keys(from, to, slot).await {
        Ok(n) => n,
        Err(e) => return (false, e),
    };
    // redis-cli sends NODE to the target first, then the source and every master.
    let node = send(to, &["CLUSTER", "SETSLOT", &s, "NODE", &ts]).await;
    if !is_ok(&node) {
        return (false, format!("{moved} keys moved; NODE on {to}: {}", show(&node)));
    }
    let _ = send(from, &["CLUSTER", "SETSLOT", &s, "NODE", &ts]).await;
    (true, format!("{moved} keys moved, NODE done"))
}

/// One legacy migration of the chaos schedule: `slot` from group `source` to group `target`.
pub async fn run(
    cluster: &Cluster,
    host: &madsim::runtime::NodeHandle,
    timeline: &Timeline,
    slot: u16,
    source: u64,
    target: u64,
) {
    let Some((from, to)) = ends(cluster, source, target) else {
        timeline.note(format!("legacy migration of slot {slot}: the leaders of groups {source} and {target} unknown"));
        return;
    };
    let (ok, what) = host.spawn(reshard(from, to, slot)).await.unwrap_or((false, "task failed".into()));
    let verdict = if ok { "done" } else { "left open" };
    timeline.note(format!(
        "legacy migration of slot {slot} (group {source} -> {target}, node {from} -> {to}): {verdict}: {what}"
    ));
}

/// The finale: every slot the newest map has open is moved on to its target and handed over
/// (the sequence again: each step is idempotent), within [`COMPLETE_BOUND`].
pub async fn complete_open_slots(cluster: &Cluster, timeline: &Timeline) -> Result<(), Violation> {
    let deadline = Instant::now() + COMPLETE_BOUND;
    loop {
        let map = cluster.ids().into_iter().filter_map(|id| cluster.groups(id)?.map()).max_by_key(|m| m.epoch);
        let Some(map) = map else { return Ok(()) };
        let Some((&slot, open)) = map.open_slots.iter().next() else { return Ok(()) };
        let (ok, what) = match ends(cluster, open.source, open.target) {
            Some((from, to)) => reshard(from, to, slot).await,
            None => (false, "leaders unknown".into()),
        };
        timeline.note(format!("completing open slot {slot} (group {} -> {}): {what}", open.source, open.target));
        if Instant::now() >= deadline {
            let detail = format!("slot {slot} still open after {COMPLETE_BOUND:?}: {what}");
            return Err(Violation { property: "open slots complete", detail, ops: Vec::new() });
        }
        // Also after a success: the map read next may not show the hand-over yet.
        tokio::time::sleep(Duration::from_millis(if ok { 100 } else { 300 })).await;
    }
}
