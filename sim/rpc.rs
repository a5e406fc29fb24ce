//! The internal RPC protocol over madsim's simulated TCP: an RPC server (with the transport's
//! test handler) on one simulated host, clients on another. Requests succeed, concurrently; a
//! clogged peer gives `Timeout`/`Unreachable` and a killed one `Lost`/`Unreachable`; both
//! recover; a multi-chunk snapshot streams through openraft's network trait. All waits are on
//! conditions with deadlines in virtual time.

use bytes::Bytes;
use madsim::net::NetSim;
use madsim::runtime::Handle;
use openraft::error::ReplicationClosed;
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use raftis::disk::{Disk, SimDisk};
use raftis::protocol::Frame;
use raftis::raft::network::{NetworkConfig, RpcNetworkFactory};
use raftis::raft::rpc::testing::TestHandler;
use raftis::raft::rpc::{serve_rpc, ForwardFlags, ForwardRequest, RpcClient, RpcClientConfig, RpcError, RpcPool};
use raftis::raft::snapshot_file::{SnapshotFile, CHUNK_BYTES};
use raftis::raft::{NodeInfo, TypeConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const SERVER_IP: &str = "10.0.2.1";
const SERVER_ADDR: &str = "10.0.2.1:7000";
const T: Duration = Duration::from_secs(2);

/// Starts the RPC server host; it serves `handler` (which outlives restarts, like a disk).
fn start_server(handle: &Handle, handler: Arc<TestHandler>) -> madsim::runtime::NodeHandle {
    handle
        .create_node()
        .name("rpc-server")
        .ip(SERVER_IP.parse().expect("ip"))
        .init(move || {
            let handler = handler.clone();
            async move {
                let listener = tokio::net::TcpListener::bind(SERVER_ADDR).await.expect("bind");
                serve_rpc(listener, handler, Default::default(), std::future::pending()).await;
            }
        })
        .build()
}

fn client_host(handle: &Handle) -> madsim::runtime::NodeHandle {
    handle.create_node().name("rpc-client").ip("10.0.2.2".parse().expect("ip")).build()
}

fn echo(arg: &str) -> ForwardRequest {
    ForwardRequest {
        db: 0,
        argv: vec![Bytes::from_static(b"ECHO"), Bytes::copy_from_slice(arg.as_bytes())],
        flags: ForwardFlags::READ,
    }
}

fn echoed(arg: &str) -> Frame {
    Frame::Array(vec![Frame::Bulk(Bytes::copy_from_slice(arg.as_bytes()))])
}

/// Calls ECHO until `accept` holds for the result, for at most 10 s of virtual time; returns
/// every error seen on the way.
async fn call_until(c: &RpcClient, what: &str, accept: impl Fn(&Result<Frame, RpcError>) -> bool) -> Vec<RpcError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let r = c.forward(0, echo("probe"), Duration::from_millis(300)).await;
        if accept(&r) {
            return seen;
        }
        if let Err(e) = r {
            seen.push(e);
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; errors: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[madsim::test]
async fn rpc_requests_succeed_concurrently() {
    let handle = Handle::current();
    start_server(&handle, Arc::new(TestHandler::new(Arc::new(SimDisk::new()))));
    client_host(&handle)
        .spawn(async move {
            let c = Arc::new(RpcClient::new(SERVER_ADDR, RpcClientConfig::default()));
            call_until(&c, "the server to listen", |r| r.is_ok()).await;
            let tasks: Vec<_> = (0..50)
                .map(|i| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        let arg = format!("req-{i}");
                        assert_eq!(c.forward(0, echo(&arg), T).await.expect("reply"), echoed(&arg));
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        })
        .await
        .expect("client");
}

#[madsim::test]
async fn rpc_clogged_and_killed_peers_fail_then_recover() {
    let handle = Handle::current();
    let server = start_server(&handle, Arc::new(TestHandler::new(Arc::new(SimDisk::new()))));
    let server_id = server.id();
    client_host(&handle)
        .spawn(async move {
            let c = RpcClient::new(SERVER_ADDR, RpcClientConfig::default());
            call_until(&c, "the server to listen", |r| r.is_ok()).await;

            // Clogged: the open connection times out, then connecting is refused.
            NetSim::current().clog_node(server_id);
            let seen =
                call_until(&c, "Unreachable while clogged", |r| matches!(r, Err(RpcError::Unreachable { .. }))).await;
            assert!(!seen.is_empty(), "the open connection should time out first");
            assert!(seen.iter().all(|e| matches!(e, RpcError::Timeout { .. })), "{seen:?}");
            NetSim::current().unclog_node(server_id);
            call_until(&c, "recovery after the clog", |r| r.as_ref().ok() == Some(&echoed("probe"))).await;

            // Killed: the connection is lost, then connecting is refused.
            Handle::current().kill(server_id);
            let seen =
                call_until(&c, "Unreachable while killed", |r| matches!(r, Err(RpcError::Unreachable { .. }))).await;
            assert!(seen.iter().all(|e| matches!(e, RpcError::Lost { .. })), "{seen:?}");
            Handle::current().restart(server_id);
            call_until(&c, "recovery after the restart", |r| r.as_ref().ok() == Some(&echoed("probe"))).await;
        })
        .await
        .expect("client");
}

#[madsim::test]
async fn rpc_snapshot_streams_in_chunks() {
    let handle = Handle::current();
    let handler = Arc::new(TestHandler::new(Arc::new(SimDisk::new())));
    start_server(&handle, handler.clone());
    client_host(&handle)
        .spawn(async move {
            let pool = RpcPool::default();
            call_until(&pool.get(SERVER_ADDR), "the server to listen", |r| r.is_ok()).await;
            let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
            let data: Vec<u8> = (0..(CHUNK_BYTES * 2 + 99)).map(|i| (i % 253) as u8).collect();
            let file = SnapshotFile { disk, path: "snap".into() };
            let mut w = file.writer().expect("open");
            w.append(&data).expect("append");
            w.sync().expect("sync");
            let mut factory = RpcNetworkFactory::new(1, 0, pool, NetworkConfig::default());
            let node = NodeInfo { raft_addr: SERVER_ADDR.into(), client_addr: String::new() };
            let mut net = factory.new_client(2, &node).await;
            let vote = VoteOf::<TypeConfig>::new_committed(3, 1);
            let snapshot = SnapshotOf::<TypeConfig, SnapshotFile> {
                meta: SnapshotMetaOf::<TypeConfig>::default(),
                snapshot: file,
            };
            let never = std::future::pending::<ReplicationClosed>();
            let resp = net.full_snapshot(vote, snapshot, never, RPCOption::new(T)).await.expect("snapshot");
            assert_eq!(resp.vote, vote);
            let installed = handler.installed();
            assert_eq!(installed.len(), 1);
            let got = installed[0].file.disk.read(&installed[0].file.path).expect("read");
            assert!(got == data, "received snapshot differs");
        })
        .await
        .expect("client");
}
