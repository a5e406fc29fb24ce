//! The Rust half of the sandbox: the functions behind `redis.*` and math.random, handed to
//! `sandbox.lua`, which builds the environment a script sees. Functions that fail as Redis's C
//! functions raise return `(error table, true)`; the Lua side raises it.

use super::convert::{error_table, number_arg, push_error_text, reply_to_lua};
use super::rand48::Rand48;
use super::{Budget, Host};
use bytes::Bytes;
use mlua::chunk::ChunkMode;
use mlua::{ffi, Function, Lua, MultiValue, Table, Value};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::os::raw::{c_int, c_void};
use std::rc::Rc;
use std::sync::OnceLock;

const SANDBOX: &str = include_str!("sandbox.lua");
/// Redis's `REDIS_VERSION_NUM` for [`crate::REDIS_VERSION`] (0x00MMmmpp).
const VERSION_NUM: u32 = 0x07_00_0f;

/// What the sandbox gives back.
pub struct Env {
    /// The read-only globals a script runs in.
    pub env: Table,
    /// The real globals (KEYS and ARGV go there).
    pub globals: Table,
    /// `run(f, ...)`: calls `f` under the error handler; returns ok and its result or error.
    pub run: Function,
    /// The functions `redis.register_function` recorded: name -> {callback, flags, description}.
    pub registered: Table,
    /// `seal()`: ends a library's load phase (its functions then see the whole environment,
    /// and `redis.register_function` refuses to run).
    pub seal: Function,
    /// `reset(loading)`: clears the sandbox's per-run state (tostring names, registered functions)
    /// and sets the environment of the next run's [`Mode`].
    pub reset: Function,
    /// The libraries' settings (`cjson.encode_max_depth` ...), reset before each run too.
    pub libs: super::libs::State,
}

/// Which environment to build: a script's (EVAL), a library being loaded (FUNCTION LOAD: only
/// `redis.register_function`, `redis.log` and the constants), or a library whose function is
/// called (FCALL: the whole `redis` table and `register_function`).
/// An interpreter serves runs of any mode: `reset` sets it for each run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Eval,
    Load,
    Fcall,
}

impl Mode {
    /// Whether `sandbox.lua`'s `reset` starts the run loading a library (a boolean: passing it
    /// makes no Lua string, which costs more than a small script's run).
    pub fn loading(self) -> bool {
        self != Mode::Eval
    }
}

/// What one run owns: its host, its RESP version, its budget and its math.random state.
pub struct RunCtx<'h> {
    pub host: RefCell<&'h mut dyn Host>,
    pub resp3: Cell<bool>,
    pub budget: Budget,
    pub rng: Cell<Rand48>,
}

