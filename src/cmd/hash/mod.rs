//! Hash commands: HSET, HSETNX, HGET, HMGET, HMSET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS, HVALS,
//! HGETALL, plus HINCRBY/HINCRBYFLOAT ([`incr`]) and HRANDFIELD/HSCAN ([`random`]).
//! The value type and its listpack/hashtable encodings live in `crate::store::hash`.

mod incr;
mod random;

use super::args::wrong_arity;
use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use bytes::Bytes;

const W: &[&str] = &["write", "denyoom", "fast"];
const WF: &[&str] = &["write", "fast"];
const RF: &[&str] = &["readonly", "fast"];
const R: &[&str] = &["readonly"];
const K: (i32, i32, i32) = (1, 1, 1);

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, W, K, Kind::Write(hset)),
    CommandSpec::new("hmset", -4, W, K, Kind::Write(hmset)),
    CommandSpec::new("hsetnx", 4, W, K, Kind::Write(hsetnx)),
    CommandSpec::new("hget", 3, RF, K, Kind::Read(hget)),
    CommandSpec::new("hmget", -3, RF, K, Kind::Read(hmget)),
    CommandSpec::new("hdel", -3, WF, K, Kind::Write(hdel)),
    CommandSpec::new("hlen", 2, RF, K, Kind::Read(hlen)),
    CommandSpec::new("hstrlen", 3, RF, K, Kind::Read(hstrlen)),
    CommandSpec::new("hexists", 3, RF, K, Kind::Read(hexists)),
    CommandSpec::new("hkeys", 2, R, K, Kind::Read(hkeys)),
    CommandSpec::new("hvals", 2, R, K, Kind::Read(hvals)),
    CommandSpec::new("hgetall", 2, R, K, Kind::Read(hgetall)),
    CommandSpec::new("hincrby", 4, W, K, Kind::Write(incr::hincrby)),
    CommandSpec::new("hincrbyfloat", 4, W, K, Kind::Write(incr::hincrbyfloat)),
    CommandSpec::new("hrandfield", -2, R, K, Kind::Read(random::hrandfield)),
    CommandSpec::new("hscan", -3, R, K, Kind::Read(random::hscan)),
];

/// Turns a handler's `Result` into its reply (the error is a reply too).
fn reply(r: Result<Frame, Frame>) -> Frame {
    r.unwrap_or_else(|e| e)
}

fn hset(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(set_pairs(ctx, argv, "hset").map(Frame::Integer))
}

fn hmset(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    reply(set_pairs(ctx, argv, "hmset").map(|_| Frame::ok()))
}

/// HSET/HMSET: stores `field value` pairs from `argv[2..]`; returns how many fields are new.
fn set_pairs(ctx: &mut WriteCtx, argv: &[Bytes], name: &str) -> Result<i64, Frame> {
    if argv.len() % 2 == 1 {
        return Err(wrong_arity(name));
    }
    let Some(h) = ctx.hash_mut(&argv[1], true)? else { return Ok(0) };
    // Like hashTypeTryConversion: one long argument converts before anything is stored.
    h.prepare_for(argv[2..].iter().map(|a| a.len()));
    let added = argv[2..].chunks_exact(2).filter(|p| h.insert(p[0].clone(), p[1].clone())).count();
    ctx.notify(notify::HASH, "hset", &argv[1]);
    Ok(added as i64)
}

/// Redis 7.0.15 checks the field before any encoding conversion, so an existing field
/// leaves the hash (and its version) untouched.
fn hsetnx(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (key, field, value) = (&argv[1], &argv[2], &argv[3]);
    match ctx.get_hash(key) {
        Ok(Some(h)) if h.contains(field) => return Frame::Integer(0),
        Ok(_) => {}
        Err(e) => return e,
    }
    let added = match ctx.hash_mut(key, true) {
        Ok(Some(h)) => h.insert(field.clone(), value.clone()),
        Ok(None) => return Frame::Integer(0),
        Err(e) => return e,
    };
    ctx.notify(notify::HASH, "hset", key);
    Frame::Integer(added as i64)
}

fn hget(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => h.and_then(|h| h.get(&argv[2])).map_or(Frame::Null, |v| Frame::Bulk(v.clone())),
        Err(e) => e,
    }
}

