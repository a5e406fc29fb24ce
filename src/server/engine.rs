//! The seam between connections and the data: every write goes through [`Engine::write`] as
//! a [`WriteBatch`], every keyspace read through [`Engine::read`]. Writes are proposed to the
//! node's Raft group and answered once applied; reads wait for a linearizable read point
//! (ReadIndex) and then run on the state machine's keyspace, unless the client opted into
//! possibly stale reads with READONLY.

use crate::cmd::ReadFn;
use crate::protocol::Frame;
use crate::raft::node::{ReadPoint, Replica};
use crate::store::{Keyspace, Rng, WriteBatch};
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use std::sync::{Arc, Mutex};

/// The node's Raft group as seen by the server, and the node's seeded random source.
pub struct Engine {
    replica: Arc<Replica>,
    rng: Mutex<Rng>,
}

impl Engine {
    pub fn new(replica: Arc<Replica>, seed: u64) -> Self {
        Engine { replica, rng: Mutex::new(Rng::seed_from_u64(seed)) }
    }

    /// The Raft group behind the engine.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// A fresh seed for a write batch or a read's random choices.
    pub fn next_seed(&self) -> u64 {
        self.rng.lock().unwrap_or_else(|p| p.into_inner()).next_u64()
    }

    /// Proposes a write and returns its reply once applied (or an error frame, see
    /// [`Replica::write`]).
    pub async fn write(&self, batch: WriteBatch) -> Frame {
        self.replica.write(batch).await
    }

    /// Proposes consecutive writes of one connection as one batch (one log entry, applied in
    /// order, stamped with the time `now_ms`) and returns one reply per command. An error for
    /// the whole batch (no leader, outcome unknown) is every command's reply.
    pub async fn write_many(&self, db: usize, now_ms: u64, cmds: Vec<Vec<Bytes>>) -> Replies {
        let n = cmds.len();
        let batch = WriteBatch { db: db as u32, now_ms, seed: self.next_seed(), cmds, transaction: None };
        split_replies(self.replica.write(batch).await, n)
    }

    /// Runs a read-only command at time `now_ms`; `stale_ok` (READONLY clients) skips the
    /// linearizable read barrier and reads this node's copy as it is. `point` is the read point
    /// of the connection's batch of pipelined commands (see [`ReadPoint`]).
    pub async fn read(
        &self,
        db: usize,
        now_ms: u64,
        f: ReadFn,
        argv: &[Bytes],
        stale_ok: bool,
        point: &mut ReadPoint,
    ) -> Frame {
        // Drawn even for a read that makes no random choice: write batches draw from the same
        // stream, so skipping it would change their seeds. Only seeding the read's own RNG
        // waits for a first draw (see `cmd::run_read`).
        self.replica.read(db, now_ms, self.next_seed(), f, argv, stale_ok, point).await
    }

    /// Direct read access to this node's copy for server-level figures (INFO, WATCH versions,
    /// active expiry). Not linearizable.
    pub fn with_keyspace<R>(&self, f: impl FnOnce(&Keyspace) -> R) -> R {
        // A panic while holding the lock would be a bug in a command; reading through keeps
        // INFO and friends available (writes stop: the state machine reports the poison).
        let st = self.replica.state().lock().unwrap_or_else(|p| p.into_inner());
        f(&st.keyspace)
    }
}

/// The replies of a write batch, one per command, in order (no allocation for the usual batch
/// of one command).
pub enum Replies {
    /// A batch of one command: the entry's reply is its reply.
    One(std::option::IntoIter<Frame>),
    /// A batch of several: the elements of the entry's array reply.
    Each(std::vec::IntoIter<Frame>),
    /// An error for the whole batch, once per command.
    Repeated(std::iter::RepeatN<Frame>),
}

impl Replies {
    /// The replies of an empty batch.
    pub fn none() -> Replies {
        Replies::One(None.into_iter())
    }
}

impl Iterator for Replies {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        match self {
            Replies::One(reply) => reply.next(),
            Replies::Each(replies) => replies.next(),
            Replies::Repeated(reply) => reply.next(),
        }
    }
}

/// The replies of a batch of `n` commands: the reply itself for one command, the array's
/// elements for several; an error for the whole batch is repeated for each.
fn split_replies(reply: Frame, n: usize) -> Replies {
    match reply {
        reply if n == 1 => Replies::One(Some(reply).into_iter()),
        Frame::Array(replies) if replies.len() == n => Replies::Each(replies.into_iter()),
        Frame::Error(e) => Replies::Repeated(std::iter::repeat_n(Frame::Error(e), n)),
        other => {
            tracing::error!(?other, n, "a write batch got a reply of the wrong shape");
            let err = Frame::error("ERR internal error: unexpected reply to a write batch");
            Replies::Repeated(std::iter::repeat_n(err, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_replies_are_split_per_command() {
        let split = |reply: Frame, n| split_replies(reply, n).collect::<Vec<_>>();
        let one = Frame::Array(vec![Frame::Integer(1)]);
        assert_eq!(split(one.clone(), 1), vec![one]);
        let two = Frame::Array(vec![Frame::ok(), Frame::Integer(2)]);
        assert_eq!(split(two, 2), vec![Frame::ok(), Frame::Integer(2)]);
        let err = Frame::error("TRYAGAIN x");
        assert_eq!(split(err.clone(), 3), vec![err.clone(), err.clone(), err]);
        let wrong = split(Frame::Array(vec![Frame::ok()]), 2);
        assert!(wrong.iter().all(|f| matches!(f, Frame::Error(_))) && wrong.len() == 2);
        assert_eq!(Replies::none().count(), 0);
    }
}
