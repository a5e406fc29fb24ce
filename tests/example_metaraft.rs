//! Runs examples/metaraft.rs (seed 000's Rust example) on free ports and checks the cluster
//! it builds: three voters, every node knowing the same leader, writes replicated, and the
//! seed's mistake (a PROMOTE leaving out a voter) refused by the Rust API too.

mod common;

#[allow(dead_code)]
#[path = "../examples/metaraft.rs"]
mod example;

use common::{free_port_block, tempdir::TempDir, Conn};
use raftis::cluster::{ClusterConfig, ClusterError, ClusterNode};
use raftis::protocol::Frame;
use raftis::raft::membership::{MembershipError, Role};
use std::time::Duration;

#[test]
fn the_seed_example_builds_a_three_voter_cluster() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = TempDir::new("example");
    let (client_base, raft_base) = free_port_block(3);
    let clients = [client_base, client_base + 1, client_base + 2];
    let rafts = [raft_base, raft_base + 1, raft_base + 2];
    let mut nodes = rt.block_on(example::run(&dir.0, clients, rafts)).expect("the example runs");

    let status = nodes[0].metrics();
    let roles: Vec<(u64, Role)> = status.members.iter().map(|m| (m.id, m.role)).collect();
    assert_eq!(roles, vec![(1, Role::Voter), (2, Role::Voter), (3, Role::Voter)]);
    assert_eq!(nodes[0].leader(), Some(1));
    rt.block_on(async {
        for n in &nodes[1..] {
            n.wait_for("the leader to be known", Duration::from_secs(10), |m| m.current_leader == Some(1))
                .await
                .expect("a follower knows the leader");
        }
        // The seed's warning, enforced: a voter list without node 1 is refused.
        match nodes[2].promote_meta_voter(vec![2, 3]).await {
            Err(ClusterError::Membership(MembershipError::Invalid(msg))) => {
                assert!(msg.contains("missing: 1"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    });
    // The example's cluster is sharded (num_groups 4): a client follows -MOVED to the leader
    // of the key's group, and waits while the groups form (-CLUSTERDOWN).
    assert_eq!(cluster_cmd(clients[2], &["SET", "k", "v"]), Frame::ok());
    assert_eq!(cluster_cmd(clients[0], &["GET", "k"]), Frame::Bulk("v".into()));
    rt.block_on(async {
        for n in &mut nodes {
            n.shutdown().await;
        }
    });
}

/// Sends `args` to the node on `port` as a Redis Cluster client: follows `-MOVED`, retries
/// `-CLUSTERDOWN` for up to 20 s.
fn cluster_cmd(mut port: u16, args: &[&str]) -> Frame {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = Conn::try_connect(port).expect("connect").cmd(args);
        let Frame::Error(e) = &reply else { return reply };
        let e = String::from_utf8_lossy(e).into_owned();
        if let Some(addr) = e.strip_prefix("MOVED ").and_then(|rest| rest.split(' ').nth(1)) {
            port = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("a port");
        } else if !e.starts_with("CLUSTERDOWN") || std::time::Instant::now() > deadline {
            return reply;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn cluster_node_refuses_misuse() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = TempDir::new("example-misuse");
    let config = |bind: String| ClusterConfig {
        node_id: 1,
        data_dir: dir.0.join("n1"),
        bind_address: bind,
        raft_address: "127.0.0.1:0".into(),
        num_groups: 1,
        is_bootstrap: true,
        initial_members: vec![],
    };
    let mut bad = ClusterNode::new(config("no-port".into()));
    assert!(matches!(rt.block_on(bad.initialize()), Err(ClusterError::Config(_))));
    let idle = ClusterNode::new(config("127.0.0.1:0".into()));
    assert!(matches!(rt.block_on(idle.add_meta_learner(2, "127.0.0.1:1".into())), Err(ClusterError::NotStarted)));
    assert_eq!((idle.metrics().state.as_str(), idle.leader()), ("stopped", None));
    let mut node = ClusterNode::new(config("127.0.0.1:0".into()));
    rt.block_on(node.initialize()).expect("start");
    assert!(matches!(
        rt.block_on(node.initialize()),
        Err(ClusterError::Membership(MembershipError::AlreadyInitialized))
    ));
    rt.block_on(node.wait_for("a leader", Duration::from_secs(10), |m| m.current_leader == Some(1))).expect("leader");
    assert!(matches!(
        rt.block_on(node.remove_meta_node(1)),
        Err(ClusterError::Membership(MembershipError::Invalid(_)))
    ));
    rt.block_on(node.shutdown());
}

#[test]
fn a_bootstrap_node_can_form_the_cluster_with_initial_members() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = TempDir::new("example-initial");
    let (_, raft_base) = free_port_block(3);
    let rafts: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", raft_base + i)).collect();
    let config = |id: u64| ClusterConfig {
        node_id: id,
        data_dir: dir.0.join(format!("n{id}")),
        bind_address: "127.0.0.1:0".into(),
        raft_address: rafts[id as usize - 1].clone(),
        num_groups: 0,
        is_bootstrap: id == 1,
        initial_members: if id == 1 { (1..=3).zip(rafts.iter().cloned()).collect() } else { vec![] },
    };
    let mut nodes: Vec<ClusterNode> = [2, 3, 1].into_iter().map(|id| ClusterNode::new(config(id))).collect();
    rt.block_on(async {
        for n in &mut nodes {
            n.initialize().await.expect("start");
        }
        let status = nodes[2]
            .wait_for("a leader of three voters", Duration::from_secs(20), |m| {
                m.current_leader.is_some() && m.voter_ids().len() == 3
            })
            .await
            .expect("a cluster");
        // Node 1 asked nodes 2 and 3 for their client addresses.
        for (n, id) in nodes[..2].iter().zip([2, 3]) {
            let m = status.member(id).expect("member");
            assert_eq!(m.client_addr, n.client_addr().expect("running").to_string());
        }
        for n in &mut nodes {
            n.shutdown().await;
        }
    });
}
