//! Multi-raft: the commands that a multi-raft node runs on several data groups.
//!
//! - The keyless keyspace commands that a Redis Cluster master answers for its own slots
//!   (DBSIZE, KEYS, RANDOMKEY, FLUSHALL, FLUSHDB, SCAN) run on every data group this node
//!   leads, and their replies are combined, so a client that sums over the masters (as
//!   redis-cli `--cluster info` does) gets the true totals. SCAN walks the led groups one
//!   after the other: its cursor names the group (see [`ScanCursor`]).
//! - SCRIPT LOAD / FLUSH and FUNCTION LOAD / DELETE / FLUSH change what every group runs:
//!   they go to every data group of the cluster (through each group's log), so EVALSHA and
//!   FCALL find the script or function whatever group a key's slot belongs to.

use super::client::Client;
use super::shared::Shared;
use crate::cluster::Groups;
use crate::cmd::{args, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::raft::node::ReadPoint;
use crate::raft::NodeInfo;
use crate::store::WriteBatch;
use bytes::Bytes;

/// The commands run on every data group this node leads.
const FANNED: &[&str] = &["dbsize", "keys", "randomkey", "flushall", "flushdb", "scan"];

/// Whether `argv` (a `spec` command) runs on several data groups: on the led ones
/// ([`FANNED`]) or on all of them ([`to_every_group`]).
pub fn fans_out(shared: &Shared, spec: &CommandSpec, argv: &[Bytes]) -> bool {
    shared.cluster.is_some() && (FANNED.contains(&spec.name) || to_every_group(spec, argv))
}

/// SCRIPT LOAD / FLUSH, FUNCTION LOAD / DELETE / FLUSH: what every group must hold alike.
fn to_every_group(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    let sub = |names: &[&str]| argv.get(1).is_some_and(|s| names.iter().any(|n| args::is(s, n)));
    match spec.name {
        "script" => sub(&["load", "flush"]),
        "function" => sub(&["load", "delete", "flush"]),
        _ => false,
    }
}

/// Runs `argv` on the data groups it concerns (see [`fans_out`]) and combines the replies.
pub async fn run(client: &Client, shared: &Shared, spec: &CommandSpec, argv: &[Bytes], now: u64) -> Frame {
    let Some(cluster) = &shared.cluster else { return Frame::error("ERR not a multi-raft node") };
    if to_every_group(spec, argv) {
        return every_group(shared, cluster, client.db, argv, now).await;
    }
    if let (Kind::Read(read), "scan") = (spec.kind, spec.name) {
        return super::cluster_scan::scan(client, shared, cluster, read, argv, now).await;
    }
    let mut replies = Vec::new();
    for group in cluster.led_groups() {
        let reply = match spec.kind {
            Kind::Read(f) => {
                let mut point = ReadPoint::default();
                shared.engine.read_on(group, client.db, now, f, argv, client.readonly, &mut point).await
            }
            _ => {
                let mut replies = shared.engine.write_many_to(group, client.db, now, vec![argv.to_vec()]).await;
                replies.next().unwrap_or(Frame::Null)
            }
        };
        if matches!(reply, Frame::Error(_)) {
            return reply;
        }
        replies.push(reply);
    }
    combine(spec.name, replies)
}

/// Writes `cmd` (replicated settings, users: what every keyspace must hold alike) through the
/// log of every group that holds keys: every data group of the cluster in a multi-raft node,
/// also those this node holds no replica of ([`every_group`]), else group 0.
pub async fn write_to_every_keyspace(shared: &Shared, db: usize, now: u64, cmd: Vec<Bytes>) -> Frame {
    match &shared.cluster {
        Some(cluster) => every_group(shared, cluster, db, &cmd, now).await,
        None => shared.engine.write_many_to(0, db, now, vec![cmd]).await.next().unwrap_or(Frame::Null),
    }
}

/// Writes `argv` through the log of every data group of the cluster: on a group this node
/// serves, as any write (a follower forwards it to the leader); on another, to the
/// group's voters in turn until its leader takes it. The replies agree when every group held
/// the same scripts and functions; otherwise the first error is the reply (the groups that
/// accepted keep the change, as Redis Cluster masters loaded one by one would).
async fn every_group(shared: &Shared, cluster: &Groups, db: usize, argv: &[Bytes], now: u64) -> Frame {
    let map = cluster.map();
    let mut first: Option<Frame> = None;
    let mut error: Option<Frame> = None;
    for (g, replica) in &cluster.data {
        // `serves`, not `is_member`: an orphaned copy (a group the map no longer gives this
        // node, whose Raft state still names it) must not take the write.
        let reply = if map.as_ref().is_some_and(|m| cluster.serves(m, *g)) {
            shared.engine.write_many_to(*g, db, now, vec![argv.to_vec()]).await.next().unwrap_or(Frame::Null)
        } else {
            let voters: Vec<NodeInfo> = match (&map, map.as_ref().and_then(|m| m.groups.get(g))) {
                (Some(map), Some(p)) => p.voters.iter().filter_map(|id| map.nodes.get(id).cloned()).collect(),
                _ => Vec::new(),
            };
            let mut reply = Frame::error(format!("CLUSTERDOWN Raft group {g} has no known voter"));
            for node in &voters {
                let batch = WriteBatch {
                    db: db as u32,
                    now_ms: now,
                    seed: shared.engine.next_seed(),
                    cmds: vec![argv.to_vec()],
                    transaction: None,
                };
                reply = replica.write_at(node, batch).await;
                if !text_of(&reply).starts_with("CLUSTERDOWN not the leader") {
                    break;
                }
            }
            reply
        };
        if matches!(reply, Frame::Error(_)) && error.is_none() {
            error = Some(reply.clone());
        }
        first.get_or_insert(reply);
    }
    error.or(first).unwrap_or_else(|| Frame::error("ERR this node runs no data group"))
}

fn text_of(f: &Frame) -> std::borrow::Cow<'_, str> {
    match f {
        Frame::Error(b) => String::from_utf8_lossy(b),
        _ => std::borrow::Cow::Borrowed(""),
    }
}

/// One reply from the replies of several groups.
fn combine(name: &str, replies: Vec<Frame>) -> Frame {
    match name {
        "dbsize" => Frame::Integer(replies.iter().map(|r| if let Frame::Integer(n) = r { *n } else { 0 }).sum()),
        "keys" => Frame::Array(
            replies.into_iter().flat_map(|r| if let Frame::Array(keys) = r { keys } else { Vec::new() }).collect(),
        ),
        "randomkey" => replies.into_iter().find(|r| !matches!(r, Frame::Null)).unwrap_or(Frame::Null),
        _ => Frame::ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_several_groups_combine() {
        let ints = vec![Frame::Integer(2), Frame::Integer(3)];
        assert_eq!(combine("dbsize", ints), Frame::Integer(5));
        assert_eq!(combine("dbsize", vec![]), Frame::Integer(0));
        let keys = vec![Frame::Array(vec![Frame::bulk("a")]), Frame::Array(vec![Frame::bulk("b")])];
        assert_eq!(combine("keys", keys), Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")]));
        assert_eq!(combine("randomkey", vec![Frame::Null, Frame::bulk("k")]), Frame::bulk("k"));
        assert_eq!(combine("randomkey", vec![]), Frame::Null);
        assert_eq!(combine("flushall", vec![Frame::ok(), Frame::ok()]), Frame::ok());
    }
}
