//! A three-node cluster of production nodes (`node::start_with_disk`) on simulated hosts, each
//! on a `SimDisk` that outlives the node (kill + restart re-runs the init closure on the same
//! disk). A client host writes through RESP while the leader's host is clogged (a new leader
//! takes over) and a follower is killed and restarted; at the end every node's own copy has
//! the same digest and every acknowledged write is readable.

use crate::client::SimClient;
use crate::harness::nodes::{client_addr, ip, sim_config};
use madsim::runtime::{Handle, NodeHandle as SimNode};
use raftis::config::Config;
use raftis::disk::SimDisk;
use raftis::protocol::Frame;
use raftis::raft::node::Replica;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Where a node's init closure publishes its current incarnation's Raft group.
type Slot = Arc<Mutex<Option<Arc<Replica>>>>;

/// Builds node `id` on its host; every incarnation starts on (a clone of) `disk`.
fn build_node(handle: &Handle, id: u64, disk: SimDisk, slot: Slot) -> SimNode {
    handle
        .create_node()
        .name(format!("node-{id}"))
        .ip(ip(id).parse().expect("ip"))
        .init(move || {
            let (disk, slot) = (disk.clone(), slot.clone());
            async move {
                let config = Config { cluster_enabled: true, ..sim_config(&ip(id), id) };
                match raftis::node::start_with_disk(config, Arc::new(disk), id == 1).await {
                    Ok(node) => {
                        *slot.lock().unwrap() = Some(node.replica().clone());
                        node.stopped().await
                    }
                    Err(e) => panic!("node {id} failed to start: {e}"),
                }
            }
        })
        .build()
}

fn replica(slot: &Slot) -> Option<Arc<Replica>> {
    slot.lock().unwrap().clone()
}

/// The node (1-based) among `candidates` whose own metrics say it leads.
fn leader_among(slots: &[Slot], candidates: &[u64]) -> Option<u64> {
    use openraft::rt::watch::WatchReceiver;
    candidates.iter().copied().find(|&id| {
        replica(&slots[id as usize - 1]).is_some_and(|r| {
            let m = r.raft().metrics().borrow_watched().clone();
            m.current_leader == Some(m.id) && m.state.is_leader()
        })
    })
}

/// Polls `f` every 50 ms of virtual time until it holds, failing after `secs` virtual seconds.
async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `SET k_i i` for i = 0, 1, ... to the nodes in turn until `stop`, recording each
/// acknowledged i. A timeout, error or error reply moves on to the next node and retries.
async fn writer(acked: Arc<Mutex<Vec<u64>>>, stop: Arc<AtomicBool>) {
    let mut conns: Vec<Option<SimClient>> = (0..3).map(|_| None).collect();
    let mut target = 0usize;
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let (key, val) = (format!("k_{i}"), i.to_string());
        if conns[target].is_none() {
            if let Ok(Ok(c)) = tokio::time::timeout(
                Duration::from_secs(1),
                SimClient::connect(client_addr(target as u64 + 1), Duration::from_millis(200)),
            )
            .await
            {
                conns[target] = Some(c);
            }
        }
        let ok = match conns[target].as_mut() {
            Some(c) => c.set_acked(&key, &val, Duration::from_secs(2)).await,
            None => false,
        };
        if ok {
            acked.lock().unwrap().push(i);
            i += 1;
        } else {
            conns[target] = None;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        target = (target + 1) % 3;
    }
}

fn acked_len(acked: &Mutex<Vec<u64>>) -> usize {
    acked.lock().unwrap().len()
}

/// Every node's own copy (READONLY) reports the same `DEBUG DIGEST-EXACT`.
async fn digests(conns: &mut [Option<SimClient>]) -> Option<Vec<Frame>> {
    let mut out = Vec::new();
    for (n, slot) in conns.iter_mut().enumerate() {
        if slot.is_none() {
            let mut c = SimClient::connect(client_addr(n as u64 + 1), Duration::from_secs(1)).await.ok()?;
            if c.cmd(&[b"READONLY"]).await.ok()? != Frame::ok() {
                return None;
            }
            *slot = Some(c);
        }
        let c = slot.as_mut().expect("connected");
        match tokio::time::timeout(Duration::from_secs(2), c.cmd(&[b"DEBUG", b"DIGEST-EXACT"])).await {
            Ok(Ok(f)) => out.push(f),
            _ => {
                *slot = None;
                return None;
            }
        }
    }
    Some(out)
}

