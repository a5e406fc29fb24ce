//! PFADD, PFCOUNT, PFMERGE and PFSELFTEST over HyperLogLog strings (`store::hll`, Redis's
//! byte layout). Every one goes through the log: PFCOUNT too, since it stores the cardinality
//! it computed in the value's header as Redis does, so `GET` of the key is the same on every
//! replica and the same as on Redis.

use super::WriteCtx;
use crate::cmd::args::{err, WRONGTYPE};
use crate::protocol::Frame;
use crate::store::hll::{self, HllError, REGISTERS};
use crate::store::{notify, Value};
use bytes::Bytes;

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

fn reply(e: HllError) -> Frame {
    match e {
        HllError::NotHll => err(NOT_HLL),
        HllError::Corrupt => err(CORRUPT),
    }
}

/// The HLL at `key` (a copy to edit), `None` when absent, or the error reply.
fn load(ctx: &WriteCtx, key: &[u8]) -> Result<Option<Vec<u8>>, Frame> {
    match ctx.value(key) {
        None => Ok(None),
        Some(Value::Str(s)) => {
            hll::check(s).map_err(reply)?;
            Ok(Some(s.to_vec()))
        }
        Some(_) => Err(err(WRONGTYPE)),
    }
}

/// Stores `v` at `key`, keeping its TTL (or new without one).
fn store(ctx: &mut WriteCtx, key: &Bytes, v: Vec<u8>, existed: bool) {
    if existed {
        if let Some(slot) = ctx.value_mut(key) {
            *slot = Value::Str(Bytes::from(v));
            return;
        }
    }
    ctx.set(key.clone(), Value::Str(Bytes::from(v)), None);
}

/// PFADD key [element ...]
pub(super) fn pfadd(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let key = &argv[1];
    let (mut v, existed) = match load(ctx, key) {
        Ok(Some(v)) => (v, true),
        Ok(None) => (hll::new_sparse(), false),
        Err(e) => return e,
    };
    let mut updated = !existed;
    for ele in &argv[2..] {
        match hll::add(&mut v, ele) {
            Ok(changed) => updated |= changed,
            Err(e) => return reply(e),
        }
    }
    if !updated {
        return Frame::Integer(0);
    }
    hll::changed(&mut v);
    store(ctx, key, v, existed);
    ctx.notify(notify::STRING, "pfadd", key);
    Frame::Integer(1)
}

/// PFCOUNT key [key ...]: one key's cached or computed count (cached in the value), or the
/// count of the union of several.
pub(super) fn pfcount(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    if argv.len() > 2 {
        let mut max = Box::new([0u8; REGISTERS]);
        for key in &argv[1..] {
            match load(ctx, key) {
                Ok(Some(v)) => {
                    if let Err(e) = hll::merge_into(&mut max, &v) {
                        return reply(e);
                    }
                }
                Ok(None) => {}
                Err(e) => return e,
            }
        }
        return Frame::Integer(hll::count_raw(&max) as i64);
    }
    let key = &argv[1];
    let mut v = match load(ctx, key) {
        Ok(Some(v)) => v,
        Ok(None) => return Frame::Integer(0),
        Err(e) => return e,
    };
    if let Some(card) = hll::cached(&v) {
        return Frame::Integer(card as i64);
    }
    let card = match hll::count(&v) {
        Ok(c) => c,
        Err(e) => return reply(e),
    };
    hll::set_cache(&mut v, card);
    store(ctx, key, v, true);
    Frame::Integer(card as i64)
}

/// PFMERGE destkey [sourcekey ...]
pub(super) fn pfmerge(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let mut max = Box::new([0u8; REGISTERS]);
    let mut use_dense = false;
    for key in &argv[1..] {
        match load(ctx, key) {
            Ok(Some(v)) => {
                use_dense |= v[4] == hll::DENSE;
                if let Err(e) = hll::merge_into(&mut max, &v) {
                    return reply(e);
                }
            }
            Ok(None) => {}
            Err(e) => return e,
        }
    }
    let dest = &argv[1];
    let (mut v, existed) = match load(ctx, dest) {
        Ok(Some(v)) => (v, true),
        _ => (hll::new_sparse(), false),
    };
    if use_dense {
        if let Err(e) = hll::to_dense(&mut v) {
            return reply(e);
        }
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            if let Err(e) = hll::set_register(&mut v, i, m) {
                return reply(e);
            }
        }
    }
    hll::changed(&mut v);
    store(ctx, dest, v, existed);
    ctx.notify(notify::STRING, "pfadd", dest);
    Frame::ok()
}

/// PFSELFTEST
pub(super) fn pfselftest(_ctx: &mut WriteCtx, _argv: &[Bytes]) -> Frame {
    match hll::self_test() {
        Ok(()) => Frame::ok(),
        Err(e) => Frame::error(e),
    }
}
