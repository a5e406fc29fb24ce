//! Set commands: the table, and the single-key commands (SADD, SREM, SMEMBERS, SISMEMBER,
//! SMISMEMBER, SCARD, SMOVE, SSCAN). Random picks live in `random`, set algebra in `algebra`.

mod algebra;
mod random;

use super::args::wrongtype;
use super::{scan, CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::set::SetValue;
use crate::store::{Keyspace, Value};
use bytes::Bytes;

/// Handlers are written as `Result<Frame, Frame>` (the error is the reply); these adapt them.
macro_rules! read {
    ($f:path) => {
        Kind::Read(|ctx, argv| $f(ctx, argv).unwrap_or_else(|e| e))
    };
}
macro_rules! write {
    ($f:path) => {
        Kind::Write(|ctx, argv| $f(ctx, argv).unwrap_or_else(|e| e))
    };
}

const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];
const WF: &[&str] = &["write", "fast"];
const WD: &[&str] = &["write", "denyoom"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, &["write", "denyoom", "fast"], (1, 1, 1), write!(sadd)),
    CommandSpec::new("srem", -3, WF, (1, 1, 1), write!(srem)),
    CommandSpec::new("smembers", 2, R, (1, 1, 1), read!(algebra::sinter)),
    CommandSpec::new("sismember", 3, RF, (1, 1, 1), read!(sismember)),
    CommandSpec::new("smismember", -3, RF, (1, 1, 1), read!(smismember)),
    CommandSpec::new("scard", 2, RF, (1, 1, 1), read!(scard)),
    CommandSpec::new("spop", -2, WF, (1, 1, 1), write!(random::spop)),
    CommandSpec::new("srandmember", -2, R, (1, 1, 1), read!(random::srandmember)),
    CommandSpec::new("smove", 4, WF, (1, 2, 1), write!(smove)),
    CommandSpec::new("sinter", -2, R, (1, -1, 1), read!(algebra::sinter)),
    CommandSpec::new("sintercard", -3, &["readonly", "movablekeys"], (0, 0, 0), read!(algebra::sintercard)),
    CommandSpec::new("sinterstore", -3, WD, (1, -1, 1), write!(algebra::sinterstore)),
    CommandSpec::new("sunion", -2, R, (1, -1, 1), read!(algebra::sunion)),
    CommandSpec::new("sunionstore", -3, WD, (1, -1, 1), write!(algebra::sunionstore)),
    CommandSpec::new("sdiff", -2, R, (1, -1, 1), read!(algebra::sdiff)),
    CommandSpec::new("sdiffstore", -3, WD, (1, -1, 1), write!(algebra::sdiffstore)),
    CommandSpec::new("sscan", -3, R, (1, 1, 1), read!(sscan)),
];

/// Members as bulk strings inside a RESP3 set (an array under RESP2), as SMEMBERS replies.
fn set_reply(members: impl IntoIterator<Item = Bytes>) -> Frame {
    Frame::Set(members.into_iter().map(Frame::Bulk).collect())
}

/// The set at `key`, read straight from the keyspace (like `ctx.get_set`) so that the caller
/// can borrow `ctx.rng` while holding it.
fn set_at<'a>(ks: &'a Keyspace, db: usize, now_ms: u64, key: &[u8]) -> Result<Option<&'a SetValue>, Frame> {
    match ks.db(db).get(key, now_ms).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

fn sadd(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let key = &argv[1];
    let members = &argv[2..];
    // Only touch the key (and its WATCH version) when something is really added.
    if let Some(set) = ctx.get_set(key)? {
        if members.iter().all(|m| set.contains(m)) {
            return Ok(Frame::Integer(0));
        }
    }
    let Some(set) = ctx.set_mut(key, true)? else { return Ok(Frame::Integer(0)) };
    let added = members.iter().filter(|m| set.insert((*m).clone())).count();
    ctx.notify(notify::SET, "sadd", key);
    Ok(Frame::Integer(added as i64))
}

fn srem(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let key = &argv[1];
    let members = &argv[2..];
    match ctx.get_set(key)? {
        Some(set) if members.iter().any(|m| set.contains(m)) => {}
        _ => return Ok(Frame::Integer(0)),
    }
    let Some(set) = ctx.set_mut(key, false)? else { return Ok(Frame::Integer(0)) };
    let removed = members.iter().filter(|m| set.remove(m)).count();
    ctx.notify(notify::SET, "srem", key);
    ctx.remove_if_empty(key);
    Ok(Frame::Integer(removed as i64))
}

fn sismember(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let found = ctx.get_set(&argv[1])?.is_some_and(|s| s.contains(&argv[2]));
    Ok(Frame::Integer(found as i64))
}

fn smismember(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let set = ctx.get_set(&argv[1])?;
    let found = argv[2..].iter().map(|m| Frame::Integer(set.is_some_and(|s| s.contains(m)) as i64));
    Ok(Frame::Array(found.collect()))
}

