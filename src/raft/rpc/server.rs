//! The server side: [`serve_rpc`] accepts connections and answers requests through an
//! [`RpcHandler`], which the node implements on top of its `openraft::Raft` instances.
//!
//! One task reads each connection's frames; each request runs in a task of its own (so a
//! forwarded write waiting for its commit does not hold up heartbeats on the same connection),
//! bounded by a per-connection limit that stops reading while it is reached; one task writes
//! the replies, flushing once per batch. A bad frame closes its connection and nothing else.
//! Snapshot chunks are assembled here (see [`SnapshotInbox`]); the handler only hands out the
//! file to write into and installs the finished file.

use super::message::{ForwardBatch, ForwardRequest, PubMessage, RemoteError, RpcRequest, RpcResponse};
use super::snapshot::SnapshotInbox;
use super::wire::{self, Header, Kind, WireError, DEFAULT_MAX_FRAME};
use crate::protocol::Frame;
use crate::raft::membership::{MembershipError, MembershipOp};
use crate::raft::snapshot_file::SnapshotFile;
use crate::raft::TypeConfig;
use crate::raft::{NodeId, NodeInfo};
use bytes::Bytes;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// An error a handler reports to the remote caller (who sees it as `RpcError::Failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    /// An error with `msg` as its text.
    pub fn new(msg: impl std::fmt::Display) -> HandlerError {
        HandlerError(msg.to_string())
    }
}

/// Serves the requests of the RPC protocol. `group` is the Raft group the request is for.
pub trait RpcHandler: Send + Sync + 'static {
    /// `Raft::append_entries` of the group.
    fn append_entries(
        &self,
        group: u64,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> impl Future<Output = Result<AppendEntriesResponse<TypeConfig>, HandlerError>> + Send;

    /// `Raft::vote` of the group.
    fn vote(
        &self,
        group: u64,
        req: VoteRequest<TypeConfig>,
    ) -> impl Future<Output = Result<VoteResponse<TypeConfig>, HandlerError>> + Send;

    /// `Raft::pre_vote` of the group.
    fn pre_vote(
        &self,
        group: u64,
        req: VoteRequest<TypeConfig>,
    ) -> impl Future<Output = Result<VoteResponse<TypeConfig>, HandlerError>> + Send;

    /// `Raft::handle_transfer_leader` of the group.
    fn transfer_leader(
        &self,
        group: u64,
        req: TransferLeaderRequest<TypeConfig>,
    ) -> impl Future<Output = Result<TransferLeaderResponse<TypeConfig>, HandlerError>> + Send;

    /// A fresh file (a path not in use by another transfer) for an incoming snapshot of the
    /// group (the state machine's `begin_receiving_snapshot`). The server fills and syncs it.
    fn begin_snapshot(&self, group: u64) -> impl Future<Output = Result<SnapshotFile, HandlerError>> + Send;

    /// Installs a completely received and synced snapshot (`Raft::install_full_snapshot`).
    fn install_snapshot(
        &self,
        group: u64,
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
        file: SnapshotFile,
    ) -> impl Future<Output = Result<SnapshotResponse<TypeConfig>, HandlerError>> + Send;

    /// Discards the file of a transfer that failed or was abandoned. The default removes it.
    fn abort_snapshot(&self, group: u64, file: SnapshotFile) {
        let _ = group;
        if file.disk.exists(&file.path) {
            if let Err(e) = file.disk.remove(&file.path) {
                tracing::warn!("removing abandoned snapshot {}: {e}", file.path);
            }
        }
    }

    /// Runs a command forwarded by a follower; the reply is relayed to its client as is.
    /// Return `Err` only when the command was not and will not be run (the follower reports a
    /// definite failure); an uncertain outcome must still be a reply frame, or no reply at all
    /// (the follower's deadline then makes it `Timeout`, which counts as maybe-applied).
    fn forward(&self, group: u64, req: ForwardRequest) -> impl Future<Output = Result<Frame, HandlerError>> + Send;

    /// Runs a membership change a follower handed over (this node should be the leader; it
    /// never hands the change on again). The default refuses.
    fn membership(
        &self,
        group: u64,
        op: MembershipOp,
    ) -> impl Future<Output = Result<Result<(), MembershipError>, HandlerError>> + Send {
        let _ = (group, op);
        async { Err(HandlerError::new("membership changes are not served here")) }
    }

    /// This node's id and addresses. The default refuses.
    fn node_info(&self, group: u64) -> impl Future<Output = Result<(NodeId, NodeInfo), HandlerError>> + Send {
        let _ = group;
        async { Err(HandlerError::new("node info is not served here")) }
    }

    /// The leader of `group` this node knows. The default refuses.
    fn leader(&self, group: u64) -> impl Future<Output = Result<Option<(NodeId, NodeInfo)>, HandlerError>> + Send {
        let _ = group;
        async { Err(HandlerError::new("leader queries are not served here")) }
    }

    /// Runs a batch of writes forwarded by a follower (same contract as [`forward`](Self::forward)).
    /// The default refuses it.
    fn forward_batch(&self, group: u64, req: ForwardBatch) -> impl Future<Output = Result<Frame, HandlerError>> + Send {
        let _ = (group, req);
        async { Err(HandlerError::new("forwarded batches are not served here")) }
    }

    /// Confirms this node's leadership with a quorum and returns the index a follower must
    /// have applied to read linearizably (`Err` when this node is not the leader). The default
    /// refuses.
    fn read_index(&self, group: u64) -> impl Future<Output = Result<u64, HandlerError>> + Send {
        let _ = group;
        async { Err(HandlerError::new("read index is not served here")) }
    }

    /// Stops this member's ticks of the group if it may (`crate::raft::quiesce`). The default
    /// refuses.
    fn quiesce(
        &self,
        group: u64,
        req: crate::raft::quiesce::QuiesceRequest,
    ) -> impl Future<Output = Result<bool, HandlerError>> + Send {
        let _ = (group, req);
        async { Ok(false) }
    }

    /// Hands Pub/Sub messages published on another node to this node's subscribers. The
    /// default drops them.
    fn publish(&self, group: u64, msgs: Vec<PubMessage>) {
        let _ = (group, msgs);
    }

    /// Serves a connection that speaks HTTP instead of the RPC protocol (the admin API shares
    /// the RPC port, see [`serve_rpc`]). `stream` still holds every byte received so far. The
    /// default closes the connection.
    fn serve_http(&self, stream: SniffedStream) -> impl Future<Output = ()> + Send {
        drop(stream);
        async {}
    }
}

