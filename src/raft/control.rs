//! The replicated cluster-control state of a group's state machine (multi-raft), changed only
//! by [`Control`] entries of its own log:
//!
//! - on the MetaRaft group (0): the cluster map (nodes, data groups, slot table) with its
//!   config epoch, as bytes that `crate::cluster` encodes and decodes;
//! - on a data group: the slots it owns and the epoch of that ownership. A group opened with
//!   fencing on refuses, at apply, a write whose keys hash to a slot it does not own, so a
//!   stale leader or a wrongly routed write can never change a key the group does not own.
//!
//! - slot migration (`crate::cluster::migration`): a source group's frozen slots (writes to
//!   them get `-TRYAGAIN` at apply) and a target group's open imports (chunks of keys it takes
//!   in for slots it does not own yet; a cancelled import deletes them again).
//!
//! Nothing here reads a clock or the node's configuration: every replica of the group holds
//! the same state after the same entries.

use super::{Control, ImportItem};
use crate::cmd::cluster::slot::{key_slot, SLOTS};
use crate::protocol::Frame;
use crate::store::{Keyspace, WriteBatch};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Slot ranges, inclusive.
pub type Ranges = Vec<(u16, u16)>;

/// Whether `slot` is in one of `ranges`.
pub fn in_ranges(ranges: &[(u16, u16)], slot: u16) -> bool {
    ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
}

/// How many ended imports a group remembers (to refuse a late `BeginImport` of one).
const ENDED_KEPT: usize = 64;

/// The slots a data group owns, under which config epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub epoch: u64,
    /// Inclusive ranges, as given by the control entry.
    pub ranges: Vec<(u16, u16)>,
}

impl Ownership {
    /// Whether `slot` is one of the owned slots.
    pub fn owns(&self, slot: u16) -> bool {
        in_ranges(&self.ranges, slot)
    }
}

/// The control state of one group's state machine (in its snapshots as a frame of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlState {
    /// Config epoch of [`map`](Self::map) (0: no map yet).
    pub map_epoch: u64,
    /// The encoded cluster map (MetaRaft only).
    pub map: Option<Bytes>,
    /// The slots this group owns (data groups; `None` until the first ownership entry).
    pub owned: Option<Ownership>,
    /// Migrations out of this group that stop writes to their slots, by migration id.
    pub frozen: BTreeMap<u64, Ranges>,
    /// Migrations into this group whose chunks it takes in, by migration id.
    pub importing: BTreeMap<u64, Ranges>,
    /// The newest imports that ended ([`ENDED_KEPT`] of them).
    pub ended: BTreeSet<u64>,
    /// Redis Cluster's MIGRATING slots (`CLUSTER SETSLOT`, [`Control::AskOut`]): slot -> the
    /// client address `-ASK` names.
    pub ask_out: BTreeMap<u16, String>,
    /// Redis Cluster's IMPORTING slots ([`Control::AskIn`]): ASKING commands may write them.
    pub ask_in: BTreeSet<u16>,
    /// Keys a MIGRATE is moving ([`Control::Hold`]), with the time their hold ends.
    pub held: BTreeMap<Bytes, u64>,
}

/// The control state as written before the Redis Cluster migration states (`ask_*`).
#[derive(Deserialize)]
struct ControlStateV2 {
    map_epoch: u64,
    map: Option<Bytes>,
    owned: Option<Ownership>,
    frozen: BTreeMap<u64, Ranges>,
    importing: BTreeMap<u64, Ranges>,
    ended: BTreeSet<u64>,
}

/// The control state as written before slot migration (snapshots of that time).
#[derive(Deserialize)]
struct ControlStateV1 {
    map_epoch: u64,
    map: Option<Bytes>,
    owned: Option<Ownership>,
}

impl ControlState {
    /// Whether there is nothing to keep (snapshots then carry no control frame).
    pub fn is_empty(&self) -> bool {
        *self == ControlState::default()
    }

    /// Decodes a control-state frame, of this version or of an older one.
    pub fn decode(bytes: &[u8]) -> Result<ControlState, postcard::Error> {
        let e = match postcard::from_bytes(bytes) {
            Ok(st) => return Ok(st),
            Err(e) => e,
        };
        if let Ok(v2) = postcard::from_bytes::<ControlStateV2>(bytes) {
            let ControlStateV2 { map_epoch, map, owned, frozen, importing, ended } = v2;
            return Ok(ControlState { map_epoch, map, owned, frozen, importing, ended, ..Default::default() });
        }
        match postcard::from_bytes::<ControlStateV1>(bytes) {
            Ok(v1) => Ok(ControlState { map_epoch: v1.map_epoch, map: v1.map, owned: v1.owned, ..Default::default() }),
            Err(_) => Err(e),
        }
    }

