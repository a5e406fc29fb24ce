//! The replicated side of ACL: `ACL SETUSER`, `ACL DELUSER` and `CONFIG SET requirepass`
//! become the internal write [`ACL_WRITE`], proposed by the server to every group that holds
//! keys (as replicated settings are) and applied here to the keyspace's users
//! (`store::acl`), so every replica holds the same users whichever node a client asked.
//!
//! A script run by a user with limits is wrapped as [`RUN_AS`] `user EVAL ...` (or
//! [`RUN_AS_RO`] for a read-only one): the wrapper looks the user up in the keyspace's own
//! table at apply (the same on every replica) and each `redis.call` of the script is checked
//! against it (`script_denial`), as Redis checks a script's calls.

use super::args::is;
use super::{lookup, CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::acl::{Denied, User};
use crate::protocol::Frame;
use bytes::Bytes;
use std::cell::RefCell;

/// The internal command: `raftis.acl SETUSER name rules...`, `raftis.acl DELUSER names...`,
/// `raftis.acl LOAD name rules name rules...` (the whole table, read from the ACL file).
pub const ACL_WRITE: &str = "raftis.acl";

/// The internal wrappers of a script run by a user with limits: `raftis.runas user EVAL ...`.
pub const RUN_AS: &str = "raftis.runas";
pub const RUN_AS_RO: &str = "raftis.runas_ro";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(ACL_WRITE, -3, &["write", "internal", "noscript"], (0, 0, 0), Kind::Write(apply)),
    CommandSpec::new(RUN_AS, -5, &["write", "internal", "noscript"], (0, 0, 0), Kind::Write(run_as)),
    CommandSpec::new(RUN_AS_RO, -5, &["readonly", "internal", "noscript"], (0, 0, 0), Kind::Read(run_as_ro)),
];

thread_local! {
    /// The user whose script runs on this thread now (set by the wrappers around the run).
    static SCRIPT_USER: RefCell<Option<User>> = const { RefCell::new(None) };
}

/// The script command a wrapper carries (`argv` itself when it is none).
pub fn unwrap(argv: &[Bytes]) -> &[Bytes] {
    match argv.first() {
        Some(n) if argv.len() > 2 && (is(n, RUN_AS) || is(n, RUN_AS_RO)) => &argv[2..],
        _ => argv,
    }
}

/// The wrapped form of a script command for `user` (whose limits its calls must obey).
pub fn wrap(user: &Bytes, argv: Vec<Bytes>, read_only: bool) -> Vec<Bytes> {
    let name = if read_only { RUN_AS_RO } else { RUN_AS };
    let mut w = Vec::with_capacity(argv.len() + 2);
    w.push(Bytes::from_static(name.as_bytes()));
    w.push(user.clone());
    w.extend(argv);
    w
}

pub fn run_as_ro_spec() -> &'static CommandSpec {
    &COMMANDS[2]
}

/// Runs `f` with `name`'s limits for the script's calls (a deleted user: no permission).
fn with_user<R>(table: &crate::acl::Acl, name: &Bytes, f: impl FnOnce() -> R) -> R {
    let user = table.user(name).cloned().unwrap_or_else(|| User::new(name.clone()));
    SCRIPT_USER.with(|u| *u.borrow_mut() = Some(user));
    let r = f();
    SCRIPT_USER.with(|u| *u.borrow_mut() = None);
    r
}

fn run_as(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let inner = &argv[2..];
    let Some(Kind::Write(f)) = lookup(&inner[0]).map(|s| s.kind) else {
        return Frame::error("ERR unknown script command");
    };
    let table = ctx.ks.acl.table.clone();
    with_user(&table, &argv[1], || f(ctx, inner))
}

fn run_as_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let inner = &argv[2..];
    let Some(Kind::Read(f)) = lookup(&inner[0]).map(|s| s.kind) else {
        return Frame::error("ERR unknown script command");
    };
    let ks = ctx.ks;
    with_user(&ks.acl.table, &argv[1], || f(ctx, inner))
}

/// Redis's refusal of a script's call its user may not make, if so.
pub fn script_denial(spec: &'static CommandSpec, argv: &[Bytes]) -> Option<Frame> {
    let denied = SCRIPT_USER.with(|u| {
        let u = u.borrow();
        let user = u.as_ref()?;
        super::server::acl_check(user, spec, argv).err().map(|(d, _)| d)
    })?;
    Some(Frame::error(match denied {
        Denied::Command => "ERR The user executing the script can't run this command or subcommand",
        Denied::Key(_) => {
            "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
        }
        Denied::Channel(_) => "ERR The user executing the script can't publish to the channel mentioned in the command",
    }))
}

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
        let rules =
            [Bytes::from_static(b"setuser"), Bytes::from_static(b"default"), Bytes::from_static(b"resetpass"), rule];
        return Some(write(&rules));
    }
    None
}

/// The internal write of `ACL LOAD` for the users read from the file.
pub fn load_write(users: Vec<(Bytes, Bytes)>) -> Vec<Bytes> {
    let mut w = vec![Bytes::from_static(ACL_WRITE.as_bytes()), Bytes::from_static(b"load")];
    for (name, rules) in users {
        w.push(name);
        w.push(rules);
    }
    w
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
    } else if is(&argv[1], "load") {
        let pairs: Vec<(Bytes, Bytes)> =
            argv[2..].chunks(2).map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default())).collect();
        match crate::acl::Acl::from_rules(&pairs) {
            Ok(table) => {
                acl.table = table;
                acl.default_set = true;
                Frame::ok()
            }
            Err(e) => Frame::error(format!("ERR {e}")),
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
