//! `CLUSTER METARAFT REMOVE <id>` on a node with data groups: the node's data-group replicas
//! move to other nodes first, then it leaves MetaRaft.
//!
//! 1. MetaRaft's map marks the node leaving (compare-and-set `SetMap`); refused with a clear
//!    error for an unknown node, the last MetaRaft voter, or the last node able to host
//!    replicas.
//! 2. MetaRaft's leader places each of its replicas on another node (`super::placement`) and
//!    each group's leader moves it (`super::replicas`: the new one added and caught up, then
//!    the old one removed), recording the end of each move in the map.
//! 3. Once the map shows the node in no group, it is removed from MetaRaft: by this command,
//!    and by MetaRaft's leader's controller as well, so the removal completes even if the node
//!    that took the command dies meanwhile.
//!
//! The command waits (on MetaRaft's applied figures, not by polling) up to [`REMOVE_WAIT`]; past
//! that it answers an error saying the moves go on and the command may be sent again.

use super::groups::Groups;
use super::mover::propose_to;
use crate::cmd::args;
use crate::cmd::cluster::metaraft::{self, MetaRaftCmd};
use crate::protocol::Frame;
use crate::raft::{Control, NodeId};
use bytes::Bytes;
use std::time::Duration;

/// Longest `CLUSTER METARAFT REMOVE` waits for the node's replicas to move.
pub const REMOVE_WAIT: Duration = Duration::from_secs(120);
/// Attempts of a compare-and-set against a map that keeps changing.
const ATTEMPTS: usize = 20;

/// Runs `CLUSTER METARAFT REMOVE`; `None` for any other command.
pub async fn command(groups: &Groups, argv: &[Bytes]) -> Option<Frame> {
    let is = |i: usize, word: &str| argv.get(i).is_some_and(|a| args::is(a, word));
    if !is(1, "metaraft") || !is(2, "remove") {
        return None;
    }
    Some(match metaraft::parse(argv) {
        Ok(MetaRaftCmd::Remove(id)) => match remove(groups, id, REMOVE_WAIT).await {
            Ok(()) => Frame::ok(),
            Err(e) => Frame::error(format!("ERR {e}")),
        },
        Ok(_) => return None,
        Err(e) => e,
    })
}

/// Removes node `id` from the cluster once its replicas have moved (see the module), waiting
/// at most `wait`.
pub async fn remove(groups: &Groups, id: NodeId, wait: Duration) -> Result<(), String> {
    let meta = &groups.meta;
    let deadline = tokio::time::Instant::now() + wait;
    if !meta.catch_up().await && !meta.is_member() {
        return Err(format!(
            "node {} is not a member of the cluster (removed?): send the command to a member",
            groups.id
        ));
    }
    let (voters, members) = meta.membership_ids();
    let map = groups.map().ok_or("the cluster is not formed yet: no cluster map")?;
    if !members.contains(&id) && !map.nodes.contains_key(&id) {
        return Err(format!("node {id} is not a member"));
    }
    if voters.len() == 1 && voters.contains(&id) {
        return Err(format!("node {id} is the last voter; it cannot be removed"));
    }
    if map.nodes.contains_key(&id) {
        mark_leaving(groups, id).await?;
        wait_drained(groups, id, deadline).await?;
    }
    leave_meta(groups, id, deadline).await
}

/// Step 1: the map marks `id` leaving.
async fn mark_leaving(groups: &Groups, id: NodeId) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let map = groups.map().ok_or("no cluster map")?;
        let Some(next) = map.with_leaving(id)? else { return Ok(()) };
        let control = Control::SetMap { expect: map.epoch, epoch: next.epoch, map: next.encode() };
        match propose_to(groups, 0, &control).await {
            Ok(Frame::Error(e)) => last = String::from_utf8_lossy(&e).into_owned(),
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        // The map moved (or MetaRaft is electing): decide again on this node's newer copy.
        groups.meta.catch_up().await;
    }
    Err(format!("the cluster map kept changing; node {id} was not marked leaving: {last}"))
}

/// Step 2: waits until the map shows `id` in no data group.
async fn wait_drained(groups: &Groups, id: NodeId, deadline: tokio::time::Instant) -> Result<(), String> {
    let drained = || groups.map().is_some_and(|m| m.drained(id));
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let _ = groups.meta.raft().wait(Some(left)).metrics(|_| drained(), "the node's replicas to move").await;
    if drained() {
        return Ok(());
    }
    let pending = groups.map().map(|m| m.groups_of(id)).unwrap_or_default();
    Err(format!(
        "node {id} is leaving, but its replicas of data groups {pending:?} have not moved yet; the moves go on: \
         send CLUSTER METARAFT REMOVE {id} again to wait for them"
    ))
}

/// Step 3: `id` leaves MetaRaft (or has left already, by the controller's hand).
async fn leave_meta(groups: &Groups, id: NodeId, deadline: tokio::time::Instant) -> Result<(), String> {
    let meta = &groups.meta;
    loop {
        let err = match meta.remove_node(id).await {
            Ok(()) => return Ok(()),
            Err(e) if e.to_string() == format!("node {id} is not a member") => return Ok(()),
            Err(e) => e.to_string(),
        };
        // The controller may be removing it right now (one membership change at a time).
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(err);
        }
        let gone = |m: &openraft::RaftMetrics<crate::raft::TypeConfig>| {
            m.membership_config.membership().get_node(&id).is_none()
        };
        if meta.raft().wait(Some(left.min(Duration::from_secs(1)))).metrics(gone, "the node to leave").await.is_ok() {
            return Ok(());
        }
    }
}