    /// Whether a Redis Cluster migration state (`CLUSTER SETSLOT`) is open in this group.
    pub fn has_open_slots(&self) -> bool {
        !self.ask_out.is_empty() || !self.ask_in.is_empty()
    }

    fn owns(&self, slot: u16) -> bool {
        self.owned.as_ref().is_some_and(|o| o.owns(slot))
    }

    /// Whether a write to `slot` may apply here: the group owns it (or is not fenced: no
    /// ownership recorded) and no migration has frozen it.
    pub fn writable(&self, slot: u16) -> bool {
        self.owned.as_ref().is_none_or(|o| o.owns(slot)) && !self.frozen.values().any(|r| in_ranges(r, slot))
    }

    /// Applies a control entry and returns its reply; migration entries change `ks`.
    pub fn apply(&mut self, ks: &mut Keyspace, control: &Control) -> Frame {
        match control {
            Control::SetMap { expect, epoch, map } => {
                if *expect != self.map_epoch || *epoch <= self.map_epoch {
                    return Frame::error(format!(
                        "ERR cluster map changed: epoch is {}, the change expected {expect}",
                        self.map_epoch
                    ));
                }
                self.map_epoch = *epoch;
                self.map = Some(map.clone());
                Frame::ok()
            }
            Control::Own { epoch, ranges } => {
                if self.owned.as_ref().is_some_and(|o| o.epoch >= *epoch) {
                    return Frame::error("ERR stale slot ownership: the group already has a newer one");
                }
                if ranges.iter().any(|&(a, b)| a > b || b >= SLOTS) {
                    return Frame::error("ERR invalid slot range in an ownership entry");
                }
                self.owned = Some(Ownership { epoch: *epoch, ranges: ranges.clone() });
                // A slot given away is no longer migrating from here; one received is no
                // longer importing (SETSLOT NODE ends both states, as in Redis).
                let owned = self.owned.clone();
                let owns = |slot: u16| owned.as_ref().is_some_and(|o| o.owns(slot));
                self.ask_out.retain(|slot, _| owns(*slot));
                self.ask_in.retain(|slot| !owns(*slot));
                self.unblock_moved(ks);
                Frame::ok()
            }
            Control::AskOut { slot, addr } => {
                self.ask_out.insert(*slot, addr.clone());
                Frame::ok()
            }
            Control::AskIn { slot } => {
                self.ask_in.insert(*slot);
                Frame::ok()
            }
            Control::AskEnd { slot } => {
                self.ask_out.remove(slot);
                self.ask_in.remove(slot);
                Frame::ok()
            }
            Control::Hold { keys, until_ms } => {
                for key in keys {
                    self.held.insert(key.clone(), *until_ms);
                }
                Frame::ok()
            }
            Control::Release { keys } => {
                for key in keys {
                    self.held.remove(key);
                }
                Frame::ok()
            }
            Control::Handoff { slot, addr } => {
                let held = ks.db(0).iter().filter(|(k, _)| key_slot(k) == *slot).count();
                if held == 0 && self.owns(*slot) {
                    self.ask_out.insert(*slot, addr.clone());
                }
                Frame::Integer(held as i64)
            }
            Control::Freeze { id, ranges } => {
                self.frozen.insert(*id, ranges.clone());
                Frame::ok()
            }
            Control::Unfreeze { id } => {
                self.frozen.remove(id);
                Frame::ok()
            }
            Control::BeginImport { id, ranges } => self.begin_import(ks, *id, ranges),
            Control::Import { id, items } => self.import(ks, *id, items),
            Control::EndImport { id, purge } => {
                if let Some(ranges) = self.importing.remove(id) {
                    if *purge {
                        self.delete_unowned(ks, |slot| in_ranges(&ranges, slot));
                    }
                }
                self.ended.insert(*id);
                while self.ended.len() > ENDED_KEPT {
                    self.ended.pop_first();
                }
                Frame::ok()
            }
            Control::Purge { keys } => {
                let mut deleted = 0;
                for key in keys.iter().filter(|k| !self.owns(key_slot(k))) {
                    deleted += i64::from(ks.db_mut(0).remove(key).is_some());
                }
                Frame::Integer(deleted)
            }
        }
    }

    /// Opens import `id` (once): leftovers in its slots go first.
    fn begin_import(&mut self, ks: &mut Keyspace, id: u64, ranges: &Ranges) -> Frame {
        if self.importing.contains_key(&id) {
            return Frame::ok();
        }
        if self.ended.contains(&id) {
            return Frame::error(format!("ERR slot migration {id} has ended"));
        }
        if ranges.iter().any(|&(a, b)| a > b || b >= SLOTS || (a..=b).any(|s| self.owns(s))) {
            return Frame::error("ERR an import must name valid slots the group does not own");
        }
        self.delete_unowned(ks, |slot| in_ranges(ranges, slot));
        self.importing.insert(id, ranges.clone());
        Frame::ok()
    }

