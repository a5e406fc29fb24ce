//! Functions (FUNCTION LOAD, FCALL): a library is Lua code behind a `#!lua name=<lib>` line
//! whose top level registers functions with `redis.register_function`. Loading runs it in a
//! restricted environment to learn its functions; FCALL runs it again (its compiled chunk
//! cached) in the thread's shared interpreter, or a fresh one when the shared one refuses, and
//! calls the function's callback with the keys and arguments. Running the library's top level
//! again for every call is what keeps calls independent: a library's locals (upvalues of its
//! functions) start afresh, as in a fresh interpreter, so no call sees what an earlier one on
//! this replica left (a replica restarted or installed from a snapshot has run none).

use super::env::{Env, Mode};
use super::{
    error_reply, in_vm, lua_to_reply, running_error, shared_or_fresh, string_array, Chunk, Host, Limits, Outcome,
};
use crate::protocol::split_args;
use crate::protocol::Frame;
use crate::store::functions::FunctionDef;
use bytes::Bytes;
use mlua::{Function, Lua, Table, Value};
use std::cell::Cell;

const COMPILE_ERROR: &str = "Error compiling function";

/// A library's name and the code Lua compiles (the `#!` line turned into a comment, so line
/// numbers stay those of the code as sent), or Redis's error for bad metadata.
fn parse_shebang(code: &[u8]) -> Result<(String, Vec<u8>), Frame> {
    if !code.starts_with(b"#!") {
        return Err(Frame::error("ERR Missing library metadata"));
    }
    let line_end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    // Redis splits the line as sdssplitargs does (quotes allowed), `#!` included.
    let Some(parts) = split_args(&code[..line_end]).filter(|p| !p.is_empty()) else {
        return Err(Frame::error("ERR Invalid library metadata"));
    };
    let engine = String::from_utf8_lossy(&parts[0][2.min(parts[0].len())..]).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        let part = String::from_utf8_lossy(part);
        let prefix = part.get(..5).filter(|p| p.eq_ignore_ascii_case("name="));
        if prefix.is_none() {
            return Err(Frame::error(format!("ERR Invalid metadata value given: {part}")));
        }
        if name.is_some() {
            return Err(Frame::error("ERR Invalid metadata value, name argument was given multiple times"));
        }
        name = Some(part[5..].to_string());
    }
    let Some(name) = name else {
        return Err(Frame::error("ERR Library name was not given"));
    };
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Frame::error(format!("ERR Engine '{engine}' not found")));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Frame::error(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    let mut lua_code = code.to_vec();
    lua_code[..2].copy_from_slice(b"--");
    Ok((name, lua_code))
}

/// A host for loading: a library's top level cannot run commands.
struct NoCommands;

impl Host for NoCommands {
    fn call(&mut self, _argv: Vec<Bytes>) -> Frame {
        Frame::error("ERR redis.call is not available while loading a library")
    }

    fn knows_command(&self, _name: &[u8]) -> bool {
        false
    }
    fn acl_allows(&self, _argv: &[Bytes]) -> bool {
        true
    }
}

/// FUNCTION LOAD's check of `code`: the library's name and functions (sorted by name).
pub fn load_library(code: &[u8], limits: Limits) -> Result<(String, Vec<FunctionDef>), Frame> {
    let (name, lua_code) = parse_shebang(code)?;
    let chunk = Chunk { name: "@user_function", body: &lua_code, compile_error: COMPILE_ERROR };
    let ran = in_vm(&mut NoCommands, limits, Mode::Load, &chunk, |_, env, f, _| {
        Ok(match env.run.call::<(bool, Value)>(f)? {
            (true, _) => Ok(definitions(&env.registered)?),
            (false, err) => Err(registering_error(&err)),
        })
    });
    let defs = match ran {
        Ok(Ok(defs)) => defs,
        Ok(Err(e)) => return Err(e),
        Err(Outcome::CompileError(e) | Outcome::Done(e)) => return Err(e),
        Err(Outcome::Exhausted | Outcome::Killed) => {
            return Err(Frame::error("ERR FUNCTION LOAD timeout: lua-max-steps exceeded"))
        }
    };
    if defs.is_empty() {
        return Err(Frame::error("ERR No functions registered"));
    }
    Ok((name, defs))
}

