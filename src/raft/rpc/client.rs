//! The client side: [`RpcClient`] keeps one reusable connection to one peer, and
//! [`RpcPool`] hands out one client per peer address.
//!
//! Requests are multiplexed on the connection by request id, so a slow forwarded write does
//! not hold up heartbeats, and many followers' clients share one connection to the leader.
//! A broken connection is replaced on the next call; after a failed connect, calls fail fast
//! with [`RpcError::Unreachable`] until a bounded exponential backoff has passed.
//!
//! Every call has a deadline. Errors say what is known about the request: never sent
//! (`Unreachable`), sent but no answer (`Timeout`, `Lost`: it may or may not have been
//! applied), or answered with an error or nonsense (`Failed`).

use super::conn::{encode_request, Conn, Outgoing};
use super::message::{ForwardBatch, ForwardRequest, RpcRequest, RpcResponse};
use super::wire::DEFAULT_MAX_FRAME;
use crate::protocol::Frame;
use crate::raft::membership::{MembershipError, MembershipOp};
use crate::raft::{NodeId, NodeInfo, TypeConfig};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, TransferLeaderRequest, TransferLeaderResponse, VoteRequest,
    VoteResponse,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why an RPC did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The request was not sent: connecting failed or was refused, the connection was gone
    /// before the request was written, or the client is backing off after such a failure.
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The deadline passed before the answer arrived; the request may have been applied.
    #[error("rpc to {addr} timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
    /// The connection broke after the request may have been sent; it may have been applied.
    #[error("connection to {addr} lost: {reason}")]
    Lost { addr: String, reason: String },
    /// The peer answered with an error, an unexpected response, or an undecodable frame; or
    /// the request could not be encoded.
    #[error("rpc to {addr} failed: {reason}")]
    Failed { addr: String, reason: String },
}

impl RpcError {
    /// Whether the request may have taken effect on the peer (the caller must not report a
    /// definite failure for a write in that case).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, RpcError::Timeout { .. } | RpcError::Lost { .. })
    }
}

/// Limits and timings of a client.
#[derive(Debug, Clone)]
pub struct RpcClientConfig {
    /// The longest a connect attempt may take (a call's own deadline may cut it shorter).
    pub connect_timeout: Duration,
    /// Backoff after the first failed connect; doubled per further failure...
    pub backoff_min: Duration,
    /// ...up to this bound.
    pub backoff_max: Duration,
    /// The frame size limit, for requests and replies.
    pub max_frame: u32,
    /// Frames queued for the writer before callers wait.
    pub queue: usize,
    /// How long requests may go without anything at all coming back before the link counts as
    /// stalled and is dropped (a dead host or a partition; the next call reconnects). Longer
    /// than any one RPC's deadline: on a link with no other traffic (quiet groups) a single
    /// slow reply must not take down every other call waiting on the connection.
    pub stall_after: Duration,
}

impl Default for RpcClientConfig {
    fn default() -> Self {
        RpcClientConfig {
            connect_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(500),
            max_frame: DEFAULT_MAX_FRAME,
            queue: 256,
            stall_after: Duration::from_millis(300),
        }
    }
}

/// The connection slot of a client.
struct Link {
    conn: Option<Arc<Conn>>,
    /// Consecutive failed connects.
    failures: u32,
    /// No new connect attempt before this instant.
    retry_at: Option<Instant>,
}

/// A client of one peer's RPC server. Cheap to share (`Arc`); all callers use one connection.
pub struct RpcClient {
    addr: String,
    config: RpcClientConfig,
    // A tokio mutex: connecting happens while it is held, so concurrent callers wait for one
    // connect instead of each opening their own.
    link: tokio::sync::Mutex<Link>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("addr", &self.addr).finish()
    }
}

impl RpcClient {
    /// A client of the server at `addr` (`host:port`). Connects lazily.
    pub fn new(addr: impl Into<String>, config: RpcClientConfig) -> RpcClient {
        RpcClient {
            addr: addr.into(),
            config,
            link: tokio::sync::Mutex::new(Link { conn: None, failures: 0, retry_at: None }),
        }
    }

    /// The frame size limit of this client's requests.
    pub fn max_frame(&self) -> u32 {
        self.config.max_frame
    }

