//! Nodes run inside the test process (real sockets, real files) on a runtime of the test's
//! own, for tests that reach into a node's Raft handle: the three-node cluster that node 1
//! bootstraps and nodes 2 and 3 join as voters through that handle.

use super::{tempdir::TempDir, Conn};
use raftis::config::Config;
use raftis::disk::RealDisk;
use raftis::node::{start_with_disk, NodeHandle};
use raftis::protocol::Frame;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A runtime for the nodes of one test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Node `id` on data in `dir`, in cluster mode with one group (READONLY, reading a
/// follower's own copy, exists only there); `bootstrap` makes it a one-node cluster.
pub fn start(rt: &tokio::runtime::Runtime, id: u64, dir: &TempDir, bootstrap: bool) -> NodeHandle {
    let config = Config {
        port: 0,
        node_id: id,
        seed: id,
        cluster_enabled: true,
        num_groups: 0,
        data_dir: dir.0.clone(),
        ..Config::default()
    };
    let disk = Arc::new(RealDisk::new(&dir.0).expect("disk"));
    rt.block_on(start_with_disk(config, disk, bootstrap)).expect("start node")
}

/// Three fresh nodes 1, 2 and 3 with data directories named after `tag`: node 1 bootstraps,
/// nodes 2 and 3 wait to be joined ([`form_cluster`]). The directories must outlive the nodes.
pub fn three_nodes(rt: &tokio::runtime::Runtime, tag: &str) -> (Vec<TempDir>, [NodeHandle; 3]) {
    let dirs: Vec<TempDir> = (1..=3).map(|i| TempDir::new(&format!("{tag}{i}"))).collect();
    let nodes = std::array::from_fn(|i| start(rt, i as u64 + 1, &dirs[i], i == 0));
    (dirs, nodes)
}

/// Forms the cluster of [`three_nodes`]: a first write on node 1 (it waits for node 1's
/// election), then nodes 2 and 3 join through the Raft handle as voters. Returns the
/// connection to node 1, which wrote `before` = `join`.
pub fn form_cluster(rt: &tokio::runtime::Runtime, nodes: &[NodeHandle; 3]) -> Conn {
    let mut c1 = Conn::try_connect(nodes[0].client_addr.port()).expect("connect");
    assert_eq!(c1.cmd(&["SET", "before", "join"]), Frame::ok());
    let raft = nodes[0].replica().raft().clone();
    let (i2, i3) = (nodes[1].replica().info().clone(), nodes[2].replica().info().clone());
    rt.block_on(async {
        raft.add_learner(2, i2, true).await.expect("add learner 2");
        raft.add_learner(3, i3, true).await.expect("add learner 3");
        raft.change_membership(BTreeSet::from([1, 2, 3]), false).await.expect("change membership");
    });
    c1
}