fn registering_error(err: &Value) -> Frame {
    let msg = match err {
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => s.to_string_lossy(),
            _ => "ERR unknown error".to_string(),
        },
        Value::String(s) => s.to_string_lossy(),
        _ => "ERR unknown error".to_string(),
    };
    Frame::error(format!("ERR Error registering functions: {msg}").replace(['\r', '\n'], " "))
}

/// The registered functions as definitions, sorted by name.
fn definitions(registered: &Table) -> mlua::Result<Vec<FunctionDef>> {
    let mut defs = Vec::new();
    for pair in registered.clone().pairs::<String, Table>() {
        let (name, entry) = pair?;
        let flags: Vec<String> =
            entry.raw_get::<Table>("flags")?.sequence_values::<String>().collect::<Result<_, _>>()?;
        let description: Option<String> = entry.raw_get("description")?;
        defs.push(FunctionDef { name, flags, description });
    }
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(defs)
}

/// An FCALL: the library's code, the function, its keys and arguments.
pub struct Call<'a> {
    pub code: &'a [u8],
    pub function: &'a str,
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
}

/// Runs function `call.function` of the library `call.code`.
pub fn fcall(host: &mut dyn Host, call: &Call, limits: Limits) -> Outcome {
    let lua_code = match parse_shebang(call.code) {
        Ok((_, code)) => code,
        Err(e) => return Outcome::Done(e),
    };
    let chunk = Chunk { name: "@user_function", body: &lua_code, compile_error: COMPILE_ERROR };
    shared_or_fresh(host, limits, Mode::Fcall, &chunk, call_function(call))
}

/// A fresh interpreter's FCALL, to compare the shared one with (tests).
#[cfg(test)]
pub fn fcall_fresh(host: &mut dyn Host, call: &Call, limits: Limits) -> Outcome {
    let lua_code = match parse_shebang(call.code) {
        Ok((_, code)) => code,
        Err(e) => return Outcome::Done(e),
    };
    let chunk = Chunk { name: "@user_function", body: &lua_code, compile_error: COMPILE_ERROR };
    super::in_vm(host, limits, Mode::Fcall, &chunk, call_function(call)).map_or_else(|o| o, Outcome::Done)
}

/// What an FCALL runs once the library is compiled: its top level (registering its functions
/// anew), then the function called.
fn call_function<'c>(call: &'c Call<'c>) -> impl Fn(&Lua, &Env, Function, &Cell<bool>) -> mlua::Result<Frame> + 'c {
    let name = call.function;
    move |lua: &Lua, env: &Env, f: Function, resp3: &Cell<bool>| {
        if let (false, err) = env.run.call::<(bool, Value)>(f)? {
            return Ok(error_reply(&err, name));
        }
        env.seal.call::<()>(())?;
        let Ok(Value::Table(entry)) = env.registered.raw_get::<Value>(name) else {
            return Ok(Frame::error("ERR Function not found"));
        };
        let callback: Function = entry.raw_get("callback")?;
        let (keys, args) = (string_array(lua, call.keys)?, string_array(lua, call.args)?);
        Ok(match env.run.call::<(bool, Value)>((callback, keys, args)) {
            Ok((true, value)) => lua_to_reply(lua, &value, resp3.get()),
            Ok((false, err)) => error_reply(&err, name),
            Err(e) => running_error(name, &e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_errors_are_redis_s() {
        let err = |code: &str| parse_shebang(code.as_bytes()).err();
        assert_eq!(err("return 1"), Some(Frame::error("ERR Missing library metadata")));
        assert_eq!(err("#!lua\nx"), Some(Frame::error("ERR Library name was not given")));
        assert_eq!(err("#!lua name=a foo=b\nx"), Some(Frame::error("ERR Invalid metadata value given: foo=b")));
        assert_eq!(err("#!js name=a\nx"), Some(Frame::error("ERR Engine 'js' not found")));
        assert!(err("#!lua name=b-c\nx").is_some());
        assert_eq!(parse_shebang(b"#!lua name=ok\nx").ok(), Some(("ok".into(), b"--lua name=ok\nx".to_vec())));
        assert_eq!(err("#! name=a\nx"), Some(Frame::error("ERR Engine '' not found")));
        let twice = Frame::error("ERR Invalid metadata value, name argument was given multiple times");
        assert_eq!(err("#!lua name=a name=b\nx"), Some(twice));
        assert_eq!(parse_shebang(b"#!lua name=\"q\"\nx").ok().map(|(n, _)| n), Some("q".into()));
    }
}