fn scard(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    Ok(Frame::Integer(ctx.get_set(&argv[1])?.map_or(0, SetValue::len) as i64))
}

fn smove(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let (src, dst, member) = (&argv[1], &argv[2], &argv[3]);
    // Redis: a missing source wins over a wrong-typed destination.
    let Some(src_set) = ctx.get_set(src)? else { return Ok(Frame::Integer(0)) };
    let present = src_set.contains(member);
    ctx.get_set(dst)?;
    if src == dst || !present {
        return Ok(Frame::Integer(present as i64));
    }
    if let Some(set) = ctx.set_mut(src, false)? {
        set.remove(member);
    }
    ctx.notify(notify::SET, "srem", src);
    ctx.remove_if_empty(src);
    if let Some(set) = ctx.set_mut(dst, true)? {
        if set.insert(member.clone()) {
            ctx.notify(notify::SET, "sadd", dst);
        }
    }
    Ok(Frame::Integer(1))
}

fn sscan(ctx: &mut ReadCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    // Redis checks the cursor, then the key (a missing key ignores bad options), then options.
    scan::parse(&argv[..3], 2, false)?;
    let Some(set) = ctx.get_set(&argv[1])? else { return Ok(scan::reply(0, Vec::new())) };
    let opts = scan::parse(argv, 2, false)?;
    let (members, next) = set.scan(opts.cursor, opts.count);
    let items = members.into_iter().filter(|m| opts.matches(m)).map(Frame::Bulk).collect();
    Ok(scan::reply(next, items))
}

#[cfg(test)]
mod tests {
    use crate::cmd::apply;
    use crate::protocol::Frame;
    use crate::store::{Keyspace, WriteBatch};
    use bytes::Bytes;

    fn run(ks: &mut Keyspace, seed: u64, line: &str) -> Frame {
        let cmd = line.split_whitespace().map(|a| Bytes::from(a.to_string())).collect();
        apply(ks, &WriteBatch { db: 0, now_ms: 1, seed, cmds: vec![cmd], transaction: None })
    }

    fn encoding(ks: &Keyspace, key: &str) -> &'static str {
        ks.db(0).get(key.as_bytes(), 1).map_or("none", |e| e.value.encoding())
    }

    fn filled(members: &str) -> Keyspace {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, &format!("SADD s {members}"));
        ks
    }

    #[test]
    fn spop_is_deterministic_given_the_seed() {
        let members: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        let base = filled(&members.join(" "));
        for line in ["SPOP s", "SPOP s 7", "SPOP s 190"] {
            let (mut a, mut b) = (base.clone(), base.clone());
            assert_eq!(run(&mut a, 99, line), run(&mut b, 99, line), "{line}");
            assert_eq!(a, b, "{line}: same keyspace after the same write");
        }
        let (mut a, mut b) = (base.clone(), base.clone());
        assert_ne!(run(&mut a, 1, "SPOP s 7"), run(&mut b, 2, "SPOP s 7"), "the seed decides");
    }

    #[test]
    fn commands_switch_encodings_like_redis() {
        let ints: Vec<String> = (0..600).map(|i| i.to_string()).collect();
        let mut ks = filled(&ints[..512].join(" "));
        assert_eq!(encoding(&ks, "s"), "intset");
        run(&mut ks, 0, "SADD s 512");
        assert_eq!(encoding(&ks, "s"), "hashtable");
        run(&mut ks, 0, "SREM s 512");
        assert_eq!(encoding(&ks, "s"), "hashtable", "no way back on removal");
        run(&mut ks, 0, "SUNIONSTORE d s");
        assert_eq!(encoding(&ks, "d"), "intset", "stored results are fresh sets");
        // Popping most members copies the survivors into a fresh (compact) set.
        run(&mut ks, 0, "SPOP s 500");
        assert_eq!(encoding(&ks, "s"), "intset");
        run(&mut ks, 0, "SADD t 1 a");
        assert_eq!(encoding(&ks, "t"), "hashtable");
        run(&mut ks, 0, "SMOVE t n 1");
        assert_eq!(encoding(&ks, "n"), "intset");
    }

    #[test]
    fn spop_all_deletes_and_empty_keys_vanish() {
        let mut ks = filled("a b c");
        assert_eq!(run(&mut ks, 0, "SREM s a b c"), Frame::Integer(3));
        assert_eq!(encoding(&ks, "s"), "none");
        let mut ks = filled("a b c");
        run(&mut ks, 0, "SPOP s 3");
        assert_eq!(encoding(&ks, "s"), "none");
        let mut ks = filled("a");
        run(&mut ks, 0, "SMOVE s d a");
        assert_eq!(encoding(&ks, "s"), "none");
    }
}