    /// The peer's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` to `group` and waits for the response, for at most `timeout`.
    pub async fn call(&self, group: u64, req: &RpcRequest, timeout: Duration) -> Result<RpcResponse, RpcError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let conn = match timeout_at(deadline, self.connection(deadline)).await {
            Ok(conn) => conn?,
            Err(_) => return Err(self.unreachable("connect did not finish before the deadline")),
        };
        let (id, rx) = conn.register()?;
        // Unregisters the caller however this future ends, cancellation included.
        let _guard = Forget { conn: &conn, id };
        let frame = encode_request(group, id, req, self.config.max_frame).map_err(|e| self.failed(e))?;
        let sent = Instant::now();
        match timeout_at(deadline, conn.send(Outgoing { id, frame })).await {
            Ok(queued) => queued?,
            Err(_) => return Err(RpcError::Timeout { addr: self.addr.clone(), after: timeout }),
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => match answer? {
                RpcResponse::Error(e) => Err(self.failed(e)),
                resp => Ok(resp),
            },
            Ok(Err(_)) => Err(RpcError::Lost { addr: self.addr.clone(), reason: "connection closed".into() }),
            Err(_) => {
                conn.timed_out(sent, self.config.stall_after);
                Err(RpcError::Timeout { addr: self.addr.clone(), after: timeout })
            }
        }
    }

    /// The live connection, opening one if needed (or failing fast while backing off).
    async fn connection(&self, deadline: Instant) -> Result<Arc<Conn>, RpcError> {
        let mut link = self.link.lock().await;
        if let Some(conn) = &link.conn {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
            link.conn = None;
        }
        let now = Instant::now();
        if let Some(at) = link.retry_at {
            if now < at {
                return Err(self.unreachable("backing off after a failed connect"));
            }
        }
        let connect_deadline = deadline.min(now + self.config.connect_timeout);
        let result = match timeout_at(connect_deadline, TcpStream::connect(self.addr.as_str())).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connect timed out".to_string()),
        };
        match result {
            Ok(stream) => {
                if link.failures > 0 {
                    tracing::info!(peer = %self.addr, "peer reachable again after {} failed connects", link.failures);
                }
                link.failures = 0;
                link.retry_at = None;
                let conn = Arc::new(Conn::start(stream, &self.addr, self.config.max_frame, self.config.queue));
                link.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(reason) => {
                link.failures = link.failures.saturating_add(1);
                let exp = link.failures.saturating_sub(1).min(16);
                let backoff = self.config.backoff_min.saturating_mul(1 << exp).min(self.config.backoff_max);
                link.retry_at = Some(Instant::now() + backoff);
                // One line when a peer becomes unreachable, the retries only at debug.
                if link.failures == 1 {
                    tracing::warn!(peer = %self.addr, "peer unreachable: {reason}");
                } else {
                    tracing::debug!(peer = %self.addr, "rpc connect failed ({reason}); retry in {backoff:?}");
                }
                Err(self.unreachable(reason))
            }
        }
    }

    fn unreachable(&self, reason: impl Into<String>) -> RpcError {
        RpcError::Unreachable { addr: self.addr.clone(), reason: reason.into() }
    }

    fn failed(&self, reason: impl std::fmt::Display) -> RpcError {
        RpcError::Failed { addr: self.addr.clone(), reason: reason.to_string() }
    }

    fn unexpected(&self, want: &str, got: &RpcResponse) -> RpcError {
        self.failed(format!("expected a {want} response, got {got:?}"))
    }

    /// Raft AppendEntries.
    pub async fn append_entries(
        &self,
        group: u64,
        req: AppendEntriesRequest<TypeConfig>,
        timeout: Duration,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcError> {
        match self.call(group, &RpcRequest::AppendEntries(req), timeout).await? {
            RpcResponse::AppendEntries(r) => Ok(r),
            other => Err(self.unexpected("append_entries", &other)),
        }
    }

    /// Raft RequestVote.
    pub async fn vote(
        &self,
        group: u64,
        req: VoteRequest<TypeConfig>,
        timeout: Duration,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        match self.call(group, &RpcRequest::Vote(req), timeout).await? {
            RpcResponse::Vote(r) => Ok(r),
            other => Err(self.unexpected("vote", &other)),
        }
    }

    /// Raft Pre-Vote.
    pub async fn pre_vote(
        &self,
        group: u64,
        req: VoteRequest<TypeConfig>,
        timeout: Duration,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        match self.call(group, &RpcRequest::PreVote(req), timeout).await? {
            RpcResponse::Vote(r) => Ok(r),
            other => Err(self.unexpected("vote", &other)),
        }
    }

    /// Raft TransferLeader.
    pub async fn transfer_leader(
        &self,
        group: u64,
        req: TransferLeaderRequest<TypeConfig>,
        timeout: Duration,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RpcError> {
        match self.call(group, &RpcRequest::TransferLeader(req), timeout).await? {
            RpcResponse::TransferLeader(r) => Ok(r),
            other => Err(self.unexpected("transfer_leader", &other)),
        }
    }

    /// Runs a client command on the peer (the leader) and returns its reply frame.
    pub async fn forward(&self, group: u64, req: ForwardRequest, timeout: Duration) -> Result<Frame, RpcError> {
        match self.call(group, &RpcRequest::Forward(req), timeout).await? {
            RpcResponse::Forward(frame) => Ok(frame),
            other => Err(self.unexpected("forward", &other)),
        }
    }

    /// Hands a membership change to the peer (the leader) and returns its outcome.
    pub async fn membership(
        &self,
        group: u64,
        op: MembershipOp,
        timeout: Duration,
    ) -> Result<Result<(), MembershipError>, RpcError> {
        match self.call(group, &RpcRequest::Membership(op), timeout).await? {
            RpcResponse::Membership(outcome) => Ok(outcome),
            other => Err(self.unexpected("membership", &other)),
        }
    }

    /// Asks the peer for its node id and addresses.
    pub async fn node_info(&self, group: u64, timeout: Duration) -> Result<(NodeId, NodeInfo), RpcError> {
        match self.call(group, &RpcRequest::NodeInfo, timeout).await? {
            RpcResponse::NodeInfo { id, info } => Ok((id, info)),
            other => Err(self.unexpected("node_info", &other)),
        }
    }

    /// Asks the peer, a member of `group`, to stop its ticks of the group (this node leads it);
    /// whether it did.
    pub async fn quiesce(
        &self,
        group: u64,
        req: crate::raft::quiesce::QuiesceRequest,
        timeout: Duration,
    ) -> Result<bool, RpcError> {
        match self.call(group, &RpcRequest::Quiesce(req), timeout).await? {
            RpcResponse::Quiesced(done) => Ok(done),
            other => Err(self.unexpected("quiesce", &other)),
        }
    }

    /// Asks the peer which node leads `group` (as the peer knows).
    pub async fn leader(&self, group: u64, timeout: Duration) -> Result<Option<(NodeId, NodeInfo)>, RpcError> {
        match self.call(group, &RpcRequest::Leader, timeout).await? {
            RpcResponse::Leader(leader) => Ok(leader),
            other => Err(self.unexpected("leader", &other)),
        }
    }

    /// Asks the peer (the leader) for a read index: the log index to have applied before a
    /// linearizable read of a local copy.
    pub async fn read_index(&self, group: u64, timeout: Duration) -> Result<u64, RpcError> {
        match self.call(group, &RpcRequest::ReadIndex, timeout).await? {
            RpcResponse::ReadIndex { index } => Ok(index),
            other => Err(self.unexpected("read_index", &other)),
        }
    }

    /// Runs a batch of writes (a pipeline's, or a transaction) on the peer (the leader) and
    /// returns its reply frame.
    pub async fn forward_batch(&self, group: u64, req: ForwardBatch, timeout: Duration) -> Result<Frame, RpcError> {
        match self.call(group, &RpcRequest::ForwardBatch(req), timeout).await? {
            RpcResponse::Forward(frame) => Ok(frame),
            other => Err(self.unexpected("forward_batch", &other)),
        }
    }
}

/// `tokio::time::timeout_at`, which madsim lacks.
async fn timeout_at<F: std::future::Future>(
    deadline: Instant,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), fut).await
}

/// Removes a caller's registration when its call ends, normally or by cancellation.
struct Forget<'a> {
    conn: &'a Conn,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.conn.forget(self.id);
    }
}

/// One [`RpcClient`] per peer address, shared by everything that talks to that peer (Raft
/// replication, heartbeats, snapshots, forwarded commands).
#[derive(Debug, Clone, Default)]
pub struct RpcPool {
    config: RpcClientConfig,
    clients: Arc<std::sync::Mutex<BTreeMap<String, Arc<RpcClient>>>>,
}

impl RpcPool {
    /// A pool whose clients use `config`.
    pub fn new(config: RpcClientConfig) -> RpcPool {
        RpcPool { config, clients: Arc::default() }
    }

    /// The client of `addr`, created on first use.
    pub fn get(&self, addr: &str) -> Arc<RpcClient> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.entry(addr.to_string()).or_insert_with(|| Arc::new(RpcClient::new(addr, self.config.clone()))).clone()
    }
}