/// A connection whose first bytes have been read into its buffer, not consumed.
pub type SniffedStream = BufReader<TcpStream>;

/// Limits of a server.
#[derive(Debug, Clone)]
pub struct RpcServerConfig {
    /// The frame size limit, for requests and replies.
    pub max_frame: u32,
    /// Requests of one connection being served at once; reading waits beyond this.
    pub max_in_flight: usize,
}

impl Default for RpcServerConfig {
    fn default() -> Self {
        RpcServerConfig { max_frame: DEFAULT_MAX_FRAME, max_in_flight: 256 }
    }
}

/// Serves RPC connections from `listener` with `handler` until `shutdown` resolves, then
/// closes every connection. Requests already running finish on their own.
pub async fn serve_rpc<H: RpcHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    config: RpcServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    loop {
        // Biased: the outcome must not depend on a random pick between ready branches.
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                connections.retain(|c| !c.is_finished());
                let conn = route_connection(stream, peer, handler.clone(), config.clone());
                connections.push(tokio::spawn(conn));
            }
            Err(e) => {
                // E.g. out of file descriptors: pause rather than spin on the error.
                tracing::warn!("rpc accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    for c in connections {
        c.abort();
    }
}

/// Tells an HTTP client from an RPC peer by the first byte and serves it accordingly. An RPC
/// frame starts with the high byte of its length, which is at most `DEFAULT_MAX_FRAME >> 24`
/// (0x40); every HTTP request starts with an upper-case method name (`GET`, `POST`, ...).
async fn route_connection<H: RpcHandler>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<H>,
    config: RpcServerConfig,
) {
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    let first = match stream.fill_buf().await {
        Ok([first, ..]) => *first,
        Ok([]) => return,
        Err(e) => {
            tracing::debug!(%peer, "rpc: connection failed before its first byte: {e}");
            return;
        }
    };
    if first.is_ascii_uppercase() {
        handler.serve_http(stream).await;
    } else {
        serve_connection(stream, peer, handler, config).await;
    }
}

