//! MetaRaft membership through Redis commands on simulated hosts: node 1 bootstraps, nodes 2
//! and 3 join with `CLUSTER METARAFT` commands sent to different nodes (a follower and a
//! learner hand them to the leader over the simulated RPC), a PROMOTE leaving out a voter is
//! refused, and a voter removes itself; a client keeps writing throughout and every
//! acknowledged write is readable at the end. And a leader that has just removed itself,
//! asked for more membership changes at once, refuses them instead of tripping openraft.

use crate::client::SimClient;
use crate::harness::nodes::{sim_config, CLIENT_PORT, RAFT_PORT};
use madsim::runtime::Handle;
use raftis::disk::SimDisk;
use raftis::protocol::Frame;
use raftis::raft::membership::MembershipError;
use raftis::raft::node::Replica;
use raftis::raft::NodeInfo;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

fn ip(id: u64) -> String {
    format!("10.0.2.{id}")
}

fn client_addr(id: u64) -> SocketAddr {
    format!("{}:{CLIENT_PORT}", ip(id)).parse().expect("addr")
}

fn raft_addr(id: u64) -> String {
    format!("{}:{RAFT_PORT}", ip(id))
}

/// A command to node `id`, retried on connection trouble until `secs` of virtual time pass.
async fn cmd(id: u64, args: &[&str], secs: u64) -> Frame {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    loop {
        if let Ok(mut c) = SimClient::connect(client_addr(id), Duration::from_secs(1)).await {
            match tokio::time::timeout(Duration::from_secs(60), c.cmd(&args)).await {
                // A node still loading its data: retried, as Redis clients do.
                Ok(Ok(Frame::Error(e))) if e.starts_with(b"LOADING") => {}
                Ok(Ok(f)) => return f,
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "node {id} did not answer {args:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn members(list: &[(u64, &str)]) -> Frame {
    let pair =
        |(id, role): &(u64, &str)| Frame::Array(vec![Frame::bulk(id.to_string()), Frame::bulk(role.to_string())]);
    Frame::Array(list.iter().map(pair).collect())
}

/// Polls node `id`'s MEMBERS until it is `want`.
async fn wait_members(id: u64, want: &Frame) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cmd(id, &["CLUSTER", "METARAFT", "MEMBERS"], 30).await != *want {
        assert!(Instant::now() < deadline, "node {id} never saw {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `SET m_i i` through node 1 until `stop`, recording acknowledged i.
async fn writer(acked: Arc<Mutex<Vec<u64>>>, stop: Arc<AtomicBool>) {
    let mut conn: Option<SimClient> = None;
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if conn.is_none() {
            conn = SimClient::connect(client_addr(1), Duration::from_secs(1)).await.ok();
        }
        let (key, val) = (format!("m_{i}"), i.to_string());
        let ok = match conn.as_mut() {
            Some(c) => c.set_acked(&key, &val, Duration::from_secs(2)).await,
            None => false,
        };
        if ok {
            acked.lock().unwrap().push(i);
            i += 1;
        } else {
            conn = None;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[madsim::test]
async fn a_cluster_forms_and_shrinks_through_metaraft_commands() {
    let handle = Handle::current();
    for id in 1..=3 {
        start_replica(&handle, id);
    }
    let client = handle.create_node().name("admin").ip("10.0.3.1".parse().expect("ip")).build();
    client
        .spawn(async move {
            assert_eq!(cmd(1, &["SET", "first", "1"], 30).await, Frame::ok());
            let acked = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let writes = tokio::spawn(writer(acked.clone(), stop.clone()));

            assert_eq!(cmd(1, &["CLUSTER", "METARAFT", "ADDLEARNER", "2", &raft_addr(2)], 30).await, Frame::ok());
            // Node 2, a learner, hands the promotion to the leader.
            wait_members(2, &members(&[(1, "voter"), (2, "learner")])).await;
            assert_eq!(cmd(2, &["CLUSTER", "METARAFT", "PROMOTE", "1", "2"], 30).await, Frame::ok());
            assert_eq!(cmd(2, &["CLUSTER", "METARAFT", "ADDLEARNER", "3", &raft_addr(3)], 30).await, Frame::ok());
            wait_members(3, &members(&[(1, "voter"), (2, "voter"), (3, "learner")])).await;
            assert_eq!(cmd(3, &["CLUSTER", "METARAFT", "PROMOTE", "1", "2", "3"], 30).await, Frame::ok());
            let three = members(&[(1, "voter"), (2, "voter"), (3, "voter")]);
            for id in 1..=3 {
                wait_members(id, &three).await;
            }
            let Frame::Error(e) = cmd(3, &["CLUSTER", "METARAFT", "PROMOTE", "2", "3"], 30).await else {
                panic!("a PROMOTE leaving out node 1 was accepted")
            };
            assert!(e.starts_with(b"ERR the voter list must include every current voter; missing: 1"));

            // Node 3 removes itself through the leader.
            assert_eq!(cmd(3, &["CLUSTER", "METARAFT", "REMOVE", "3"], 30).await, Frame::ok());
            wait_members(1, &members(&[(1, "voter"), (2, "voter")])).await;

            let before = acked.lock().unwrap().len();
            let deadline = Instant::now() + Duration::from_secs(30);
            let len = || acked.lock().unwrap().len();
            while len() < before + 10 {
                assert!(Instant::now() < deadline, "writes stopped after the membership changes");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.store(true, Ordering::SeqCst);
            writes.await.expect("writer");
            let all: Vec<u64> = acked.lock().unwrap().clone();
            for i in all {
                let got = cmd(2, &["GET", &format!("m_{i}")], 30).await;
                assert_eq!(got, Frame::bulk(i.to_string()), "acknowledged m_{i} lost");
            }
        })
        .await
        .expect("admin client");
}

/// Where a node's init closure publishes its Raft group.
type Slot = Arc<Mutex<Option<Arc<Replica>>>>;

fn info(id: u64) -> NodeInfo {
    NodeInfo { raft_addr: raft_addr(id), client_addr: client_addr(id).to_string() }
}

/// Starts node `id` (node 1 bootstraps) and returns the slot its Raft group appears in.
fn start_replica(handle: &Handle, id: u64) -> Slot {
    let slot = Slot::default();
    let published = slot.clone();
    handle
        .create_node()
        .name(format!("node-{id}"))
        .ip(ip(id).parse().expect("ip"))
        .init(move || {
            let slot = published.clone();
            async move {
                let config = sim_config(&ip(id), id);
                match raftis::node::start_with_disk(config, Arc::new(SimDisk::new()), id == 1).await {
                    Ok(node) => {
                        *slot.lock().unwrap() = Some(node.replica().clone());
                        node.stopped().await
                    }
                    Err(e) => panic!("node {id} failed to start: {e}"),
                }
            }
        })
        .build();
    slot
}

async fn replica(slot: &Slot) -> Arc<Replica> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = slot.lock().unwrap().clone() {
            return r;
        }
        assert!(Instant::now() < deadline, "a node did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Regression (chaos seed 1150): openraft keeps a leader that removed itself leading for a
/// moment after the removal commits, and a membership change asked of it then tripped
/// openraft's debug assertion "Only leader is allowed to call update_effective_membership()"
/// (a panic: this test fails). Now such a node refuses as "not the leader" (or hands the
/// change to the new leader it names), and the change succeeds through the new leader.
#[madsim::test]
async fn a_leader_that_removed_itself_refuses_membership_changes() {
    let handle = Handle::current();
    let slots: Vec<Slot> = (1..=4).map(|id| start_replica(&handle, id)).collect();
    let admin = handle.create_node().name("admin").ip("10.0.3.1".parse().expect("ip")).build();
    admin
        .spawn(async move {
            let mut replicas = Vec::new();
            for slot in &slots {
                replicas.push(replica(slot).await);
            }
            let r1 = replicas[0].clone();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !r1.status().is_leader() {
                assert!(Instant::now() < deadline, "node 1 never led");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for id in [2, 3] {
                r1.add_learner(id, info(id)).await.expect("add learner");
            }
            r1.change_membership(BTreeSet::from([1, 2, 3]), false).await.expect("three voters");

            // The leader removes itself, then is asked for more changes straight away.
            r1.remove_node(1).await.expect("leader removes itself");
            let accepted_or_refused = |r: &Result<(), MembershipError>| {
                matches!(r, Ok(()) | Err(MembershipError::NotLeader(_) | MembershipError::Forward(_)))
            };
            let added = r1.add_learner(4, info(4)).await;
            assert!(accepted_or_refused(&added), "add learner on the removed leader: {added:?}");
            let changed = r1.change_membership(BTreeSet::from([2, 3]), true).await;
            assert!(accepted_or_refused(&changed), "change membership on the removed leader: {changed:?}");
            assert!(!r1.has_failed(), "raft stopped on the removed leader");

            // The change goes through the new leader (node 4 added as a learner, once).
            let deadline = Instant::now() + Duration::from_secs(30);
            let leader = loop {
                let leader = replicas[1..].iter().find(|r| r.status().is_leader());
                if let Some(leader) = leader {
                    match leader.add_learner(4, info(4)).await {
                        Ok(()) => break leader.clone(),
                        Err(e) => assert!(Instant::now() < deadline, "node 4 never added: {e}"),
                    }
                }
                assert!(Instant::now() < deadline, "no new leader among nodes 2 and 3");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let st = leader.status();
            assert_eq!(st.voter_ids(), BTreeSet::from([2, 3]));
            let members: Vec<u64> = st.members.iter().map(|m| m.id).collect();
            assert_eq!(members, vec![2, 3, 4]);
        })
        .await
        .expect("admin");
}
