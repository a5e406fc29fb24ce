//! Whole-value string commands: GET, SET (and its options), GETEX, GETDEL, GETSET, SETNX,
//! SETEX, PSETEX, MGET, MSET, MSETNX.

use super::{resolve_expire, store_string, Expiry};
use crate::cmd::args::{self, err, is, syntax, wrong_arity};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::{notify, Value};
use bytes::Bytes;

/// Expire units in keyword order: EX, PX, EXAT, PXAT.
const UNITS: [&str; 4] = ["ex", "px", "exat", "pxat"];

/// Options of SET (`for_set`) or GETEX, as Redis's `parseExtendedStringArgumentsOrReply`
/// accepts them. The expire amount stays unparsed: Redis reports syntax errors first.
#[derive(Default)]
struct ExtOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(u8, &'a [u8])>,
}

fn parse_ext(args: &[Bytes], for_set: bool) -> Result<ExtOptions<'_>, Frame> {
    let mut o = ExtOptions::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let unit = UNITS.iter().position(|u| is(a, u)).map(|u| u as u8);
        // The same unit may repeat (the last amount wins); mixing units may not.
        let unit_free = |u: u8| o.expire.is_none_or(|(cur, _)| cur == u);
        if for_set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && is(a, "get") {
            o.get = true;
        } else if for_set && is(a, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is(a, "persist") && o.expire.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (Some(u), Some(next)) = (unit, args.get(i + 1)) {
            if o.keepttl || o.persist || !unit_free(u) {
                return Err(syntax());
            }
            o.expire = Some((u, next));
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    Ok(o)
}

/// Parses and resolves an expire amount: "value is not an integer" or "invalid expire time".
fn expire_at(unit: u8, amount: &[u8], now_ms: u64, cmd: &str) -> Result<u64, Frame> {
    let n = args::int(amount)?;
    resolve_expire(unit, n, now_ms).ok_or_else(|| err(&format!("ERR invalid expire time in '{cmd}' command")))
}

fn bulk_or_null(v: Option<Bytes>) -> Frame {
    v.map_or(Frame::Null, Frame::Bulk)
}

pub(super) fn get(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_str(&argv[1]) {
        Ok(v) => bulk_or_null(v.cloned()),
        Err(e) => e,
    }
}

pub(super) fn set(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let o = match parse_ext(&argv[3..], true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let expiry = match o.expire.map(|(u, amount)| expire_at(u, amount, ctx.now_ms, "set")) {
        Some(Ok(t)) => Expiry::At(t),
        Some(Err(e)) => return e,
        None if o.keepttl => Expiry::Keep,
        None => Expiry::None,
    };
    let cond = Cond { nx: o.nx, xx: o.xx, get: o.get, ok: Frame::ok(), abort: Frame::Null };
    set_generic(ctx, argv[1].clone(), argv[2].clone(), expiry, cond)
}

/// When a SET-like command stores, and what it replies.
struct Cond {
    nx: bool,
    xx: bool,
    /// Reply with the old value (WRONGTYPE if it is not a string) whatever happens.
    get: bool,
    /// Reply when stored (without `get`).
    ok: Frame,
    /// Reply when NX/XX prevented the store (without `get`).
    abort: Frame,
}

/// Redis's `setGenericCommand`, once the expiry is known.
fn set_generic(ctx: &mut WriteCtx, key: Bytes, value: Bytes, expiry: Expiry, c: Cond) -> Frame {
    let old = match c.get {
        true => match ctx.get_str(&key) {
            Ok(v) => Some(bulk_or_null(v.cloned())),
            Err(e) => return e,
        },
        false => None,
    };
    let exists = ctx.get(&key).is_some();
    if (c.nx && exists) || (c.xx && !exists) {
        return old.unwrap_or(c.abort);
    }
    store_string(ctx, key, value, expiry);
    old.unwrap_or(c.ok)
}

pub(super) fn setnx(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let cond = Cond { nx: true, xx: false, get: false, ok: Frame::Integer(1), abort: Frame::Integer(0) };
    set_generic(ctx, argv[1].clone(), argv[2].clone(), Expiry::None, cond)
}

pub(super) fn setex(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    set_with_ttl(ctx, argv, 0, "setex")
}

pub(super) fn psetex(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    set_with_ttl(ctx, argv, 1, "psetex")
}

/// SETEX / PSETEX: `key ttl value`.
fn set_with_ttl(ctx: &mut WriteCtx, argv: &[Bytes], unit: u8, name: &str) -> Frame {
    match expire_at(unit, &argv[2], ctx.now_ms, name) {
        Ok(t) => {
            let cond = Cond { nx: false, xx: false, get: false, ok: Frame::ok(), abort: Frame::Null };
            set_generic(ctx, argv[1].clone(), argv[3].clone(), Expiry::At(t), cond)
        }
        Err(e) => e,
    }
}

/// GETEX: options are checked first, then the key (absent: null even with a bad amount),
/// its type, and only then the amount.
pub(super) fn getex(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let o = match parse_ext(&argv[2..], false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let value = match ctx.get_str(&argv[1]) {
        Ok(Some(v)) => v.clone(),
        Ok(None) => return Frame::Null,
        Err(e) => return e,
    };
    if let Some((unit, amount)) = o.expire {
        let at = match expire_at(unit, amount, ctx.now_ms, "getex") {
            Ok(t) => t,
            Err(e) => return e,
        };
        if at <= ctx.now_ms {
            ctx.delete(&argv[1]);
        } else {
            ctx.set_expire(&argv[1], Some(at));
            ctx.notify(notify::GENERIC, "expire", &argv[1]);
        }
    } else if o.persist && ctx.get(&argv[1]).is_some_and(|e| e.expire_at().is_some()) {
        ctx.set_expire(&argv[1], None);
        ctx.notify(notify::GENERIC, "persist", &argv[1]);
    }
    Frame::Bulk(value)
}

pub(super) fn getdel(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_str(&argv[1]) {
        Ok(Some(v)) => {
            let v = v.clone();
            ctx.delete(&argv[1]);
            Frame::Bulk(v)
        }
        Ok(None) => Frame::Null,
        Err(e) => e,
    }
}

/// GETSET: replies with the old value and stores the new one without a TTL.
pub(super) fn getset(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let old = match ctx.get_str(&argv[1]) {
        Ok(v) => v.cloned(),
        Err(e) => return e,
    };
    store_string(ctx, argv[1].clone(), argv[2].clone(), Expiry::None);
    bulk_or_null(old)
}

/// MGET: keys holding another type read as null, never WRONGTYPE.
pub(super) fn mget(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let values = argv[1..].iter().map(|k| match ctx.value(k) {
        Some(Value::Str(v)) => Frame::Bulk(v.clone()),
        _ => Frame::Null,
    });
    Frame::Array(values.collect())
}

pub(super) fn mset(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    if argv.len().is_multiple_of(2) {
        return wrong_arity("mset");
    }
    set_pairs(ctx, &argv[1..]);
    Frame::ok()
}

/// MSETNX: sets every pair only when none of the keys exists.
pub(super) fn msetnx(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    if argv.len().is_multiple_of(2) {
        return wrong_arity("msetnx");
    }
    if argv[1..].chunks(2).any(|pair| ctx.get(&pair[0]).is_some()) {
        return Frame::Integer(0);
    }
    set_pairs(ctx, &argv[1..]);
    Frame::Integer(1)
}

fn set_pairs(ctx: &mut WriteCtx, pairs: &[Bytes]) {
    for pair in pairs.chunks_exact(2) {
        ctx.set(pair[0].clone(), Value::Str(pair[1].clone()), None);
        ctx.notify(notify::STRING, "set", &pair[0]);
    }
}
