//! Generic key commands, the ones that work on a key whatever its type: existence and
//! deletion (DEL, UNLINK, EXISTS, TOUCH, TYPE), enumeration (KEYS, SCAN, RANDOMKEY, DBSIZE),
//! and, in submodules, expiry (`expire`), moving keys and databases (`relocate`), and
//! introspection (`object`: OBJECT, DEBUG DIGEST), serialized values (`serialize`: DUMP,
//! RESTORE).

mod expire;
mod object;
mod relocate;
pub mod serialize;

use super::args::{self, err};
use super::{scan, CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::{notify, Entry};
use bytes::Bytes;
use rand::Rng as _;

const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];
const W: &[&str] = &["write"];
const WF: &[&str] = &["write", "fast"];

/// MIGRATE's internal read (see [`serialize::dump_for_migrate`]).
pub const MIGRATE_DUMP: &str = "raftis.migrate-dump";
/// MIGRATE's internal delete (see [`serialize::delete_migrated`]).
pub const MIGRATE_DELETE: &str = "raftis.migrated";
/// Active expiry's internal delete: the listed keys, if they are expired at apply time.
pub const EXPIRE_DUE: &str = "raftis.expire";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, W, (1, -1, 1), Kind::Write(del)),
    CommandSpec::new("unlink", -2, WF, (1, -1, 1), Kind::Write(del)),
    CommandSpec::new("exists", -2, RF, (1, -1, 1), Kind::Read(exists)),
    CommandSpec::new("touch", -2, RF, (1, -1, 1), Kind::Read(exists)),
    CommandSpec::new("type", 2, RF, (1, 1, 1), Kind::Read(type_cmd)),
    CommandSpec::new("keys", 2, R, (0, 0, 0), Kind::Read(keys)),
    CommandSpec::new("scan", -2, R, (0, 0, 0), Kind::Read(scan_cmd)),
    CommandSpec::new("randomkey", 1, R, (0, 0, 0), Kind::Read(randomkey)),
    CommandSpec::new("dbsize", 1, RF, (0, 0, 0), Kind::Read(dbsize)),
    CommandSpec::new("expire", -3, WF, (1, 1, 1), Kind::Write(expire::expire)),
    CommandSpec::new("pexpire", -3, WF, (1, 1, 1), Kind::Write(expire::pexpire)),
    CommandSpec::new("expireat", -3, WF, (1, 1, 1), Kind::Write(expire::expireat)),
    CommandSpec::new("pexpireat", -3, WF, (1, 1, 1), Kind::Write(expire::pexpireat)),
    CommandSpec::new("ttl", 2, RF, (1, 1, 1), Kind::Read(expire::ttl)),
    CommandSpec::new("pttl", 2, RF, (1, 1, 1), Kind::Read(expire::pttl)),
    CommandSpec::new("expiretime", 2, RF, (1, 1, 1), Kind::Read(expire::expiretime)),
    CommandSpec::new("pexpiretime", 2, RF, (1, 1, 1), Kind::Read(expire::pexpiretime)),
    CommandSpec::new("persist", 2, WF, (1, 1, 1), Kind::Write(expire::persist)),
    CommandSpec::new("rename", 3, W, (1, 2, 1), Kind::Write(relocate::rename)),
    CommandSpec::new("renamenx", 3, WF, (1, 2, 1), Kind::Write(relocate::renamenx)),
    CommandSpec::new("copy", -3, &["write", "denyoom"], (1, 2, 1), Kind::Write(relocate::copy)),
    CommandSpec::new("move", 3, WF, (1, 1, 1), Kind::Write(relocate::move_cmd)),
    CommandSpec::new("swapdb", 3, WF, (0, 0, 0), Kind::Write(relocate::swapdb)),
    CommandSpec::new("flushdb", -1, W, (0, 0, 0), Kind::Write(relocate::flushdb)),
    CommandSpec::new("flushall", -1, W, (0, 0, 0), Kind::Write(relocate::flushall)),
    CommandSpec::new("dump", 2, R, (1, 1, 1), Kind::Read(serialize::dump)),
    CommandSpec::new("restore", -4, &["write", "denyoom"], (1, 1, 1), Kind::Write(serialize::restore)),
    CommandSpec::new("restore-asking", -4, &["write", "denyoom", "asking"], (1, 1, 1), Kind::Write(serialize::restore)),
    CommandSpec::new("migrate", -6, &["write"], (3, 3, 1), Kind::Session),
    CommandSpec::new("object", -2, &[], (0, 0, 0), Kind::Read(object::object)),
    CommandSpec::new("debug", -2, &["admin", "noscript", "loading", "stale"], (0, 0, 0), Kind::Read(object::debug)),
    CommandSpec::new(EXPIRE_DUE, -2, &["write", "internal"], (1, -1, 1), Kind::Write(expire_due)),
    CommandSpec::new(MIGRATE_DUMP, -2, &["readonly", "internal"], (1, -1, 1), Kind::Read(serialize::dump_for_migrate)),
    CommandSpec::new(MIGRATE_DELETE, -3, &["write", "internal"], (1, -1, 2), Kind::Write(serialize::delete_migrated)),
    CommandSpec::new(crate::server::EVICT_COMMAND, -3, &["write", "internal"], (1, -1, 2), Kind::Write(evict_victims)),
];

