//! The libraries Redis 7.0 loads into its Lua: `bit` (LuaBitOp), `cjson`, `cmsgpack` and
//! `struct`, written in Rust with the C libraries' behaviour and error texts for what scripts
//! commonly do. Each function is a C function that raises its error with the position of its
//! caller, as `luaL_error` does. `cjson`'s settings are the only state they keep ([`State`]).

mod bit;
mod cjson;
mod cmsgpack;
mod structlib;

use super::env::raising;
use mlua::{Function, Lua, MultiValue, Table, Value};

/// A library function's values, or the message of the error it raises.
pub type LibResult = Result<MultiValue, String>;

/// What the libraries keep between calls: the global `cjson`'s settings.
pub struct State {
    cjson: cjson::Settings,
}

impl State {
    /// Puts every setting back to Redis's defaults (before each run, so none leaks into the
    /// next run of a shared interpreter).
    pub fn reset(&self) {
        self.cjson.set(cjson::Config::default());
    }
}

/// Registers the four libraries as globals of `lua`.
pub fn install(lua: &Lua) -> mlua::Result<State> {
    let g = lua.globals();
    let (json, settings) = cjson::library(lua)?;
    g.raw_set("bit", bit::library(lua)?)?;
    g.raw_set("cjson", json)?;
    g.raw_set("cmsgpack", cmsgpack::library(lua)?)?;
    g.raw_set("struct", structlib::library(lua)?)?;
    Ok(State { cjson: settings })
}

/// `f` as a Lua function: its values, or its error raised as `luaL_error` raises it (the
/// message prefixed with the caller's `source:line: ` when the caller is Lua code).
fn function(lua: &Lua, f: impl Fn(&Lua, MultiValue) -> mlua::Result<LibResult> + 'static) -> mlua::Result<Function> {
    let inner = lua.create_function(move |lua, args: MultiValue| {
        let mut out = match f(lua, args)? {
            Ok(values) => values,
            Err(msg) => {
                // Level 0 is this function, 1 the `raising` closure, 2 the caller.
                let msg = format!("{}{msg}", position(lua, 2));
                let mut out = MultiValue::new();
                out.push_back(Value::String(lua.create_string(msg)?));
                out.push_front(Value::Boolean(true));
                return Ok(out);
            }
        };
        out.push_front(Value::Boolean(false));
        Ok(out)
    })?;
    raising(lua, inner)
}

/// `luaL_where`: `short_src:line: ` of the function at `level`, or nothing for a C function.
fn position(lua: &Lua, level: usize) -> String {
    lua.inspect_stack(level, |d| {
        let line = d.current_line().unwrap_or(0);
        let src = d.source().short_src.map(|s| s.to_string()).unwrap_or_default();
        if line > 0 {
            format!("{src}:{line}: ")
        } else {
            String::new()
        }
    })
    .unwrap_or_default()
}

/// Adds `name = f` to `t`.
fn add(
    lua: &Lua,
    t: &Table,
    name: &str,
    f: impl Fn(&Lua, MultiValue) -> mlua::Result<LibResult> + 'static,
) -> mlua::Result<()> {
    t.raw_set(name, function(lua, f)?)
}

/// One value as a result.
fn one(v: Value) -> LibResult {
    let mut out = MultiValue::new();
    out.push_back(v);
    Ok(out)
}

/// Lua's `typename` of a value, for "X expected, got Y" messages.
fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(v) => v.type_name(),
    }
}

/// `luaL_checknumber` for argument `n` (1-based) of function `fname`.
fn check_number(lua: &Lua, args: &MultiValue, n: usize, fname: &str) -> mlua::Result<Result<f64, String>> {
    let v = args.get(n - 1);
    let num = match v {
        Some(v) => lua.coerce_number(v.clone())?,
        None => None,
    };
    Ok(num.ok_or_else(|| format!("bad argument #{n} to '{fname}' (number expected, got {})", type_name(v))))
}

/// `luaL_checklstring` for argument `n`.
fn check_string(lua: &Lua, args: &MultiValue, n: usize, fname: &str) -> mlua::Result<Result<Vec<u8>, String>> {
    let v = args.get(n - 1);
    let s = match v {
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec())
        }
        _ => None,
    };
    Ok(s.ok_or_else(|| format!("bad argument #{n} to '{fname}' (string expected, got {})", type_name(v))))
}
