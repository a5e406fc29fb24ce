//! A sharded cluster (MetaRaft plus data groups, the chaos harness's nodes) in which the
//! leader of a data group is removed from MetaRaft by a plain membership change (not `CLUSTER
//! METARAFT REMOVE`, which moves the replicas first), and a slot migration then gives that
//! group more slots. Chaos seeds 1013 and 277 with slot migrations: the removed node, no
//! longer receiving MetaRaft's log, kept leading its group with the map it had, so the group
//! never recorded the slots the newer map gave it and clients were sent between it and the
//! source's leader with `-MOVED` forever. MetaRaft's leader now keeps such a node a learner
//! of MetaRaft until its replicas have moved (`cluster::controller`), so it follows the map.

use crate::client::SimClient;
use crate::harness::nodes::{client_addr, wait_until, Cluster};
use crate::harness::tuning::Tuning;
use bytes::Bytes;
use raftis::cluster::migration::MigrationState;
use raftis::cmd::cluster::slot::key_slot;
use raftis::protocol::Frame;
use std::time::Duration;

/// `SET key value` from a client host, following `-MOVED` (up to 3 redirects) from node 1
/// (or the node the last attempt was sent to); the last reply.
async fn routed_set(start: u64, key: &str, value: &str) -> Option<Frame> {
    let mut node = start;
    let mut last = None;
    for _ in 0..4 {
        let mut c = SimClient::connect(client_addr(node), Duration::from_secs(2)).await.ok()?;
        let args: [&[u8]; 3] = [b"SET", key.as_bytes(), value.as_bytes()];
        let reply = tokio::time::timeout(Duration::from_secs(5), c.cmd(&args)).await.ok()?.ok()?;
        let to = match &reply {
            Frame::Error(e) => String::from_utf8_lossy(e).strip_prefix("MOVED ").and_then(moved_host),
            _ => None,
        };
        last = Some(reply);
        match to {
            Some(id) => node = id,
            None => break,
        }
    }
    last
}

/// The host id of a `-MOVED`'s `<slot> 10.0.0.<id>:<port>`.
fn moved_host(rest: &str) -> Option<u64> {
    let addr = rest.split(' ').nth(1)?;
    addr.rsplit_once(':')?.0.strip_prefix("10.0.0.")?.parse().ok()
}

#[madsim::test]
async fn a_group_leader_removed_from_metaraft_follows_the_map_until_its_replicas_moved() {
    let handle = madsim::runtime::Handle::current();
    let cluster = Cluster::build(4, Tuning::production(10_000), 2);
    cluster.form(4).await;
    let groups = |id| cluster.groups(id).expect("running");
    // Once the leaders are balanced (MetaRaft's leader leads no data group, so that the
    // balancer leaves group 1's leader alone), group 1's leader leaves MetaRaft.
    let mut x = None;
    wait_until("balanced leaders", 60, || {
        let (Some(meta), Some(g)) = (cluster.leader(), cluster.groups(1)) else { return false };
        let (l1, l2) = (g.leader_of(1).map(|(id, _)| id), g.leader_of(2).map(|(id, _)| id));
        x = l1;
        l1.is_some() && l2.is_some() && l1 != l2 && l1 != Some(meta) && l2 != Some(meta)
    })
    .await;
    let x = x.expect("group 1's leader");
    let meta_leader = cluster.replica(cluster.leader().expect("leader")).expect("running");
    meta_leader.remove_node(x).await.expect("removing group 1's leader from MetaRaft");
    let member = (1..=4).find(|id| *id != x).expect("another node");

    // A slot of group 2 (with a key in it) moves to group 1.
    let map = groups(member).map().expect("map");
    let key = (0..).map(|i| format!("k{i}")).find(|k| map.group_of(key_slot(k.as_bytes())) == Some(2)).expect("key");
    let slot = key_slot(key.as_bytes()).to_string();
    let argv: Vec<Bytes> = ["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", &slot, &slot, "GROUP", "1"]
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    // A refusal (-TRYAGAIN while MetaRaft elects or the map changes) is asked again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = raftis::cluster::migrate_cmd::command(&groups(member), &argv).await;
        if !matches!(reply, None | Some(Frame::Error(_))) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "MIGRATESLOTS: {reply:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until("the migration to be done", 60, || {
        let map = cluster.groups(member).and_then(|g| g.map());
        map.is_some_and(|m| m.migrations.iter().all(|m| m.state == MigrationState::Done))
    })
    .await;

    // A client reaches the slot's new owner through routing, from any node, within a while.
    let client = handle.create_node().name("client").ip("10.0.1.1".parse().expect("ip")).build();
    let (k, from) = (key.clone(), x);
    let written = client
        .spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let reply = routed_set(from, &k, "v").await;
                if reply == Some(Frame::ok()) {
                    return true;
                }
                if tokio::time::Instant::now() > deadline {
                    eprintln!("last reply: {reply:?}");
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .expect("client task");
    assert!(written, "SET {key} (slot {slot}, moved to group 1) never succeeded through routing");

    // Group 1's log records the slot, and node x, drained, leaves MetaRaft and the map.
    wait_until("group 1 to own the slot and node x to be gone", 60, || {
        let Some(g) = cluster.groups(member) else { return false };
        let (Some(map), Some(r)) = (g.map(), g.group(1)) else { return false };
        let owns = r.control().owned.is_some_and(|o| o.owns(key_slot(key.as_bytes())));
        let (_, members) = g.meta.membership_ids();
        owns && !map.nodes.contains_key(&x) && !members.contains(&x)
    })
    .await;
}
