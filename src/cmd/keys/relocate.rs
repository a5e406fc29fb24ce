//! Moving keys and whole databases: RENAME, RENAMENX, COPY, MOVE, SWAPDB, FLUSHDB, FLUSHALL.
//! A key keeps its TTL when renamed, copied or moved. Cluster mode's "not allowed" errors
//! for other databases are not produced here (handlers do not see the configuration).

use super::super::args::{self, err, is, syntax};
use super::super::WriteCtx;
use super::{db_index, take};
use crate::protocol::Frame;
use crate::store::notify;
use bytes::Bytes;

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const DB_RANGE: &str = "ERR DB index is out of range";

/// `index` as a database number if it names one.
fn valid_db(ctx: &WriteCtx, index: i64) -> Option<usize> {
    usize::try_from(index).ok().filter(|&i| i < ctx.ks.db_count())
}

/// A write context on database `db` that shares `ctx`'s keyspace, time and randomness.
fn on_db<'a>(ctx: &'a mut WriteCtx<'_>, db: usize) -> WriteCtx<'a> {
    WriteCtx { ks: &mut *ctx.ks, db, now_ms: ctx.now_ms, rng: &mut *ctx.rng }
}

fn rename_generic(ctx: &mut WriteCtx, argv: &[Bytes], nx: bool) -> Frame {
    let (src, dst) = (&argv[1], &argv[2]);
    if ctx.get(src).is_none() {
        return err(args::NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { Frame::Integer(0) } else { Frame::ok() };
    }
    if nx && ctx.get(dst).is_some() {
        return Frame::Integer(0);
    }
    let Some(entry) = take(ctx, src) else { return err(args::NO_SUCH_KEY) };
    let ttl = entry.expire_at();
    // Redis deletes the destination first, so the renamed key is `new` there.
    ctx.delete_quietly(dst);
    ctx.set(dst.clone(), entry.value, ttl);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    if nx {
        Frame::Integer(1)
    } else {
        Frame::ok()
    }
}

pub fn rename(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    rename_generic(ctx, argv, false)
}

pub fn renamenx(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    rename_generic(ctx, argv, true)
}

/// `COPY source destination [DB destination-db] [REPLACE]`
pub fn copy(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (mut dst_db, mut replace) = (ctx.db, false);
    let mut i = 3;
    while i < argv.len() {
        if is(&argv[i], "replace") {
            replace = true;
        } else if let (true, Some(n)) = (is(&argv[i], "db"), argv.get(i + 1)) {
            let index = match db_index(n) {
                Ok(index) => index,
                Err(e) => return e,
            };
            let Some(db) = valid_db(ctx, index) else { return err(DB_RANGE) };
            dst_db = db;
            i += 1;
        } else {
            return syntax();
        }
        i += 1;
    }
    let (src, dst) = (&argv[1], &argv[2]);
    if dst_db == ctx.db && src == dst {
        return err(SAME_OBJECT);
    }
    let Some(entry) = ctx.get(src) else { return Frame::Integer(0) };
    let (value, ttl) = (entry.value.clone(), entry.expire_at());
    let mut target = on_db(ctx, dst_db);
    if target.get(dst).is_some() {
        if !replace {
            return Frame::Integer(0);
        }
        target.delete_quietly(dst);
    }
    target.set(dst.clone(), value, ttl);
    target.notify(notify::GENERIC, "copy_to", dst);
    Frame::Integer(1)
}

/// `MOVE key db`: 0 when the key is missing or already present in the target database.
pub fn move_cmd(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let index = match db_index(&argv[2]) {
        Ok(index) => index,
        Err(e) => return e,
    };
    let Some(dst_db) = valid_db(ctx, index) else { return err(DB_RANGE) };
    if dst_db == ctx.db {
        return err(SAME_OBJECT);
    }
    let key = &argv[1];
    if ctx.get(key).is_none() || on_db(ctx, dst_db).get(key).is_some() {
        return Frame::Integer(0);
    }
    let Some(entry) = take(ctx, key) else { return Frame::Integer(0) };
    let ttl = entry.expire_at();
    on_db(ctx, dst_db).set(key.clone(), entry.value, ttl);
    ctx.notify(notify::GENERIC, "move_from", key);
    on_db(ctx, dst_db).notify(notify::GENERIC, "move_to", key);
    Frame::Integer(1)
}

/// `SWAPDB index1 index2`. Clients stay on their numbered database and so see the other data.
pub fn swapdb(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let parse = |arg: &[u8], msg: &str| args::int(arg).ok().filter(|n| i32::try_from(*n).is_ok()).ok_or(err(msg));
    let a = match parse(&argv[1], "ERR invalid first DB index") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let b = match parse(&argv[2], "ERR invalid second DB index") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (Some(a), Some(b)) = (valid_db(ctx, a), valid_db(ctx, b)) else { return err(DB_RANGE) };
    ctx.ks.swap_dbs(a, b);
    ctx.ks.dirty += 1;
    ctx.ks.notify.flush();
    // Clients blocked on a key of either database may now find it filled (Redis's
    // scanDatabaseForReadyKeys); they stay on their database number.
    if !ctx.ks.blocked.is_empty() {
        ctx.ks.blocked.signal_db(a as u32);
        ctx.ks.blocked.signal_db(b as u32);
    }
    Frame::ok()
}

/// The optional `ASYNC` / `SYNC` argument of FLUSHDB and FLUSHALL (both free at once here).
fn flush_args_ok(argv: &[Bytes]) -> bool {
    match argv.len() {
        1 => true,
        2 => is(&argv[1], "async") || is(&argv[1], "sync"),
        _ => false,
    }
}

pub fn flushdb(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    if !flush_args_ok(argv) {
        return syntax();
    }
    let db = ctx.db;
    flush(ctx, db);
    Frame::ok()
}

pub fn flushall(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    if !flush_args_ok(argv) {
        return syntax();
    }
    for db in 0..ctx.ks.db_count() {
        flush(ctx, db);
    }
    Frame::ok()
}

/// Empties one database. Every key it held becomes absent, which WATCH sees as a change.
fn flush(ctx: &mut WriteCtx, db: usize) {
    let removed = ctx.ks.db(db).len() as u64;
    ctx.ks.db_mut(db).clear();
    ctx.ks.dirty += removed;
    ctx.ks.notify.flush();
    // A client blocked on a stream of this database gets Redis's "no longer exists" error
    // (its `scanDatabaseForDeletedStreams`); the others retry and stay blocked.
    if !ctx.ks.blocked.is_empty() {
        ctx.ks.blocked.signal_db(db as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bulk, int, run};
    use crate::protocol::Frame;
    use crate::store::Keyspace;

    #[test]
    fn rename_keeps_ttl_and_replaces_target() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, 1, "set a 1 px 1000");
        run(&mut ks, 0, 1, "set b 2");
        assert_eq!(run(&mut ks, 0, 1, "renamenx a b"), int(0));
        assert_eq!(run(&mut ks, 0, 1, "rename a b"), Frame::ok());
        assert_eq!(run(&mut ks, 0, 1, "get b"), bulk("1"));
        assert_eq!(run(&mut ks, 0, 1, "pttl b"), int(1000));
        assert_eq!(run(&mut ks, 0, 1, "exists a"), int(0));
        assert_eq!(run(&mut ks, 0, 1, "rename a b"), Frame::error("ERR no such key"));
        assert_eq!(run(&mut ks, 0, 1, "renamenx b c"), int(1));
    }

    #[test]
    fn copy_and_move_between_dbs() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, 1, "set a 1 px 1000");
        assert_eq!(run(&mut ks, 0, 1, "copy a a db 3"), int(1));
        assert_eq!(run(&mut ks, 3, 1, "pttl a"), int(1000));
        assert_eq!(run(&mut ks, 0, 1, "copy a a db 3"), int(0));
        assert_eq!(run(&mut ks, 0, 1, "move a 3"), int(0));
        assert_eq!(run(&mut ks, 0, 1, "move a 4"), int(1));
        assert_eq!(run(&mut ks, 0, 1, "exists a"), int(0));
        assert_eq!(run(&mut ks, 4, 1, "pttl a"), int(1000));
        assert_eq!(run(&mut ks, 4, 1, "move a 4"), Frame::error("ERR source and destination objects are the same"));
    }

    #[test]
    fn swapdb_and_flush() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, 1, "set a 1");
        assert_eq!(run(&mut ks, 0, 1, "swapdb 0 5"), Frame::ok());
        assert_eq!(run(&mut ks, 5, 1, "get a"), bulk("1"));
        assert_eq!(run(&mut ks, 0, 1, "swapdb 0 16"), Frame::error("ERR DB index is out of range"));
        assert_eq!(run(&mut ks, 0, 1, "flushdb"), Frame::ok());
        assert_eq!(run(&mut ks, 5, 1, "dbsize"), int(1));
        assert_eq!(run(&mut ks, 0, 1, "flushall sync"), Frame::ok());
        assert_eq!(run(&mut ks, 5, 1, "dbsize"), int(0));
        assert_eq!(run(&mut ks, 0, 1, "flushall x"), Frame::error("ERR syntax error"));
    }
}
