//! Seed 000's MetaRaft example, made to run: node 1 bootstraps a one-member cluster, nodes 2
//! and 3 start empty, and each is added as a learner and then promoted to voter. Unlike the
//! seed, the other nodes are really started before they are added, and the example waits on
//! conditions (the new member having applied the leader's log) instead of sleeping.
//!
//! Run with `cargo run --example metaraft` (clients on 6379-6381, Raft on 50051-50053, data in
//! the system's temp directory). `tests/example_metaraft.rs` runs the same code on free ports.

use raftis::cluster::{ClusterConfig, ClusterNode};
use std::error::Error;
use std::path::Path;
use std::time::Duration;

/// Node `id`'s configuration: clients on `client_port`, Raft on `raft_port`.
fn config(dir: &Path, id: u64, client_port: u16, raft_port: u16) -> ClusterConfig {
    ClusterConfig {
        node_id: id,
        data_dir: dir.join(format!("node{id}")),
        bind_address: format!("127.0.0.1:{client_port}"),
        raft_address: format!("127.0.0.1:{raft_port}"),
        num_groups: 4,
        is_bootstrap: id == 1,
        initial_members: if id == 1 { vec![(1, format!("127.0.0.1:{raft_port}"))] } else { vec![] },
    }
}

/// Builds the three-node MetaRaft cluster and returns its nodes (node 1 first).
pub async fn run(dir: &Path, client_ports: [u16; 3], raft_ports: [u16; 3]) -> Result<Vec<ClusterNode>, Box<dyn Error>> {
    // Create the bootstrap node.
    let mut node1 = ClusterNode::new(config(dir, 1, client_ports[0], raft_ports[0]));
    node1.initialize().await?;
    node1.wait_for("node 1 to lead", Duration::from_secs(10), |m| m.current_leader == Some(1)).await?;
    let mut nodes = vec![node1];

    for id in [2u64, 3] {
        let i = id as usize - 1;
        // Start the new node; it waits to be added.
        let mut node = ClusterNode::new(config(dir, id, client_ports[i], raft_ports[i]));
        node.initialize().await?;

        // Add it as a learner (through node 1), then wait until it has applied what the leader
        // has committed: it has caught up with the log.
        nodes[0].add_meta_learner(id, format!("127.0.0.1:{}", raft_ports[i])).await?;
        let committed = nodes[0].metrics().committed_index;
        node.wait_for("the learner to catch up", Duration::from_secs(10), |m| m.last_applied_index >= committed)
            .await?;

        // Promote it: the list names every voter, old and new.
        let voters: Vec<u64> = (1..=id).collect();
        nodes[0].promote_meta_voter(voters).await?;
        println!("Node {id} promoted to voter!");
        nodes.push(node);
    }

    for m in nodes[0].metrics().members {
        println!("{} {}", m.id, m.role.as_str());
    }
    Ok(nodes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("raftis-metaraft-example-{}", std::process::id()));
    let nodes = run(&dir, [6379, 6380, 6381], [50051, 50052, 50053]).await;
    let result = match nodes {
        Ok(nodes) => {
            for mut n in nodes {
                n.shutdown().await;
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}
