//! What a command handler sees: a read-only view of the keyspace ([`ReadCtx`]) or a mutable
//! one ([`WriteCtx`]), each with the stamped time and a seeded random source (for a read, a
//! [`LazyRng`] seeded on its first draw). Typed accessors turn "wrong kind of value" into the
//! WRONGTYPE reply once, for every family.

use super::args::wrongtype;
use crate::protocol::Frame;
use crate::store::hash::HashValue;
use crate::store::list::ListValue;
use crate::store::set::SetValue;
use crate::store::stream::StreamValue;
use crate::store::zset::ZSetValue;
use crate::store::{notify, Db, Entry, Keyspace, Rng, Value};
use bytes::Bytes;
use rand::{RngCore, SeedableRng};

/// Read access for commands flagged read-only. Never mutates: expired keys are invisible.
pub struct ReadCtx<'a> {
    pub ks: &'a Keyspace,
    pub db: usize,
    pub now_ms: u64,
    /// A [`LazyRng`] for a read on its own ([`crate::cmd::run_read`]), the batch's [`Rng`]
    /// for a read inside a write batch or [`WriteCtx::read`].
    pub rng: &'a mut dyn RngCore,
    /// A read on the read path of this node only (not inside an apply): a script it runs may
    /// be stopped by `SCRIPT KILL` / `FUNCTION KILL` without changing replicated state.
    pub local: bool,
}

/// The random source of a read: [`Rng::seed_from_u64`] of its seed, made on the first draw.
/// Most reads draw nothing (only RANDOMKEY, SRANDMEMBER, HRANDFIELD and ZRANDMEMBER do), so
/// they skip seeding a ChaCha generator; those that draw get exactly the numbers the eagerly
/// seeded generator gave, so replies stay the same for the same seed.
pub struct LazyRng {
    seed: u64,
    rng: Option<Rng>,
}

impl LazyRng {
    pub fn new(seed: u64) -> Self {
        LazyRng { seed, rng: None }
    }

    fn rng(&mut self) -> &mut Rng {
        self.rng.get_or_insert_with(|| Rng::seed_from_u64(self.seed))
    }
}

/// Every method goes to the same method of the generator: the block RNG's `next_u64` and
/// `fill_bytes` do not just chain `next_u32`, so forwarding each keeps the draws identical.
impl RngCore for LazyRng {
    fn next_u32(&mut self) -> u32 {
        self.rng().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.rng().next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng().fill_bytes(dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.rng().try_fill_bytes(dest)
    }
}

/// Write access for commands flagged write. Every change stamps a fresh key version.
pub struct WriteCtx<'a> {
    pub ks: &'a mut Keyspace,
    pub db: usize,
    pub now_ms: u64,
    pub rng: &'a mut Rng,
}

macro_rules! typed_get {
    ($name:ident, $variant:ident, $ty:ty) => {
        /// The value at `key` if it has this kind; `Ok(None)` if absent; WRONGTYPE otherwise.
        pub fn $name(&self, key: &[u8]) -> Result<Option<&$ty>, Frame> {
            match self.value(key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(wrongtype()),
            }
        }
    };
}

macro_rules! typed_get_mut {
    ($name:ident, $variant:ident, $ty:ty) => {
        /// The value at `key` for mutation if it has this kind, created empty when absent and
        /// `create` is set; WRONGTYPE for another kind. Callers that may leave a collection
        /// empty call [`WriteCtx::remove_if_empty`] afterwards.
        pub fn $name(&mut self, key: &[u8], create: bool) -> Result<Option<&mut $ty>, Frame> {
            match self.get(key).map(|e| &e.value) {
                Some(Value::$variant(_)) => {}
                Some(_) => return Err(wrongtype()),
                None if create => self.set(Bytes::copy_from_slice(key), Value::$variant(Default::default()), None),
                None => return Ok(None),
            }
            match self.value_mut(key) {
                Some(Value::$variant(v)) => Ok(Some(v)),
                _ => Ok(None),
            }
        }
    };
}

impl ReadCtx<'_> {
    pub fn db(&self) -> &Db {
        self.ks.db(self.db)
    }

    /// A live entry.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.db().get(key, self.now_ms)
    }

    pub fn value(&self, key: &[u8]) -> Option<&Value> {
        self.get(key).map(|e| &e.value)
    }

    typed_get!(get_str, Str, Bytes);
    typed_get!(get_list, List, ListValue);
    typed_get!(get_hash, Hash, HashValue);
    typed_get!(get_set, Set, SetValue);
    typed_get!(get_zset, ZSet, ZSetValue);
    typed_get!(get_stream, Stream, Box<StreamValue>);
}

