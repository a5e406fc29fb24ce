//! The seam between connections and the data: every write goes through [`Engine::write`] as
//! a [`WriteBatch`], every keyspace read through [`Engine::read`]. Writes are proposed to the
//! node's Raft group and answered once applied; reads wait for a linearizable read point
//! (ReadIndex) and then run on the state machine's keyspace, unless the client opted into
//! possibly stale reads with READONLY.
//!
//! A node of a multi-raft cluster runs several groups: the `_on`/`_to` forms take the group a
//! command was routed to (`crate::cluster`); the plain forms use group 0 (the only group of
//! a node outside multi-raft).

use crate::cmd::ReadFn;
use crate::protocol::Frame;
use crate::raft::node::{ReadPoint, Replica};
use crate::store::{Keyspace, Rng, WriteBatch};
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The node's Raft groups as seen by the server, and the node's seeded random source.
pub struct Engine {
    replica: Arc<Replica>,
    /// Every group of the node by id (group 0 included).
    groups: BTreeMap<u64, Arc<Replica>>,
    rng: Mutex<Rng>,
}

impl Engine {
    /// The engine of a node whose groups are `groups` (group 0 first).
    pub fn new(groups: Vec<Arc<Replica>>, seed: u64) -> Self {
        let groups: BTreeMap<u64, Arc<Replica>> = groups.into_iter().map(|r| (r.group(), r)).collect();
        let replica = groups.values().next().cloned().expect("a node runs at least one Raft group");
        Engine { replica, groups, rng: Mutex::new(Rng::seed_from_u64(seed)) }
    }

    /// Group 0: the only group, or MetaRaft in a multi-raft cluster.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// Group `group` of this node (group 0 if it runs no such group).
    pub fn group(&self, group: u64) -> &Arc<Replica> {
        self.groups.get(&group).unwrap_or(&self.replica)
    }

    /// Every group of this node, by id.
    pub fn groups(&self) -> &BTreeMap<u64, Arc<Replica>> {
        &self.groups
    }

    /// The groups that hold keys: the data groups in a multi-raft cluster, else group 0.
    pub fn keyspace_groups(&self) -> impl Iterator<Item = &Arc<Replica>> {
        let multi = self.groups.len() > 1;
        self.groups.values().filter(move |r| !multi || r.group() != 0)
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

    /// [`write`](Self::write) on group `group`.
    pub async fn write_to(&self, group: u64, batch: WriteBatch) -> Frame {
        self.group(group).write(batch).await
    }

    /// Proposes consecutive writes of one connection as one batch (one log entry, applied in
    /// order, stamped with the time `now_ms`) and returns one reply per command. An error for
    /// the whole batch (no leader, outcome unknown) is every command's reply.
    pub async fn write_many(&self, db: usize, now_ms: u64, cmds: Vec<Vec<Bytes>>) -> Replies {
        self.write_many_to(0, db, now_ms, cmds).await
    }

    /// [`write_many`](Self::write_many) on group `group`.
    pub async fn write_many_to(&self, group: u64, db: usize, now_ms: u64, cmds: Vec<Vec<Bytes>>) -> Replies {
        self.write_many_seeded(group, db, now_ms, cmds, self.next_seed()).await
    }

    /// [`write_many_to`](Self::write_many_to) with the batch's seed chosen by the caller.
    pub async fn write_many_seeded(
        &self,
        group: u64,
        db: usize,
        now_ms: u64,
        cmds: Vec<Vec<Bytes>>,
        seed: u64,
    ) -> Replies {
        let n = cmds.len();
        let batch = WriteBatch { db: db as u32, now_ms, seed, cmds, transaction: None };
        split_replies(self.group(group).write(batch).await, n)
    }

    /// Runs a read-only command at time `now_ms`; `stale_ok` (READONLY clients) skips the
    /// linearizable read barrier and reads this node's copy as it is. `point` is the read point
    /// of the connection's batch of pipelined commands (see [`ReadPoint`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn read_on(
        &self,
        group: u64,
        db: usize,
        now_ms: u64,
        f: ReadFn,
        argv: &[Bytes],
        stale_ok: bool,
        point: &mut ReadPoint,
    ) -> Frame {
        self.group(group).read(db, now_ms, self.next_seed(), f, argv, stale_ok, point).await
    }

    /// [`read_on`](Self::read_on) group 0.
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
        self.with_keyspace_of(0, f)
    }

    /// [`with_keyspace`](Self::with_keyspace) of the first group that holds keys (group 0, or
    /// data group 1 of a multi-raft node): for replicated settings every such group holds.
    pub fn with_data_keyspace<R>(&self, f: impl FnOnce(&Keyspace) -> R) -> R {
        let group = self.keyspace_groups().next().map_or(0, |r| r.group());
        self.with_keyspace_of(group, f)
    }

    /// [`with_keyspace`](Self::with_keyspace) of group `group`.
    pub fn with_keyspace_of<R>(&self, group: u64, f: impl FnOnce(&Keyspace) -> R) -> R {
        // A panic while holding the lock would be a bug in a command; reading through keeps
        // INFO and friends available (writes stop: the state machine reports the poison).
        let st = self.group(group).state().read().unwrap_or_else(|p| p.into_inner());
        f(&st.keyspace)
    }

    /// [`with_keyspace_of`](Self::with_keyspace_of), or `None` at once while a script's apply
    /// holds the state (on a blocking-pool thread): for background rounds (expiry, eviction,
    /// metrics), which skip a turn rather than block the runtime thread until it ends.
    pub fn try_with_keyspace_of<R>(&self, group: u64, f: impl FnOnce(&Keyspace) -> R) -> Option<R> {
        match self.group(group).state().try_read() {
            Ok(st) => Some(f(&st.keyspace)),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(f(&p.into_inner().keyspace)),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// [`with_keyspace_of`](Self::with_keyspace_of) once the state is free: waits
    /// asynchronously while a script's apply holds it (WATCH, which Redis runs during a busy
    /// script, must not block the runtime thread).
    pub async fn with_keyspace_when_free<R>(&self, group: u64, mut f: impl FnMut(&Keyspace) -> R) -> R {
        loop {
            if let Some(r) = self.try_with_keyspace_of(group, &mut f) {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// The script that has been running longest on this node (any group), if one runs; only
    /// killable (read-path) runs with `killable_only`.
    pub fn running_script(&self, killable_only: bool) -> Option<Arc<crate::store::running::Run>> {
        let pick = |r: &crate::store::running::Run| r.killable || !killable_only;
        self.groups().values().filter_map(|r| r.running().oldest_where(pick)).min_by_key(|r| r.started)
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
