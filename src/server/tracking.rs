//! Client-side caching (CLIENT TRACKING): this node's tracking table and the invalidation
//! messages, Redis 7.0's `tracking.c` on top of the apply.
//!
//! A tracking client's reads put their keys in the table (before the read runs, so a write
//! applied in between is never missed). The state machine of every Raft group hands over the
//! keys each applied entry touched (`raft::notify::TrackingSink`, from the same recording as
//! keyspace notifications), and a database flush or a snapshot install; the table sends
//! `invalidate` to the clients that may cache them, into their mailboxes (`pubsub::Mailbox`).
//! Every node applies every entry, so a client on any node is invalidated by a write sent to
//! any node. The table is node-local, as in Redis: nothing here reaches the keyspace or the log.
//!
//! Memory is bounded: `tracking-table-max-keys` caps the keys (the oldest-ordered keys are
//! invalidated to make room, as Redis invalidates random ones), a disconnected client's state
//! is dropped at once and its ids in the key table are swept once they make up half of it.

use super::client::ClientHandle;
use super::pubsub::{Mailbox, Message, PubSub};
use crate::protocol::{Frame, RespVersion};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::time::Instant;

/// The options of CLIENT TRACKING ON, as the client keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mode {
    /// Client id invalidations go to (0: this connection).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// One tracking client.
struct Tracker {
    mode: Mode,
    handle: Arc<ClientHandle>,
    mailbox: Arc<Mailbox>,
    redirect_to: Option<Weak<ClientHandle>>,
    /// BCAST prefixes (the empty prefix when none was given).
    prefixes: BTreeSet<Bytes>,
    /// The redirection's client is gone (TRACKINGINFO's `broken_redirect`).
    broken: bool,
    /// Keys put in the table for this client (for the sweep after it leaves).
    remembered: usize,
}

#[derive(Default)]
struct Table {
    /// Key -> ids of the clients that may cache it.
    keys: BTreeMap<Bytes, BTreeSet<u64>>,
    /// Ids across `keys` (INFO `tracking_total_items`).
    items: usize,
    /// BCAST prefix -> ids of its clients.
    prefixes: BTreeMap<Bytes, BTreeSet<u64>>,
    clients: BTreeMap<u64, Tracker>,
    /// Items left behind by clients that left.
    dead_items: usize,
    /// Seeds of write batches in flight from NOLOOP clients -> the client.
    own_writes: BTreeMap<u64, u64>,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: usize,
}

/// The node's tracking table.
pub struct Tracking {
    table: Mutex<Table>,
    /// Whether any client tracks: applies record touched keys only then.
    active: AtomicBool,
    pubsub: Arc<PubSub>,
}

/// What an invalidation says: these keys, or every key (a flush).
enum Invalid<'a> {
    Keys(&'a [Bytes]),
    All,
}