    /// A chunk of import `id`: each key of its ranges the group does not own yet replaces any
    /// value there (a resumed copy sends a key again; the source is frozen, so it is the same).
    fn import(&mut self, ks: &mut Keyspace, id: u64, items: &[ImportItem]) -> Frame {
        let Some(ranges) = self.importing.get(&id) else {
            return Frame::error(format!("ERR slot migration {id} is not importing here"));
        };
        let mut imported = 0;
        for item in items {
            let slot = key_slot(&item.key);
            if !in_ranges(ranges, slot) || self.owns(slot) {
                continue;
            }
            let Ok(value) = crate::store::rdb::load(&item.payload) else { continue };
            let version = ks.next_version();
            ks.db_mut(0).insert(item.key.clone(), value, item.expire_at, version);
            imported += 1;
        }
        Frame::Integer(imported)
    }

    /// Deletes every key of DB 0 whose slot `pick`s and the group does not own.
    fn delete_unowned(&self, ks: &mut Keyspace, pick: impl Fn(u16) -> bool) {
        let doomed: Vec<Bytes> = ks
            .db(0)
            .iter()
            .map(|(k, _)| k)
            .filter(|k| {
                let slot = key_slot(k);
                pick(slot) && !self.owns(slot)
            })
            .cloned()
            .collect();
        for key in doomed {
            ks.db_mut(0).remove(&key);
        }
    }

    /// Answers the clients blocked (BLPOP ...) on a key of a slot this group no longer owns:
    /// no write to that key can apply here any more, so they would wait until their timeout
    /// while the key, at its new owner, fills. They get `-TRYAGAIN` (nothing was popped), and a
    /// cluster client retries, which routing sends to the new owner, as Redis answers them
    /// `-MOVED` once the slot has moved. In the same apply on every replica. Found by the
    /// chaos simulation (seed 2033, docs/SIMULATION.md "Found by it").
    fn unblock_moved(&self, ks: &mut Keyspace) {
        let Some(owned) = &self.owned else { return };
        if ks.blocked.is_empty() {
            return;
        }
        let first_moved = |keys: &[Bytes]| keys.iter().map(|k| key_slot(k)).find(|s| !owned.owns(*s));
        let moved: Vec<_> = ks.blocked.iter().filter_map(|(_, w)| Some((w.id, first_moved(&w.keys)?))).collect();
        for (id, slot) in moved {
            ks.blocked.remove(&id);
            let reply = format!("TRYAGAIN Hash slot {slot} moved to another Raft group; retry the command");
            ks.blocked.push_outcome(id, Frame::error(reply));
        }
    }

    /// The refusal of a read of `argv` (a command run on this group's copy after its read
    /// barrier, at `now_ms`): `Some(-TRYAGAIN)` when one of its keys hashes to a slot this
    /// group's log says it does not own (a slot migrated away: its keys are purged here, the
    /// new owner has them), or to a slot a migration has frozen (once handed over, the new
    /// owner may take writes to it before this group's log takes it away, so the frozen copy
    /// here may be stale); `-ASK` / `-TRYAGAIN` for keys of a slot in Redis Cluster's
    /// migration states ([`ask_check`](Self::ask_check)). A read sent with ASKING may read a
    /// slot this group imports. `None` when it may be answered here, and always before the
    /// group's first ownership entry (an unfenced group).
    pub fn refuse_read(&self, ks: &Keyspace, db: usize, now_ms: u64, argv: &[Bytes]) -> Option<Frame> {
        let owned = self.owned.as_ref()?;
        let (inner, asking) = crate::cmd::cluster::asking::unwrap(argv);
        let spec = inner.first().and_then(|name| crate::cmd::lookup(name))?;
        let mut refused = None;
        crate::cmd::for_each_key_index(spec, inner, |i| {
            if let (None, Some(key)) = (refused, inner.get(i)) {
                let slot = key_slot(key);
                if !(owned.owns(slot) || asking && self.ask_in.contains(&slot)) {
                    refused = Some((slot, "is not served by this Raft group any more"));
                } else if self.frozen.values().any(|r| in_ranges(r, slot)) {
                    refused = Some((slot, "is migrating to another Raft group"));
                }
            }
        });
        if let Some((slot, why)) = refused {
            return Some(Frame::error(format!("TRYAGAIN Hash slot {slot} {why} (config epoch {})", owned.epoch)));
        }
        if !self.has_open_slots() {
            return None;
        }
        self.ask_check(ks, db, now_ms, &[argv.to_vec()])
    }

