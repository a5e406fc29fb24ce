//! FUNCTION, FCALL and FCALL_RO. Libraries are replicated state (`store::Functions`): FUNCTION
//! is a write through the log (every subcommand, as SCRIPT), FCALL a write whose function runs
//! in every replica's apply like EVAL (rolled back if the step budget stops it), FCALL_RO a
//! read. A function flagged `no-writes` runs with a read-only host even under FCALL.

use super::host::{ReadHost, WriteHost};
use super::{begin_run, finish, split_keys};
use crate::cmd::args::{self, is};
use crate::cmd::glob;
use crate::cmd::server::{help_reply, sub_arity};
use crate::cmd::{ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::script::{self, Call, Limits};
use crate::store::functions::{Functions, Library};
use crate::store::running::RunKind;
use bytes::Bytes;
use rand::RngCore;

fn not_found() -> Frame {
    Frame::error("ERR Function not found")
}

/// EVAL's key split, with FCALL's own error for a numkeys that is not a number.
fn fcall_keys(argv: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), Frame> {
    if args::int(&argv[2]).is_err() {
        return Err(Frame::error("ERR Bad number of keys provided"));
    }
    split_keys(argv)
}

/// FCALL function numkeys key... arg...
pub fn fcall(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let (keys, args) = match fcall_keys(argv) {
        Ok(split) => split,
        Err(e) => return e,
    };
    let Some((lib, def)) = ctx.ks.functions.find(&String::from_utf8_lossy(&argv[1])) else {
        return not_found();
    };
    // The name as registered: FCALL's is matched case-insensitively, as in Redis.
    let (code, read_only, name) = (lib.code.clone(), def.is_read_only(), def.name.clone());
    let (_run, limits) = begin_run(ctx.ks, ctx.rng, RunKind::Function, false, argv);
    let max_steps = limits.max_steps;
    let call = Call { code: &code, function: &name, keys, args };
    if read_only {
        let mut host = ReadHost { ks: ctx.ks, db: ctx.db, now_ms: ctx.now_ms, rng: &mut *ctx.rng };
        return finish(script::fcall(&mut host, &call, limits), max_steps, None::<fn()>);
    }
    let mut host = WriteHost { ks: ctx.ks, db: ctx.db, now_ms: ctx.now_ms, rng: ctx.rng, undo: Default::default() };
    let outcome = script::fcall(&mut host, &call, limits);
    let undo = host.undo;
    finish(outcome, max_steps, Some(|| undo.rollback(ctx.ks)))
}

/// FCALL_RO: only functions flagged `no-writes`.
pub fn fcall_ro(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let (keys, args) = match fcall_keys(argv) {
        Ok(split) => split,
        Err(e) => return e,
    };
    let Some((lib, def)) = ctx.ks.functions.find(&String::from_utf8_lossy(&argv[1])) else {
        return not_found();
    };
    if !def.is_read_only() {
        return Frame::error("ERR Can not execute a script with write flag using *_ro command.");
    }
    let (_run, limits) = begin_run(ctx.ks, &mut *ctx.rng, RunKind::Function, ctx.local, argv);
    let max_steps = limits.max_steps;
    let call = Call { code: &lib.code, function: &def.name, keys, args };
    let mut host = ReadHost { ks: ctx.ks, db: ctx.db, now_ms: ctx.now_ms, rng: &mut *ctx.rng };
    finish(script::fcall(&mut host, &call, limits), max_steps, None::<fn()>)
}

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];

