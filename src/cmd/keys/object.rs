//! Introspection: OBJECT (ENCODING, REFCOUNT, IDLETIME, FREQ, HELP) and DEBUG (DIGEST,
//! DIGEST-VALUE, and the raftis extension DIGEST-EXACT). Access times and frequencies are not
//! tracked (reads never mutate the keyspace), so IDLETIME is always 0 and FREQ always reports
//! that no LFU policy is selected, as Redis does under its default policy.

use super::super::args::{err, unknown_subcommand, wrong_arity};
use super::super::ReadCtx;
use crate::protocol::{parse_i64, Frame};
use crate::store::digest::{to_hex, value_digest, Digest};
use crate::store::Value;
use bytes::Bytes;

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

const NO_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis's `OBJ_SHARED_REFCOUNT`: the refcount of the shared integer objects 0..9999.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// `OBJECT <subcommand> ...`: each subcommand has its own exact arity, as in Redis 7.
pub fn object(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let sub = argv[1].to_ascii_lowercase();
    let (name, arity) = match sub.as_slice() {
        b"help" => ("help", 2),
        b"encoding" => ("encoding", 3),
        b"refcount" => ("refcount", 3),
        b"idletime" => ("idletime", 3),
        b"freq" => ("freq", 3),
        _ => return unknown_subcommand(&argv[1], "object"),
    };
    if argv.len() != arity {
        return wrong_arity(&format!("object|{name}"));
    }
    if name == "help" {
        return Frame::Array(OBJECT_HELP.iter().copied().map(Frame::simple).collect());
    }
    let Some(value) = ctx.value(&argv[2]) else { return Frame::Null };
    match name {
        "encoding" => Frame::bulk(value.encoding()),
        "refcount" => Frame::Integer(refcount(value)),
        "idletime" => Frame::Integer(0),
        _ => err(NO_LFU),
    }
}

/// Small non-negative integers are shared objects in Redis; every other value is unshared.
fn refcount(value: &Value) -> i64 {
    match value {
        Value::Str(s) if value.encoding() == "int" && parse_i64(s).is_some_and(|n| (0..10_000).contains(&n)) => {
            SHARED_REFCOUNT
        }
        _ => 1,
    }
}

/// `DEBUG DIGEST`, `DEBUG DIGEST-VALUE key...` (hex strings as Redis computes them),
/// `DEBUG DIGEST-EXACT` (raftis only: also covers exact expiry times, to compare replicas), and
/// `DEBUG SLEEP seconds`.
pub fn debug(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let status = |d: Digest| Frame::Simple(Bytes::from(to_hex(&d)));
    let sub = argv[1].to_ascii_lowercase();
    match (sub.as_slice(), argv.len()) {
        (b"digest", 2) => status(ctx.ks.digest()),
        (b"digest-exact", 2) => status(ctx.ks.state_digest()),
        (b"sleep", 3) => debug_sleep(&argv[2]),
        (b"digest-value", _) => Frame::Array(
            argv[2..]
                .iter()
                // Time 0: like Redis, a logically expired key still stored is digested.
                .map(|k| status(ctx.db().get(k, 0).map_or([0; 20], value_digest)))
                .collect(),
        ),
        _ => err(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&argv[1][..argv[1].len().min(128)])
        )),
    }
}

/// `DEBUG SLEEP seconds`: holds the keyspace (its shared lock) for that long, as Redis holds
/// its whole server; like Redis's `strtod`, what is not a number sleeps 0 and answers +OK.
/// Reads run it off the runtime thread (`cmd::may_run_long`), so Raft goes on meanwhile.
fn debug_sleep(arg: &[u8]) -> Frame {
    let seconds = std::str::from_utf8(arg).ok().and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(0.0);
    if let Ok(d) = std::time::Duration::try_from_secs_f64(seconds) {
        crate::rt::block_thread_for(d);
    }
    Frame::ok()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bulk, int, run};
    use crate::protocol::Frame;
    use crate::store::Keyspace;

    #[test]
    fn object_subcommands() {
        let mut ks = Keyspace::default();
        run(&mut ks, 0, 1, "set a 1");
        run(&mut ks, 0, 1, "set b 12345");
        assert_eq!(run(&mut ks, 0, 1, "object encoding a"), bulk("int"));
        assert_eq!(run(&mut ks, 0, 1, "object refcount a"), int(i32::MAX as i64));
        assert_eq!(run(&mut ks, 0, 1, "object refcount b"), int(1));
        assert_eq!(run(&mut ks, 0, 1, "object idletime a"), int(0));
        assert_eq!(run(&mut ks, 0, 1, "object freq missing"), Frame::Null);
        assert!(run(&mut ks, 0, 1, "object freq a").is_error());
        assert_eq!(
            run(&mut ks, 0, 1, "object encoding"),
            Frame::error("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(run(&mut ks, 0, 1, "object nope"), Frame::error("ERR unknown subcommand 'nope'. Try OBJECT HELP."));
        let Frame::Array(help) = run(&mut ks, 0, 1, "object help") else { panic!("array") };
        assert_eq!(help.len(), 15);
    }

    #[test]
    fn debug_sleep_answers_ok_whatever_its_argument() {
        let mut ks = Keyspace::default();
        for line in ["debug sleep 0", "debug sleep 0.001", "debug sleep abc", "debug sleep -1", "debug sleep inf"] {
            assert_eq!(run(&mut ks, 0, 1, line), Frame::ok(), "{line}");
        }
    }

    #[test]
    fn debug_digests() {
        let mut ks = Keyspace::default();
        let zeros = Frame::simple("0000000000000000000000000000000000000000");
        assert_eq!(run(&mut ks, 0, 1, "debug digest"), zeros);
        run(&mut ks, 0, 1, "set a 1");
        // From redis-server 7.0.15 after `SET a 1`.
        assert_eq!(run(&mut ks, 0, 1, "debug digest"), Frame::simple("943d800368fb9c0e951138f1bc0e313ac769d91f"));
        assert_eq!(
            run(&mut ks, 0, 1, "debug digest-value a nokey"),
            Frame::Array(vec![Frame::simple("b4fc66738120fba0b5aa500ab5c2bf89cea1c5da"), zeros])
        );
        assert!(matches!(run(&mut ks, 0, 1, "debug digest-exact"), Frame::Simple(_)));
        assert_eq!(
            run(&mut ks, 0, 1, "debug digest x"),
            Frame::error("ERR unknown subcommand or wrong number of arguments for 'digest'. Try DEBUG HELP.")
        );
    }
}
