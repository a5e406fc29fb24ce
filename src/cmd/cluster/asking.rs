//! Redis Cluster's ASKING (`crate::server::dispatch` keeps the flag for the next command) and
//! the wrappers that carry a command sent after ASKING into a group's log or read:
//! `raftis.asking <command> <args...>` (a write) and `raftis.asking_ro <command> <args...>` (a
//! read). A group's state machine lets a wrapped command (and RESTORE-ASKING) touch keys of a
//! slot it is importing (`CLUSTER SETSLOT <slot> IMPORTING`) but does not own yet
//! (`crate::raft::control`); the wrapper runs the inner command unchanged.

use super::super::{lookup, CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use bytes::Bytes;

/// The write wrapper of a command sent after ASKING.
pub const ASKING_WRITE: &str = "raftis.asking";
/// The read wrapper of a command sent after ASKING.
pub const ASKING_READ: &str = "raftis.asking_ro";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("asking", 1, &["fast"], (0, 0, 0), Kind::Session),
    CommandSpec::new(ASKING_WRITE, -2, &["write", "internal", "noscript"], (0, 0, 0), Kind::Write(write)),
    CommandSpec::new(ASKING_READ, -2, &["readonly", "internal", "noscript"], (0, 0, 0), Kind::Read(read)),
];

/// The spec of the read wrapper.
pub fn read_spec() -> &'static CommandSpec {
    &COMMANDS[2]
}

/// `argv` wrapped as sent after ASKING (`read`: as a read).
pub fn wrap(argv: Vec<Bytes>, read: bool) -> Vec<Bytes> {
    let name = if read { ASKING_READ } else { ASKING_WRITE };
    let mut w = Vec::with_capacity(argv.len() + 1);
    w.push(Bytes::from_static(name.as_bytes()));
    w.extend(argv);
    w
}

/// The command a wrapper carries and whether it was sent with ASKING (a wrapper, or
/// RESTORE-ASKING, which implies it); `argv` itself, not asking, for any other command.
pub fn unwrap(argv: &[Bytes]) -> (&[Bytes], bool) {
    match argv.first() {
        Some(n)
            if argv.len() > 1
                && (n.eq_ignore_ascii_case(ASKING_WRITE.as_bytes())
                    || n.eq_ignore_ascii_case(ASKING_READ.as_bytes())) =>
        {
            (&argv[1..], true)
        }
        Some(n) if n.eq_ignore_ascii_case(b"restore-asking") => (argv, true),
        _ => (argv, false),
    }
}

fn write(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let inner = &argv[1..];
    match lookup(&inner[0]).map(|s| (s, s.kind)) {
        Some((spec, Kind::Write(f))) if spec.arity_ok(inner.len()) => f(ctx, inner),
        Some((spec, _)) if !spec.arity_ok(inner.len()) => {
            Frame::error(format!("ERR wrong number of arguments for '{}' command", spec.name))
        }
        _ => Frame::error("ERR the command sent after ASKING is not a write"),
    }
}

fn read(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let inner = &argv[1..];
    match lookup(&inner[0]).map(|s| (s, s.kind)) {
        Some((spec, Kind::Read(f))) if spec.arity_ok(inner.len()) => f(ctx, inner),
        Some((spec, _)) if !spec.arity_ok(inner.len()) => {
            Frame::error(format!("ERR wrong number of arguments for '{}' command", spec.name))
        }
        _ => Frame::error("ERR the command sent after ASKING is not a read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn wrappers_carry_the_command_and_the_asking_flag() {
        let w = wrap(argv("SET k v"), false);
        assert_eq!(w[0], ASKING_WRITE.as_bytes());
        assert_eq!(unwrap(&w), (&argv("SET k v")[..], true));
        assert_eq!(unwrap(&wrap(argv("GET k"), true)), (&argv("GET k")[..], true));
        let restore = argv("RESTORE-ASKING k 0 x");
        assert!(unwrap(&restore).1);
        assert!(!unwrap(&argv("SET k v")).1);
        assert!(!unwrap(&argv("raftis.asking")).1, "a wrapper with no command is no command");
        let mut keys = Vec::new();
        crate::cmd::for_each_key_index(
            lookup(ASKING_WRITE.as_bytes()).expect("spec"),
            &argv("raftis.asking MSET a 1 b 2"),
            |i| keys.push(i),
        );
        assert_eq!(keys, vec![2, 4]);
    }
}
