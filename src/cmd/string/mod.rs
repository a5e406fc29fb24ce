//! String commands: the command table of the string family (GET/SET and friends, counters,
//! ranges, bitmaps, BITFIELD, LCS) and the helpers they share. Each submodule holds one group.

mod bitfield;
mod bits;
mod counter;
mod hll;
mod lcs;
pub(crate) mod longdouble;
mod range;
mod set;

use super::args::err;
use super::{CommandSpec, Kind, WriteCtx};
use crate::protocol::Frame;
use crate::store::{notify, Value};
use bytes::{Bytes, BytesMut};

/// Largest string a command may build: Redis's default `proto-max-bulk-len` (512 MiB).
pub const MAX_STRING_LEN: u64 = 512 * 1024 * 1024;

const TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WFAST: &[&str] = &["write", "fast"];
const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];

/// Rows match `COMMAND INFO` of Redis 7.0.15.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, RF, (1, 1, 1), Kind::Read(set::get)),
    CommandSpec::new("set", -3, W, (1, 1, 1), Kind::Write(set::set)),
    CommandSpec::new("getex", -2, WFAST, (1, 1, 1), Kind::Write(set::getex)),
    CommandSpec::new("getdel", 2, WFAST, (1, 1, 1), Kind::Write(set::getdel)),
    CommandSpec::new("getset", 3, WF, (1, 1, 1), Kind::Write(set::getset)),
    CommandSpec::new("setnx", 3, WF, (1, 1, 1), Kind::Write(set::setnx)),
    CommandSpec::new("setex", 4, W, (1, 1, 1), Kind::Write(set::setex)),
    CommandSpec::new("psetex", 4, W, (1, 1, 1), Kind::Write(set::psetex)),
    CommandSpec::new("mget", -2, RF, (1, -1, 1), Kind::Read(set::mget)),
    CommandSpec::new("mset", -3, W, (1, -1, 2), Kind::Write(set::mset)),
    CommandSpec::new("msetnx", -3, W, (1, -1, 2), Kind::Write(set::msetnx)),
    CommandSpec::new("append", 3, WF, (1, 1, 1), Kind::Write(range::append)),
    CommandSpec::new("strlen", 2, RF, (1, 1, 1), Kind::Read(range::strlen)),
    CommandSpec::new("getrange", 4, R, (1, 1, 1), Kind::Read(range::getrange)),
    CommandSpec::new("substr", 4, R, (1, 1, 1), Kind::Read(range::getrange)),
    CommandSpec::new("setrange", 4, W, (1, 1, 1), Kind::Write(range::setrange)),
    CommandSpec::new("incr", 2, WF, (1, 1, 1), Kind::Write(counter::incr)),
    CommandSpec::new("decr", 2, WF, (1, 1, 1), Kind::Write(counter::decr)),
    CommandSpec::new("incrby", 3, WF, (1, 1, 1), Kind::Write(counter::incrby)),
    CommandSpec::new("decrby", 3, WF, (1, 1, 1), Kind::Write(counter::decrby)),
    CommandSpec::new("incrbyfloat", 3, WF, (1, 1, 1), Kind::Write(counter::incrbyfloat)),
    CommandSpec::new("setbit", 4, W, (1, 1, 1), Kind::Write(bits::setbit)),
    CommandSpec::new("getbit", 3, RF, (1, 1, 1), Kind::Read(bits::getbit)),
    CommandSpec::new("bitcount", -2, R, (1, 1, 1), Kind::Read(bits::bitcount)),
    CommandSpec::new("bitpos", -3, R, (1, 1, 1), Kind::Read(bits::bitpos)),
    CommandSpec::new("bitop", -4, W, (2, -1, 1), Kind::Write(bits::bitop)),
    CommandSpec::new("bitfield", -2, W, (1, 1, 1), Kind::Write(bitfield::bitfield)),
    CommandSpec::new("bitfield_ro", -2, RF, (1, 1, 1), Kind::Read(bitfield::bitfield_ro)),
    CommandSpec::new("lcs", -3, R, (1, 2, 1), Kind::Read(lcs::lcs)),
    // HyperLogLog. PFCOUNT stores its result in the value (Redis flags it read-only but
    // replicates that change): a write here, so every replica caches the same bytes.
    CommandSpec::new("pfadd", -2, WF, (1, 1, 1), Kind::Write(hll::pfadd)),
    CommandSpec::new("pfcount", -2, &["readonly", "may_replicate"], (1, -1, 1), Kind::Write(hll::pfcount)),
    CommandSpec::new("pfmerge", -2, W, (1, -1, 1), Kind::Write(hll::pfmerge)),
    CommandSpec::new("pfselftest", 1, &["admin"], (0, 0, 0), Kind::Write(hll::pfselftest)),
];