impl Tracking {
    pub fn new(pubsub: Arc<PubSub>, max_keys: usize) -> Tracking {
        let table = Table { max_keys, ..Table::default() };
        Tracking { table: Mutex::new(table), active: AtomicBool::new(false), pubsub }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `tracking-table-max-keys` changed: applies it at once.
    pub fn set_max_keys(&self, max: usize) {
        let mut t = self.table();
        t.max_keys = max;
        self.limit(&mut t);
    }

    /// CLIENT TRACKING ON (options already checked): the client's new mode, keeping its BCAST
    /// prefixes, plus `prefixes`. `redirect_to` is the redirection's handle.
    pub fn enable(
        &self,
        handle: &Arc<ClientHandle>,
        mailbox: &Arc<Mailbox>,
        mode: Mode,
        redirect_to: Option<Weak<ClientHandle>>,
        prefixes: &[Bytes],
    ) {
        let id = handle.peek(|i| i.id);
        let mut t = self.table();
        let old_prefixes = t.clients.remove(&id).map(|c| c.prefixes).unwrap_or_default();
        let mut tracker = Tracker {
            mode,
            handle: handle.clone(),
            mailbox: mailbox.clone(),
            redirect_to,
            prefixes: old_prefixes,
            broken: false,
            remembered: 0,
        };
        if tracker.mode.bcast {
            let new: Vec<Bytes> = if prefixes.is_empty() { vec![Bytes::new()] } else { prefixes.to_vec() };
            for p in new {
                t.prefixes.entry(p.clone()).or_default().insert(id);
                tracker.prefixes.insert(p);
            }
        }
        t.clients.insert(id, tracker);
        self.active.store(true, Ordering::SeqCst);
    }

    /// CLIENT TRACKING OFF, or the client left: its state goes; its ids in the key table are
    /// skipped from now on and swept once they make up half the table.
    pub fn disable(&self, id: u64) {
        let mut t = self.table();
        let Some(tracker) = t.clients.remove(&id) else { return };
        for p in &tracker.prefixes {
            if let Some(ids) = t.prefixes.get_mut(p) {
                ids.remove(&id);
                if ids.is_empty() {
                    t.prefixes.remove(p);
                }
            }
        }
        t.own_writes.retain(|_, c| *c != id);
        t.dead_items += tracker.remembered;
        if t.dead_items > t.items / 2 {
            sweep(&mut t);
        }
        self.active.store(!t.clients.is_empty(), Ordering::SeqCst);
    }

    /// The client's BCAST prefixes, in order (for overlap checks and TRACKINGINFO).
    pub fn prefixes(&self, id: u64) -> Vec<Bytes> {
        self.table().clients.get(&id).map(|c| c.prefixes.iter().cloned().collect()).unwrap_or_default()
    }

    /// Puts `keys`, about to be read by client `id`, in the table.
    pub fn remember(&self, id: u64, keys: &[Bytes]) {
        let mut t = self.table();
        let t = &mut *t;
        let Some(tracker) = t.clients.get_mut(&id) else { return };
        for key in keys {
            if t.keys.entry(key.clone()).or_default().insert(id) {
                t.items += 1;
                tracker.remembered += 1;
            }
        }
        self.limit(t);
    }

    /// A NOLOOP client proposes the write batch of `seed`: its own changes are not
    /// announced to it. [`own_write_done`](Self::own_write_done) once it has its reply.
    pub fn own_write(&self, seed: u64, id: u64) {
        self.table().own_writes.insert(seed, id);
    }

    pub fn own_write_done(&self, seed: u64) {
        self.table().own_writes.remove(&seed);
    }

    /// INFO: tracking clients, keys, items (ids across keys) and BCAST prefixes.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let t = self.table();
        (t.clients.len(), t.keys.len(), t.items, t.prefixes.len())
    }

    /// Over `tracking-table-max-keys`: invalidates keys (lowest first) until under it.
    fn limit(&self, t: &mut Table) {
        if t.max_keys == 0 {
            return;
        }
        while t.keys.len() > t.max_keys {
            let Some((key, ids)) = t.keys.pop_first() else { break };
            t.items -= ids.len();
            self.invalidate_key(t, &key, &ids, None);
        }
    }

    /// Sends `key`'s invalidation to the table-mode clients among `ids`, but not to a NOLOOP
    /// client that made the change itself (`origin`).
    fn invalidate_key(&self, t: &mut Table, key: &Bytes, ids: &BTreeSet<u64>, origin: Option<u64>) {
        let (limit, now) = (self.pubsub.limit(), Instant::now());
        for id in ids {
            let Some(c) = t.clients.get_mut(id) else { continue };
            if c.mode.bcast || (c.mode.noloop && origin == Some(*id)) {
                continue;
            }
            send(c, Invalid::Keys(std::slice::from_ref(key)), &limit, now);
        }
    }

    /// The keys of one applied entry, per batch (see [`crate::raft::notify::TrackingSink`]).
    fn invalidate(&self, batches: Vec<(u64, Vec<Bytes>)>, flushed: bool) {
        let mut t = self.table();
        let t = &mut *t;
        let (limit, now) = (self.pubsub.limit(), Instant::now());
        if flushed {
            // Redis's trackingInvalidateKeysOnFlush: every tracking client, then a new table.
            for c in t.clients.values_mut() {
                send(c, Invalid::All, &limit, now);
            }
            t.keys.clear();
            t.items = 0;
            t.dead_items = 0;
        }
        // BCAST: prefix -> key -> the client whose batch changed it last (NOLOOP).
        let mut bcast: BTreeMap<Bytes, BTreeMap<Bytes, Option<u64>>> = BTreeMap::new();
        for (seed, keys) in batches {
            let origin = t.own_writes.get(&seed).copied();
            for key in keys {
                for prefix in t.prefixes.keys().filter(|p| key.starts_with(p)) {
                    bcast.entry(prefix.clone()).or_default().insert(key.clone(), origin);
                }
                if let Some(ids) = t.keys.remove(&key) {
                    t.items -= ids.len();
                    self.invalidate_key(t, &key, &ids, origin);
                }
            }
        }
        for (prefix, keys) in bcast {
            let ids: Vec<u64> = t.prefixes.get(&prefix).map(|s| s.iter().copied().collect()).unwrap_or_default();
            for id in ids {
                let Some(c) = t.clients.get_mut(&id) else { continue };
                let list: Vec<Bytes> = keys
                    .iter()
                    .filter(|(_, origin)| !(c.mode.noloop && **origin == Some(id)))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !list.is_empty() {
                    send(c, Invalid::Keys(&list), &limit, now);
                }
            }
        }
    }
}

