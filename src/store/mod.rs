//! The keyspace as a pure, deterministic state machine.
//!
//! Nothing in here reads a clock or draws a random number: the current time (`now_ms`) and a
//! random seed arrive with every write ([`WriteBatch`]), stamped by the node that accepted it.
//! Applying the same batches in the same order gives the same keyspace on every replica, which
//! is what lets the Raft log (and the simulator) replay it. Command semantics live in
//! `crate::cmd`; this module holds the data and its invariants.

pub mod acl;
pub mod blocked;
mod db;
pub mod digest;
pub mod functions;
pub mod hash;
pub mod hll;
mod keymap;
pub mod list;
pub mod notify;
pub mod rdb;
pub mod running;
pub mod scripts;
pub mod set;
pub mod settings;
pub mod stream;
mod value;
mod write;
pub mod zset;

pub use blocked::{BlockId, Blocked, Waiter};
pub use db::{Db, Entry};
pub use functions::Functions;
pub use keymap::{key_hash, KeyMap};
pub use scripts::Scripts;
pub use settings::Settings;
pub use value::{own_small, Value, OWN_COPY_MAX};
pub use write::{WatchedKey, WriteBatch};

/// The seeded random source used by commands (`SPOP`, `SRANDMEMBER`, `RANDOMKEY`, ...).
pub type Rng = rand_chacha::ChaCha8Rng;

/// Number of databases outside cluster mode (Redis's `databases` default).
pub const DEFAULT_DATABASES: usize = 16;

/// All databases plus the version counter that stamps every change (WATCH compares versions),
/// the clients blocked on keys (replicated with the data, see [`blocked`]), and the script
/// cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyspace {
    dbs: Vec<Db>,
    version: u64,
    /// Changes applied since start (INFO's `rdb_changes_since_last_save`).
    pub dirty: u64,
    pub blocked: Blocked,
    /// This node's notification flags and the events of the apply in progress (not
    /// replicated: see [`notify`]).
    pub notify: notify::Notifications,
    /// The script cache and step budget (replicated with the data, see [`scripts`]).
    pub scripts: Scripts,
    /// The Functions libraries (replicated with the data, see [`functions`]).
    pub functions: Functions,
    /// Settings that shape replicated data (replicated with it, see [`settings`]).
    pub settings: Settings,
    /// The ACL users (replicated with the data, see [`acl`]).
    pub acl: acl::AclStore,
    /// This node's scripts running now (not replicated, see [`running`]): the state machine
    /// puts its group's registry here, the server reads it for `BUSY` and the KILLs.
    pub running: std::sync::Arc<running::Running>,
}

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace::new(DEFAULT_DATABASES)
    }
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        Keyspace {
            dbs: (0..databases.max(1)).map(|_| Db::default()).collect(),
            version: 0,
            dirty: 0,
            blocked: Blocked::default(),
            notify: notify::Notifications::default(),
            scripts: Scripts::default(),
            functions: Functions::default(),
            settings: Settings::default(),
            acl: Default::default(),
            running: Default::default(),
        }
    }

    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }

    /// Database `i`. Callers validate `i` (SELECT does); out of range is a bug, so clamp.
    pub fn db(&self, i: usize) -> &Db {
        &self.dbs[i.min(self.dbs.len() - 1)]
    }

    pub fn db_mut(&mut self, i: usize) -> &mut Db {
        let last = self.dbs.len() - 1;
        &mut self.dbs[i.min(last)]
    }

    /// A fresh version number for a change about to be made.
    pub fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// The version WATCH records for `key`: 0 when the key is absent or expired.
    pub fn key_version(&self, db: usize, key: &[u8], now_ms: u64) -> u64 {
        self.db(db).get(key, now_ms).map_or(0, |e| e.version())
    }

    /// The last version handed out (saved in snapshots so versions keep growing after a restore).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Restores the version counter from a snapshot.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
    }

    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    /// Puts back every database (a script's rollback after a whole-database command).
    pub fn restore_dbs(&mut self, dbs: Vec<Db>) {
        if dbs.len() == self.dbs.len() {
            self.dbs = dbs;
        }
    }
}
