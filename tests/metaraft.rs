//! MetaRaft membership through Redis commands: three nodes in one process (real sockets on
//! 127.0.0.1, real files) form a cluster purely with `CLUSTER METARAFT` sent over RESP,
//! including commands sent to a follower (which hands them to the leader); every refusal the
//! commands make is checked. Also the Redis Cluster face of `cluster-enabled yes`.

mod common;

use common::{free_port, tempdir::TempDir, wait_until, Conn};
use raftis::config::Config;
use raftis::disk::RealDisk;
use raftis::node::{start_with_disk, NodeHandle};
use raftis::protocol::Frame;
use raftis::raft::membership::MembershipError;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn start(rt: &tokio::runtime::Runtime, id: u64, dir: &TempDir, bootstrap: bool, cluster: bool) -> NodeHandle {
    let config = Config {
        port: 0,
        node_id: id,
        seed: id,
        cluster_enabled: cluster,
        // One group: these tests are about MetaRaft membership (group 0 holds the data).
        num_groups: 0,
        data_dir: dir.0.clone(),
        ..Config::default()
    };
    let disk = Arc::new(RealDisk::new(&dir.0).expect("disk"));
    rt.block_on(start_with_disk(config, disk, bootstrap)).expect("start node")
}

fn conn(n: &NodeHandle) -> Conn {
    Conn::try_connect(n.client_addr.port()).expect("connect")
}

fn raft_addr(n: &NodeHandle) -> String {
    n.replica().info().raft_addr.clone()
}

/// The MEMBERS reply for these (id, role) pairs.
fn members(list: &[(u64, &str)]) -> Frame {
    Frame::Array(
        list.iter()
            .map(|(id, role)| Frame::Array(vec![Frame::bulk(id.to_string()), Frame::bulk(role.to_string())]))
            .collect(),
    )
}

/// The text of an error reply (panics on anything else).
fn error(f: Frame) -> String {
    match f {
        Frame::Error(e) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[test]
fn a_cluster_forms_through_metaraft_commands() {
    let rt = runtime();
    let dirs: Vec<TempDir> = (1..=3).map(|i| TempDir::new(&format!("metaraft{i}"))).collect();
    // Without cluster-enabled: the METARAFT commands are there all the same.
    let n1 = start(&rt, 1, &dirs[0], true, false);
    let n2 = start(&rt, 2, &dirs[1], false, false);
    let n3 = start(&rt, 3, &dirs[2], false, false);
    let (mut c1, mut c2, mut c3) = (conn(&n1), conn(&n2), conn(&n3));

    // Node 2 belongs to no cluster yet: it lists nothing and cannot change anything.
    assert_eq!(c2.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), members(&[]));
    let e = error(c2.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "3", &raft_addr(&n3)]));
    assert!(e.contains("not part of a cluster yet"), "{e}");

    assert_eq!(c1.cmd(&["SET", "before", "join"]), Frame::ok());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), members(&[(1, "voter")]));
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "2", &raft_addr(&n2)]), Frame::ok());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), members(&[(1, "voter"), (2, "learner")]));
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2"]), Frame::ok());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), members(&[(1, "voter"), (2, "voter")]));

    // Sent to a follower, the commands act on the leader.
    assert_eq!(n1.replica().status().current_leader, Some(1));
    assert_eq!(c2.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "3", &raft_addr(&n3)]), Frame::ok());
    assert_eq!(c2.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2", "3"]), Frame::ok());
    let all = members(&[(1, "voter"), (2, "voter"), (3, "voter")]);
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), all);
    wait_until("node 3 to see the membership", 20, || c3.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]) == all);

    // ADDLEARNER learned each node's client address from the node itself.
    for (id, n) in [(2, &n2), (3, &n3)] {
        let status = n1.replica().status();
        let m = status.member(id).expect("a member");
        assert_eq!(m.client_addr, n.client_addr.to_string());
        assert_eq!(m.raft_addr, raft_addr(n));
    }

    // Refusals, on the leader and on a follower alike; nothing changes.
    for c in [&mut c1, &mut c2] {
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "2", "3"]));
        assert!(e.starts_with("ERR the voter list must include every current voter; missing: 1"), "{e}");
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2", "3", "9"]));
        assert!(e.contains("node 9 is not a member"), "{e}");
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "2", &raft_addr(&n2)]));
        assert_eq!(e, "ERR node 2 is already a voter");
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "5", &raft_addr(&n3)]));
        assert_eq!(e, format!("ERR the node at {} is node 3, not node 5", raft_addr(&n3)));
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "REMOVE", "9"]));
        assert_eq!(e, "ERR node 9 is not a member");
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "x"]));
        assert!(e.starts_with("ERR invalid node id 'x'"), "{e}");
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "4"]));
        assert!(e.starts_with("ERR wrong number of arguments for 'cluster|metaraft|addlearner' command"), "{e}");
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "4", "nohost"]));
        assert!(e.starts_with("ERR invalid raft address 'nohost'"), "{e}");
        let e = error(c.cmd(&["CLUSTER", "METARAFT", "BOGUS"]));
        assert!(e.starts_with("ERR unknown subcommand 'BOGUS' of CLUSTER METARAFT"), "{e}");
        // The cluster face needs cluster mode; METARAFT does not.
        assert_eq!(error(c.cmd(&["CLUSTER", "INFO"])), "ERR This instance has cluster support disabled");
        assert_eq!(c.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), all);
    }

    // A learner that cannot catch up (nothing listens at its address) is not promoted: the
    // leader waits a bounded time, then refuses, and the cluster keeps working.
    let nowhere = format!("127.0.0.1:{}", free_port());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "4", &nowhere]), Frame::ok());
    let status = n1.replica().status();
    assert_eq!(status.member(4).map(|m| m.client_addr.as_str()), Some(""), "unreachable: no client address");
    let refused = rt.block_on(n2.replica().promote_voters(BTreeSet::from([1, 2, 3, 4]), Duration::from_millis(300)));
    match refused {
        Err(MembershipError::NotCaughtUp(msg)) => assert!(msg.contains(&format!("node 4 at {nowhere}")), "{msg}"),
        other => panic!("promoting a dead learner: {other:?}"),
    }
    assert_eq!(c1.cmd(&["SET", "still", "writable"]), Frame::ok());
    // Once node 4 runs, adding it again records its client address, and it can be promoted.
    let dir4 = TempDir::new("metaraft4");
    let n4 = {
        let config = Config {
            port: 0,
            node_id: 4,
            seed: 4,
            raft_addr: nowhere.clone(),
            data_dir: dir4.0.clone(),
            ..Config::default()
        };
        let disk = Arc::new(RealDisk::new(&dir4.0).expect("disk"));
        rt.block_on(start_with_disk(config, disk, false)).expect("start node 4")
    };
    assert_eq!(c2.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "4", &nowhere]), Frame::ok());
    let status = n1.replica().status();
    assert_eq!(status.member(4).map(|m| m.client_addr.clone()), Some(n4.client_addr.to_string()));
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2", "3", "4"]), Frame::ok());
    assert_eq!(
        c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]),
        members(&[(1, "voter"), (2, "voter"), (3, "voter"), (4, "voter")])
    );
    assert_eq!(c2.cmd(&["CLUSTER", "METARAFT", "REMOVE", "4"]), Frame::ok());
    rt.block_on(n4.shutdown());

    // Removing a voter through a follower.
    assert_eq!(c2.cmd(&["CLUSTER", "METARAFT", "REMOVE", "3"]), Frame::ok());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), members(&[(1, "voter"), (2, "voter")]));
    assert_eq!(c1.cmd(&["SET", "after", "remove"]), Frame::ok());
    assert_eq!(c2.cmd(&["GET", "after"]), Frame::Bulk("remove".into()));

    rt.block_on(async {
        for n in [n1, n2, n3] {
            n.shutdown().await;
        }
    });
}

