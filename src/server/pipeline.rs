//! Consecutive writes of one connection's pipeline, proposed together as one write batch (one
//! log entry, applied in order, one commit for all of them) instead of one commit after the
//! other. The connection flushes the pending writes before it runs anything else, so every
//! command still sees the effects of the ones before it, and replies keep their order.

use super::calls::Pending;
use super::engine::{Engine, Replies};
use super::latency::Latency;
use super::tracking::Tracking;
use crate::protocol::{encode, Frame, RespVersion};
use bytes::{Bytes, BytesMut};

/// At most this many commands in one batch.
const MAX_CMDS: usize = 1024;
/// A batch stops growing past this many argument bytes (a log entry stays moderate; a single
/// larger command still goes alone).
const MAX_BYTES: usize = 1 << 20;

/// A reply still to come, in pipeline order.
enum Slot {
    /// The reply of the next command of the batch; `send` unless CLIENT REPLY drops it;
    /// `call` to record once the reply is known.
    Write { send: bool, call: Option<Pending> },
    /// A reply known already (an arity or AUTH error between two writes).
    Ready { frame: Frame, send: bool },
}

/// A write for [`PendingWrites::push_write`]: run on database `db`, routed to Raft group
/// `group`, at `now_ms`.
pub struct QueuedWrite {
    pub db: usize,
    pub group: u64,
    pub now_ms: u64,
    pub argv: Vec<Bytes>,
    /// Its reply is sent (not dropped by CLIENT REPLY).
    pub send: bool,
    pub call: Option<Pending>,
}

/// Where [`PendingWrites::flush`] puts the replies: the client's protocol, its output buffer,
/// and the node's error counts.
pub struct Out<'a> {
    pub resp: RespVersion,
    pub buf: &'a mut BytesMut,
    pub latency: &'a Latency,
}

/// Writes waiting to be proposed, and the replies queued behind them.
#[derive(Default)]
pub struct PendingWrites {
    db: usize,
    /// The Raft group the batch goes to (multi-raft; else 0).
    group: u64,
    /// The time the batch's first write ran at; the batch is stamped with it.
    now_ms: u64,
    cmds: Vec<Vec<Bytes>>,
    bytes: usize,
    slots: Vec<Slot>,
    /// The writes whose replies are in, with whether each failed, to record (see
    /// [`take_answered`](Self::take_answered)).
    answered: Vec<(Pending, bool)>,
}

impl PendingWrites {
    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether a write for database `db` can join the batch (else flush first).
    pub fn accepts(&self, db: usize) -> bool {
        self.cmds.is_empty() || (self.db == db && self.cmds.len() < MAX_CMDS && self.bytes < MAX_BYTES)
    }

    /// Whether a write routed to Raft group `group` can join the batch (else flush first).
    pub fn accepts_group(&self, group: u64) -> bool {
        self.cmds.is_empty() || self.group == group
    }

    /// Queues a write for database `db` of group `group`, run at `now_ms` (check
    /// [`accepts`](Self::accepts) and [`accepts_group`](Self::accepts_group) first); `call` is
    /// handed back with its outcome by [`take_answered`](Self::take_answered) after the flush.
    pub fn push_write(&mut self, w: QueuedWrite) {
        let QueuedWrite { db, group, now_ms, argv, send, call } = w;
        if self.cmds.is_empty() {
            self.now_ms = now_ms;
        }
        self.db = db;
        self.group = group;
        self.bytes += argv.iter().map(|a| a.len()).sum::<usize>();
        self.cmds.push(argv);
        self.slots.push(Slot::Write { send, call });
    }

    /// The calls of the flushed writes, each with whether its reply was an error.
    pub fn take_answered(&mut self) -> std::vec::Drain<'_, (Pending, bool)> {
        self.answered.drain(..)
    }

    /// Queues a reply that is already known, behind the pending writes.
    pub fn push_ready(&mut self, frame: Frame, send: bool) {
        self.slots.push(Slot::Ready { frame, send });
    }

    /// Proposes the pending writes as one batch and encodes every queued reply into `out`, in
    /// order.
    /// `noloop`: the tracking table and the client's id when it tracks with NOLOOP (its own
    /// changes are then not announced to it). Error replies count in `latency`'s errorstats.
    pub async fn flush(&mut self, engine: &Engine, out: Out<'_>, noloop: Option<(&Tracking, u64)>) {
        let Out { resp, buf: out, latency } = out;
        if self.slots.is_empty() {
            return;
        }
        let cmds = std::mem::take(&mut self.cmds);
        self.bytes = 0;
        let mut replies = if cmds.is_empty() {
            Replies::none()
        } else {
            let seed = engine.next_seed();
            if let Some((tracking, id)) = noloop {
                tracking.own_write(seed, id);
            }
            let replies = engine.write_many_seeded(self.group, self.db, self.now_ms, cmds, seed).await;
            if let Some((tracking, _)) = noloop {
                tracking.own_write_done(seed);
            }
            replies
        };
        for slot in self.slots.drain(..) {
            let (frame, send) = match slot {
                Slot::Write { send, call } => {
                    let frame = replies.next().unwrap_or(Frame::Null);
                    if let Frame::Error(message) = &frame {
                        latency.error_reply(message);
                    }
                    self.answered.extend(call.map(|c| (c, frame.is_error())));
                    (frame, send)
                }
                Slot::Ready { frame, send } => (frame, send),
            };
            if send {
                encode(&frame, resp, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(db: usize, argv: Vec<Bytes>, send: bool) -> QueuedWrite {
        QueuedWrite { db, group: 0, now_ms: 0, argv, send, call: None }
    }

    #[test]
    fn a_batch_holds_one_database_and_stops_growing_at_its_limits() {
        let mut p = PendingWrites::default();
        assert!(p.is_empty() && p.accepts(3));
        p.push_write(write(3, vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k")], true));
        assert!(!p.is_empty() && p.accepts(3));
        // Another database needs a batch of its own.
        assert!(!p.accepts(4));
        for _ in 1..MAX_CMDS {
            p.push_write(write(3, vec![Bytes::from_static(b"INCR"), Bytes::from_static(b"n")], true));
        }
        assert!(!p.accepts(3));
        let mut big = PendingWrites::default();
        big.push_write(write(0, vec![Bytes::from(vec![b'x'; MAX_BYTES])], false));
        assert!(!big.accepts(0));
        // A ready reply alone is not a write: any database may follow it.
        let mut ready = PendingWrites::default();
        ready.push_ready(Frame::ok(), true);
        assert!(!ready.is_empty() && ready.accepts(5));
    }
}