/// Internal (active expiry): deletes each listed key that is expired at the batch's time.
/// The internal command of eviction (`raftis.evict key version ...`): deletes each listed key
/// whose version is still the one the leader saw when it chose it as a victim, so a key
/// written in between survives; every replica sees the same versions, so deletes the same keys.
fn evict_victims(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let db = ctx.db;
    let mut deleted = 0;
    for pair in argv[1..].chunks(2) {
        let [key, version] = pair else { continue };
        let chosen = std::str::from_utf8(version).ok().and_then(|v| v.parse::<u64>().ok());
        if chosen.is_some() && ctx.ks.db(db).entry(key).map(|e| e.version()) == chosen {
            ctx.ks.db_mut(db).remove(key);
            deleted += 1;
            ctx.notify(notify::EVICTED, "evicted", key);
        }
    }
    ctx.ks.dirty += deleted;
    Frame::Integer(deleted as i64)
}

fn expire_due(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (db, now) = (ctx.db, ctx.now_ms);
    let mut deleted = 0;
    for key in &argv[1..] {
        if ctx.ks.db_mut(db).remove_if_expired(key, now) {
            deleted += 1;
            ctx.notify(notify::EXPIRED, "expired", key);
        }
    }
    ctx.ks.dirty += deleted;
    Frame::Integer(deleted as i64)
}

/// Removes a live key and hands back its entry (value and TTL), for RENAME and MOVE. Like
/// [`WriteCtx::delete`], but keeping the value avoids cloning a big collection.
fn take(ctx: &mut WriteCtx, key: &[u8]) -> Option<Entry> {
    let (db, now) = (ctx.db, ctx.now_ms);
    let entry = ctx.ks.db_mut(db).remove_live(key, now)?;
    ctx.ks.dirty += 1;
    Some(entry)
}

/// A database index argument, as Redis's `getIntFromObjectOrReply` reads it.
fn db_index(arg: &[u8]) -> Result<i64, Frame> {
    let n = args::int(arg)?;
    if i32::try_from(n).is_err() {
        return Err(err("ERR value is out of range, value must between -2147483648 and 2147483647"));
    }
    Ok(n)
}

/// DEL and UNLINK (freeing is never deferred here, so they are the same).
fn del(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    Frame::Integer(argv[1..].iter().filter(|k| ctx.delete(k)).count() as i64)
}

/// EXISTS and TOUCH: how many of the keys are live (a key named twice counts twice). TOUCH's
/// access-time update has nothing to update: access times are not tracked.
fn exists(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    Frame::Integer(argv[1..].iter().filter(|k| ctx.get(k).is_some()).count() as i64)
}

fn type_cmd(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    Frame::simple(ctx.value(&argv[1]).map_or("none", |v| v.type_name()))
}

fn keys(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let pattern = &argv[1];
    let all = pattern.as_ref() == b"*";
    let found = ctx
        .db()
        .iter_live(ctx.now_ms)
        .filter(|(k, _)| all || super::glob::matches(pattern, k, false))
        .map(|(k, _)| Frame::Bulk(k.clone()))
        .collect();
    Frame::Array(found)
}

