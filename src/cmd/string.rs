//! String commands: GET, SET and the rest of the string family.

use super::args::{self, err, is, syntax};
use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::Value;
use bytes::Bytes;

const W: &[&str] = &["write", "denyoom"];
const R: &[&str] = &["readonly", "fast"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, R, (1, 1, 1), Kind::Read(get)),
    CommandSpec::new("set", -3, W, (1, 1, 1), Kind::Write(set)),
];

fn get(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_str(&argv[1]) {
        Ok(Some(v)) => Frame::Bulk(v.clone()),
        Ok(None) => Frame::Null,
        Err(e) => e,
    }
}

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

#[derive(Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    expire: Option<(u8, i64)>, // (unit keyword index, amount)
}

/// Resolves an expire option (`EX`/`PX`/`EXAT`/`PXAT` = 0..3) to an absolute ms time; `None`
/// means Redis would reply "invalid expire time".
pub fn resolve_expire(unit: u8, amount: i64, now_ms: u64) -> Option<u64> {
    if amount <= 0 {
        return None;
    }
    let ms = match unit {
        0 | 2 => amount.checked_mul(1000)?,
        _ => amount,
    };
    let abs = if unit < 2 { ms.checked_add(now_ms as i64)? } else { ms };
    u64::try_from(abs).ok()
}

fn parse_set_options(argv: &[Bytes]) -> Result<SetOptions, Frame> {
    let mut o = SetOptions::default();
    let mut i = 3;
    while i < argv.len() {
        let a = &argv[i];
        let unit = ["ex", "px", "exat", "pxat"].iter().position(|u| is(a, u));
        if is(a, "nx") && !o.xx {
            o.nx = true;
        } else if is(a, "xx") && !o.nx {
            o.xx = true;
        } else if is(a, "get") {
            o.get = true;
        } else if is(a, "keepttl") && o.expire.is_none() {
            o.keepttl = true;
        } else if let (Some(u), false, false, Some(v)) = (unit, o.keepttl, o.expire.is_some(), argv.get(i + 1)) {
            o.expire = Some((u as u8, args::int(v)?));
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    Ok(o)
}

fn set(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let o = match parse_set_options(argv) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let expiry = match o.expire {
        Some((unit, amount)) => match resolve_expire(unit, amount, ctx.now_ms) {
            Some(t) => Expiry::At(t),
            None => return err("ERR invalid expire time in 'set' command"),
        },
        None if o.keepttl => Expiry::Keep,
        None => Expiry::None,
    };
    let old = match o.get {
        true => match ctx.get_str(&argv[1]) {
            Ok(v) => Some(v.cloned()),
            Err(e) => return e,
        },
        false => None,
    };
    let exists = ctx.get(&argv[1]).is_some();
    if (o.nx && exists) || (o.xx && !exists) {
        return old.map_or(Frame::Null, |v| v.map_or(Frame::Null, Frame::Bulk));
    }
    store_string(ctx, argv[1].clone(), argv[2].clone(), expiry);
    match old {
        Some(v) => v.map_or(Frame::Null, Frame::Bulk),
        None => Frame::ok(),
    }
}

/// Stores a string value with the given expiry (shared by SET, SETEX, GETSET, ...). A time
/// already in the past deletes the key, as Redis does.
pub fn store_string(ctx: &mut WriteCtx, key: Bytes, value: Bytes, expiry: Expiry) {
    let expire_at = match expiry {
        Expiry::None => None,
        Expiry::Keep => ctx.get(&key).and_then(|e| e.expire_at()),
        Expiry::At(t) if t <= ctx.now_ms => {
            ctx.delete(&key);
            return;
        }
        Expiry::At(t) => Some(t),
    };
    ctx.set(key, Value::Str(value), expire_at);
}
