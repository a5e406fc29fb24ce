//! The replicated side of ACL: `ACL SETUSER`, `ACL DELUSER` and `CONFIG SET requirepass`
//! become the internal write [`ACL_WRITE`], proposed by the server to every group that holds
//! keys (as replicated settings are) and applied here to the keyspace's users
//! (`store::acl`), so every replica holds the same users whichever node a client asked.

use super::args::is;
use super::{CommandSpec, Kind, WriteCtx};
use crate::protocol::Frame;
use bytes::Bytes;

/// The internal command: `raftis.acl SETUSER name rules...` / `raftis.acl DELUSER names...`.
pub const ACL_WRITE: &str = "raftis.acl";

pub static COMMANDS: &[CommandSpec] =
    &[CommandSpec::new(ACL_WRITE, -3, &["write", "internal", "noscript"], (0, 0, 0), Kind::Write(apply))];

/// The internal write an ACL or CONFIG command becomes, if it changes the users (arity
/// checked: `argv` is a whole `ACL SETUSER|DELUSER ...` or `CONFIG SET requirepass v`).
pub fn replicated_write(argv: &[Bytes]) -> Option<Vec<Bytes>> {
    let write = |rest: &[Bytes]| {
        let mut w = vec![Bytes::from_static(ACL_WRITE.as_bytes())];
        w.extend_from_slice(rest);
        w
    };
    if is(&argv[0], "acl") && argv.len() >= 3 && (is(&argv[1], "setuser") || is(&argv[1], "deluser")) {
        return Some(write(&argv[1..]));
    }
    if is(&argv[0], "config") && argv.len() == 4 && is(&argv[1], "set") && is(&argv[2], "requirepass") {
        let pass = &argv[3];
        let rule = if pass.is_empty() { Bytes::from_static(b"nopass") } else { [b">", &pass[..]].concat().into() };
        let rules = [Bytes::from_static(b"setuser"), Bytes::from_static(b"default"), Bytes::from_static(b"resetpass"), rule];
        return Some(write(&rules));
    }
    None
}

fn apply(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let acl = &mut ctx.ks.acl;
    let reply = if is(&argv[1], "setuser") {
        match acl.table.set_user(&argv[2], &argv[3..]) {
            Ok(()) => {
                acl.default_set |= argv[2].as_ref() == b"default";
                Frame::ok()
            }
            Err(e) => Frame::error(e),
        }
    } else if is(&argv[1], "deluser") {
        match acl.table.delete_users(&argv[2..]) {
            Ok(n) => Frame::Integer(n),
            Err((_, e)) => Frame::error(e),
        }
    } else {
        return Frame::error("ERR unknown ACL write");
    };
    acl.publish();
    reply
}