impl WriteCtx<'_> {
    /// A read view over the same state (to reuse read logic inside a write).
    pub fn read(&mut self) -> ReadCtx<'_> {
        ReadCtx { ks: self.ks, db: self.db, now_ms: self.now_ms, rng: self.rng, local: false }
    }

    pub fn db(&self) -> &Db {
        self.ks.db(self.db)
    }

    /// A live entry.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.db().get(key, self.now_ms)
    }

    pub fn value(&self, key: &[u8]) -> Option<&Value> {
        self.get(key).map(|e| &e.value)
    }

    typed_get!(get_str, Str, Bytes);
    typed_get!(get_list, List, ListValue);
    typed_get!(get_hash, Hash, HashValue);
    typed_get!(get_set, Set, SetValue);
    typed_get!(get_zset, ZSet, ZSetValue);
    typed_get!(get_stream, Stream, Box<StreamValue>);

    /// The live value at `key`, for mutation (the key's version is bumped).
    pub fn value_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let version = self.ks.next_version();
        self.ks.dirty += 1;
        self.signal_ready(key);
        let (db, now) = (self.db, self.now_ms);
        self.ks.db_mut(db).get_mut(key, now, version)
    }

    /// Replaces whatever is at `key` (value and TTL). A key that was not live is new (the
    /// `new` event, Redis's `dbAdd`).
    pub fn set(&mut self, key: Bytes, value: Value, expire_at: Option<u64>) {
        let version = self.ks.next_version();
        self.ks.dirty += 1;
        self.signal_ready(&key);
        if self.ks.notify.flags & notify::NEW != 0 && self.get(&key).is_none() {
            self.notify(notify::NEW, "new", &key);
        }
        let db = self.db;
        self.ks.db_mut(db).insert(key, value, expire_at, version);
    }

    /// Records the keyspace event `event` of `class` for `key` in this database (Redis's
    /// `notifyKeyspaceEvent`); a no-op unless this node's flags select the class.
    #[inline]
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if self.ks.notify.flags != 0 || self.ks.notify.tracking {
            self.ks.notify.emit(class, event, self.db, key);
        }
    }

    /// Tells the blocked clients waiting on `key` (if any) that it changed: they are retried
    /// after the command (`super::blocking::serve_ready`). Redis's `signalKeyAsReady`.
    #[inline]
    fn signal_ready(&mut self, key: &[u8]) {
        if !self.ks.blocked.is_empty() {
            self.ks.blocked.signal(self.db as u32, key);
        }
    }

    /// Deletes `key` with the `del` event; true if it was live. (Every caller is a deletion
    /// Redis announces as `del`: DEL, an emptied collection, an empty STORE result, ...)
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let removed = self.delete_quietly(key);
        if removed {
            self.notify(notify::GENERIC, "del", key);
        }
        removed
    }

    /// Deletes `key` without an event (a key replaced by another command's result); true if
    /// it was live. Deleting a stream wakes its XREADGROUP waiters (they get an error), as
    /// Redis's `dbGenericDelete` signals it.
    pub fn delete_quietly(&mut self, key: &[u8]) -> bool {
        if matches!(self.value(key), Some(Value::Stream(_))) {
            self.signal_ready(key);
        }
        let (db, now) = (self.db, self.now_ms);
        let removed = self.ks.db_mut(db).remove_live(key, now).is_some();
        if removed {
            self.ks.dirty += 1;
        }
        removed
    }

    /// Sets or clears the TTL of a live key; false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>) -> bool {
        let version = self.ks.next_version();
        let (db, now) = (self.db, self.now_ms);
        let done = self.ks.db_mut(db).set_expire(key, expire_at, now, version);
        if done {
            self.ks.dirty += 1;
        }
        done
    }

    /// Deletes `key` if it holds an empty collection (Redis never keeps empty ones).
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        if self.value(key).is_some_and(Value::is_empty_collection) {
            self.delete(key);
        }
    }

    typed_get_mut!(list_mut, List, ListValue);
    typed_get_mut!(hash_mut, Hash, HashValue);
    typed_get_mut!(set_mut, Set, SetValue);
    typed_get_mut!(zset_mut, ZSet, ZSetValue);
    typed_get_mut!(stream_mut, Stream, Box<StreamValue>);
}