impl crate::raft::notify::TrackingSink for Tracking {
    fn active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    fn touched(&self, batches: Vec<(u64, Vec<Bytes>)>, flushed: bool) {
        self.invalidate(batches, flushed);
    }
}

/// Drops the ids of clients that left from the key table.
fn sweep(t: &mut Table) {
    let clients = &t.clients;
    t.keys.retain(|_, ids| {
        ids.retain(|id| clients.contains_key(id));
        !ids.is_empty()
    });
    t.items = t.keys.values().map(BTreeSet::len).sum();
    t.dead_items = 0;
}

/// Redis's `sendTrackingMessage`: to the redirection if any (a RESP2 one only while it is
/// subscribed, as a `__redis__:invalidate` message), else to the client itself in RESP3; a
/// RESP2 client without a redirection gets nothing. A redirection that left is reported to
/// a RESP3 client as `tracking-redir-broken`.
fn send(c: &mut Tracker, what: Invalid, limit: &super::pubsub::Limit, now: Instant) {
    let bulk = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
    let own_resp3 = c.handle.peek(|i| i.resp) == RespVersion::Resp3;
    let (target, mailbox) = match &c.redirect_to {
        None => (c.handle.clone(), c.mailbox.clone()),
        Some(weak) => match weak.upgrade().and_then(|h| h.mailbox.get().cloned().map(|m| (h, m))) {
            Some(found) => found,
            None => {
                if !c.broken {
                    c.broken = true;
                    c.handle.update(|i| i.tracking_broken = true);
                }
                if own_resp3 {
                    let frame =
                        Frame::Push(vec![bulk("tracking-redir-broken"), Frame::Integer(c.mode.redirect as i64)]);
                    c.mailbox.push(Message::Tracking(frame, 48), limit, now);
                }
                return;
            }
        },
    };
    let (resp, subscribed) = target.peek(|i| (i.resp, i.subs.0 + i.subs.1 + i.subs.2 > 0));
    let (value, size) = match what {
        Invalid::Keys(keys) => {
            let size = keys.iter().map(|k| k.len() + 16).sum::<usize>() + 32;
            (Frame::Array(keys.iter().cloned().map(Frame::Bulk).collect()), size)
        }
        Invalid::All => (Frame::Null, 32),
    };
    let frame = if resp == RespVersion::Resp3 {
        Frame::Push(vec![bulk("invalidate"), value])
    } else if c.redirect_to.is_some() && subscribed {
        Frame::Push(vec![bulk("message"), bulk("__redis__:invalidate"), value])
    } else {
        return;
    };
    mailbox.push(Message::Tracking(frame, size), limit, now);
}

/// Called before `spec` runs for a tracking client outside BCAST mode: a read-only command's
/// keys go in the table first (Redis's `trackingRememberKeys`, after the command there; before
/// it here, where a write may be applied while the read runs), unless OPTIN without CACHING
/// YES or OPTOUT with CACHING NO. `caching` is the CACHING flag the command runs under.
pub fn before_read(
    tracking: &Tracking,
    client: &super::Client,
    caching: bool,
    spec: &crate::cmd::CommandSpec,
    argv: &[Bytes],
) {
    let Some(mode) = &client.tracking else { return };
    if mode.bcast || (mode.optin && !caching) || (mode.optout && caching) {
        return;
    }
    if !spec.has_flag("readonly")
        || spec.has_flag("pubsub")
        || matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
    {
        return;
    }
    let keys: Vec<Bytes> =
        crate::cmd::key_indexes(spec, argv).into_iter().filter_map(|i| argv.get(i).cloned()).collect();
    if !keys.is_empty() {
        tracking.remember(client.id, &keys);
    }
}