/// Starts nodes 1-3 on their own disks; node 1 bootstraps alone, 2 and 3 join as learners
/// and are promoted. Returns the hosts and where each node publishes its Raft group.
async fn three_node_cluster(handle: &Handle) -> (Vec<SimNode>, Vec<Slot>) {
    let disks: Vec<SimDisk> = (0..3).map(|_| SimDisk::new()).collect();
    let slots: Vec<Slot> = (0..3).map(|_| Slot::default()).collect();
    let hosts: Vec<SimNode> = (1..=3)
        .map(|id| build_node(handle, id, disks[id as usize - 1].clone(), slots[id as usize - 1].clone()))
        .collect();
    wait_until("node 1 to lead", 30, || leader_among(&slots, &[1]).is_some()).await;
    wait_until("nodes 2 and 3 to start", 30, || replica(&slots[1]).is_some() && replica(&slots[2]).is_some()).await;
    let raft = replica(&slots[0]).expect("node 1").raft().clone();
    // Node 1's first membership entry may not be committed yet (InProgress): retried.
    for id in [2u64, 3] {
        let info = replica(&slots[id as usize - 1]).expect("node").info().clone();
        let mut tries = 0;
        while let Err(e) = raft.add_learner(id, info.clone(), true).await {
            tries += 1;
            assert!(tries < 300, "add learner: {e:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut tries = 0;
    while let Err(e) = raft.change_membership(BTreeSet::from([1, 2, 3]), false).await {
        tries += 1;
        assert!(tries < 300, "change membership: {e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (hosts, slots)
}

/// Many clients writing at once, to every node: each gets its own reply (the INCR replies are
/// a permutation of 1..=N), and while the proposal slots are busy their writes share log
/// entries (`raftis::raft::proposer`): fewer proposals than writes.
#[madsim::test]
async fn concurrent_clients_share_log_entries_and_each_get_their_own_reply() {
    const CLIENTS: u64 = 16;
    const INCRS: u64 = 30;
    let handle = Handle::current();
    let (_hosts, slots) = three_node_cluster(&handle).await;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let ip = format!("10.0.1.{}", i + 1).parse().expect("ip");
            let host = handle.create_node().name(format!("client-{i}")).ip(ip).build();
            host.spawn(async move {
                let mut c = SimClient::connect(client_addr(i % 3 + 1), Duration::from_secs(10)).await.expect("connect");
                let mut seen = Vec::new();
                for _ in 0..INCRS {
                    match c.cmd(&[b"INCR", b"counter"]).await.expect("reply") {
                        Frame::Integer(n) => seen.push(n),
                        other => panic!("INCR replied {other:?}"),
                    }
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let seen = task.await.expect("client task");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "one client's INCRs must increase: {seen:?}");
        all.extend(seen);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=(CLIENTS * INCRS) as i64).collect::<Vec<_>>(), "every INCR got its own reply");
    // Followers forward their clients' writes to the leader, which proposes them all.
    let counts: Vec<_> = slots.iter().filter_map(replica).map(|r| r.proposal_counts()).collect();
    let writes: u64 = counts.iter().map(|c| c.writes).sum();
    let proposals: u64 = counts.iter().map(|c| c.proposals).sum();
    assert_eq!(writes, CLIENTS * INCRS, "every write was proposed once, by the leader: {counts:?}");
    assert!(proposals < writes, "no write shared an entry: {proposals} proposals for {writes} writes");
}

#[madsim::test]
async fn three_nodes_survive_a_clogged_leader_and_a_restarted_follower() {
    let handle = Handle::current();
    let net = madsim::net::NetSim::current();
    let (hosts, slots) = three_node_cluster(&handle).await;

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = handle.create_node().name("client-1").ip("10.0.1.1".parse().expect("ip")).build();
    let writes = client.spawn(writer(acked.clone(), stop.clone()));
    wait_until("first writes", 30, || acked_len(&acked) >= 20).await;

    // Clog the leader's host until another node leads and writes continue.
    let all = [1u64, 2, 3];
    let old = leader_among(&slots, &all).expect("a leader");
    let others: Vec<u64> = all.iter().copied().filter(|&n| n != old).collect();
    net.clog_node(hosts[old as usize - 1].id());
    wait_until("a new leader", 60, || leader_among(&slots, &others).is_some()).await;
    let before = acked_len(&acked);
    wait_until("writes under the new leader", 60, || acked_len(&acked) >= before + 20).await;
    net.unclog_node(hosts[old as usize - 1].id());

    // Kill a follower, keep writing, restart it on the same disk.
    let leader = leader_among(&slots, &all).unwrap_or(others[0]);
    let victim = all.iter().copied().find(|&n| n != leader).expect("a follower");
    *slots[victim as usize - 1].lock().unwrap() = None;
    handle.kill(hosts[victim as usize - 1].id());
    let before = acked_len(&acked);
    wait_until("writes with a follower down", 60, || acked_len(&acked) >= before + 20).await;
    handle.restart(hosts[victim as usize - 1].id());
    wait_until("the follower to restart", 30, || replica(&slots[victim as usize - 1]).is_some()).await;
    let before = acked_len(&acked);
    wait_until("writes after the restart", 60, || acked_len(&acked) >= before + 20).await;

    stop.store(true, Ordering::SeqCst);
    writes.await.expect("writer");
    let acked = acked.lock().unwrap().clone();

    // Every node's own copy converges; every acknowledged write is readable.
    client
        .spawn(async move {
            let mut conns: Vec<Option<SimClient>> = (0..3).map(|_| None).collect();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let d = digests(&mut conns).await;
                if let Some(d) = &d {
                    if d.iter().all(|f| *f == d[0]) && !matches!(d[0], Frame::Error(_)) {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "the three copies never converged: {d:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut c = conns[0].take().expect("connected");
            assert_eq!(c.cmd(&[b"READWRITE"]).await.unwrap(), Frame::ok());
            for i in acked {
                let key = format!("k_{i}");
                let want = Frame::Bulk(bytes::Bytes::from(i.to_string()));
                assert_eq!(c.cmd(&[b"GET", key.as_bytes()]).await.unwrap(), want, "acknowledged {key} lost");
            }
        })
        .await
        .expect("checker");
}
