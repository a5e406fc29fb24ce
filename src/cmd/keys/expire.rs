//! Key expiry: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX / XX / GT / LT), TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME and PERSIST. Times are ms since the epoch; relative amounts resolve
//! against the batch's `now_ms`, so every replica stores the same absolute time.

use super::super::args::{self, err};
use super::super::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::notify;
use bytes::Bytes;

/// The NX / XX / GT / LT conditions.
#[derive(Default, Debug, PartialEq)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Parses the options after the time, with Redis's checks in Redis's order.
fn parse_conditions(argv: &[Bytes]) -> Result<Conditions, Frame> {
    let mut c = Conditions::default();
    for opt in argv.iter().skip(3) {
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => c.nx = true,
            b"xx" => c.xx = true,
            b"gt" => c.gt = true,
            b"lt" => c.lt = true,
            _ => return Err(err(&format!("ERR Unsupported option {}", String::from_utf8_lossy(opt)))),
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if c.gt && c.lt {
        return Err(err("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(c)
}

impl Conditions {
    /// Whether the new time `when` may replace the current expiry (`None`: no TTL, which GT
    /// and LT treat as infinite).
    fn allow(&self, current: Option<i64>, when: i64) -> bool {
        !((self.nx && current.is_some())
            || (self.xx && current.is_none())
            || (self.gt && current.is_none_or(|c| when <= c))
            || (self.lt && current.is_some_and(|c| when >= c)))
    }
}

/// The absolute time in ms that `amount` means, or `None` when Redis reports an invalid
/// expire time (overflow in the unit conversion or in adding the base time).
fn absolute_ms(amount: i64, seconds: bool, base: i64) -> Option<i64> {
    let ms = if seconds { amount.checked_mul(1000)? } else { amount };
    if ms > i64::MAX - base {
        return None;
    }
    Some(ms + base)
}

/// The shared body of the four EXPIRE commands. A time not in the future deletes the key.
fn expire_generic(ctx: &mut WriteCtx, argv: &[Bytes], name: &str, seconds: bool, relative: bool) -> Frame {
    let conditions = match parse_conditions(argv) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let amount = match args::int(&argv[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let now = ctx.now_ms as i64;
    let Some(when) = absolute_ms(amount, seconds, if relative { now } else { 0 }) else {
        return err(&format!("ERR invalid expire time in '{name}' command"));
    };
    let key = &argv[1];
    let Some(entry) = ctx.get(key) else { return Frame::Integer(0) };
    let current = entry.expire_at().map(|t| t as i64);
    if !conditions.allow(current, when) {
        return Frame::Integer(0);
    }
    if when <= now {
        ctx.delete(key);
    } else {
        ctx.set_expire(key, Some(when as u64));
        ctx.notify(notify::GENERIC, "expire", key);
    }
    Frame::Integer(1)
}

pub fn expire(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    expire_generic(ctx, argv, "expire", true, true)
}

pub fn pexpire(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    expire_generic(ctx, argv, "pexpire", false, true)
}

pub fn expireat(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    expire_generic(ctx, argv, "expireat", true, false)
}

pub fn pexpireat(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    expire_generic(ctx, argv, "pexpireat", false, false)
}

/// TTL family: -2 for a missing key, -1 without TTL; seconds are rounded to nearest.
fn ttl_generic(ctx: &ReadCtx, key: &[u8], ms: bool, absolute: bool) -> Frame {
    let Some(entry) = ctx.get(key) else { return Frame::Integer(-2) };
    let Some(at) = entry.expire_at() else { return Frame::Integer(-1) };
    let t = if absolute { at } else { at.saturating_sub(ctx.now_ms) };
    // Stored times never exceed i64::MAX, so neither the rounding nor the cast overflows.
    Frame::Integer(if ms { t } else { (t + 500) / 1000 } as i64)
}

pub fn ttl(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    ttl_generic(ctx, &argv[1], false, false)
}

pub fn pttl(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    ttl_generic(ctx, &argv[1], true, false)
}

pub fn expiretime(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    ttl_generic(ctx, &argv[1], false, true)
}

pub fn pexpiretime(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    ttl_generic(ctx, &argv[1], true, true)
}

/// Removes the TTL; 1 only if the key existed and had one.
pub fn persist(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let has_ttl = ctx.get(&argv[1]).is_some_and(|e| e.expire_at().is_some());
    if has_ttl {
        ctx.set_expire(&argv[1], None);
        ctx.notify(notify::GENERIC, "persist", &argv[1]);
    }
    Frame::Integer(has_ttl as i64)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{int, run};
    use super::*;
    use crate::store::Keyspace;

    const NOW: u64 = 1_000_000;

    #[test]
    fn conditions_follow_redis() {
        let c = |nx, xx, gt, lt| Conditions { nx, xx, gt, lt };
        assert!(c(true, false, false, false).allow(None, 5));
        assert!(!c(true, false, false, false).allow(Some(1), 5));
        assert!(!c(false, true, false, false).allow(None, 5));
        assert!(!c(false, false, true, false).allow(None, 5));
        assert!(c(false, false, true, false).allow(Some(4), 5));
        assert!(!c(false, false, true, false).allow(Some(5), 5));
        assert!(c(false, false, false, true).allow(None, 5));
        assert!(!c(false, false, false, true).allow(Some(5), 5));
        assert!(c(false, true, true, false).allow(Some(4), 5));
    }

    #[test]
    fn overflow_is_an_invalid_time() {
        assert_eq!(absolute_ms(i64::MAX, true, 0), None);
        assert_eq!(absolute_ms(i64::MIN, true, 0), None);
        assert_eq!(absolute_ms(i64::MAX, false, 1), None);
        assert_eq!(absolute_ms(i64::MAX, false, 0), Some(i64::MAX));
        assert_eq!(absolute_ms(i64::MIN, false, 5), Some(i64::MIN + 5));
    }

    #[test]
    fn expire_ttl_persist() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, NOW, "set k v");
        assert_eq!(run(&mut ks, 0, NOW, "ttl k"), int(-1));
        assert_eq!(run(&mut ks, 0, NOW, "expire k 100 xx"), int(0));
        assert_eq!(run(&mut ks, 0, NOW, "expire k 100"), int(1));
        assert_eq!(run(&mut ks, 0, NOW + 400, "ttl k"), int(100));
        assert_eq!(run(&mut ks, 0, NOW + 600, "ttl k"), int(99));
        assert_eq!(run(&mut ks, 0, NOW, "pttl k"), int(100_000));
        assert_eq!(run(&mut ks, 0, NOW, "pexpiretime k"), int(1_100_000));
        assert_eq!(run(&mut ks, 0, NOW, "expiretime k"), int(1100));
        assert_eq!(run(&mut ks, 0, NOW, "expire k 50 gt"), int(0));
        assert_eq!(run(&mut ks, 0, NOW, "expire k 50 lt"), int(1));
        assert_eq!(run(&mut ks, 0, NOW, "persist k"), int(1));
        assert_eq!(run(&mut ks, 0, NOW, "persist k"), int(0));
        assert_eq!(run(&mut ks, 0, NOW, "ttl k"), int(-1));
        assert_eq!(run(&mut ks, 0, NOW, "pexpireat k 1000000"), int(1));
        assert_eq!(run(&mut ks, 0, NOW, "ttl k"), int(-2));
        assert_eq!(run(&mut ks, 0, NOW, "dbsize"), int(0));
    }

    #[test]
    fn expiry_makes_keys_invisible() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, NOW, "set k v");
        run(&mut ks, 0, NOW, "pexpire k 10");
        assert_eq!(run(&mut ks, 0, NOW + 9, "exists k"), int(1));
        assert_eq!(run(&mut ks, 0, NOW + 10, "exists k"), int(0));
        assert_eq!(run(&mut ks, 0, NOW + 10, "expire k 100"), int(0));
    }
}
