//! The clients of this node blocked in one Raft group's replicated queue of waiters
//! ([`crate::store::Blocked`]), and the delivery of their replies. One registry per group (the
//! group's state machine delivers into it), so a node running several groups keeps them apart.
//!
//! A connection registers before it proposes its blocking command, so no outcome can slip
//! past it: the state machine hands over every outcome it applies ([`Waiters::deliver`]), and
//! the one whose id is registered here goes to that client, on whichever node its write was
//! decided. The registry also finds this node's orphans: waiters of this node still in the
//! queue whose client is gone (it timed out without a leader, disconnected, or belonged to
//! an earlier run of the node), which the reconcile task cancels through the log.

use crate::protocol::Frame;
use crate::store::{BlockId, Blocked};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The reply of a blocked client whose outcome this node can no longer learn (it installed a
/// snapshot taken after the outcome): its command may or may not have been served.
pub const OUTCOME_LOST: &str =
    "TRYAGAIN this node caught up from a snapshot while the command was blocked; it may or may not have been served";

/// A registered client.
struct Pending {
    client: u64,
    reply: oneshot::Sender<Frame>,
    /// Its command is in the queue (its block entry answered "blocked").
    queued: bool,
}

/// This node's blocked clients of one group.
pub struct Waiters {
    node: u64,
    boot: u64,
    next_seq: AtomicU64,
    pending: Mutex<BTreeMap<u64, Pending>>,
}

impl Waiters {
    /// The registry of node `node` in its run `boot` (distinct for every start of the node).
    pub fn new(node: u64, boot: u64) -> Waiters {
        Waiters { node, boot, next_seq: AtomicU64::new(1), pending: Mutex::new(BTreeMap::new()) }
    }

    fn pending(&self) -> MutexGuard<'_, BTreeMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_ours(&self, id: &BlockId) -> bool {
        id.node == self.node && id.boot == self.boot
    }

    /// Registers a blocking command of connection `client`: its id, and where its reply
    /// arrives.
    pub fn register(&self, client: u64) -> (BlockId, oneshot::Receiver<Frame>) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending().insert(seq, Pending { client, reply: tx, queued: false });
        (BlockId { node: self.node, boot: self.boot, seq }, rx)
    }

    /// The command `id` was queued: its client counts as blocked (INFO `blocked_clients`).
    pub fn set_queued(&self, id: &BlockId) {
        if let Some(p) = self.pending().get_mut(&id.seq) {
            p.queued = true;
        }
    }

    /// The client of `id` stopped waiting; an outcome arriving later is dropped.
    pub fn forget(&self, id: &BlockId) {
        self.pending().remove(&id.seq);
    }

    /// Hands outcomes applied by the state machine to their clients on this node.
    pub fn deliver(&self, outcomes: Vec<(BlockId, Frame)>) {
        let mut pending = self.pending();
        for (id, reply) in outcomes {
            if !self.is_ours(&id) {
                continue;
            }
            if let Some(p) = pending.remove(&id.seq) {
                // The client may have just gone: nobody to tell.
                let _ = p.reply.send(reply);
            }
        }
    }

    /// After a snapshot replaced the state: a registered client whose command is not in the
    /// new queue may have been served in the entries the snapshot skipped, so it is told that
    /// its outcome is unknown.
    pub fn after_snapshot(&self, queue: &Blocked) {
        let mut pending = self.pending();
        let lost: Vec<u64> = pending
            .keys()
            .filter(|&&seq| queue.get(&BlockId { node: self.node, boot: self.boot, seq }).is_none())
            .copied()
            .collect();
        for seq in lost {
            if let Some(p) = pending.remove(&seq) {
                let _ = p.reply.send(Frame::error(OUTCOME_LOST));
            }
        }
    }

    /// The queued command of connection `client`, if it is blocked (CLIENT UNBLOCK).
    pub fn blocked_command_of(&self, client: u64) -> Option<BlockId> {
        let pending = self.pending();
        let seq = pending.iter().find(|(_, p)| p.client == client && p.queued).map(|(seq, _)| *seq)?;
        Some(BlockId { node: self.node, boot: self.boot, seq })
    }

    /// How many clients of this node are blocked.
    pub fn blocked_count(&self) -> usize {
        self.pending().values().filter(|p| p.queued).count()
    }

    /// Of `held` (the queue's waiters held by this node), those nobody here waits for: left by
    /// an earlier run of the node or by a client that stopped waiting.
    pub fn orphans(&self, held: Vec<BlockId>) -> Vec<BlockId> {
        let pending = self.pending();
        held.into_iter()
            .filter(|id| id.node == self.node && !(id.boot == self.boot && pending.contains_key(&id.seq)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Waiter;
    use bytes::Bytes;

    #[test]
    fn outcomes_reach_their_own_client_only() {
        let w = Waiters::new(1, 5);
        let (a, mut rx_a) = w.register(10);
        let (b, mut rx_b) = w.register(11);
        w.set_queued(&a);
        assert_eq!(w.blocked_count(), 1);
        assert_eq!(w.blocked_command_of(10), Some(a));
        assert_eq!(w.blocked_command_of(11), None, "not queued yet");
        let other_boot = BlockId { boot: 4, ..b };
        let other_node = BlockId { node: 2, ..b };
        w.deliver(vec![(other_boot, Frame::Integer(0)), (other_node, Frame::Integer(0)), (a, Frame::Integer(1))]);
        assert_eq!(rx_a.try_recv().ok(), Some(Frame::Integer(1)));
        assert!(rx_b.try_recv().is_err(), "another run's or node's outcome is not ours");
        assert_eq!(w.blocked_count(), 0);
        w.forget(&b);
        w.deliver(vec![(b, Frame::Integer(2))]);
        assert!(rx_b.try_recv().is_err());
    }

    #[test]
    fn a_snapshot_without_the_command_makes_its_outcome_unknown() {
        let w = Waiters::new(1, 5);
        let (a, mut rx_a) = w.register(10);
        let (b, mut rx_b) = w.register(11);
        let mut queue = Blocked::default();
        queue.add(Waiter { id: b, db: 0, argv: vec![Bytes::from_static(b"blpop")], keys: vec![], deadline_ms: 0 });
        w.after_snapshot(&queue);
        assert_eq!(rx_a.try_recv().ok(), Some(Frame::error(OUTCOME_LOST)));
        assert!(rx_b.try_recv().is_err(), "still queued: still waiting");
        let _ = a;
    }

    #[test]
    fn orphans_are_this_nodes_waiters_nobody_waits_for() {
        let w = Waiters::new(1, 5);
        let (a, _rx) = w.register(10);
        let gone = BlockId { node: 1, boot: 5, seq: 99 };
        let old_run = BlockId { node: 1, boot: 4, seq: a.seq };
        let elsewhere = BlockId { node: 2, boot: 5, seq: 1 };
        assert_eq!(w.orphans(vec![a, gone, old_run, elsewhere]), vec![gone, old_run]);
    }
}
