//! The seam between connections and the data: every write goes through [`Engine::write`] as
//! a [`WriteBatch`], every keyspace read through [`Engine::read`]. Today the engine applies
//! locally; the replicated node replaces the body of `write` with a Raft proposal (and `read`
//! with a ReadIndex round) without touching the commands.

use crate::cmd::{self, ReadFn};
use crate::protocol::Frame;
use crate::store::{Keyspace, Rng, WriteBatch};
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use std::sync::Mutex;

/// Owner of the keyspace and of the node's seeded random source.
pub struct Engine {
    ks: Mutex<Keyspace>,
    rng: Mutex<Rng>,
}

impl Engine {
    pub fn new(databases: usize, seed: u64) -> Self {
        Engine { ks: Mutex::new(Keyspace::new(databases)), rng: Mutex::new(Rng::seed_from_u64(seed)) }
    }

    fn keyspace(&self) -> std::sync::MutexGuard<'_, Keyspace> {
        // A panic while holding the lock would be a bug in a handler; the data is still
        // consistent per command, so keep serving rather than poisoning every client.
        self.ks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh seed for a write batch or a read's random choices.
    pub fn next_seed(&self) -> u64 {
        self.rng.lock().unwrap_or_else(|p| p.into_inner()).next_u64()
    }

    /// Applies a write and returns its reply.
    pub async fn write(&self, batch: WriteBatch) -> Frame {
        cmd::apply(&mut self.keyspace(), &batch)
    }

    /// Runs a read-only command at time `now_ms`.
    pub async fn read(&self, db: usize, now_ms: u64, f: ReadFn, argv: &[Bytes]) -> Frame {
        let mut rng = Rng::seed_from_u64(self.next_seed());
        cmd::run_read(&self.keyspace(), db, now_ms, &mut rng, f, argv)
    }

    /// Direct read access for server-level figures (INFO, WATCH versions, active expiry).
    pub fn with_keyspace<R>(&self, f: impl FnOnce(&Keyspace) -> R) -> R {
        f(&self.keyspace())
    }
}
