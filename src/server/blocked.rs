//! A connection's blocking command (BLPOP, BZPOPMIN, ... see `cmd::blocking`) from the
//! client's side: register with the node's waiters, propose the command as `raftis.block`,
//! then wait for its outcome while watching the timeout, the socket and CLIENT KILL. Also
//! CLIENT UNBLOCK, which acts on such a wait.
//!
//! Errors a blocked client can see (docs/OPERATIONS.md): the proposal's own `-CLUSTERDOWN`
//! (not blocked, nothing popped) or `-TRYAGAIN` (outcome unknown); `-TRYAGAIN` when the
//! timeout passed but the cluster could not confirm it (no leader), since the command may
//! still be served; and [`crate::raft::waiters::OUTCOME_LOST`].

use super::client::ClientHandle;
use super::shared::{now_ms, Shared, Stats};
use crate::cmd::blocking::{self, block_argv, unblock_argv, UnblockReason, BLOCKED_REPLY};
use crate::protocol::Frame;
use crate::store::{BlockId, WriteBatch};
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A blocking command that passed its checks, to run for a connection.
pub struct BlockRequest {
    pub argv: Vec<Bytes>,
    pub db: usize,
    /// 0: wait forever.
    pub timeout_ms: u64,
    /// The Raft group of its keys (multi-raft; else 0).
    pub group: u64,
}

/// How the wait ended.
pub enum Waited {
    /// The reply to send.
    Reply(Frame),
    /// The connection is closing (client gone, killed, node stopping).
    Closed,
}

/// What the connection lends the wait: its socket (to notice the client leaving, and to
/// queue what it sends meanwhile, up to [`MAX_READ_WHILE_BLOCKED`]) and its stop signals.
pub struct ConnectionIo<'a, K, S> {
    pub stream: &'a mut TcpStream,
    pub rbuf: &'a mut BytesMut,
    pub kill: Pin<&'a mut K>,
    pub shutdown: Pin<&'a mut S>,
}

/// A blocked client's input is kept, not run, up to this much (then the socket is not read
/// until the command is answered).
const MAX_READ_WHILE_BLOCKED: usize = 1 << 20;

/// Proposes one internal write to `group` and returns its reply.
async fn propose(shared: &Shared, group: u64, db: usize, argv: Vec<Bytes>) -> Frame {
    let batch = WriteBatch {
        db: db as u32,
        now_ms: now_ms(),
        seed: shared.engine.next_seed(),
        cmds: vec![argv],
        transaction: None,
    };
    shared.engine.write_to(group, batch).await
}

/// Runs `req` for connection `handle` until it is answered or the connection closes.
pub async fn run<K, S>(
    shared: &Arc<Shared>,
    handle: &ClientHandle,
    req: BlockRequest,
    io: ConnectionIo<'_, K, S>,
) -> Waited
where
    K: Future<Output = ()>,
    S: Future<Output = ()>,
{
    let waiters = shared.engine.group(req.group).waiters().clone();
    let client = handle.info().id;
    let (id, mut outcome) = waiters.register(client);
    let reply = propose(shared, req.group, req.db, block_argv(id, req.timeout_ms, &req.argv)).await;
    if reply != Frame::simple(BLOCKED_REPLY) {
        // Served at once (this is its reply), or not proposed / outcome unknown.
        waiters.forget(&id);
        return Waited::Reply(reply);
    }
    waiters.set_queued(&id);
    handle.update(|i| i.blocked = true);
    let waited = wait(shared, id, &mut outcome, &req, io).await;
    handle.update(|i| i.blocked = false);
    if let Waited::Closed = waited {
        cancel(shared, req.group, id);
    }
    waited
}

