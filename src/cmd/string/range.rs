//! Length and byte-range commands: APPEND, STRLEN, GETRANGE (and its old name SUBSTR),
//! SETRANGE.

use super::{check_length, clamp_range, edit_string};
use crate::cmd::args::{self, err};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::store::{notify, Value};
use bytes::Bytes;

/// APPEND: creates the key when absent; replies with the new length.
pub(super) fn append(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (key, tail) = (&argv[1], &argv[2]);
    let old_len = match ctx.get_str(key) {
        Ok(None) => {
            ctx.set(key.clone(), Value::Str(tail.clone()), None);
            ctx.notify(notify::STRING, "append", key);
            return Frame::Integer(tail.len() as i64);
        }
        Ok(Some(v)) => v.len(),
        Err(e) => return e,
    };
    if let Err(e) = check_length(old_len as u64, tail.len() as u64) {
        return e;
    }
    let len = edit_string(ctx, key, |buf| buf.extend_from_slice(tail));
    ctx.notify(notify::STRING, "append", key);
    Frame::Integer(len.unwrap_or(0) as i64)
}

pub(super) fn strlen(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match ctx.get_str(&argv[1]) {
        Ok(v) => Frame::Integer(v.map_or(0, |v| v.len() as i64)),
        Err(e) => e,
    }
}

/// GETRANGE / SUBSTR: indexes are parsed before the key is looked up.
pub(super) fn getrange(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let (start, end) = match (args::int(&argv[2]), args::int(&argv[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let s = match ctx.get_str(&argv[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Bulk(Bytes::new()),
        Err(e) => return e,
    };
    if start < 0 && end < 0 && start > end {
        return Frame::Bulk(Bytes::new());
    }
    let (start, end) = clamp_range(start, end, s.len() as i64);
    if start > end || s.is_empty() {
        return Frame::Bulk(Bytes::new());
    }
    Frame::Bulk(s.slice(start as usize..=end as usize))
}

/// SETRANGE: overwrites from `offset`, zero-padding as needed; replies with the new length.
pub(super) fn setrange(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (key, patch) = (&argv[1], &argv[3]);
    let offset = match args::int(&argv[2]) {
        Ok(n) if n < 0 => return err("ERR offset is out of range"),
        Ok(n) => n as u64,
        Err(e) => return e,
    };
    let old_len = match ctx.get_str(key) {
        Ok(v) => v.map(|v| v.len()),
        Err(e) => return e,
    };
    if patch.is_empty() {
        return Frame::Integer(old_len.unwrap_or(0) as i64);
    }
    if let Err(e) = check_length(offset, patch.len() as u64) {
        return e;
    }
    if old_len.is_none() {
        ctx.set(key.clone(), Value::Str(Bytes::new()), None);
    }
    // Fits in usize: checked against the 512 MiB limit above.
    let (from, to) = (offset as usize, offset as usize + patch.len());
    let len = edit_string(ctx, key, |buf| {
        if buf.len() < to {
            buf.resize(to, 0);
        }
        buf[from..to].copy_from_slice(patch);
    });
    ctx.notify(notify::STRING, "setrange", key);
    Frame::Integer(len.unwrap_or(0) as i64)
}
