//! The seam between connections and the data: every write goes through [`Engine::write`] as
//! a [`WriteBatch`], every keyspace read through [`Engine::read`]. Writes are proposed to the
//! node's Raft group and answered once applied; reads wait for a linearizable read point
//! (ReadIndex) and then run on the state machine's keyspace, unless the client opted into
//! possibly stale reads with READONLY.

use crate::cmd::ReadFn;
use crate::protocol::Frame;
use crate::raft::node::Replica;
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

    /// Runs a read-only command at time `now_ms`; `stale_ok` (READONLY clients) skips the
    /// linearizable read barrier and reads this node's copy as it is.
    pub async fn read(&self, db: usize, now_ms: u64, f: ReadFn, argv: &[Bytes], stale_ok: bool) -> Frame {
        self.replica.read(db, now_ms, self.next_seed(), f, argv, stale_ok).await
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