/// Waits for the outcome of queued command `id`.
async fn wait<K, S>(
    shared: &Arc<Shared>,
    id: BlockId,
    outcome: &mut tokio::sync::oneshot::Receiver<Frame>,
    req: &BlockRequest,
    io: ConnectionIo<'_, K, S>,
) -> Waited
where
    K: Future<Output = ()>,
    S: Future<Output = ()>,
{
    let ConnectionIo { stream, rbuf, mut kill, mut shutdown } = io;
    let forever = req.timeout_ms == 0;
    let timer = tokio::time::sleep(Duration::from_millis(if forever { 86_400_000 } else { req.timeout_ms }));
    tokio::pin!(timer);
    let mut timed_out = false;
    loop {
        tokio::select! {
            biased;
            got = &mut *outcome => {
                let lost = || Frame::error(crate::raft::waiters::OUTCOME_LOST);
                return Waited::Reply(got.unwrap_or_else(|_| lost()));
            }
            _ = &mut kill => return Waited::Closed,
            _ = &mut shutdown => return Waited::Closed,
            _ = &mut timer, if !forever && !timed_out => {
                timed_out = true;
                if let Some(reply) = time_out(shared, id, req).await {
                    return Waited::Reply(reply);
                }
                // Served before the timeout applied: its reply is on the way.
            }
            n = stream.read_buf(rbuf), if rbuf.len() < MAX_READ_WHILE_BLOCKED => match n {
                Ok(0) | Err(_) => return Waited::Closed,
                Ok(n) => Stats::add(&shared.stats.net_input_bytes, n as u64),
            },
        }
    }
}

/// Removes command `id` at its timeout. Returns the client's reply unless the command was
/// served first (its outcome then arrives as usual).
async fn time_out(shared: &Shared, id: BlockId, req: &BlockRequest) -> Option<Frame> {
    let reply = propose(shared, req.group, req.db, unblock_argv(UnblockReason::Timeout, &[id])).await;
    let waiters = shared.engine.group(req.group).waiters();
    match reply {
        Frame::Integer(1) => {
            waiters.forget(&id);
            blocking::spec(&req.argv[0]).map(|spec| spec.timeout_reply.clone())
        }
        Frame::Integer(_) => None,
        other => {
            tracing::debug!(?other, "could not time a blocked command out");
            waiters.forget(&id);
            Some(Frame::error(
                "TRYAGAIN the timeout passed but the cluster could not confirm it; the command may or may not have been served",
            ))
        }
    }
}

/// The client of command `id` is gone: nobody takes its outcome, and the command leaves the
/// queue (best effort: the node's reconcile task catches what this misses).
fn cancel(shared: &Arc<Shared>, group: u64, id: BlockId) {
    shared.engine.group(group).waiters().forget(&id);
    let shared = shared.clone();
    tokio::spawn(async move {
        let reply = propose(&shared, group, 0, unblock_argv(UnblockReason::Cancel, &[id])).await;
        tracing::debug!(?reply, "cancelled the blocked command of a closed connection");
    });
}

/// `CLIENT UNBLOCK <id> [TIMEOUT|ERROR]`: 1 if that client of this node was blocked and is
/// now unblocked (it gets its timeout reply, or `-UNBLOCKED`), 0 otherwise.
pub async fn client_unblock(shared: &Shared, argv: &[Bytes]) -> Frame {
    if argv.len() > 4 {
        return Frame::error("ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.");
    }
    let reason = match argv.get(3) {
        None => UnblockReason::Timeout,
        Some(r) if crate::cmd::args::is(r, "timeout") => UnblockReason::Timeout,
        Some(r) if crate::cmd::args::is(r, "error") => UnblockReason::Error,
        Some(_) => return Frame::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let client = match crate::cmd::args::int(&argv[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let blocked = u64::try_from(client).ok().and_then(|c| {
        let mut groups = shared.engine.groups().iter();
        groups.find_map(|(g, r)| r.waiters().blocked_command_of(c).map(|id| (*g, id)))
    });
    let Some((group, id)) = blocked else { return Frame::Integer(0) };
    match propose(shared, group, 0, unblock_argv(reason, &[id])).await {
        Frame::Integer(n) => Frame::Integer(n.min(1)),
        other => other,
    }
}