    /// Redis Cluster's answer (`getNodeByQuery`) to the commands `cmds` (one command, or a
    /// transaction's) when they name keys of a slot in a migration state of this group:
    /// MIGRATING here (`ask_out`): every such key missing -> `-ASK <slot> <addr>`, some
    /// missing -> `-TRYAGAIN`; IMPORTING (`ask_in`) with ASKING and several keys, some
    /// missing -> `-TRYAGAIN`. `None`: run it. MIGRATE's own read and delete, and active
    /// expiry's delete, are never redirected (Redis runs them locally while a slot is open).
    /// Decided on the group's state (at apply for writes), so every replica decides alike.
    pub fn ask_check(&self, ks: &Keyspace, db: usize, now_ms: u64, cmds: &[Vec<Bytes>]) -> Option<Frame> {
        if !self.has_open_slots() {
            return None;
        }
        let (mut keys, mut missing, mut open) = (0usize, 0usize, None);
        let (mut importing, mut first, mut multiple) = (false, None::<Bytes>, false);
        for argv in cmds {
            let (inner, asking) = crate::cmd::cluster::asking::unwrap(argv);
            let Some(spec) = inner.first().and_then(|name| crate::cmd::lookup(name)) else { continue };
            // Active expiry's delete runs here too: an expired key of a MIGRATING slot reads as
            // missing, and an `-ASK` to the expiry would keep it forever, so the hand-off
            // (which counts every key the group holds) would refuse NODE forever (chaos seed
            // 2015 with `SIM_LEGACY=1`: `t1` expired during its slot's migration).
            if matches!(
                spec.name,
                crate::cmd::keys::MIGRATE_DUMP | crate::cmd::keys::MIGRATE_DELETE | crate::cmd::keys::EXPIRE_DUE
            ) {
                continue;
            }
            crate::cmd::for_each_key_index(spec, inner, |i| {
                let Some(key) = inner.get(i) else { return };
                let slot = key_slot(key);
                let out = self.ask_out.contains_key(&slot) && self.owns(slot);
                let into = asking && self.ask_in.contains(&slot) && !self.owns(slot);
                if out || into {
                    keys += 1;
                    missing += usize::from(ks.db(db).get(key, now_ms).is_none());
                    multiple |= first.as_ref().is_some_and(|f| f != key);
                    first.get_or_insert_with(|| key.clone());
                    open = Some(slot);
                    importing |= into;
                }
            });
        }
        let slot = open?;
        if missing == 0 {
            return None;
        }
        if missing < keys || importing && multiple {
            return Some(Frame::error("TRYAGAIN Multiple keys request during rehashing of slot"));
        }
        if importing {
            return None;
        }
        let addr = self.ask_out.get(&slot).cloned().unwrap_or_default();
        Some(Frame::error(format!("ASK {slot} {addr}")))
    }

