//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: the command side of Lua scripting (the
//! engine is `crate::script`); FUNCTION, FCALL and FCALL_RO in [`functions`], FUNCTION DUMP and
//! RESTORE in [`payload`].
//!
//! EVAL and EVALSHA are writes: the whole script is one log entry, run by every replica's
//! apply with the entry's time and seed, so it is atomic and identical everywhere. Scripts
//! that stop on an error keep the writes made before it (Redis's semantics); a script stopped
//! by the step budget (`lua-max-steps`) is rolled back ([`undo`]). EVAL_RO and EVALSHA_RO
//! run on the read path and may only read. The script cache is replicated state
//! (`store::Scripts`): EVAL caches what compiles, SCRIPT LOAD / FLUSH change it through the log.

mod functions;
mod host;
mod payload;
mod undo;

use super::args::{self, is};
use super::server::{help_reply, sub_arity};
use super::{CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::script::{self, exhausted_reply, killed_reply, Limits, Outcome, Script};
use crate::store::running::{RunGuard, RunKind};
use crate::store::scripts::{sha1_hex, MIN_MAX_STEPS};
use crate::store::Keyspace;
use bytes::Bytes;
use host::{ReadHost, WriteHost};
use rand::RngCore;

pub use kill::{busy_error, kill, kill_command};

mod kill;

const EVAL_FLAGS: &[&str] = &["noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale"];
const EVAL_RO_FLAGS: &[&str] = &["readonly", "noscript", "skip_monitor", "no_mandatory_keys", "stale"];

/// The internal write of `CONFIG SET lua-max-steps N` (the budget is replicated state).
pub const SET_MAX_STEPS: &str = "raftis.luasteps";
/// The CONFIG name of the step budget.
pub const MAX_STEPS_PARAM: &str = "lua-max-steps";

/// The internal write `CONFIG SET lua-max-steps <n>` becomes (dispatch proposes it), or the
/// CONFIG SET error reply for a bad value; `None` for any other CONFIG command.
pub fn max_steps_write(argv: &[Bytes]) -> Option<Result<Vec<Bytes>, Frame>> {
    if argv.len() != 4 || !is(&argv[1], "set") || !is(&argv[2], MAX_STEPS_PARAM) {
        return None;
    }
    Some(match parse_max_steps(&argv[3]) {
        Ok(_) => Ok(vec![Bytes::from_static(SET_MAX_STEPS.as_bytes()), argv[3].clone()]),
        Err(why) => Err(Frame::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{MAX_STEPS_PARAM}') - {why}"
        ))),
    })
}

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, EVAL_FLAGS, (0, 0, 0), Kind::Write(eval)),
    CommandSpec::new("evalsha", -3, EVAL_FLAGS, (0, 0, 0), Kind::Write(evalsha)),
    CommandSpec::new("eval_ro", -3, EVAL_RO_FLAGS, (0, 0, 0), Kind::Read(eval_ro)),
    CommandSpec::new("evalsha_ro", -3, EVAL_RO_FLAGS, (0, 0, 0), Kind::Read(evalsha_ro)),
    CommandSpec::new("script", -2, &["noscript"], (0, 0, 0), Kind::Write(script_cmd)),
    CommandSpec::new("fcall", -3, EVAL_FLAGS, (0, 0, 0), Kind::Write(functions::fcall)),
    CommandSpec::new("fcall_ro", -3, EVAL_RO_FLAGS, (0, 0, 0), Kind::Read(functions::fcall_ro)),
    CommandSpec::new("function", -2, &["noscript"], (0, 0, 0), Kind::Write(functions::function)),
    CommandSpec::new(SET_MAX_STEPS, 2, &["write", "internal"], (0, 0, 0), Kind::Write(set_max_steps)),
];

/// The keys and arguments of `CMD script numkeys key... arg...`, checked as Redis does.
fn split_keys(argv: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), Frame> {
    let n = args::int(&argv[2])?;
    if n < 0 {
        return Err(Frame::error("ERR Number of keys can't be negative"));
    }
    if n as u64 > (argv.len() - 3) as u64 {
        return Err(Frame::error("ERR Number of keys can't be greater than number of args"));
    }
    Ok(argv[3..].split_at(n as usize))
}

fn noscript() -> Frame {
    Frame::error("NOSCRIPT No matching script. Please use EVAL.")
}

fn eval(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match split_keys(argv) {
        Ok((keys, args)) => {
            let (body, sha) = (argv[1].clone(), sha1_hex(&argv[1]));
            let reply = run_write(ctx, argv, &sha, &body, keys, args);
            // Cached if it compiled.
            if reply.is_ok() {
                ctx.ks.scripts.insert(Bytes::from(sha), body);
            }
            reply.unwrap_or_else(|e| e)
        }
        Err(e) => e,
    }
}

fn evalsha(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (keys, args) = match split_keys(argv) {
        Ok(split) => split,
        Err(e) => return e,
    };
    match ctx.ks.scripts.get(&argv[1]).cloned() {
        // Cached under its SHA-1, which the argument names (in any case: Redis lowercases it
        // for the run's name too); nothing to hash or cache again.
        Some(body) => {
            let sha = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
            run_write(ctx, argv, &sha, &body, keys, args).unwrap_or_else(|e| e)
        }
        None => noscript(),
    }
}

/// A run registered in this node's registry of running scripts (for `BUSY` replies and the
/// KILLs), with its limits: the replicated budget, a seed from the batch's RNG and, for a
/// read-path run, the kill flag.
fn begin_run(
    ks: &Keyspace,
    rng: &mut dyn RngCore,
    kind: RunKind,
    killable: bool,
    argv: &[Bytes],
) -> (RunGuard, Limits) {
    let run = ks.running.begin(kind, killable, argv);
    let kill = killable.then(|| run.kill_flag());
    (run, Limits { max_steps: ks.scripts.max_steps, seed: rng.next_u64(), kill })
}