/// When a SET-like command makes the key expire.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Expiry {
    /// Remove any TTL.
    None,
    /// Keep the current TTL (KEEPTTL).
    Keep,
    /// Absolute time in ms.
    At(u64),
}

/// Resolves an expire option (`EX`/`PX`/`EXAT`/`PXAT` = 0..3) to an absolute ms time; `None`
/// means Redis would reply "invalid expire time" (not positive, or overflowing).
pub fn resolve_expire(unit: u8, amount: i64, now_ms: u64) -> Option<u64> {
    if amount <= 0 {
        return None;
    }
    let ms = match unit {
        0 | 2 => amount.checked_mul(1000)?,
        _ => amount,
    };
    let abs = if unit < 2 { ms.checked_add(i64::try_from(now_ms).ok()?)? } else { ms };
    u64::try_from(abs).ok()
}

/// Stores a string value with the given expiry (shared by SET, SETEX, GETSET, ...). A time
/// already in the past stores a key that is expired at once, as Redis 7.0 does: invisible to
/// reads, removed (with the `expired` event) by the active expiry.
pub fn store_string(ctx: &mut WriteCtx, key: Bytes, value: Bytes, expiry: Expiry) {
    let expire_at = match expiry {
        Expiry::None => None,
        Expiry::Keep => ctx.get(&key).and_then(|e| e.expire_at()),
        Expiry::At(t) => Some(t),
    };
    ctx.set(key.clone(), Value::Str(value), expire_at);
    ctx.notify(notify::STRING, "set", &key);
    if matches!(expiry, Expiry::At(_)) {
        ctx.notify(notify::GENERIC, "expire", &key);
    }
}

/// Replaces the string at `key` keeping its TTL (Redis's `dbOverwrite`), or creates it
/// without one. Callers have already checked the type.
fn overwrite_string(ctx: &mut WriteCtx, key: &Bytes, value: Bytes) {
    if ctx.get(key).is_some() {
        if let Some(v) = ctx.value_mut(key) {
            *v = Value::Str(value);
            return;
        }
    }
    ctx.set(key.clone(), Value::Str(value), None);
}

/// Edits the string at `key` in place (its TTL stays); reuses the buffer when unshared.
/// Returns the new length, or `None` if the key holds no string.
fn edit_string(ctx: &mut WriteCtx, key: &[u8], f: impl FnOnce(&mut BytesMut)) -> Option<usize> {
    let Some(Value::Str(s)) = ctx.value_mut(key) else { return None };
    let mut buf = BytesMut::from(std::mem::take(s));
    f(&mut buf);
    let len = buf.len();
    *s = buf.freeze();
    Some(len)
}

/// Redis's `checkStringLength`: refuses a result longer than `proto-max-bulk-len`.
fn check_length(size: u64, append: u64) -> Result<(), Frame> {
    match size.checked_add(append) {
        Some(total) if total <= MAX_STRING_LEN => Ok(()),
        _ => Err(err(TOO_LONG)),
    }
}