/// Where the interpreter's Rust functions find the run in progress: set for the length of a
/// run only ([`Slot::bind`]), so the functions, built once per interpreter, never outlive it.
#[derive(Default)]
pub struct Slot(Cell<*const RunCtx<'static>>);

/// The binding of a run to a [`Slot`]; unbinds when dropped (a panic included).
pub struct Bound<'s, 'c> {
    slot: &'s Slot,
    _run: PhantomData<&'c RunCtx<'c>>,
}

impl Slot {
    /// Makes `run` the run the interpreter's functions see until the result is dropped.
    pub fn bind<'s, 'c>(&'s self, run: &'c RunCtx<'_>) -> Bound<'s, 'c> {
        self.0.set((run as *const RunCtx<'_>).cast());
        Bound { slot: self, _run: PhantomData }
    }

    /// Calls `f` with the run in progress; an error if none (a function kept past its run).
    pub fn with<R>(&self, f: impl FnOnce(&RunCtx<'_>) -> mlua::Result<R>) -> mlua::Result<R> {
        let run = self.0.get();
        if run.is_null() {
            return Err(mlua::Error::runtime("no script is running"));
        }
        // SAFETY: a non-null pointer was set by `bind` from a `RunCtx` that the live `Bound`
        // borrows, and `Bound` clears it when dropped; the reference does not escape `f`.
        f(unsafe { &*run })
    }
}

impl Drop for Bound<'_, '_> {
    fn drop(&mut self) {
        self.slot.0.set(std::ptr::null());
    }
}

/// Builds the environment in `lua`: its functions reach each run through `slot`. `shared` (an
/// interpreter kept between runs): `collectgarbage` and `gcinfo` refuse to run.
pub fn install(lua: &Lua, slot: &Rc<Slot>, shared: bool) -> mlua::Result<Env> {
    let s = Rc::clone(slot);
    let call = lua.create_function(move |lua, args: MultiValue| s.with(|run| redis_call(lua, run, &args)))?;
    let s = Rc::clone(slot);
    let pcall = lua.create_function(move |lua, args: MultiValue| s.with(|run| redis_call(lua, run, &args)))?;
    let pcall = packing(lua, pcall)?;
    let raw_lib = lua.create_table()?;
    raw_lib.raw_set("sha1hex", lua.create_function(sha1hex)?)?;
    raw_lib.raw_set("log", lua.create_function(log)?)?;
    let s = Rc::clone(slot);
    let setresp_fn = lua.create_function(move |lua, args: MultiValue| s.with(|run| setresp(lua, args, &run.resp3)))?;
    raw_lib.raw_set("setresp", setresp_fn)?;
    raw_lib.raw_set("set_repl", lua.create_function(set_repl)?)?;
    let s = Rc::clone(slot);
    let acl = lua.create_function(move |lua, args: MultiValue| s.with(|run| acl_check(lua, &args, &run.host)))?;
    let acl = packing(lua, acl)?;
    raw_lib.raw_set("acl_check_cmd", acl)?;
    raw_lib.raw_set("error_reply", lua.create_function(|lua, args: MultiValue| error_reply(lua, args))?)?;
    raw_lib.raw_set("status_reply", lua.create_function(|lua, args: MultiValue| status_reply(lua, args))?)?;
    let s = Rc::clone(slot);
    let rand = lua.create_function(move |_, ()| {
        s.with(|run| {
            let mut r = run.rng.get();
            let v = r.next();
            run.rng.set(r);
            Ok(f64::from(v))
        })
    })?;
    let s = Rc::clone(slot);
    let srand = lua.create_function(move |_, seed: f64| {
        s.with(|run| {
            run.rng.set(Rand48::new(super::c_double_to_i64(seed) as i32));
            Ok(())
        })
    })?;
    let s = Rc::clone(slot);
    let exhausted = lua.create_function(move |_, ()| s.with(|run| Ok(run.budget.stopped())))?;
    let s = Rc::clone(slot);
    let gc_refused = lua.create_function(move |_, _: MultiValue| {
        s.with(|run| {
            run.budget.refuse();
            Err::<(), _>(mlua::Error::runtime("the collector is not available in a shared interpreter"))
        })
    })?;
    for name in ["sha1hex", "log", "setresp", "set_repl", "acl_check_cmd"] {
        let f: Function = raw_lib.raw_get(name)?;
        raw_lib.raw_set(name, raising(lua, f)?)?;
    }
    let libs = super::libs::install(lua)?;
    let gc_refused = if shared { Value::Function(gc_refused) } else { Value::Nil };
    let call = raising(lua, packing(lua, call)?)?;
    let args = (call, pcall, raw_lib, rand, srand, exhausted, crate::REDIS_VERSION, VERSION_NUM, gc_refused);
    let (env, globals, run, registered, seal, reset) = lua
        .load(sandbox_bytecode(lua)?)
        .set_name("=raftis")
        .set_mode(ChunkMode::Binary)
        .call::<(Table, Table, Function, Table, Function, Function)>(args)?;
    Ok(Env { env, globals, run, registered, seal, reset, libs })
}

/// `sandbox.lua` compiled once per process (debug info kept, for the error handler's lines):
/// parsing it in every fresh interpreter was half the cost of running a small script. The
/// bytecode is a function of the source only, so every node and replica loads the same code.
fn sandbox_bytecode(lua: &Lua) -> mlua::Result<&'static [u8]> {
    static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(code) = BYTECODE.get() {
        return Ok(code);
    }
    let f = lua.load(SANDBOX).set_name("=raftis").set_mode(ChunkMode::Text).into_function()?;
    Ok(BYTECODE.get_or_init(|| f.dump(false)))
}

/// `f`, which returns `(failed, values...)`, as a C function that returns the values or raises
/// the first one. A C function, as Redis's are: a script calling it in a tail position
/// (`return redis.call(...)`) keeps its own frame, so the error handler still finds the
/// script's line.
pub fn raising(lua: &Lua, f: Function) -> mlua::Result<Function> {
    // SAFETY: `f` is the only value pushed; `lua_pushcclosure` pops it as the closure's one
    // upvalue and leaves the closure, the single result `exec_raw` returns.
    unsafe { lua.exec_raw(f, |state| ffi::lua_pushcclosure(state, raise_failure, 1)) }
}

/// Calls upvalue 1 with the arguments; raises its second result if its first is true, else
/// returns every result after the first.
unsafe extern "C-unwind" fn raise_failure(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C closure made by `raising`, so upvalue 1 is the function,
    // which always returns the flag first. Nothing here owns a Rust value, so Lua's error
    // jumps cross no destructor.
    unsafe {
        let nargs = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
        if ffi::lua_toboolean(state, 1) != 0 {
            ffi::lua_settop(state, 2);
            ffi::lua_error(state);
        }
        ffi::lua_remove(state, 1);
        ffi::lua_gettop(state)
    }
}

/// `f` as a C function that passes more than [`PACK_ABOVE`] arguments packed, as
/// `(PACKED, {n = count, ...})` (Redis's `redis.call` reads its arguments from Lua's stack: a
/// script may pass thousands, `unpack`ed, more than mlua has reference slots for if each became
/// a Rust value at once). Fewer go as they are: packing costs more than the call.
pub fn packing(lua: &Lua, f: Function) -> mlua::Result<Function> {
    // SAFETY: as in `raising`: `f` becomes the closure's one upvalue.
    unsafe { lua.exec_raw(f, |state| ffi::lua_pushcclosure(state, pack_arguments, 1)) }
}

/// More arguments than this are packed.
const PACK_ABOVE: c_int = 64;

/// The light userdata that marks packed arguments (no script can make one with its address).
static PACKED: u8 = 0;

fn packed_marker() -> *mut c_void {
    std::ptr::addr_of!(PACKED).cast_mut().cast()
}

/// Calls upvalue 1 with the arguments (packed beyond [`PACK_ABOVE`]) and returns its results.
unsafe extern "C-unwind" fn pack_arguments(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C closure made by `packing`, so upvalue 1 is the function.
    // Every push is covered: the table replaces the arguments, then the marker and the
    // function are pushed (a C function starts with LUA_MINSTACK free slots). Nothing here
    // owns a Rust value, so Lua's error jumps (out of memory) cross no destructor.
    unsafe {
        let nargs = ffi::lua_gettop(state);
        if nargs <= PACK_ABOVE {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_insert(state, 1);
            ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
            return ffi::lua_gettop(state);
        }
        ffi::lua_createtable(state, nargs, 1);
        ffi::lua_insert(state, 1);
        for i in (1..=nargs).rev() {
            ffi::lua_rawseti(state, 1, ffi::lua_Integer::from(i));
        }
        ffi::lua_pushinteger(state, nargs as ffi::lua_Integer);
        ffi::lua_setfield(state, 1, c"n".as_ptr());
        ffi::lua_pushlightuserdata(state, packed_marker());
        ffi::lua_insert(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, 2, ffi::LUA_MULTRET);
        ffi::lua_gettop(state)
    }
}

/// `(true, error table)`: a failure `raising` raises.
fn fail(lua: &Lua, msg: &str) -> mlua::Result<(bool, Value)> {
    Ok((true, error_table(lua, &push_error_text(msg.as_bytes()))?))
}

/// The arguments of redis.call (maybe packed by [`packing`]) as a command line (Redis's
/// `luaArgsToRedisArgv`): strings as they are, numbers as `%.17g`, anything else refused.
/// Packed arguments are read and dropped in turn, so any number of them holds one reference.
fn command_line(args: &MultiValue) -> mlua::Result<Result<Vec<Bytes>, &'static str>> {
    // By reference: a clone of each argument would take and free a reference slot of its own.
    let arg = |v: &Value| match v {
        Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Ok(Bytes::from(number_arg(*n as f64))),
        Value::Number(n) => Ok(Bytes::from(number_arg(*n))),
        _ => Err("Lua redis lib command arguments must be strings or integers"),
    };
    let packed = match (args.front(), args.get(1)) {
        (Some(Value::LightUserData(p)), Some(Value::Table(t))) if args.len() == 2 && p.0 == packed_marker() => t,
        _ if args.is_empty() => return Ok(Err("Please specify at least one argument for this redis lib call")),
        _ => return Ok(args.iter().map(arg).collect()),
    };
    let n: usize = packed.raw_get("n")?;
    let mut argv = Vec::with_capacity(n);
    for i in 1..=n {
        match arg(&packed.raw_get::<Value>(i)?) {
            Ok(a) => argv.push(a),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(argv))
}

fn redis_call(lua: &Lua, run: &RunCtx<'_>, args: &MultiValue) -> mlua::Result<(bool, Value)> {
    // A run that must stop (budget, kill, a refusal of its interpreter) runs no more commands,
    // even if some code swallowed the error that stops it.
    if run.budget.stopped() {
        return Err(mlua::Error::runtime("script stopped (step budget or kill)"));
    }
    let argv = match command_line(args)? {
        Ok(argv) => argv,
        Err(msg) => return fail(lua, msg),
    };
    let reply = run.host.try_borrow_mut().map_err(|_| mlua::Error::RecursiveMutCallback)?.call(argv);
    Ok((reply.is_error(), reply_to_lua(lua, &reply, run.resp3.get())?))
}

fn sha1hex(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return fail(lua, "wrong number of arguments");
    }
    let data = match lua.coerce_string(args[0].clone())? {
        Some(s) => s.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let hex = crate::store::scripts::sha1_hex(&data);
    Ok((false, Value::String(lua.create_string(hex)?)))
}

fn log(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() < 2 {
        return fail(lua, "redis.log() requires two arguments or more.");
    }
    let Some(level) = lua.coerce_number(args[0].clone())? else {
        return fail(lua, "First argument must be a number (log level).");
    };
    let level = super::c_double_to_i64(level);
    if !(0..=3).contains(&level) {
        return fail(lua, "Invalid debug level.");
    }
    let mut parts = Vec::new();
    for v in args.iter().skip(1) {
        if let Some(s) = lua.coerce_string(v.clone())? {
            parts.push(s.to_string_lossy());
        }
    }
    let text = parts.join(" ");
    match level {
        3 => tracing::warn!(target: "raftis::script", "{text}"),
        2 => tracing::info!(target: "raftis::script", "{text}"),
        _ => tracing::debug!(target: "raftis::script", "{text}"),
    }
    Ok((false, Value::Nil))
}

fn setresp(lua: &Lua, args: MultiValue, resp3: &Cell<bool>) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return fail(lua, "redis.setresp() requires one argument.");
    }
    match lua.coerce_number(args[0].clone())?.map(super::c_double_to_i64) {
        Some(2) => resp3.set(false),
        Some(3) => resp3.set(true),
        _ => return fail(lua, "RESP version must be 2 or 3."),
    }
    Ok((false, Value::Nil))
}

fn set_repl(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return fail(lua, "redis.set_repl() requires two arguments.");
    }
    let flags = lua.coerce_number(args[0].clone())?.map_or(0, super::c_double_to_i64);
    if flags & !3 != 0 {
        return fail(lua, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
    }
    // A script is replicated as itself (one log entry), never by its effects: nothing to set.
    Ok((false, Value::Nil))
}

fn acl_check(lua: &Lua, args: &MultiValue, host: &RefCell<&mut dyn Host>) -> mlua::Result<(bool, Value)> {
    let argv = match command_line(args)? {
        Ok(argv) => argv,
        Err(msg) => return fail(lua, msg),
    };
    let host = host.try_borrow().map_err(|_| mlua::Error::RecursiveMutCallback)?;
    if !host.knows_command(&argv[0]) {
        return fail(lua, "Invalid command passed to redis.acl_check_cmd()");
    }
    Ok((false, Value::Boolean(host.acl_allows(&argv))))
}

/// `redis.error_reply(msg)`: `{err=msg}` with a code; a bad argument gives the error table of
/// that mistake (returned, not raised, as Redis does).
fn error_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    match single_string(&args) {
        Some(s) => {
            let s = s.as_bytes();
            let text = if s.first() == Some(&b'-') { s.to_vec() } else { [b"-", &s[..]].concat() };
            error_table(lua, &push_error_text(&text))
        }
        None => error_table(lua, &push_error_text(b"wrong number or type of arguments")),
    }
}

fn status_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    match single_string(&args) {
        Some(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", s.clone())?;
            Ok(Value::Table(t))
        }
        None => error_table(lua, &push_error_text(b"wrong number or type of arguments")),
    }
}

fn single_string(args: &MultiValue) -> Option<&mlua::LuaString> {
    match args.iter().collect::<Vec<_>>().as_slice() {
        [Value::String(s)] => Some(s),
        _ => None,
    }
}