/// The reply of a run's outcome; `rollback` undoes the writes of a run the budget stopped.
fn finish(outcome: Outcome, max_steps: u64, rollback: Option<impl FnOnce()>) -> Frame {
    match outcome {
        Outcome::CompileError(e) | Outcome::Done(e) => e,
        Outcome::Killed => killed_reply(),
        Outcome::Exhausted => {
            let rolled_back = rollback.map(|undo| undo()).is_some();
            exhausted_reply(max_steps, rolled_back)
        }
    }
}

/// Runs a script (`sha` is its SHA-1) as (part of) a write: its reply, or `Err` with the
/// reply of a script that did not compile (so never ran).
fn run_write(
    ctx: &mut WriteCtx,
    argv: &[Bytes],
    sha: &str,
    body: &Bytes,
    keys: &[Bytes],
    args: &[Bytes],
) -> Result<Frame, Frame> {
    let (_run, limits) = begin_run(ctx.ks, ctx.rng, RunKind::Eval, false, argv);
    let max_steps = limits.max_steps;
    let script = Script { name: sha, body, keys, args };
    let mut host = WriteHost { ks: ctx.ks, db: ctx.db, now_ms: ctx.now_ms, rng: ctx.rng, undo: Default::default() };
    let outcome = script::eval(&mut host, &script, limits);
    if let Outcome::CompileError(e) = outcome {
        return Err(e);
    }
    let undo = host.undo;
    Ok(finish(outcome, max_steps, Some(|| undo.rollback(ctx.ks))))
}

fn eval_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    match split_keys(argv) {
        Ok((keys, args)) => run_read(ctx, argv, &argv[1], keys, args),
        Err(e) => e,
    }
}

fn evalsha_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let (keys, args) = match split_keys(argv) {
        Ok(split) => split,
        Err(e) => return e,
    };
    match ctx.ks.scripts.get(&argv[1]).cloned() {
        Some(body) => run_read(ctx, argv, &body, keys, args),
        None => noscript(),
    }
}

/// Runs a read-only script, killable. It is not cached: the read path changes no state.
fn run_read(ctx: &mut ReadCtx, argv: &[Bytes], body: &Bytes, keys: &[Bytes], args: &[Bytes]) -> Frame {
    let sha = sha1_hex(body);
    let (_run, limits) = begin_run(ctx.ks, &mut *ctx.rng, RunKind::Eval, ctx.local, argv);
    let max_steps = limits.max_steps;
    let script = Script { name: &sha, body, keys, args };
    let mut host = ReadHost { ks: ctx.ks, db: ctx.db, now_ms: ctx.now_ms, rng: &mut *ctx.rng };
    finish(script::eval(&mut host, &script, limits), max_steps, None::<fn()>)
}

const SCRIPT_HELP: &[&str] = &[
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// SCRIPT: applied through the log like any write, so the cache is the same on every replica.
fn script_cmd(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let sub = &argv[1];
    let arity = |n| sub_arity("script", argv, n);
    if is(sub, "load") {
        if let Err(e) = arity(3) {
            return e;
        }
        if let Err(e) = script::check_compiles(&argv[2]) {
            return e;
        }
        let sha = sha1_hex(&argv[2]);
        ctx.ks.scripts.insert(Bytes::from(sha.clone()), argv[2].clone());
        Frame::bulk(sha)
    } else if is(sub, "exists") {
        if let Err(e) = arity(-3) {
            return e;
        }
        Frame::Array(argv[2..].iter().map(|sha| Frame::Integer(ctx.ks.scripts.contains(sha) as i64)).collect())
    } else if is(sub, "flush") {
        let mode_ok = argv.len() == 2 || (argv.len() == 3 && (is(&argv[2], "async") || is(&argv[2], "sync")));
        if !mode_ok {
            return Frame::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        }
        ctx.ks.scripts.flush();
        Frame::ok()
    } else if is(sub, "kill") {
        match arity(2) {
            // The server answers SCRIPT KILL itself (`kill`), without the log, which the
            // running script may hold: one reaching the log found nothing to kill.
            Ok(()) => Frame::error(kill::NOTBUSY),
            Err(e) => e,
        }
    } else if is(sub, "debug") {
        match arity(3) {
            Ok(()) => Frame::error("ERR SCRIPT DEBUG is not supported by raftis"),
            Err(e) => e,
        }
    } else if is(sub, "help") && argv.len() == 2 {
        help_reply("SCRIPT", SCRIPT_HELP)
    } else {
        args::unknown_subcommand(sub, "SCRIPT")
    }
}

/// Applies `CONFIG SET lua-max-steps N`.
fn set_max_steps(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match parse_max_steps(&argv[1]) {
        Ok(n) => {
            ctx.ks.scripts.max_steps = n;
            Frame::ok()
        }
        Err(why) => Frame::error(format!("ERR {why}")),
    }
}

/// A valid `lua-max-steps` value, or why not.
pub fn parse_max_steps(v: &[u8]) -> Result<u64, String> {
    let max = i64::MAX as u64;
    match crate::protocol::parse_i64(v) {
        Some(n) if n >= MIN_MAX_STEPS as i64 => Ok(n as u64),
        Some(_) => Err(format!("argument must be between {MIN_MAX_STEPS} and {max} inclusive")),
        None => Err("argument couldn't be parsed into an integer".into()),
    }
}

#[cfg(test)]
mod tests;