/// Redis's range normalisation for GETRANGE/BITCOUNT/BITPOS: negative indexes count from the
/// end, then both are clamped into `0..len`. The range is empty when `start > end`.
fn clamp_range(start: i64, end: i64, len: i64) -> (i64, i64) {
    let start = if start < 0 { len.saturating_add(start) } else { start }.max(0);
    let end = if end < 0 { len.saturating_add(end) } else { end }.max(0);
    (start, if end >= len { len - 1 } else { end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Keyspace, WriteBatch};

    /// Runs one command line through `apply` at time 1000.
    fn run(ks: &mut Keyspace, line: &str) -> Frame {
        let cmd = line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        crate::cmd::apply(ks, &WriteBatch { db: 0, now_ms: 1000, seed: 0, cmds: vec![cmd], transaction: None })
    }

    /// SETs of a 16-byte value to new keys, their arguments slices of one request buffer as a
    /// connection parses them: run under `valgrind --tool=callgrind` to count the instructions
    /// of the write path (docs/PERFORMANCE.md, "Memory per key"). `RAFTIS_SETS_N` sets (20000).
    #[test]
    #[ignore]
    fn sets_in_a_row() {
        let n: usize = std::env::var("RAFTIS_SETS_N").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
        let mut ks = Keyspace::default();
        let mut buf = Vec::new();
        for i in 0..n {
            buf.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$10\r\nkey:{i:06}\r\n$16\r\n").as_bytes());
            buf.extend_from_slice(&[b'v'; 16]);
            buf.extend_from_slice(b"\r\n");
        }
        let buf = Bytes::from(buf);
        let per = buf.len() / n;
        for i in 0..n {
            let at = i * per;
            let cmd = vec![buf.slice(at + 8..at + 11), buf.slice(at + 18..at + 28), buf.slice(at + 35..at + 51)];
            let batch = WriteBatch { db: 0, now_ms: 1000, seed: 0, cmds: vec![cmd], transaction: None };
            assert_eq!(crate::cmd::apply(&mut ks, &batch), Frame::ok());
        }
        assert_eq!(ks.db_mut(0).len(), n);
    }

    fn keyspace_with_list() -> Keyspace {
        let mut ks = Keyspace::default();
        ks.db_mut(0).insert(Bytes::from("l"), Value::List(Default::default()), None, 1);
        ks
    }

    #[test]
    fn wrong_type_everywhere() {
        let mut ks = keyspace_with_list();
        for line in [
            "get l",
            "set l v get",
            "getex l",
            "getex l ex abc",
            "getdel l",
            "getset l v",
            "append l x",
            "strlen l",
            "getrange l 0 1",
            "substr l 0 1",
            "setrange l 0 x",
            "incr l",
            "decr l",
            "incrby l 1",
            "decrby l 1",
            "incrbyfloat l 1",
            "setbit l 0 1",
            "getbit l 0",
            "bitcount l",
            "bitpos l 1",
            "bitop and d k l",
            "bitfield l get u8 0",
            "bitfield l set u8 0 1",
            "bitfield_ro l get u8 0",
        ] {
            assert_eq!(run(&mut ks, line), Frame::error(crate::cmd::args::WRONGTYPE), "{line}");
        }
        let lcs = Frame::error("ERR The specified keys must contain string values");
        assert_eq!(run(&mut ks, "lcs l x"), lcs);
        assert_eq!(run(&mut ks, "mget l"), Frame::Array(vec![Frame::Null]));
        assert_eq!(run(&mut ks, "setnx l v"), Frame::Integer(0));
        assert_eq!(run(&mut ks, "set l v"), Frame::ok());
    }

    #[test]
    fn ttl_kept_or_dropped() {
        let mut ks = Keyspace::default();
        let ttl = |ks: &Keyspace, k: &str| ks.db(0).get(k.as_bytes(), 1000).and_then(|e| e.expire_at());
        for (setup, line, kept) in [
            ("set k 1 ex 10", "incr k", true),
            ("set k 1 ex 10", "incrbyfloat k 1.5", true),
            ("set k 1 ex 10", "append k x", true),
            ("set k 1 ex 10", "setrange k 0 x", true),
            ("set k 1 ex 10", "setbit k 0 1", true),
            ("set k 1 ex 10", "set k v keepttl", true),
            ("set k 1 ex 10", "getex k", true),
            ("set k 1 ex 10", "getex k persist", false),
            ("set k 1 ex 10", "getset k v", false),
            ("set k 1 ex 10", "set k v", false),
            ("set k 1 ex 10", "mset k v", false),
            ("set k 1 ex 10", "bitop or k k", false),
        ] {
            run(&mut ks, setup);
            assert_eq!(ttl(&ks, "k"), Some(11_000));
            run(&mut ks, line);
            assert_eq!(ttl(&ks, "k").is_some(), kept, "{line}");
        }
        run(&mut ks, "set k 1 px 5");
        assert_eq!(ttl(&ks, "k"), Some(1005));
        run(&mut ks, "getex k pxat 999");
        assert!(ks.db(0).get(b"k", 1000).is_none());
    }

    #[test]
    fn expire_resolution() {
        assert_eq!(resolve_expire(0, 10, 1_000), Some(11_000));
        assert_eq!(resolve_expire(1, 10, 1_000), Some(1_010));
        assert_eq!(resolve_expire(2, 10, 1_000), Some(10_000));
        assert_eq!(resolve_expire(3, 10, 1_000), Some(10));
        assert_eq!(resolve_expire(0, 0, 1_000), None);
        assert_eq!(resolve_expire(0, i64::MAX / 1000 + 1, 0), None);
        assert_eq!(resolve_expire(1, i64::MAX, 1), None);
        assert_eq!(resolve_expire(3, i64::MAX, 1), Some(i64::MAX as u64));
    }

    #[test]
    fn ranges_clamp_like_redis() {
        assert_eq!(clamp_range(0, -1, 5), (0, 4));
        assert_eq!(clamp_range(-100, 100, 5), (0, 4));
        assert_eq!(clamp_range(3, 1, 5), (3, 1));
        assert_eq!(clamp_range(0, -1, 0), (0, -1));
        assert_eq!(clamp_range(i64::MIN, i64::MIN, 3), (0, 0));
    }

    #[test]
    fn length_limit() {
        assert!(check_length(MAX_STRING_LEN - 1, 1).is_ok());
        assert!(check_length(MAX_STRING_LEN, 1).is_err());
        assert!(check_length(u64::MAX, 1).is_err());
    }
}