fn hmget(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => Frame::Array(
            argv[2..]
                .iter()
                .map(|f| h.and_then(|h| h.get(f)).map_or(Frame::Null, |v| Frame::Bulk(v.clone())))
                .collect(),
        ),
        Err(e) => e,
    }
}

fn hdel(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    // Look before writing: deleting nothing must not touch the key's version (WATCH).
    match ctx.get_hash(&argv[1]) {
        Ok(Some(h)) if argv[2..].iter().any(|f| h.contains(f)) => {}
        Ok(_) => return Frame::Integer(0),
        Err(e) => return e,
    }
    let Ok(Some(h)) = ctx.hash_mut(&argv[1], false) else { return Frame::Integer(0) };
    let removed = argv[2..].iter().filter(|f| h.remove(f)).count();
    ctx.notify(notify::HASH, "hdel", &argv[1]);
    ctx.remove_if_empty(&argv[1]);
    Frame::Integer(removed as i64)
}

fn hlen(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => Frame::Integer(h.map_or(0, |h| h.len()) as i64),
        Err(e) => e,
    }
}

fn hstrlen(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => Frame::Integer(h.and_then(|h| h.get(&argv[2])).map_or(0, |v| v.len()) as i64),
        Err(e) => e,
    }
}

fn hexists(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => Frame::Integer(h.is_some_and(|h| h.contains(&argv[2])) as i64),
        Err(e) => e,
    }
}

fn hkeys(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => Frame::Array(h.into_iter().flat_map(|h| h.iter()).map(|(f, _)| Frame::Bulk(f.clone())).collect()),
        Err(e) => e,
    }
}

fn hvals(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => Frame::Array(h.into_iter().flat_map(|h| h.iter()).map(|(_, v)| Frame::Bulk(v.clone())).collect()),
        Err(e) => e,
    }
}

/// A map in RESP3, a flat `field value ...` array in RESP2.
fn hgetall(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_hash(&argv[1]) {
        Ok(h) => Frame::Map(
            h.into_iter()
                .flat_map(|h| h.iter())
                .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                .collect(),
        ),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::apply;
    use crate::store::{Keyspace, WriteBatch};
    use bytes::Bytes;

    fn run(ks: &mut Keyspace, args: &[&str]) {
        let cmd = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        apply(ks, &WriteBatch { db: 0, now_ms: 1, seed: 7, cmds: vec![cmd], transaction: None });
    }

    fn encoding(ks: &Keyspace, key: &str) -> &'static str {
        ks.db(0).get(key.as_bytes(), 1).map_or("none", |e| e.value.encoding())
    }

    #[test]
    fn encodings_switch_as_in_redis() {
        let mut ks = Keyspace::default();
        let long = "x".repeat(65);
        run(&mut ks, &["hset", "h", "a", "1"]);
        assert_eq!(encoding(&ks, "h"), "listpack");
        // HSETNX on an existing field converts nothing (Redis 7.0.15 checks the field first).
        run(&mut ks, &["hsetnx", "h", "a", &long]);
        assert_eq!(encoding(&ks, "h"), "listpack");
        run(&mut ks, &["hincrby", "h", &long, "1"]);
        assert_eq!(encoding(&ks, "h"), "hashtable");

        let fields: Vec<String> = (0..512).flat_map(|i| [format!("f{i}"), "v".into()]).collect();
        let mut argv = vec!["hset", "big"];
        argv.extend(fields.iter().map(String::as_str));
        run(&mut ks, &argv);
        assert_eq!(encoding(&ks, "big"), "listpack");
        run(&mut ks, &["hset", "big", "one-more", "v"]);
        assert_eq!(encoding(&ks, "big"), "hashtable");

        run(&mut ks, &["hset", "v", "f", &long]);
        assert_eq!(encoding(&ks, "v"), "hashtable");
        run(&mut ks, &["hdel", "v", "f"]);
        assert_eq!(encoding(&ks, "v"), "none");
        run(&mut ks, &["rpush", "l", "a"]);
        assert_eq!(encoding(&ks, "l"), "quicklist");
    }
}
