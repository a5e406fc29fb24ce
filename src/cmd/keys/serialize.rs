//! DUMP and RESTORE: a value in Redis 7.0's serialized form (`crate::store::rdb`) and back.
//! RESTORE is a write like any other: its payload travels in the log entry, a relative TTL
//! resolves against the entry's stamped time, so every replica creates the same key with the
//! same expiry. Access times and frequencies are not tracked, so IDLETIME and FREQ are checked
//! and then have nothing to set (as under Redis's default `noeviction` policy for FREQ).

use super::super::args::{self, err, is, syntax};
use super::super::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use crate::store::rdb::{self, LoadError};
use bytes::Bytes;

pub const BUSY_KEY: &str = "BUSYKEY Target key name already exists.";
pub const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
pub const BAD_FORMAT: &str = "ERR Bad data format";

/// `DUMP key`
pub fn dump(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.value(&argv[1]) {
        Some(v) => Frame::Bulk(Bytes::from(rdb::dump(v))),
        None => Frame::Null,
    }
}

/// RESTORE's options.
#[derive(Default)]
struct Options {
    replace: bool,
    absttl: bool,
}

/// Parses the options after the payload, in Redis's order of checks: IDLETIME and FREQ
/// exclude each other (the second is a syntax error).
fn parse_options(argv: &[Bytes]) -> Result<Options, Frame> {
    let mut o = Options::default();
    let (mut idle, mut freq) = (false, false);
    let mut j = 4;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if is(&argv[j], "replace") {
            o.replace = true;
        } else if is(&argv[j], "absttl") {
            o.absttl = true;
        } else if is(&argv[j], "idletime") && more && !freq {
            if args::int(&argv[j + 1])? < 0 {
                return Err(err("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle = true;
            j += 1;
        } else if is(&argv[j], "freq") && more && !idle {
            if !(0..=255).contains(&args::int(&argv[j + 1])?) {
                return Err(err("ERR Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = true;
            j += 1;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    Ok(o)
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`
/// (and `RESTORE-ASKING`, the form MIGRATE sends to a cluster node).
pub fn restore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match restore_inner(ctx, argv) {
        Ok(f) | Err(f) => f,
    }
}

fn restore_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<Frame, Frame> {
    let o = parse_options(argv)?;
    let key = &argv[1];
    if !o.replace && ctx.get(key).is_some() {
        return Err(err(BUSY_KEY));
    }
    let ttl = args::int(&argv[2])?;
    if ttl < 0 {
        return Err(err("ERR Invalid TTL value, must be >= 0"));
    }
    let value = rdb::load(&argv[3]).map_err(|e| match e {
        LoadError::VersionOrChecksum => err(BAD_PAYLOAD),
        LoadError::BadFormat => err(BAD_FORMAT),
    })?;
    let deleted = o.replace && ctx.delete_quietly(key);
    let expire_at = match ttl {
        0 => None,
        t if o.absttl => Some(t as u64),
        t => Some(ctx.now_ms.saturating_add(t as u64)),
    };
    if expire_at.is_some_and(|t| t <= ctx.now_ms) {
        // Already expired: nothing is created; a replaced key is simply gone.
        if deleted {
            ctx.notify(notify::GENERIC, "del", key);
        }
        return Ok(Frame::ok());
    }
    ctx.set(key.clone(), value, expire_at);
    ctx.notify(notify::GENERIC, "restore", key);
    Ok(Frame::ok())
}

/// The internal read MIGRATE starts with (`crate::server` calls it, no client can): for each
/// key, `[payload, expire-at ms or -1, version]`, or nil when the key is absent.
pub fn dump_for_migrate(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let entry = |key: &Bytes| match ctx.get(key) {
        Some(e) => Frame::Array(vec![
            Frame::Bulk(Bytes::from(rdb::dump(&e.value))),
            Frame::Integer(e.expire_at().map_or(-1, |t| t as i64)),
            Frame::Integer(e.version() as i64),
        ]),
        None => Frame::Null,
    };
    Frame::Array(argv[1..].iter().map(entry).collect())
}

/// The internal command of MIGRATE's last step (`raftis.migrated key version ...`): deletes
/// each key the target accepted whose version is still the one that was dumped. A key written
/// in between keeps its new value here (the write is acknowledged, so it must not vanish);
/// every replica compares the same versions, so deletes the same keys.
pub fn delete_migrated(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let mut deleted = 0;
    for pair in argv[1..].chunks(2) {
        let [key, version] = pair else { continue };
        let dumped = std::str::from_utf8(version).ok().and_then(|v| v.parse::<u64>().ok());
        if dumped.is_some() && ctx.get(key).map(|e| e.version()) == dumped && ctx.delete(key) {
            deleted += 1;
        }
    }
    Frame::Integer(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Keyspace, WriteBatch};

    fn run(ks: &mut Keyspace, now: u64, argv: Vec<Bytes>) -> Frame {
        let batch = WriteBatch { db: 0, now_ms: now, seed: 1, cmds: vec![argv], transaction: None };
        crate::cmd::apply(ks, &batch)
    }

    fn line(parts: &[&[u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    #[test]
    fn restore_checks_in_redis_order_and_resolves_the_ttl_at_the_entry_time() {
        let mut ks = Keyspace::new(16);
        let payload = rdb::dump(&crate::store::Value::Str(Bytes::from_static(b"v")));
        assert_eq!(run(&mut ks, 1000, line(&[b"restore", b"k", b"500", &payload])), Frame::ok());
        assert_eq!(ks.db(0).get(b"k", 1000).and_then(|e| e.expire_at()), Some(1500));
        let busy = run(&mut ks, 1000, line(&[b"restore", b"k", b"0", b"junk"]));
        assert_eq!(busy, err(BUSY_KEY));
        let bad = run(&mut ks, 1000, line(&[b"restore", b"k", b"0", b"junk", b"replace"]));
        assert_eq!(bad, err(BAD_PAYLOAD));
        let neg = run(&mut ks, 1000, line(&[b"restore", b"k", b"-1", &payload, b"replace"]));
        assert_eq!(neg, err("ERR Invalid TTL value, must be >= 0"));
        let both = run(&mut ks, 1000, line(&[b"restore", b"k", b"0", &payload, b"idletime", b"1", b"freq", b"2"]));
        assert_eq!(both, syntax());
        let freq = run(&mut ks, 1000, line(&[b"restore", b"k", b"0", &payload, b"freq", b"256"]));
        assert_eq!(freq, err("ERR Invalid FREQ value, must be >= 0 and <= 255"));
        // ABSTTL in the past: OK, and the replaced key is gone.
        assert_eq!(run(&mut ks, 2000, line(&[b"restore", b"k", b"10", &payload, b"replace", b"absttl"])), Frame::ok());
        assert!(ks.db(0).get(b"k", 2000).is_none());
    }
}
