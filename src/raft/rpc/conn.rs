//! One client connection to a peer, multiplexed by request id.
//!
//! The stream is split (`tokio::io::split`, which works on madsim's stream that has no
//! `into_split`) between a writer task, which takes whole frames from a channel, writes them
//! and flushes once per batch, and a reader task, which hands each response to the caller
//! waiting on its request id. Callers never touch the stream, so a caller that is cancelled or
//! times out cannot leave half a frame on the wire.

use super::client::RpcError;
use super::message::RpcResponse;
use super::wire::{self, Header, Kind, WireError};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where a waiting caller gets its answer.
type Reply = oneshot::Sender<Result<RpcResponse, RpcError>>;

/// A frame queued for the writer.
pub(super) struct Outgoing {
    pub id: u64,
    pub frame: Bytes,
}

/// Frames written before one flush (a flush is one syscall on real TCP, one message on madsim).
const WRITE_BATCH: usize = 64;

/// State shared by the connection handle and its two tasks.
struct Shared {
    addr: String,
    state: Mutex<State>,
    next_id: AtomicU64,
}

struct State {
    pending: BTreeMap<u64, Reply>,
    /// Set once the connection is unusable; no request is registered after that.
    closed: bool,
    /// When the last frame arrived from the peer (to tell a stalled link from a slow request).
    last_rx: Instant,
    /// When the oldest request that timed out with nothing at all arriving since it was sent
    /// went out (cleared by any arriving frame).
    unanswered_since: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection dead and fails every waiting caller with [`RpcError::Lost`]: their
    /// requests may have reached the peer.
    fn close(&self, reason: &str) {
        let pending = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.pending)
        };
        for (_, tx) in pending {
            let _ = tx.send(Err(RpcError::Lost { addr: self.addr.clone(), reason: reason.to_string() }));
        }
    }

    fn take(&self, id: u64) -> Option<Reply> {
        self.lock().pending.remove(&id)
    }
}

/// A live connection. Dropping it stops both tasks.
pub(super) struct Conn {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Outgoing>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        self.shared.close("connection dropped");
    }
}

impl Conn {
    /// Takes over a connected stream.
    pub fn start(stream: TcpStream, addr: &str, max_frame: u32, queue: usize) -> Conn {
        let _ = stream.set_nodelay(true);
        let (rd, wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            state: Mutex::new(State {
                pending: BTreeMap::new(),
                closed: false,
                last_rx: Instant::now(),
                unanswered_since: None,
            }),
            next_id: AtomicU64::new(1),
        });
        let (tx, rx) = mpsc::channel(queue.max(1));
        let reader = tokio::spawn(read_loop(BufReader::new(rd), shared.clone(), max_frame));
        let writer = tokio::spawn(write_loop(BufWriter::new(wr), rx, shared.clone()));
        Conn { shared, tx, reader, writer }
    }

    /// Whether the connection has failed (the client then opens a new one).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Registers a caller; returns its request id and where its answer arrives.
    pub fn register(&self) -> Result<(u64, oneshot::Receiver<Result<RpcResponse, RpcError>>), RpcError> {
        let (tx, rx) = oneshot::channel();
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut st = self.shared.lock();
        if st.closed {
            return Err(RpcError::Unreachable { addr: self.shared.addr.clone(), reason: "connection closed".into() });
        }
        st.pending.insert(id, tx);
        Ok((id, rx))
    }

    /// Forgets a caller that stopped waiting (timed out or cancelled).
    pub fn forget(&self, id: u64) {
        self.shared.take(id);
    }

    /// Queues a frame for the writer; waits while the queue is full.
    pub async fn send(&self, out: Outgoing) -> Result<(), RpcError> {
        self.tx
            .send(out)
            .await
            .map_err(|_| RpcError::Unreachable { addr: self.shared.addr.clone(), reason: "connection closed".into() })
    }

    /// Called after a request sent at `sent` timed out: once requests have gone unanswered
    /// for `stall_after` with nothing at all arriving, the link itself is stalled (a dead
    /// host or a partition), so drop it and let the next call reconnect. A peer that keeps
    /// answering other requests keeps its connection, and so does one that is merely slow
    /// with a single request on an otherwise idle link (closing then would fail every other
    /// call waiting on it).
    pub fn timed_out(&self, sent: Instant, stall_after: Duration) {
        let stalled = {
            let mut st = self.shared.lock();
            if st.last_rx > sent {
                return;
            }
            let since = st.unanswered_since.map_or(sent, |s| s.min(sent));
            st.unanswered_since = Some(since);
            Instant::now().duration_since(since) >= stall_after
        };
        if stalled {
            self.shared.close("no reply before the deadline");
        }
    }
}

async fn read_loop(mut rd: BufReader<ReadHalf<TcpStream>>, shared: Arc<Shared>, max_frame: u32) {
    let reason = loop {
        let (header, body) = match wire::read_frame(&mut rd, max_frame).await {
            Ok(frame) => frame,
            Err(WireError::Closed) => break "closed by peer".to_string(),
            Err(e) => {
                tracing::warn!(peer = %shared.addr, "rpc connection: bad frame from server: {e}");
                break e.to_string();
            }
        };
        {
            let mut st = shared.lock();
            st.last_rx = Instant::now();
            st.unanswered_since = None;
        }
        if header.kind != Kind::Response {
            tracing::warn!(peer = %shared.addr, "rpc connection: server sent a request frame");
            break "protocol violation: request frame from server".to_string();
        }
        let decoded = wire::decode::<RpcResponse>(&body);
        let Some(reply) = shared.take(header.request_id) else {
            // The caller gave up (deadline); its late answer is dropped.
            continue;
        };
        match decoded {
            Ok(resp) => {
                let _ = reply.send(Ok(resp));
            }
            Err(e) => {
                tracing::warn!(peer = %shared.addr, "rpc connection: undecodable response: {e}");
                let _ = reply.send(Err(RpcError::Failed { addr: shared.addr.clone(), reason: e.to_string() }));
                break e.to_string();
            }
        }
    };
    shared.close(&reason);
}

async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Outgoing>, shared: Arc<Shared>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if let Err(e) = write_batch(&mut wr, &batch).await {
            tracing::debug!(peer = %shared.addr, "rpc connection: write failed: {e}");
            // Frames still queued were never written: their callers get `Unreachable`. Whether
            // any of this batch reached the peer is unknown: `close` fails those with `Lost`.
            rx.close();
            while let Ok(out) = rx.try_recv() {
                if let Some(reply) = shared.take(out.id) {
                    let reason = "connection failed before sending".to_string();
                    let _ = reply.send(Err(RpcError::Unreachable { addr: shared.addr.clone(), reason }));
                }
            }
            shared.close(&format!("write failed: {e}"));
            return;
        }
    }
}

async fn write_batch<W: AsyncWrite + Unpin>(wr: &mut W, batch: &[Outgoing]) -> std::io::Result<()> {
    for out in batch {
        wr.write_all(&out.frame).await?;
    }
    // madsim sends only on flush; on real TCP this is the one write syscall of the batch.
    wr.flush().await
}

/// Encodes a request frame.
pub(super) fn encode_request(group: u64, id: u64, req: &super::RpcRequest, max_frame: u32) -> Result<Bytes, WireError> {
    wire::encode(Header { kind: Kind::Request, group, request_id: id }, req, max_frame)
}