    /// The refusal of `batch` by a fenced group: `Some(error)` when one of its keys hashes to a
    /// slot the group does not own (a refused batch changes nothing), `None` when it may run.
    /// Keyless commands always run, except FLUSHALL / FLUSHDB while a migration has frozen or
    /// imports slots here (it would empty them under the migration). A write to a frozen slot
    /// gets `-TRYAGAIN`.
    pub fn refuse(&self, batch: &WriteBatch) -> Option<Frame> {
        for argv in &batch.cmds {
            let (argv, asking) = crate::cmd::cluster::asking::unwrap(argv);
            let Some(spec) = argv.first().and_then(|name| crate::cmd::lookup(name)) else { continue };
            if (!self.frozen.is_empty() || !self.importing.is_empty() || self.has_open_slots())
                && (spec.name.eq_ignore_ascii_case("flushall") || spec.name.eq_ignore_ascii_case("flushdb"))
            {
                return Some(Frame::error("TRYAGAIN a slot migration is running in this Raft group"));
            }
            let mut refused = None;
            let (mut frozen, mut held) = (None, false);
            let holds = !self.held.is_empty() && spec.name != crate::cmd::keys::MIGRATE_DELETE;
            crate::cmd::for_each_key_index(spec, argv, |i| {
                if refused.is_some() {
                    return;
                }
                if let Some(key) = argv.get(i) {
                    held |= holds && self.held.get(key).is_some_and(|until| batch.now_ms < *until);
                    let slot = key_slot(key);
                    if !(self.owns(slot) || asking && self.ask_in.contains(&slot)) {
                        refused = Some(slot);
                    } else if self.frozen.values().any(|r| in_ranges(r, slot)) {
                        frozen = Some(slot);
                    }
                }
            });
            if let (None, Some(slot)) = (refused, frozen) {
                return Some(Frame::error(format!("TRYAGAIN Hash slot {slot} is migrating to another Raft group")));
            }
            if refused.is_none() && held {
                return Some(Frame::error("TRYAGAIN the key is being moved by MIGRATE; retry the command"));
            }
            if let Some(slot) = refused {
                let epoch = self.owned.as_ref().map_or(0, |o| o.epoch);
                return Some(Frame::error(format!(
                    "CLUSTERDOWN Hash slot {slot} is not served by this Raft group (config epoch {epoch}); \
                     the write was not applied"
                )));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(expect: u64, epoch: u64) -> Control {
        Control::SetMap { expect, epoch, map: Bytes::from_static(b"m") }
    }

    fn batch(cmds: &[&[&str]]) -> WriteBatch {
        let cmds = cmds.iter().map(|c| c.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()).collect();
        WriteBatch { db: 0, now_ms: 1, seed: 1, cmds, transaction: None }
    }

    #[test]
    fn the_map_changes_only_from_the_expected_epoch() {
        let mut st = ControlState::default();
        let mut ks = Keyspace::new(1);
        assert!(st.is_empty());
        assert_eq!(st.apply(&mut ks, &set(0, 1)), Frame::ok());
        assert!(matches!(st.apply(&mut ks, &set(0, 2)), Frame::Error(_)), "a change made from an old epoch is refused");
        assert!(matches!(st.apply(&mut ks, &set(1, 1)), Frame::Error(_)), "the epoch must grow");
        assert_eq!(st.apply(&mut ks, &set(1, 2)), Frame::ok());
        assert_eq!(st.map_epoch, 2);
    }

    #[test]
    fn a_fenced_group_refuses_writes_to_slots_it_does_not_own() {
        let mut st = ControlState::default();
        let mut ks = Keyspace::new(1);
        let foo = key_slot(b"foo"); // 12182
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"]])).is_some(), "owns nothing before its first ownership");
        assert_eq!(st.apply(&mut ks, &Control::Own { epoch: 3, ranges: vec![(10000, 16383)] }), Frame::ok());
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"]])).is_none());
        assert!(st.refuse(&batch(&[&["SET", "bar", "1"]])).is_some(), "bar hashes to 5061");
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"], &["DEL", "foo", "bar"]])).is_some());
        assert!(st.refuse(&batch(&[&["FLUSHALL"]])).is_none(), "keyless commands run");
        assert!(matches!(st.apply(&mut ks, &Control::Own { epoch: 3, ranges: vec![] }), Frame::Error(_)), "stale");
        assert!(matches!(st.apply(&mut ks, &Control::Own { epoch: 4, ranges: vec![(5, 16384)] }), Frame::Error(_)));
        assert_eq!(st.apply(&mut ks, &Control::Own { epoch: 4, ranges: vec![(0, 100)] }), Frame::ok());
        assert!(st.refuse(&batch(&[&["SET", "foo", "1"]])).is_some(), "moved away at epoch 4");
        assert!(foo > 100);
    }

    #[test]
    fn a_blocking_command_is_fenced_by_the_keys_it_pops_from() {
        let foo = key_slot(b"foo"); // 12182
        let mut st = ControlState::default();
        let mut ks = Keyspace::new(1);
        st.apply(&mut ks, &Control::Own { epoch: 1, ranges: vec![(8192, 16383)] });
        let block = |key: &str| batch(&[&["raftis.block", "1", "2", "3", "0", "BLPOP", key, "0"]]);
        assert!(st.refuse(&block("foo")).is_none(), "an owned slot");
        assert!(st.refuse(&block("bar")).is_some(), "bar hashes to 5061, not owned");
        assert_eq!(st.apply(&mut ks, &Control::Freeze { id: 7, ranges: vec![(foo, foo)] }), Frame::ok());
        let refusal = st.refuse(&block("foo"));
        assert!(matches!(&refusal, Some(Frame::Error(e)) if e.starts_with(b"TRYAGAIN")), "{refusal:?}");
        let unblock = batch(&[&["raftis.unblock", "timeout", "1", "2", "3"]]);
        assert!(st.refuse(&unblock).is_none(), "removing waiters names no key");
    }

    #[test]
    fn clients_blocked_on_a_slot_the_group_gives_away_are_answered() {
        use crate::store::blocked::{BlockId, Waiter};
        let mut st = ControlState::default();
        let mut ks = Keyspace::new(1);
        st.apply(&mut ks, &Control::Own { epoch: 1, ranges: vec![(8192, 16383)] });
        let waiter = |seq: u64, key: &str| Waiter {
            id: BlockId { node: 1, boot: 2, seq },
            db: 0,
            argv: vec![Bytes::from_static(b"BLPOP"), Bytes::copy_from_slice(key.as_bytes()), Bytes::from_static(b"0")],
            keys: vec![Bytes::copy_from_slice(key.as_bytes())],
            deadline_ms: 0,
        };
        // "foo" hashes to 12182; another key of the owned slots.
        let (foo, other) = (
            "foo",
            (0..)
                .map(|i| format!("k{i}"))
                .find(|k| {
                    let s = key_slot(k.as_bytes());
                    s >= 8192 && s != key_slot(b"foo")
                })
                .expect("a key"),
        );
        assert!(ks.blocked.add(waiter(1, foo)) && ks.blocked.add(waiter(2, &other)));
        // A migration's hand-over: the group no longer owns foo's slot.
        let slot = key_slot(b"foo");
        let ranges = vec![(8192, slot - 1), (slot + 1, 16383)];
        assert_eq!(st.apply(&mut ks, &Control::Own { epoch: 2, ranges }), Frame::ok());
        let outcomes = ks.blocked.take_outcomes();
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        assert_eq!(outcomes[0].0.seq, 1);
        assert!(matches!(&outcomes[0].1, Frame::Error(e) if e.starts_with(b"TRYAGAIN Hash slot 12182 moved")));
        assert_eq!(ks.blocked.len(), 1, "the waiter on an owned slot still waits");
    }

    fn item(key: &str, value: &str) -> ImportItem {
        let value = crate::store::Value::Str(Bytes::copy_from_slice(value.as_bytes()));
        let payload = Bytes::from(crate::store::rdb::dump(&value));
        ImportItem { key: Bytes::copy_from_slice(key.as_bytes()), expire_at: Some(99), payload }
    }

    #[test]
    fn a_migration_freezes_the_source_and_imports_only_while_open() {
        let foo = key_slot(b"foo"); // 12182
        let (mut src, mut dst) = (ControlState::default(), ControlState::default());
        let (mut src_ks, mut dst_ks) = (Keyspace::new(1), Keyspace::new(1));
        src.apply(&mut src_ks, &Control::Own { epoch: 1, ranges: vec![(8192, 16383)] });
        dst.apply(&mut dst_ks, &Control::Own { epoch: 1, ranges: vec![(0, 8191)] });
        let ranges = vec![(foo, foo)];
        assert_eq!(src.apply(&mut src_ks, &Control::Freeze { id: 7, ranges: ranges.clone() }), Frame::ok());
        let refusal = src.refuse(&batch(&[&["SET", "foo", "1"]]));
        assert!(matches!(&refusal, Some(Frame::Error(e)) if e.starts_with(b"TRYAGAIN")), "{refusal:?}");
        let other =
            (0..).map(|i| format!("k{i}")).find(|k| key_slot(k.as_bytes()) >= 8192 && key_slot(k.as_bytes()) != foo);
        let other = other.unwrap_or_default();
        assert!(src.refuse(&batch(&[&["SET", &other, "1"]])).is_none(), "other slots never pause");
        assert!(src.refuse(&batch(&[&["FLUSHALL"]])).is_some(), "no flush under a migration");
        // A chunk before the import opens, or for slots outside it, changes nothing.
        let chunk = Control::Import { id: 7, items: vec![item("foo", "v"), item("bar", "w")] };
        assert!(matches!(dst.apply(&mut dst_ks, &chunk), Frame::Error(_)));
        dst_ks.db_mut(0).insert(Bytes::from_static(b"foo"), crate::store::Value::Str(Bytes::new()), None, 1);
        let begin = Control::BeginImport { id: 7, ranges: ranges.clone() };
        assert_eq!(dst.apply(&mut dst_ks, &begin), Frame::ok());
        assert!(dst_ks.db(0).is_empty(), "leftovers in the imported slots go first");
        assert_eq!(dst.apply(&mut dst_ks, &chunk), Frame::Integer(1), "bar is not in the migration");
        assert_eq!(dst_ks.db(0).raw(b"foo").and_then(|e| e.expire_at()), Some(99));
        assert!(dst.refuse(&batch(&[&["SET", "foo", "1"]])).is_some(), "imported slots are not owned yet");
        // Cancelled: the import ends and its keys go; a late chunk or a late begin is refused.
        assert_eq!(dst.apply(&mut dst_ks, &Control::EndImport { id: 7, purge: true }), Frame::ok());
        assert!(dst_ks.db(0).is_empty());
        assert!(matches!(dst.apply(&mut dst_ks, &chunk), Frame::Error(_)));
        assert!(matches!(dst.apply(&mut dst_ks, &begin), Frame::Error(_)));
        assert_eq!(src.apply(&mut src_ks, &Control::Unfreeze { id: 7 }), Frame::ok());
        assert!(src.refuse(&batch(&[&["SET", "foo", "1"]])).is_none());
        // After a hand-over the source purges only keys of slots it no longer owns.
        src_ks.db_mut(0).insert(Bytes::from_static(b"foo"), crate::store::Value::Str(Bytes::new()), None, 1);
        let purge = Control::Purge { keys: vec![Bytes::from_static(b"foo")] };
        assert_eq!(src.apply(&mut src_ks, &purge), Frame::Integer(0), "still owned");
        src.apply(&mut src_ks, &Control::Own { epoch: 2, ranges: vec![(8192, foo - 1), (foo + 1, 16383)] });
        assert_eq!(src.apply(&mut src_ks, &purge), Frame::Integer(1));
        // The state survives its encoding; a state written before migrations still decodes.
        let bytes = postcard::to_allocvec(&dst).expect("encode");
        assert_eq!(ControlState::decode(&bytes).expect("decode"), dst);
        #[derive(Serialize)]
        struct V1<'a>(u64, Option<Bytes>, &'a Option<Ownership>);
        let old = postcard::to_allocvec(&V1(3, None, &src.owned)).expect("encode");
        assert_eq!(ControlState::decode(&old).expect("decode v1").owned, src.owned);
    }

    fn cmd(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    fn error_of(f: Option<Frame>) -> String {
        match f {
            Some(Frame::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_migrating_slot_asks_for_missing_keys_and_an_importing_one_takes_asking_writes() {
        let slot = key_slot(b"{t}a");
        let (mut src, mut dst) = (ControlState::default(), ControlState::default());
        let (mut src_ks, mut dst_ks) = (Keyspace::new(1), Keyspace::new(1));
        src.apply(&mut src_ks, &Control::Own { epoch: 1, ranges: vec![(0, 16383)] });
        dst.apply(&mut dst_ks, &Control::Own { epoch: 1, ranges: vec![] });
        let value = || crate::store::Value::Str(Bytes::from_static(b"v"));
        src_ks.db_mut(0).insert(Bytes::from_static(b"{t}a"), value(), None, 1);
        assert!(src.ask_check(&src_ks, 0, 1, &[cmd("GET {t}b")]).is_none(), "no open slot: nothing to check");
        // SETSLOT MIGRATING: present keys are served, missing ones asked for, a mix retried.
        src.apply(&mut src_ks, &Control::AskOut { slot, addr: "h:7".into() });
        assert!(src.has_open_slots());
        assert!(src.ask_check(&src_ks, 0, 1, &[cmd("SET {t}a 1")]).is_none());
        assert_eq!(error_of(src.ask_check(&src_ks, 0, 1, &[cmd("SET {t}b 1")])), format!("ASK {slot} h:7"));
        assert_eq!(error_of(src.refuse_read(&src_ks, 0, 1, &cmd("GET {t}b"))), format!("ASK {slot} h:7"));
        assert!(src.refuse_read(&src_ks, 0, 1, &cmd("GET {t}a")).is_none());
        let mix = src.ask_check(&src_ks, 0, 1, &[cmd("MGET {t}a {t}b")]);
        assert!(error_of(mix).starts_with("TRYAGAIN Multiple keys"));
        let tx = src.ask_check(&src_ks, 0, 1, &[cmd("SET {t}a 1"), cmd("SET {t}b 1")]);
        assert!(error_of(tx).starts_with("TRYAGAIN"), "a transaction's keys count together");
        assert!(src.ask_check(&src_ks, 0, 1, &[cmd("raftis.migrated {t}b 1")]).is_none(), "MIGRATE runs here");
        assert!(src.ask_check(&src_ks, 0, 1, &[cmd("raftis.migrate-dump {t}a {t}b")]).is_none());
        // Active expiry deletes an expired key of the slot here (it reads as missing: an -ASK
        // would keep it, and the hand-off below would count it forever).
        src_ks.db_mut(0).insert(Bytes::from_static(b"{t}e"), value(), Some(1), 2);
        let expiry = WriteBatch { now_ms: 5, cmds: vec![cmd("raftis.expire {t}e")], ..batch(&[]) };
        let reply = crate::cmd::apply_checked(&mut src_ks, &expiry, |ks, db, c| src.ask_check(ks, db, 5, c));
        assert_eq!(reply, Frame::Integer(1), "the expired key deleted, not sent on");
        // A pipeline is checked command by command, each on the state the ones before left.
        let pipeline = WriteBatch { cmds: vec![cmd("DEL {t}a"), cmd("SET {t}a 2")], ..batch(&[]) };
        let reply = crate::cmd::apply_checked(&mut src_ks, &pipeline, |ks, db, c| src.ask_check(ks, db, 1, c));
        assert_eq!(reply, Frame::Array(vec![Frame::Integer(1), Frame::error(format!("ASK {slot} h:7"))]));
        // The target without ASKING: not its slot; with it (or RESTORE-ASKING): accepted.
        assert!(dst.refuse(&batch(&[&["SET", "{t}b", "1"]])).is_some());
        dst.apply(&mut dst_ks, &Control::AskIn { slot });
        assert!(dst.refuse(&batch(&[&["SET", "{t}b", "1"]])).is_some(), "no ASKING: refused");
        assert!(dst.refuse(&batch(&[&["raftis.asking", "SET", "{t}b", "1"]])).is_none());
        assert!(dst.refuse(&batch(&[&["RESTORE-ASKING", "{t}b", "0", "x"]])).is_none());
        assert!(dst.refuse_read(&dst_ks, 0, 1, &cmd("GET {t}b")).is_some());
        assert!(dst.refuse_read(&dst_ks, 0, 1, &cmd("raftis.asking_ro GET {t}b")).is_none());
        let several = dst.refuse_read(&dst_ks, 0, 1, &cmd("raftis.asking_ro MGET {t}b {t}c"));
        assert!(error_of(several).starts_with("TRYAGAIN"), "several keys, some missing");
        // STABLE ends both states.
        dst.apply(&mut dst_ks, &Control::AskEnd { slot });
        assert!(dst.refuse(&batch(&[&["raftis.asking", "SET", "{t}b", "1"]])).is_some());
        // NODE: the hand-off is refused while the source holds keys, then seals the slot.
        let mut fresh = ControlState::default();
        fresh.apply(&mut src_ks, &Control::Own { epoch: 1, ranges: vec![(0, 16383)] });
        src_ks.db_mut(0).insert(Bytes::from_static(b"{t}a"), value(), None, 2);
        let handoff = Control::Handoff { slot, addr: "h:8".into() };
        assert_eq!(fresh.apply(&mut src_ks, &handoff), Frame::Integer(1));
        assert!(!fresh.has_open_slots(), "refused: nothing changes");
        src_ks.db_mut(0).remove(b"{t}a".as_slice());
        assert_eq!(fresh.apply(&mut src_ks, &handoff), Frame::Integer(0));
        assert_eq!(error_of(fresh.ask_check(&src_ks, 0, 1, &[cmd("SET {t}a 1")])), format!("ASK {slot} h:8"));
        // The new ownership ends the states of the slot in both groups.
        fresh.apply(&mut src_ks, &Control::Own { epoch: 2, ranges: vec![(slot + 1, 16383)] });
        assert!(!fresh.has_open_slots());
        dst.apply(&mut dst_ks, &Control::AskIn { slot });
        dst.apply(&mut dst_ks, &Control::Own { epoch: 2, ranges: vec![(slot, slot)] });
        assert!(!dst.has_open_slots());
        // MIGRATE holds its keys: writes to them wait (TRYAGAIN) until released or the deadline.
        let hold = Control::Hold { keys: vec![Bytes::from_static(b"{t}a")], until_ms: 10 };
        let mut fresh = ControlState::default();
        fresh.apply(&mut src_ks, &Control::Own { epoch: 1, ranges: vec![(0, 16383)] });
        assert_eq!(fresh.apply(&mut src_ks, &hold), Frame::ok());
        let at = |t: u64| WriteBatch { now_ms: t, ..batch(&[&["SET", "{t}a", "1"]]) };
        assert!(error_of(fresh.refuse(&at(5))).contains("being moved by MIGRATE"));
        assert!(fresh.refuse(&at(10)).is_none(), "the hold ends at its deadline");
        assert!(fresh.refuse(&WriteBatch { now_ms: 5, ..batch(&[&["raftis.migrated", "{t}a", "1"]]) }).is_none());
        fresh.apply(&mut src_ks, &Control::Release { keys: vec![Bytes::from_static(b"{t}a")] });
        assert!(fresh.refuse(&at(5)).is_none());
        // Encoded and decoded; a state written before these fields still decodes.
        dst.apply(&mut dst_ks, &Control::AskIn { slot: 9 });
        let bytes = postcard::to_allocvec(&dst).expect("encode");
        assert_eq!(ControlState::decode(&bytes).expect("decode"), dst);
        #[derive(Serialize)]
        struct V2<'a>(
            u64,
            Option<Bytes>,
            &'a Option<Ownership>,
            &'a BTreeMap<u64, Ranges>,
            &'a BTreeMap<u64, Ranges>,
            &'a BTreeSet<u64>,
        );
        let old = postcard::to_allocvec(&V2(3, None, &dst.owned, &dst.frozen, &dst.importing, &dst.ended)).expect("v2");
        assert_eq!(ControlState::decode(&old).expect("decode v2").owned, dst.owned);
    }
}
