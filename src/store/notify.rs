//! Keyspace notifications (Redis's `notify-keyspace-events`): the event classes and their flag
//! letters, and the transient outbox of one apply. Commands record `(class, event, db, key)`
//! as they change the keyspace ([`Notifications::emit`]); nothing is recorded unless this
//! node's flags select the class. The state machine takes the outbox after each log entry and
//! hands the messages to this node's own subscribers only: every node applies every entry, so
//! each node's subscribers get each event once, in apply order, without any broadcast.
//!
//! The flags are this node's setting (CONFIG SET), not replicated state: they are kept out of
//! snapshots and digests, as Redis keeps them out of RDB files.

use bytes::Bytes;

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 13;
pub const NEW: u32 = 1 << 14;
/// Redis's `A`: every class but key-miss and new.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The classes after `A` in Redis's canonical order, with their letters.
const CLASSES: [(u32, char); 11] = [
    (GENERIC, 'g'),
    (STRING, '$'),
    (LIST, 'l'),
    (SET, 's'),
    (HASH, 'h'),
    (ZSET, 'z'),
    (EXPIRED, 'x'),
    (EVICTED, 'e'),
    (STREAM, 't'),
    (MODULE, 'd'),
    (NEW, 'n'),
];

/// Redis's `keyspaceEventsStringToFlags`: `None` for a character that names no class.
pub fn parse_flags(classes: &str) -> Option<u32> {
    classes.chars().try_fold(0, |flags, c| {
        let bit = match c {
            'A' => ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => KEY_MISS,
            _ => CLASSES.iter().find(|(_, l)| *l == c)?.0,
        };
        Some(flags | bit)
    })
}

/// Redis's `keyspaceEventsFlagsToString`: the canonical form CONFIG GET shows.
pub fn flags_to_string(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        // Redis prints no `n` next to `A` (the flag stays set): byte for byte, so here too.
        out.push('A');
    } else {
        out.extend(CLASSES.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, l)| *l));
    }
    for (bit, letter) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(letter);
        }
    }
    out
}

/// One event recorded by an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub db: u32,
    pub event: &'static str,
    pub key: Bytes,
}

impl KeyEvent {
    /// The Pub/Sub messages (channel, payload) of this event under `flags`: the keyspace
    /// channel with `K`, the keyevent channel with `E`, in that order (Redis's).
    pub fn messages(&self, flags: u32) -> Vec<(Bytes, Bytes)> {
        let mut out = Vec::with_capacity(2);
        if flags & KEYSPACE != 0 {
            let mut chan = format!("__keyspace@{}__:", self.db).into_bytes();
            chan.extend_from_slice(&self.key);
            out.push((Bytes::from(chan), Bytes::from_static(self.event.as_bytes())));
        }
        if flags & KEYEVENT != 0 {
            let chan = format!("__keyevent@{}__:{}", self.db, self.event);
            out.push((Bytes::from(chan), self.key.clone()));
        }
        out
    }
}

/// The node's flags and the events of the apply in progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notifications {
    /// This node's `notify-keyspace-events` (0: off, the default).
    pub flags: u32,
    events: Vec<KeyEvent>,
    /// Whether this node has MONITOR clients: then the commands scripts run are recorded for
    /// their `[db lua]` lines.
    pub monitoring: bool,
    script_calls: Vec<(u32, Vec<Bytes>)>,
    /// Whether this node has clients tracking keys (client-side caching): then every key an
    /// event names is recorded as touched, whatever the flags, for their invalidations.
    pub tracking: bool,
    touched: Vec<Bytes>,
    /// A database was flushed (or swapped): every cached key is invalid.
    flushed: bool,
}

impl Notifications {
    /// Records an event of `class` when the flags select it and name a channel kind.
    #[inline]
    pub fn emit(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        if self.tracking && class & NEW == 0 {
            // `new` always comes with the event of the command that made the key.
            self.touched.push(Bytes::copy_from_slice(key));
        }
        if self.flags & class != 0 && self.flags & (KEYSPACE | KEYEVENT) != 0 {
            self.events.push(KeyEvent { db: db as u32, event, key: Bytes::copy_from_slice(key) });
        }
    }

    /// Records that a whole database changed at once (FLUSHDB, FLUSHALL, SWAPDB), for
    /// tracking clients: Redis's `trackingInvalidateKeysOnFlush`.
    pub fn flush(&mut self) {
        self.flushed |= self.tracking;
    }

    /// The keys touched since the last call (for client-side caching; empty unless
    /// `tracking`).
    pub fn take_touched(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.touched)
    }

    /// Whether a database was flushed since the last call.
    pub fn take_flushed(&mut self) -> bool {
        std::mem::take(&mut self.flushed)
    }

    /// How many events are recorded (a mark for [`Notifications::forget_after`]).
    pub fn recorded(&self) -> usize {
        self.events.len()
    }

    /// Drops the events recorded after mark `n` (a script whose writes are undone).
    pub fn forget_after(&mut self, n: usize) {
        self.events.truncate(n);
    }

    /// The events recorded since the last call.
    pub fn take(&mut self) -> Vec<KeyEvent> {
        std::mem::take(&mut self.events)
    }

    /// Records a command a script runs in database `db`, while someone monitors this node.
    #[inline]
    pub fn record_script_call(&mut self, db: usize, argv: &[Bytes]) {
        if self.monitoring {
            self.script_calls.push((db as u32, argv.to_vec()));
        }
    }

    /// The script commands recorded since the last call.
    pub fn take_script_calls(&mut self) -> Vec<(u32, Vec<Bytes>)> {
        std::mem::take(&mut self.script_calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_print_in_redis_canonical_form() {
        assert_eq!(parse_flags(""), Some(0));
        assert_eq!(parse_flags("Kx?"), None);
        assert_eq!(parse_flags("KEA").map(flags_to_string).as_deref(), Some("AKE"));
        assert_eq!(parse_flags("Elg$").map(flags_to_string).as_deref(), Some("g$lE"));
        assert_eq!(parse_flags("mnKtd").map(flags_to_string).as_deref(), Some("tdnKm"));
        assert_eq!(parse_flags("g$lshzxetd").map(flags_to_string).as_deref(), Some("A"));
    }

    #[test]
    fn events_are_recorded_only_for_selected_classes_with_a_channel_kind() {
        let mut n = Notifications { flags: parse_flags("l").unwrap_or(0), ..Default::default() };
        n.emit(LIST, "lpush", 0, b"k");
        assert!(n.take().is_empty(), "no K or E: nothing to publish");
        n.flags = parse_flags("KEl").unwrap_or(0);
        n.emit(STRING, "set", 0, b"k");
        n.emit(LIST, "lpush", 3, b"k");
        let events = n.take();
        assert_eq!(events.len(), 1);
        let msgs = events[0].messages(n.flags);
        assert_eq!(msgs[0], (Bytes::from("__keyspace@3__:k"), Bytes::from("lpush")));
        assert_eq!(msgs[1], (Bytes::from("__keyevent@3__:lpush"), Bytes::from("k")));
        assert!(n.take().is_empty());
    }
}