// The first byte of an RPC frame must never look like the start of an HTTP method.
const _: () = assert!(DEFAULT_MAX_FRAME >> 24 < b'A' as u32);

/// The state a connection's request tasks share.
struct ConnCtx<H> {
    handler: Arc<H>,
    inbox: Mutex<SnapshotInbox>,
    replies: mpsc::Sender<Bytes>,
    max_frame: u32,
    peer: SocketAddr,
}

async fn serve_connection<H: RpcHandler>(
    stream: SniffedStream,
    peer: SocketAddr,
    handler: Arc<H>,
    config: RpcServerConfig,
) {
    // Reads are buffered by the stream's own `BufReader` (which holds the sniffed bytes).
    let (mut rd, wr) = tokio::io::split(stream);
    let (replies, rx) = mpsc::channel(config.max_in_flight.max(1));
    let writer = tokio::spawn(write_replies(BufWriter::new(wr), rx, peer));
    let ctx = Arc::new(ConnCtx { handler, inbox: Mutex::default(), replies, max_frame: config.max_frame, peer });
    // Cleans up however the connection ends, including `serve_rpc` aborting this task.
    let _closing = Closing { writer, ctx: ctx.clone() };
    let permits = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let (header, body) = match wire::read_frame(&mut rd, config.max_frame).await {
            Ok(frame) => frame,
            Err(WireError::Closed) => break,
            Err(e) => {
                tracing::warn!(%peer, "rpc: closing connection: {e}");
                break;
            }
        };
        if header.kind != Kind::Request {
            tracing::warn!(%peer, "rpc: closing connection: response frame from a client");
            break;
        }
        let req = match wire::decode::<RpcRequest>(&body) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(%peer, "rpc: closing connection: {e}");
                break;
            }
        };
        drop(body);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let resp = dispatch(&ctx, header.group, req).await;
            ctx.reply(header, &resp).await;
            drop(permit);
        });
    }
}

/// The end of a connection: stops the writer at once (replies to requests still running have
/// nowhere to go; dropping both halves of the stream closes it) and discards partly received
/// snapshots.
struct Closing<H: RpcHandler> {
    writer: JoinHandle<()>,
    ctx: Arc<ConnCtx<H>>,
}

impl<H: RpcHandler> Drop for Closing<H> {
    fn drop(&mut self) {
        self.writer.abort();
        let abandoned = self.ctx.inbox().drain();
        for (group, file) in abandoned {
            self.ctx.handler.abort_snapshot(group, file);
        }
    }
}

impl<H: RpcHandler> ConnCtx<H> {
    async fn reply(&self, req: Header, resp: &RpcResponse) {
        let header = Header { kind: Kind::Response, ..req };
        let frame = match wire::encode(header, resp, self.max_frame) {
            Ok(frame) => frame,
            Err(e) => {
                // E.g. a forwarded read whose reply exceeds the frame limit: tell the caller.
                tracing::warn!(peer = %self.peer, "rpc: reply not sendable: {e}");
                let err = RpcResponse::Error(RemoteError { message: format!("reply not sendable: {e}") });
                match wire::encode(header, &err, self.max_frame) {
                    Ok(frame) => frame,
                    Err(_) => return,
                }
            }
        };
        let _ = self.replies.send(frame).await;
    }

