//! Pub/Sub between nodes: a message PUBLISHed (or SPUBLISHed) on one node reaches the
//! subscribers of every other node over the internal RPC port, never through the Raft log. A
//! message is not state: Redis Cluster carries it over its bus the same way, at most once, and
//! a subscriber that is not connected when it is sent never sees it.
//!
//! One queue and one sending task per peer. The task takes every message waiting (up to a
//! batch limit), sends them as one `Publish` request and waits for the answer before sending
//! the next batch, so the messages a node publishes arrive on each peer in publishing order
//! (the receiver hands a batch to its subscribers in order). A message is dropped, never
//! retried, when its peer's queue is full or its request fails or times out: at most once.

use super::rpc::{PubMessage, RpcPool, RpcRequest};
use crate::rt::{Shutdown, ShutdownSignal};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Bytes of messages one peer's queue holds at most; beyond, new messages to it are dropped
/// (a peer that is down or slow cannot make the publisher grow without bound).
const MAX_QUEUED_BYTES: usize = 64 << 20;
/// Bytes of messages sent in one request, at most (a single larger message goes alone).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// How long a batch may take to be answered before it counts as lost.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a node's incoming messages go (the server's Pub/Sub registry).
pub trait PublishSink: Send + Sync + 'static {
    /// Hands `msgs`, in order, to this node's subscribers.
    fn deliver(&self, msgs: Vec<PubMessage>);
}

/// The messages waiting for one peer.
#[derive(Default)]
struct PeerQueue {
    state: Mutex<Queued>,
    ready: Notify,
}

#[derive(Default)]
struct Queued {
    msgs: VecDeque<PubMessage>,
    bytes: usize,
}

fn size(msg: &PubMessage) -> usize {
    msg.channel.len() + msg.payload.len() + 16
}

impl PeerQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg` unless the queue is full; false when it was dropped.
    fn push(&self, msg: PubMessage) -> bool {
        let mut q = self.lock();
        let n = size(&msg);
        if q.bytes + n > MAX_QUEUED_BYTES {
            return false;
        }
        q.bytes += n;
        q.msgs.push_back(msg);
        drop(q);
        self.ready.notify_one();
        true
    }

    /// The next batch, oldest first (empty when nothing waits).
    fn take_batch(&self) -> Vec<PubMessage> {
        let mut q = self.lock();
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(msg) = q.msgs.front() {
            let n = size(msg);
            if !batch.is_empty() && bytes + n > MAX_BATCH_BYTES {
                break;
            }
            bytes += n;
            batch.extend(q.msgs.pop_front());
        }
        q.bytes -= bytes;
        batch
    }
}

/// This node's side of inter-node Pub/Sub: the queues to peers and the sink of incoming
/// messages.
pub struct Broadcast {
    group: u64,
    pool: RpcPool,
    peers: Mutex<BTreeMap<String, Arc<PeerQueue>>>,
    sink: OnceLock<Arc<dyn PublishSink>>,
    /// Ends the sending tasks.
    stop: Shutdown,
    /// Messages dropped because a peer's queue was full or its request failed.
    dropped: Arc<AtomicU64>,
}

impl Broadcast {
    /// Sends to peers of `group` through `pool`.
    pub fn new(group: u64, pool: RpcPool) -> Broadcast {
        let stop = Shutdown::new();
        Broadcast { group, pool, peers: Mutex::default(), sink: OnceLock::new(), stop, dropped: Arc::default() }
    }

    /// Ends the sending tasks (messages still queued are dropped).
    pub fn stop(&self) {
        self.stop.trigger();
    }

    /// Installs where incoming messages go (once; later calls are ignored). Until then they
    /// are dropped.
    pub fn set_sink(&self, sink: Arc<dyn PublishSink>) {
        let _ = self.sink.set(sink);
    }

    /// Hands messages received from a peer to the sink.
    pub fn deliver(&self, msgs: Vec<PubMessage>) {
        if let Some(sink) = self.sink.get() {
            sink.deliver(msgs);
        }
    }

    /// Messages dropped so far (full queue, failed or timed-out request).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues `msg` for each peer at the raft addresses `peers`.
    pub fn send<'a>(&self, peers: impl IntoIterator<Item = &'a str>, msg: &PubMessage) {
        for addr in peers {
            if !self.queue(addr).push(msg.clone()) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The queue of the peer at `addr`, with its sending task started on first use.
    fn queue(&self, addr: &str) -> Arc<PeerQueue> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = peers.get(addr) {
            return q.clone();
        }
        let q = Arc::new(PeerQueue::default());
        peers.insert(addr.to_string(), q.clone());
        let sender = Sender {
            group: self.group,
            addr: addr.to_string(),
            pool: self.pool.clone(),
            queue: q.clone(),
            dropped: self.dropped.clone(),
        };
        tokio::spawn(sender.run(self.stop.subscribe()));
        q
    }
}

/// The task sending one peer's queue.
struct Sender {
    group: u64,
    addr: String,
    pool: RpcPool,
    queue: Arc<PeerQueue>,
    dropped: Arc<AtomicU64>,
}

impl Sender {
    async fn run(self, mut stop: ShutdownSignal) {
        let client = self.pool.get(&self.addr);
        loop {
            let batch = self.queue.take_batch();
            if batch.is_empty() {
                tokio::select! {
                    biased;
                    _ = stop.wait() => return,
                    _ = self.queue.ready.notified() => continue,
                }
            }
            let n = batch.len() as u64;
            if let Err(e) = client.call(self.group, &RpcRequest::Publish(batch), SEND_TIMEOUT).await {
                tracing::debug!(peer = %self.addr, "pubsub: {n} messages lost: {e}");
                self.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(payload: usize) -> PubMessage {
        PubMessage { shard: false, channel: Bytes::from_static(b"c"), payload: Bytes::from(vec![b'x'; payload]) }
    }

    #[test]
    fn a_queue_keeps_order_batches_by_size_and_drops_beyond_its_bound() {
        let q = PeerQueue::default();
        for _ in 0..3 {
            assert!(q.push(msg(MAX_BATCH_BYTES / 2)));
        }
        assert_eq!(q.take_batch().len(), 1, "two halves plus overhead exceed one batch");
        assert_eq!(q.take_batch().len(), 1);
        assert_eq!(q.take_batch().len(), 1);
        assert!(q.take_batch().is_empty());
        assert_eq!(q.lock().bytes, 0);
        // A message larger than a batch still goes, alone.
        assert!(q.push(msg(MAX_BATCH_BYTES * 2)));
        assert_eq!(q.take_batch().len(), 1);
        let big = MAX_QUEUED_BYTES / 4;
        assert!(q.push(msg(big)) && q.push(msg(big)) && q.push(msg(big)));
        assert!(!q.push(msg(big)), "the fourth would pass the queue's bound");
        assert!(q.push(msg(0)), "a small one still fits");
        let sizes: Vec<usize> = std::iter::from_fn(|| Some(q.take_batch()).filter(|b| !b.is_empty()))
            .flatten()
            .map(|m| m.payload.len())
            .collect();
        assert_eq!(sizes, [big, big, big, 0], "oldest first");
    }
}
