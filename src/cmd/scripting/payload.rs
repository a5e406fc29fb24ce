//! FUNCTION DUMP and FUNCTION RESTORE in Redis 7.0's format: each library as the opcode
//! `FUNCTION2` and its code (an RDB string), then the RDB version and CRC-64 trailer of every
//! DUMP payload (`store::rdb`). RESTORE loads every library of the payload (running its code,
//! as FUNCTION LOAD does, at apply) before it changes anything, then FLUSHes, APPENDs or
//! REPLACEs as asked: all or nothing, with Redis's errors.

use crate::cmd::WriteCtx;
use crate::protocol::Frame;
use crate::script::{self, Limits};
use crate::store::functions::{Functions, Library};
use crate::store::rdb::{self, types, Reader};
use bytes::Bytes;
use rand::RngCore;

/// FUNCTION DUMP: every library, by name.
pub fn dump(functions: &Functions) -> Frame {
    let mut out = Vec::new();
    for lib in functions.libraries() {
        out.push(types::FUNCTION2);
        rdb::put_string(&mut out, &lib.code);
    }
    Frame::Bulk(Bytes::from(rdb::seal(out)))
}

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    Flush,
    Append,
    Replace,
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
pub fn restore(ctx: &mut WriteCtx, argv: &[Bytes]) -> Frame {
    match restore_inner(ctx, argv) {
        Ok(()) => Frame::ok(),
        Err(e) => Frame::error(e),
    }
}

fn restore_inner(ctx: &mut WriteCtx, argv: &[Bytes]) -> Result<(), String> {
    let policy = match argv.get(3) {
        None => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
        Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
        Some(_) => {
            return Err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.".into());
        }
    };
    let body = rdb::verify(&argv[2]).map_err(|_| "ERR DUMP payload version or checksum are wrong".to_string())?;
    let restored = load_all(ctx, body)?;
    let merged = match policy {
        Policy::Flush => restored,
        Policy::Append | Policy::Replace => join(&ctx.ks.functions, restored, policy == Policy::Replace)?,
    };
    ctx.ks.functions = merged;
    ctx.ks.dirty += 1;
    Ok(())
}

/// Every library of the payload body, each loaded (compiled and registered) as FUNCTION LOAD
/// would, into a set of their own.
fn load_all(ctx: &mut WriteCtx, body: &[u8]) -> Result<Functions, String> {
    let mut r = Reader::new(body);
    let mut out = Functions::default();
    while !r.is_empty() {
        match r.u8().map_err(|_| "ERR can not read data type")? {
            types::FUNCTION2 => {}
            types::FUNCTION_PRE_GA => return Err("ERR Pre-GA function format not supported".into()),
            _ => return Err("ERR given type is not a function".into()),
        }
        let code = Bytes::from(r.string().map_err(|_| "ERR failed loading the given functions payload")?);
        let limits = Limits { max_steps: ctx.ks.scripts.max_steps, seed: ctx.rng.next_u64(), kill: None };
        let (name, functions) = script::load_library(&code, limits).map_err(|e| error_text(&e))?;
        out.load(Library { name, code, functions }, false)?;
    }
    Ok(out)
}

fn error_text(f: &Frame) -> String {
    match f {
        Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
        other => format!("ERR {other:?}"),
    }
}

/// `current` with `restored` added (Redis's `libraryJoin`): a library name already present
/// fails unless `replace`, a function name another library keeps always fails.
fn join(current: &Functions, restored: Functions, replace: bool) -> Result<Functions, String> {
    let mut merged = current.clone();
    for lib in restored.libraries() {
        if merged.library(&lib.name).is_some() {
            if !replace {
                return Err(format!("ERR Library {} already exists", lib.name));
            }
            merged.delete(&lib.name);
        }
    }
    for lib in restored.libraries() {
        if let Some(f) = lib.functions.iter().find(|f| merged.find(&f.name).is_some()) {
            return Err(format!("ERR Function {} already exists", f.name));
        }
    }
    for lib in restored.libraries() {
        merged.load(lib.clone(), false)?;
    }
    Ok(merged)
}