    fn inbox(&self) -> std::sync::MutexGuard<'_, SnapshotInbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a failed transfer's file back to the handler and turns the error into a reply.
    fn snapshot_failed(&self, group: u64, e: impl std::fmt::Display, file: Option<SnapshotFile>) -> RpcResponse {
        tracing::warn!(peer = %self.peer, "rpc: snapshot transfer failed: {e}");
        if let Some(file) = file {
            self.handler.abort_snapshot(group, file);
        }
        RpcResponse::Error(RemoteError { message: e.to_string() })
    }
}

async fn dispatch<H: RpcHandler>(ctx: &ConnCtx<H>, group: u64, req: RpcRequest) -> RpcResponse {
    let h = &*ctx.handler;
    let result = match req {
        RpcRequest::AppendEntries(r) => h.append_entries(group, r).await.map(RpcResponse::AppendEntries),
        RpcRequest::Vote(r) => h.vote(group, r).await.map(RpcResponse::Vote),
        RpcRequest::PreVote(r) => h.pre_vote(group, r).await.map(RpcResponse::Vote),
        RpcRequest::TransferLeader(r) => h.transfer_leader(group, r).await.map(RpcResponse::TransferLeader),
        RpcRequest::Forward(r) => h.forward(group, r).await.map(RpcResponse::Forward),
        RpcRequest::Membership(op) => h.membership(group, op).await.map(RpcResponse::Membership),
        RpcRequest::NodeInfo => h.node_info(group).await.map(|(id, info)| RpcResponse::NodeInfo { id, info }),
        RpcRequest::ForwardBatch(r) => h.forward_batch(group, r).await.map(RpcResponse::Forward),
        RpcRequest::ReadIndex => h.read_index(group).await.map(|index| RpcResponse::ReadIndex { index }),
        RpcRequest::Leader => h.leader(group).await.map(RpcResponse::Leader),
        RpcRequest::Quiesce(r) => h.quiesce(group, r).await.map(RpcResponse::Quiesced),
        RpcRequest::Publish(msgs) => {
            h.publish(group, msgs);
            Ok(RpcResponse::Published)
        }
        RpcRequest::SnapshotBegin => return begin_transfer(ctx, group).await,
        RpcRequest::SnapshotChunk { transfer, offset, data } => {
            let written = ctx.inbox().chunk(group, transfer, offset, &data);
            match written {
                Ok(received) => Ok(RpcResponse::SnapshotChunk { received }),
                Err((e, file)) => return ctx.snapshot_failed(group, e, file),
            }
        }
        RpcRequest::SnapshotFinish { transfer, size, vote, meta } => {
            let finished = ctx.inbox().finish(group, transfer, size);
            match finished {
                Ok(file) => h.install_snapshot(group, vote, meta, file).await.map(RpcResponse::SnapshotInstalled),
                Err((e, file)) => return ctx.snapshot_failed(group, e, file),
            }
        }
    };
    result.unwrap_or_else(|e| RpcResponse::Error(RemoteError { message: e.0 }))
}

async fn begin_transfer<H: RpcHandler>(ctx: &ConnCtx<H>, group: u64) -> RpcResponse {
    // A new snapshot from the leader supersedes one it abandoned on this connection.
    let superseded = ctx.inbox().supersede(group);
    for file in superseded {
        ctx.handler.abort_snapshot(group, file);
    }
    let file = match ctx.handler.begin_snapshot(group).await {
        Ok(file) => file,
        Err(e) => return RpcResponse::Error(RemoteError { message: e.0 }),
    };
    let begun = ctx.inbox().begin(group, file);
    match begun {
        Ok(transfer) => RpcResponse::SnapshotBegun { transfer },
        Err((e, file)) => ctx.snapshot_failed(group, e, Some(file)),
    }
}

async fn write_replies<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Bytes>, peer: SocketAddr) {
    const BATCH: usize = 64;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut result = Ok(());
        for frame in &batch {
            result = wr.write_all(frame).await;
            if result.is_err() {
                break;
            }
        }
        // madsim sends only on flush; on real TCP this is one syscall per batch of replies.
        if result.is_ok() {
            result = wr.flush().await;
        }
        if let Err(e) = result {
            tracing::debug!(%peer, "rpc: writing replies failed: {e}");
            return;
        }
    }
}
