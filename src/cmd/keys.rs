//! Generic key commands: DEL, EXISTS, TYPE, EXPIRE family, SCAN, ...

use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use bytes::Bytes;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, &["write"], (1, -1, 1), Kind::Write(del)),
    CommandSpec::new("exists", -2, &["readonly", "fast"], (1, -1, 1), Kind::Read(exists)),
    CommandSpec::new("dbsize", 1, &["readonly", "fast"], (0, 0, 0), Kind::Read(dbsize)),
    CommandSpec::new(crate::server::EXPIRE_COMMAND, -2, &["write", "internal"], (1, -1, 1), Kind::Write(expire_due)),
];

/// Internal (active expiry): deletes each listed key that is expired at the batch's time.
fn expire_due(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (db, now) = (ctx.db, ctx.now_ms);
    let mut deleted = 0;
    for key in &argv[1..] {
        if ctx.ks.db_mut(db).remove_if_expired(key, now) {
            deleted += 1;
        }
    }
    ctx.ks.dirty += deleted;
    Frame::Integer(deleted as i64)
}

fn del(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    Frame::Integer(argv[1..].iter().filter(|k| ctx.delete(k)).count() as i64)
}

fn exists(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    Frame::Integer(argv[1..].iter().filter(|k| ctx.get(k).is_some()).count() as i64)
}

fn dbsize(ctx: &mut ReadCtx, _argv: &[Bytes]) -> Frame {
    Frame::Integer(ctx.db().len() as i64)
}
