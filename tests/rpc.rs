//! The internal RPC protocol on real tokio over 127.0.0.1: requests and replies, concurrency
//! on one multiplexed connection, deadlines, an unreachable peer and reconnection, malformed
//! frames, and a multi-chunk snapshot through openraft's network trait. Waits poll a condition
//! with a deadline.

use bytes::Bytes;
use openraft::error::{RPCError, ReplicationClosed, StreamingError};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use raftis::disk::{Disk, SimDisk};
use raftis::protocol::Frame;
use raftis::raft::network::{NetworkConfig, RpcNetworkFactory};
use raftis::raft::rpc::testing::TestHandler;
use raftis::raft::rpc::wire::{self, Header, Kind, VERSION};
use raftis::raft::rpc::{
    serve_rpc, ForwardFlags, ForwardRequest, RpcClient, RpcClientConfig, RpcError, RpcPool, RpcRequest, RpcResponse,
    RpcServerConfig,
};
use raftis::raft::snapshot_file::{SnapshotFile, CHUNK_BYTES};
use raftis::raft::{NodeInfo, TypeConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const T: Duration = Duration::from_secs(5);

/// A running RPC server with a [`TestHandler`]; `stop` shuts it down.
struct TestServer {
    addr: SocketAddr,
    handler: Arc<TestHandler>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    async fn start(addr: &str) -> TestServer {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handler = Arc::new(TestHandler::new(Arc::new(SimDisk::new())));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_rpc(listener, handler.clone(), RpcServerConfig::default(), shutdown));
        TestServer { addr, handler, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(T, &mut self.task).await.expect("server stops").expect("server task");
    }
}

fn fwd(args: &[&str]) -> ForwardRequest {
    ForwardRequest {
        db: 0,
        argv: args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect(),
        flags: ForwardFlags::WRITE,
    }
}

fn echo_reply(args: &[&str]) -> Frame {
    Frame::Array(args.iter().map(|a| Frame::Bulk(Bytes::copy_from_slice(a.as_bytes()))).collect())
}

fn client(addr: SocketAddr) -> Arc<RpcClient> {
    Arc::new(RpcClient::new(addr.to_string(), RpcClientConfig::default()))
}

/// Polls `cond` until it holds or `T` passes.
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn requests_get_their_replies() {
    let server = TestServer::start("127.0.0.1:0").await;
    let c = client(server.addr);
    assert_eq!(c.forward(0, fwd(&["ECHO", "a", "b\r\n"]), T).await.unwrap(), echo_reply(&["a", "b\r\n"]));
    assert_eq!(c.forward(0, fwd(&["BIG", "3000000"]), T).await.unwrap(), Frame::Bulk(vec![b'x'; 3_000_000].into()));
    assert_eq!(c.forward(0, fwd(&["NOPE"]), T).await.unwrap(), Frame::Error("ERR unknown test command".into()));
    match c.forward(0, fwd(&["FAIL"]), T).await {
        Err(RpcError::Failed { reason, .. }) => assert!(reason.contains("scripted failure"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let vote = VoteOf::<TypeConfig>::new_committed(2, 1);
    let resp = c.vote(0, VoteRequest { vote, last_log_id: None, leadership_transfer: false }, T).await.unwrap();
    assert!(resp.vote_granted);
    let append = AppendEntriesRequest { vote, prev_log_id: None, entries: vec![], leader_commit: None };
    assert_eq!(c.append_entries(0, append, T).await.unwrap(), AppendEntriesResponse::Success);
    assert_eq!(server.handler.appends(), 1);
    server.stop().await;
}

#[tokio::test]
async fn many_concurrent_requests_share_one_connection() {
    let server = TestServer::start("127.0.0.1:0").await;
    let c = client(server.addr);
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let arg = format!("req-{i}-{}", "y".repeat(i * 37));
                let reply = c.forward(0, fwd(&["ECHO", &arg]), T).await.expect("reply");
                assert_eq!(reply, echo_reply(&[&arg]));
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_missed_deadline_is_a_timeout_and_the_client_recovers() {
    let server = TestServer::start("127.0.0.1:0").await;
    let c = client(server.addr);
    let start = Instant::now();
    match c.forward(0, fwd(&["HANG"]), Duration::from_millis(200)).await {
        Err(e @ RpcError::Timeout { .. }) => assert!(e.outcome_unknown()),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < T, "the deadline was not enforced");
    assert_eq!(c.forward(0, fwd(&["ECHO", "after"]), T).await.unwrap(), echo_reply(&["after"]));
    server.stop().await;
}

#[tokio::test]
async fn one_slow_request_on_an_idle_link_does_not_drop_the_calls_waiting_beside_it() {
    // On a link with no other traffic (quiet groups), a request that misses its short deadline
    // must not close the connection under a request still being answered: closing failed
    // every such call (`Lost`), the failure detector's pings and leadership transfers among
    // them.
    let server = TestServer::start("127.0.0.1:0").await;
    let c = client(server.addr);
    let (hung, slow) =
        tokio::join!(c.forward(0, fwd(&["HANG"]), Duration::from_millis(20)), c.forward(0, fwd(&["SLOW", "150"]), T));
    assert!(matches!(hung, Err(RpcError::Timeout { .. })), "{hung:?}");
    assert_eq!(slow.expect("the slow call's reply"), Frame::Simple("SLOW".into()));
    // A link that answers nothing for longer than `stall_after` (300 ms by default) is still
    // dropped: the calls waiting on it fail at once, not at their own deadlines.
    let start = Instant::now();
    let (hung, waiting) =
        tokio::join!(c.forward(0, fwd(&["HANG"]), Duration::from_millis(400)), c.forward(0, fwd(&["HANG"]), T));
    assert!(matches!(hung, Err(RpcError::Timeout { .. })), "{hung:?}");
    assert!(matches!(waiting, Err(RpcError::Lost { .. })), "{waiting:?}");
    assert!(start.elapsed() < T, "the stalled link was not dropped");
    assert_eq!(c.forward(0, fwd(&["ECHO", "after"]), T).await.unwrap(), echo_reply(&["after"]));
    server.stop().await;
}

#[tokio::test]
async fn a_stopped_peer_is_unreachable_and_the_client_reconnects() {
    let server = TestServer::start("127.0.0.1:0").await;
    let addr = server.addr;
    let c = client(addr);
    assert_eq!(c.forward(0, fwd(&["ECHO", "1"]), T).await.unwrap(), echo_reply(&["1"]));
    server.stop().await;
    // The first call may still go out on the old connection and find it closed (`Lost`);
    // once the client knows, nothing is sent at all: `Unreachable`.
    wait_for("Unreachable", || {
        let c = c.clone();
        async move {
            match c.forward(0, fwd(&["ECHO", "2"]), T).await {
                Err(RpcError::Unreachable { .. }) => true,
                Err(RpcError::Lost { .. }) => false,
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    let server = TestServer::start(&addr.to_string()).await;
    wait_for("reconnection", || {
        let c = c.clone();
        async move { c.forward(0, fwd(&["ECHO", "3"]), T).await.is_ok() }
    })
    .await;
    server.stop().await;
}

/// Sends raw bytes and expects the server to close the connection without a reply.
async fn expect_closed_after(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    s.flush().await.expect("flush");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(T, s.read(&mut buf)).await.expect("server did not close the connection");
    // A reset is as good as an orderly close.
    let n = n.unwrap_or(0);
    assert_eq!(n, 0, "server replied to a malformed frame");
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let server = TestServer::start("127.0.0.1:0").await;
    let c = client(server.addr);
    assert_eq!(c.forward(0, fwd(&["ECHO", "x"]), T).await.unwrap(), echo_reply(&["x"]));

    let good = wire::encode(
        Header { kind: Kind::Request, group: 0, request_id: 1 },
        &RpcRequest::Forward(fwd(&["ECHO"])),
        wire::DEFAULT_MAX_FRAME,
    )
    .unwrap()
    .to_vec();
    // Garbage, which reads as a huge length.
    expect_closed_after(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // An explicit huge length.
    expect_closed_after(server.addr, &u32::MAX.to_be_bytes()).await;
    // A wrong version.
    let mut bad = good.clone();
    bad[4] = VERSION + 1;
    expect_closed_after(server.addr, &bad).await;
    // An undecodable body inside a well-formed frame.
    let mut bad = good[..4 + wire::HEADER_BYTES].to_vec();
    bad.extend_from_slice(&[0xff; 16]);
    bad[..4].copy_from_slice(&((wire::HEADER_BYTES + 16) as u32).to_be_bytes());
    expect_closed_after(server.addr, &bad).await;
    // A response frame sent to a server.
    let mut bad = good.clone();
    bad[5] = 2;
    expect_closed_after(server.addr, &bad).await;

    // The well-formed frame itself is answered, and the existing client was never disturbed.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&good).await.unwrap();
    let (header, _) =
        tokio::time::timeout(T, wire::read_frame(&mut s, wire::DEFAULT_MAX_FRAME)).await.unwrap().unwrap();
    assert_eq!(header, Header { kind: Kind::Response, group: 0, request_id: 1 });
    assert_eq!(c.forward(0, fwd(&["ECHO", "y"]), T).await.unwrap(), echo_reply(&["y"]));
    server.stop().await;
}

fn test_meta() -> SnapshotMetaOf<TypeConfig> {
    SnapshotMetaOf::<TypeConfig>::default()
}

#[tokio::test]
async fn a_multi_chunk_snapshot_streams_through_openraft_network() {
    let server = TestServer::start("127.0.0.1:0").await;
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let data: Vec<u8> = (0..(CHUNK_BYTES * 3 + 12345)).map(|i| (i * 7 % 251) as u8).collect();
    let file = SnapshotFile { disk: disk.clone(), path: "snap".into() };
    let mut w = file.writer().unwrap();
    w.append(&data).unwrap();
    w.sync().unwrap();

    let mut factory = RpcNetworkFactory::new(1, 0, RpcPool::default(), NetworkConfig::default());
    let node = NodeInfo { raft_addr: server.addr.to_string(), client_addr: String::new() };
    let mut net = factory.new_client(2, &node).await;
    let vote = VoteOf::<TypeConfig>::new_committed(4, 1);
    let snapshot = SnapshotOf::<TypeConfig, SnapshotFile> { meta: test_meta(), snapshot: file };
    let never = std::future::pending::<ReplicationClosed>();
    let resp = net.full_snapshot(vote, snapshot, never, RPCOption::new(T)).await.expect("snapshot sent");
    assert_eq!(resp.vote, vote);

    let installed = server.handler.installed();
    assert_eq!(installed.len(), 1);
    assert_eq!((installed[0].vote, &installed[0].meta), (vote, &test_meta()));
    let got = installed[0].file.disk.read(&installed[0].file.path).unwrap();
    assert!(got == data, "received snapshot differs ({} vs {} bytes)", got.len(), data.len());
    server.stop().await;
}

#[tokio::test]
async fn openraft_sees_unreachable_and_cancelled_transfers() {
    // A port with nothing listening.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let pool = RpcPool::default();
    let mut factory = RpcNetworkFactory::new(1, 0, pool.clone(), NetworkConfig::default());
    let node = NodeInfo { raft_addr: addr.to_string(), client_addr: String::new() };
    let mut net = factory.new_client(2, &node).await;
    let vote = VoteOf::<TypeConfig>::new_committed(1, 1);
    let append = AppendEntriesRequest { vote, prev_log_id: None, entries: vec![], leader_commit: None };
    match net.append_entries(append, RPCOption::new(T)).await {
        Err(RPCError::Unreachable(_)) => {}
        other => panic!("{other:?}"),
    }

    // A transfer cancelled by openraft ends with `Closed`.
    let server = TestServer::start("127.0.0.1:0").await;
    let node = NodeInfo { raft_addr: server.addr.to_string(), client_addr: String::new() };
    let mut net = factory.new_client(2, &node).await;
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let file = SnapshotFile { disk, path: "snap".into() };
    file.writer().unwrap().append(&vec![1u8; CHUNK_BYTES * 2]).unwrap();
    let snapshot = SnapshotOf::<TypeConfig, SnapshotFile> { meta: test_meta(), snapshot: file };
    let cancelled = std::future::ready(ReplicationClosed::new("test"));
    match net.full_snapshot(vote, snapshot, cancelled, RPCOption::new(T)).await {
        Err(StreamingError::Closed(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(server.handler.installed().is_empty());

    // A transfer abandoned half-way (begin and one chunk, then silence) is superseded by the
    // next one on the same (pooled) connection; the abandoned file is removed.
    let c = pool.get(&server.addr.to_string());
    let transfer = match c.call(0, &RpcRequest::SnapshotBegin, T).await.unwrap() {
        RpcResponse::SnapshotBegun { transfer } => transfer,
        other => panic!("{other:?}"),
    };
    let chunk = RpcRequest::SnapshotChunk { transfer, offset: 0, data: Bytes::from_static(b"partial") };
    assert!(matches!(c.call(0, &chunk, T).await.unwrap(), RpcResponse::SnapshotChunk { received: 7 }));
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    let file = SnapshotFile { disk, path: "snap2".into() };
    file.writer().unwrap().append(b"whole snapshot").unwrap();
    let snapshot = SnapshotOf::<TypeConfig, SnapshotFile> { meta: test_meta(), snapshot: file };
    let never = std::future::pending::<ReplicationClosed>();
    net.full_snapshot(vote, snapshot, never, RPCOption::new(T)).await.expect("snapshot sent");
    let installed = server.handler.installed();
    assert_eq!(installed.len(), 1);
    let received = &installed[0].file;
    assert_eq!(received.disk.read(&received.path).unwrap(), b"whole snapshot");
    assert_eq!(received.disk.list("recv").unwrap(), [received.path.trim_start_matches("recv/")]);
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_append_goes_out_in_part_as_partial_success() {
    use openraft::type_config::alias::{LeaderIdOf, LogIdOf};
    use openraft::vote::RaftLeaderId;
    use openraft::{Entry, EntryPayload};
    let log_id = |i| LogIdOf::<TypeConfig>::new(LeaderIdOf::<TypeConfig>::new(2, 1).to_committed(), i);
    let server = TestServer::start("127.0.0.1:0").await;
    let config = NetworkConfig { max_append_bytes: 10_000, ..NetworkConfig::default() };
    let mut factory = RpcNetworkFactory::new(1, 0, RpcPool::default(), config);
    let node = NodeInfo { raft_addr: server.addr.to_string(), client_addr: String::new() };
    let mut net = factory.new_client(2, &node).await;
    let entries: Vec<_> = (1..=10)
        .map(|i| Entry {
            log_id: log_id(i),
            payload: EntryPayload::Normal(raftis::raft::Request::Write(
                raftis::store::WriteBatch {
                    db: 0,
                    now_ms: 0,
                    seed: 0,
                    cmds: vec![vec![Bytes::from_static(b"SET"), Bytes::from(vec![b'v'; 3000])]],
                    transaction: None,
                }
                .into(),
            )),
        })
        .collect();
    let vote = VoteOf::<TypeConfig>::new_committed(2, 1);
    let append = AppendEntriesRequest { vote, prev_log_id: None, entries, leader_commit: Some(log_id(10)) };
    let resp = net.append_entries(append, RPCOption::new(T)).await.expect("append");
    assert_eq!(resp, AppendEntriesResponse::PartialSuccess(Some(log_id(3))));
    server.stop().await;
}

#[tokio::test]
async fn a_transfer_dies_with_its_connection() {
    let server = TestServer::start("127.0.0.1:0").await;
    let c = client(server.addr);
    let transfer = match c.call(0, &RpcRequest::SnapshotBegin, T).await.unwrap() {
        RpcResponse::SnapshotBegun { transfer } => transfer,
        other => panic!("{other:?}"),
    };
    let chunk = RpcRequest::SnapshotChunk { transfer, offset: 0, data: Bytes::from_static(b"partial") };
    c.call(0, &chunk, T).await.unwrap();
    let disk = server.handler.disk().clone();
    assert_eq!(disk.list("recv").unwrap().len(), 1);
    drop(c);
    wait_for("the partial snapshot to be removed", || {
        let disk = disk.clone();
        async move { disk.list("recv").unwrap().is_empty() }
    })
    .await;
    server.stop().await;
}