#[test]
fn the_last_voter_cannot_leave() {
    let rt = runtime();
    let dir = TempDir::new("metaraft-single");
    let n = start(&rt, 1, &dir, true, false);
    let mut c = conn(&n);
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
    let e = error(c.cmd(&["CLUSTER", "METARAFT", "REMOVE", "1"]));
    assert_eq!(e, "ERR node 1 is the last voter; it cannot be removed");
    assert_eq!(c.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), members(&[(1, "voter")]));
    // Queued in MULTI, CLUSTER is answered in its place at EXEC.
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]), Frame::simple("QUEUED"));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![members(&[(1, "voter")]), Frame::ok()]));
    rt.block_on(n.shutdown());
}

#[test]
fn peers_asking_for_another_group_are_refused() {
    use raftis::raft::membership::MembershipOp;
    use raftis::raft::rpc::{RpcClient, RpcClientConfig, RpcError};
    let rt = runtime();
    let dir = TempDir::new("metaraft-rpc");
    let n = start(&rt, 1, &dir, true, false);
    let client = RpcClient::new(raft_addr(&n), RpcClientConfig::default());
    rt.block_on(async {
        let (id, info) = client.node_info(0, Duration::from_secs(5)).await.expect("node info");
        assert_eq!((id, info), (1, n.replica().info().clone()));
        let e = client.node_info(7, Duration::from_secs(5)).await.expect_err("group 7");
        assert!(matches!(&e, RpcError::Failed { reason, .. } if reason.contains("unknown raft group 7")), "{e}");
        let op = MembershipOp::Remove { id: 1 };
        let e = client.membership(7, op.clone(), Duration::from_secs(5)).await.expect_err("group 7");
        assert!(matches!(&e, RpcError::Failed { reason, .. } if reason.contains("unknown raft group 7")), "{e}");
        // A forwarded operation is checked by the leader like a local one.
        let refused = client.membership(0, op, Duration::from_secs(30)).await.expect("an answer");
        assert_eq!(refused, Err(MembershipError::Invalid("node 1 is the last voter; it cannot be removed".into())));
    });
    rt.block_on(n.shutdown());
}