/// FUNCTION <subcommand>: applied through the log, so the libraries are the same everywhere.
pub fn function(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    let sub = &argv[1];
    let arity = |n| sub_arity("function", argv, n);
    let checked = |n, f: &dyn Fn() -> Frame| arity(n).map_or_else(|e| e, |()| f());
    if is(sub, "load") {
        if let Err(e) = arity(-3) {
            return e;
        }
        load(ctx, &argv[2..])
    } else if is(sub, "delete") {
        if let Err(e) = arity(3) {
            return e;
        }
        if ctx.ks.functions.delete(&String::from_utf8_lossy(&argv[2])) {
            Frame::ok()
        } else {
            Frame::error("ERR Library not found")
        }
    } else if is(sub, "flush") {
        if argv.len() > 3 {
            // Redis's addReplySubcommandSyntaxError, with the subcommand as given.
            let sub = String::from_utf8_lossy(sub);
            return Frame::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
            ));
        }
        let mode_ok = argv.len() == 2 || (argv.len() == 3 && (is(&argv[2], "async") || is(&argv[2], "sync")));
        if !mode_ok {
            return Frame::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
        }
        ctx.ks.functions.flush();
        Frame::ok()
    } else if is(sub, "list") {
        match arity(-2) {
            Ok(()) => list(&ctx.ks.functions, &argv[2..]),
            Err(e) => e,
        }
    } else if is(sub, "stats") {
        checked(2, &|| stats(&ctx.ks.functions))
    } else if is(sub, "kill") {
        // Answered by the server itself (`super::kill`); one reaching the log found none.
        checked(2, &|| Frame::error(super::kill::NOTBUSY))
    } else if is(sub, "dump") {
        checked(2, &|| super::payload::dump(&ctx.ks.functions))
    } else if is(sub, "restore") {
        match arity(-3) {
            Ok(()) if argv.len() > 4 => Frame::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                String::from_utf8_lossy(&sub[..sub.len().min(128)])
            )),
            Ok(()) => super::payload::restore(ctx, argv),
            Err(e) => e,
        }
    } else if is(sub, "help") && argv.len() == 2 {
        help_reply("FUNCTION", FUNCTION_HELP)
    } else {
        args::unknown_subcommand(sub, "FUNCTION")
    }
}

/// FUNCTION LOAD [REPLACE] code
fn load(ctx: &mut WriteCtx, rest: &[Bytes]) -> Frame {
    // Redis's order: every argument but the last is an option (REPLACE, possibly repeated).
    let Some((code, options)) = rest.split_last() else {
        return Frame::error("ERR Function code is missing");
    };
    if let Some(other) = options.iter().find(|o| !is(o, "replace")) {
        return Frame::error(format!("ERR Unknown option given: {}", String::from_utf8_lossy(other)));
    }
    let replace = !options.is_empty();
    let limits = Limits { max_steps: ctx.ks.scripts.max_steps, seed: ctx.rng.next_u64(), kill: None };
    let (name, functions) = match script::load_library(code, limits) {
        Ok(loaded) => loaded,
        Err(e) => return e,
    };
    let lib = Library { name: name.clone(), code: code.clone(), functions };
    match ctx.ks.functions.load(lib, replace) {
        Ok(()) => Frame::bulk(name),
        Err(e) => Frame::error(e),
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn list(functions: &Functions, opts: &[Bytes]) -> Frame {
    let (mut pattern, mut with_code, mut i) = (None, false, 0);
    while i < opts.len() {
        if is(&opts[i], "withcode") && !with_code {
            with_code = true;
        } else if is(&opts[i], "libraryname") && pattern.is_none() {
            let Some(p) = opts.get(i + 1) else {
                return Frame::error("ERR library name argument was not given");
            };
            pattern = Some(p.clone());
            i += 1;
        } else {
            return Frame::error(format!("ERR Unknown argument {}", String::from_utf8_lossy(&opts[i])));
        }
        i += 1;
    }
    let libs = functions
        .libraries()
        .filter(|lib| pattern.as_ref().is_none_or(|p| glob::matches(p, lib.name.as_bytes(), false)))
        .map(|lib| library_entry(lib, with_code))
        .collect();
    Frame::Array(libs)
}

fn library_entry(lib: &Library, with_code: bool) -> Frame {
    let b = |s: &str| Frame::bulk(Bytes::copy_from_slice(s.as_bytes()));
    let functions = lib
        .functions
        .iter()
        .map(|f| {
            Frame::Map(vec![
                (b("name"), b(&f.name)),
                (b("description"), f.description.as_deref().map_or(Frame::Null, b)),
                (
                    b("flags"),
                    Frame::Set(f.flags.iter().map(|s| Frame::Simple(Bytes::copy_from_slice(s.as_bytes()))).collect()),
                ),
            ])
        })
        .collect();
    let mut entry =
        vec![(b("library_name"), b(&lib.name)), (b("engine"), b("LUA")), (b("functions"), Frame::Array(functions))];
    if with_code {
        entry.push((b("library_code"), Frame::Bulk(lib.code.clone())));
    }
    Frame::Map(entry)
}

fn stats(functions: &Functions) -> Frame {
    let b = |s: &str| Frame::bulk(Bytes::copy_from_slice(s.as_bytes()));
    let lua = Frame::Map(vec![
        (b("libraries_count"), Frame::Integer(functions.libraries().count() as i64)),
        (b("functions_count"), Frame::Integer(functions.function_count() as i64)),
    ]);
    Frame::Map(vec![(b("running_script"), Frame::Null), (b("engines"), Frame::Map(vec![(b("LUA"), lua)]))])
}