/// SCAN: cursors are positions in the keyspace's fixed hash order (not Redis's reversed-bit
/// table cursors), with the same guarantee: a key present for the whole scan is returned.
fn scan_cmd(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let o = match scan::parse(argv, 1, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (items, next) = ctx.db().scan(o.cursor, o.count, ctx.now_ms);
    let wanted = |e: &Entry| o.type_name.as_ref().is_none_or(|t| args::is(t, e.value.type_name()));
    let keys = items.into_iter().filter(|(k, e)| o.matches(k) && wanted(e)).map(|(k, _)| Frame::Bulk(k.clone()));
    scan::reply(next, keys.collect())
}

fn randomkey(ctx: &mut ReadCtx, _argv: &[Bytes]) -> Frame {
    let point: u64 = ctx.rng.gen();
    ctx.db().pick_live(point, ctx.now_ms).map_or(Frame::Null, |k| Frame::Bulk(k.clone()))
}

/// Counts expired keys not yet deleted, as Redis's DBSIZE does.
fn dbsize(ctx: &mut ReadCtx, _argv: &[Bytes]) -> Frame {
    Frame::Integer(ctx.db().len() as i64)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::cmd::{apply, lookup, run_read, Kind};
    use crate::protocol::Frame;
    use crate::store::{Keyspace, WriteBatch};
    use bytes::Bytes;

    /// Runs one command line (space separated) at time `now` in database `db`.
    pub fn run(ks: &mut Keyspace, db: usize, now: u64, line: &str) -> Frame {
        let argv: Vec<Bytes> = line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
        let spec = lookup(&argv[0]).expect("known command");
        match spec.kind {
            Kind::Read(f) => run_read(ks, db, now, 7, f, &argv),
            _ => apply(ks, &WriteBatch { db: db as u32, now_ms: now, seed: 7, cmds: vec![argv], transaction: None }),
        }
    }

    pub fn int(n: i64) -> Frame {
        Frame::Integer(n)
    }

    pub fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn evict_deletes_only_keys_still_at_the_chosen_version() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, 1, "set a 1");
        run(&mut ks, 0, 1, "set b 1");
        let version = |ks: &Keyspace, k: &str| ks.db(0).entry(k.as_bytes()).map(|e| e.version()).unwrap();
        let (va, vb) = (version(&ks, "a"), version(&ks, "b"));
        // b is written again after it was chosen: it stays.
        run(&mut ks, 0, 1, "set b 2");
        let evict = format!("{} a {va} b {vb} missing 1 a notanumber", crate::server::EVICT_COMMAND);
        ks.notify.flags = crate::store::notify::parse_flags("Ee").unwrap_or(0);
        assert_eq!(run(&mut ks, 0, 1, &evict), int(1));
        let events: Vec<_> = ks.notify.take().into_iter().map(|e| (e.event, e.key)).collect();
        assert_eq!(events, vec![("evicted", Bytes::from("a"))], "only the key evicted is announced");
        assert_eq!(run(&mut ks, 0, 1, "exists a"), int(0));
        assert_eq!(run(&mut ks, 0, 1, "get b"), bulk("2"));
    }

    #[test]
    fn del_exists_type() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, 1, "set a 1");
        assert_eq!(run(&mut ks, 0, 1, "exists a a b"), int(2));
        assert_eq!(run(&mut ks, 0, 1, "type a"), Frame::simple("string"));
        assert_eq!(run(&mut ks, 0, 1, "type b"), Frame::simple("none"));
        assert_eq!(run(&mut ks, 0, 1, "unlink a a b"), int(1));
        assert_eq!(run(&mut ks, 0, 1, "dbsize"), int(0));
    }

    #[test]
    fn keys_scan_and_randomkey_skip_expired_keys() {
        let mut ks = Keyspace::default();
        for i in 0..50 {
            run(&mut ks, 0, 1, &format!("set k{i} v"));
        }
        run(&mut ks, 0, 1, "set gone v px 10");
        let Frame::Array(all) = run(&mut ks, 0, 100, "keys *") else { panic!("array") };
        assert_eq!(all.len(), 50);
        let Frame::Array(some) = run(&mut ks, 0, 100, "keys k1*") else { panic!("array") };
        assert_eq!(some.len(), 11);
        let (mut cursor, mut seen) = ("0".to_string(), 0);
        loop {
            let Frame::Array(parts) = run(&mut ks, 0, 100, &format!("scan {cursor} count 3 type STRING")) else {
                panic!("array")
            };
            let [Frame::Bulk(next), Frame::Array(items)] = parts.as_slice() else { panic!("shape") };
            seen += items.len();
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, 50);
        assert_ne!(run(&mut ks, 0, 100, "randomkey"), bulk("gone"));
        run(&mut ks, 0, 100, "flushdb");
        assert_eq!(run(&mut ks, 0, 100, "randomkey"), Frame::Null);
    }

    #[test]
    fn internal_expire_deletes_only_due_keys() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, 1, "set a v px 10");
        run(&mut ks, 0, 1, "set b v");
        assert_eq!(run(&mut ks, 0, 5, "raftis.expire a b"), int(0));
        assert_eq!(run(&mut ks, 0, 11, "raftis.expire a b"), int(1));
        assert_eq!(run(&mut ks, 0, 11, "dbsize"), int(1));
    }
}