#[test]
fn cluster_mode_shows_the_group_as_one_shard() {
    let rt = runtime();
    let dirs: Vec<TempDir> = (1..=2).map(|i| TempDir::new(&format!("face{i}"))).collect();
    let n1 = start(&rt, 1, &dirs[0], true, true);
    let n2 = start(&rt, 2, &dirs[1], false, true);
    let (mut c1, mut c2) = (conn(&n1), conn(&n2));
    assert_eq!(c1.cmd(&["SET", "foo", "1"]), Frame::ok());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "2", &raft_addr(&n2)]), Frame::ok());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2"]), Frame::ok());
    wait_until("node 2 to know the leader", 20, || n2.replica().status().current_leader == Some(1));

    let name1 = format!("{:040x}", 1);
    assert_eq!(c1.cmd(&["CLUSTER", "MYID"]), Frame::bulk(name1.clone()));
    assert_eq!(c2.cmd(&["CLUSTER", "MYID"]), Frame::bulk(format!("{:040x}", 2)));
    assert_eq!(c2.cmd(&["CLUSTER", "KEYSLOT", "foo"]), Frame::Integer(12182));
    assert_eq!(
        c2.cmd(&["CLUSTER", "KEYSLOT", "{user1000}.following"]),
        c2.cmd(&["CLUSTER", "KEYSLOT", "{user1000}.followers"])
    );
    assert_eq!(c1.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "12182"]), Frame::Integer(1));
    assert_eq!(c1.cmd(&["CLUSTER", "GETKEYSINSLOT", "12182", "10"]), Frame::Array(vec![Frame::bulk("foo")]));
    assert_eq!(c1.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "0"]), Frame::Integer(0));
    assert_eq!(error(c1.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "16384"])), "ERR Invalid slot");
    assert_eq!(error(c1.cmd(&["CLUSTER", "KEYSLOT"])), "ERR wrong number of arguments for 'cluster|keyslot' command");
    assert_eq!(error(c1.cmd(&["CLUSTER", "NOPE"])), "ERR unknown subcommand 'NOPE'. Try CLUSTER HELP.");

    let text = |f: Frame| match f {
        Frame::Bulk(b) | Frame::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    let info = text(c2.cmd(&["CLUSTER", "INFO"]));
    assert!(info.starts_with("cluster_state:ok\r\n"), "{info}");
    assert!(info.contains("cluster_known_nodes:2\r\ncluster_size:1\r\n"), "{info}");
    let nodes = text(c2.cmd(&["CLUSTER", "NODES"]));
    let p1 = n1.client_addr.port();
    assert!(
        nodes.lines().any(|l| l.starts_with(&format!("{name1} 127.0.0.1:{p1}@"))
            && l.contains(" master - ")
            && l.ends_with(" 0-16383")),
        "{nodes}"
    );
    assert!(nodes.lines().any(|l| l.contains(" myself,slave ") && l.contains(&name1)), "{nodes}");
    let Frame::Array(ranges) = c2.cmd(&["CLUSTER", "SLOTS"]) else { panic!("CLUSTER SLOTS") };
    let Frame::Array(range) = &ranges[0] else { panic!("a slot range") };
    assert_eq!(range[..2], [Frame::Integer(0), Frame::Integer(16383)]);
    let Frame::Array(master) = &range[2] else { panic!("the master") };
    assert_eq!(master[..3], [Frame::bulk("127.0.0.1"), Frame::Integer(p1 as i64), Frame::bulk(name1.clone())]);
    assert_eq!(range.len(), 4, "master and one replica");
    assert!(matches!(c1.cmd(&["CLUSTER", "SHARDS"]), Frame::Array(s) if s.len() == 1));

    // INFO: Raft figures in the replication section; cluster_enabled in the cluster section.
    assert_eq!(c1.info_field("replication", "role"), "master");
    assert_eq!(c2.info_field("replication", "role"), "slave");
    assert_eq!(c2.info_field("replication", "master_port"), p1.to_string());
    assert_eq!(c2.info_field("replication", "raft_leader_id"), "1");
    assert_eq!(c1.info_field("cluster", "cluster_enabled"), "1");
    let term: u64 = c1.info_field("replication", "raft_term").parse().expect("term");
    assert!(term >= 1);
    let last: u64 = c1.info_field("replication", "raft_last_log_index").parse().expect("index");
    wait_until("node 2 to acknowledge everything", 20, || {
        c1.info_field("replication", "raft_follower_2") == format!("matched={last},lag=0")
    });
    let applied: u64 = c1.info_field("replication", "raft_applied_index").parse().expect("applied");
    let commit: u64 = c1.info_field("replication", "raft_commit_index").parse().expect("commit");
    assert!(applied <= commit && commit <= last && applied > 0, "{applied} {commit} {last}");
    assert!(c1
        .info_field("replication", "slave0")
        .starts_with(&format!("ip=127.0.0.1,port={},state=online", n2.client_addr.port())));

    rt.block_on(async {
        n1.shutdown().await;
        n2.shutdown().await;
    });
}
