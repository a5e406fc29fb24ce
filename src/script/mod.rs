//! The Lua engine of EVAL (and FCALL): Redis 7.0's scripting environment on Lua 5.1 (mlua,
//! vendored), with no I/O and nothing that differs between replicas.
//!
//! A run gets an interpreter with the sandbox installed (`sandbox.lua`: the `redis` table,
//! Redis's pcall and error handler, read-only globals, math.random on redisLrand48): EVAL and
//! FCALL the thread's shared one, falling back to a fresh one when the shared one cannot answer
//! exactly ([`vm`]); FUNCTION LOAD a fresh one. The script is compiled as `@user_script` (a
//! library as `@user_function`) and run under a step budget counted by an instruction hook. Commands reach the keyspace through a [`Host`], which the command layer implements
//! over a write or a read context; this module knows neither the keyspace nor the log.
//!
//! Determinism: a script sees only its keys, arguments, the replies of its commands, the
//! entry's seed (math.random) and its own instruction count, so every replica computes the
//! same thing; `tostring` of a table or function names it by order of first use instead of
//! its address; nothing of an earlier run on the same interpreter is visible, nor the
//! collector's history ([`vm`]). What remains (iteration order of tables keyed by tables or
//! functions) is documented in docs/ARCHITECTURE.md.

mod convert;
mod env;
mod function;
mod libs;
mod rand48;
mod raw;
mod vm;

pub use convert::{c_double_to_i64, lua_to_reply, push_error_text, reply_to_lua};
pub use function::{fcall, load_library, Call};

use env::Mode;

use crate::protocol::Frame;
use bytes::Bytes;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value, VmState};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a script's `redis.call` runs on.
pub trait Host {
    /// Runs one command (`argv[0]` is its name): its reply, or an error reply with Redis's
    /// text for a command a script may not run.
    fn call(&mut self, argv: Vec<Bytes>) -> Frame;
    /// Whether `name` is a command (`redis.acl_check_cmd`).
    fn knows_command(&self, name: &[u8]) -> bool;
    /// Whether the script's user may run `argv` (`redis.acl_check_cmd`); `argv[0]` is known.
    fn acl_allows(&self, argv: &[Bytes]) -> bool;
}

/// The Lua memory one run may use (an allocation past it fails as Lua's "not enough memory").
pub const MEMORY_LIMIT: usize = 256 << 20;
/// The hook runs every this many VM instructions; the budget is counted in these units.
const STEP_GRAIN: u32 = 100;

/// The script to run.
pub struct Script<'a> {
    /// Its name in error replies: the SHA-1 for EVAL.
    pub name: &'a str,
    pub body: &'a [u8],
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
}

/// What a run may use, fixed by the log entry (or by the read that runs it).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Step budget (VM instructions).
    pub max_steps: u64,
    /// Seed of math.random.
    pub seed: u64,
    /// Raised by `SCRIPT KILL` / `FUNCTION KILL`: polled with the step budget. Only read-path
    /// runs have one (a write script must end at the same step on every replica).
    pub kill: Option<Arc<AtomicBool>>,
}

/// How a run ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The script did not compile; nothing ran.
    CompileError(Frame),
    /// It ran to its end (its reply may be an error reply).
    Done(Frame),
    /// The step budget stopped it: the caller rolls back its writes.
    Exhausted,
    /// `SCRIPT KILL` / `FUNCTION KILL` stopped it (read-path runs only).
    Killed,
}

/// `ERR Error compiling script (new function): ...` if `body` is not a Lua chunk.
pub fn check_compiles(body: &[u8]) -> Result<(), Frame> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::new()).map_err(internal)?;
    let loader = lua.load(body).set_name("@user_script").set_mode(ChunkMode::Text);
    loader.into_function().map(drop).map_err(|e| compile_error(e, "Error compiling script (new function)"))
}

/// Runs `script` with `host` under `limits`: in this thread's shared interpreter, or, if that
/// one refuses the run, again in a fresh one that replays the commands the refused run ran.
pub fn eval(host: &mut dyn Host, script: &Script, limits: Limits) -> Outcome {
    let chunk =
        Chunk { name: "@user_script", body: script.body, compile_error: "Error compiling script (new function)" };
    let body = |lua: &Lua, env: &env::Env, f: Function, resp3: &Cell<bool>| {
        raw::set_string_arrays(lua, &env.globals, [("KEYS", script.keys), ("ARGV", script.args)])?;
        Ok(match raw::call_run(lua, &env.run, &f) {
            Ok((true, value)) => lua_to_reply(lua, &value, resp3.get()),
            Ok((false, err)) => error_reply(&err, script.name),
            Err(e) => running_error(script.name, &e.to_string()),
        })
    };
    shared_or_fresh(host, limits, Mode::Eval, &chunk, body)
}

/// Runs `chunk` in `mode` and `then` on this thread's shared interpreter, or, if that one
/// refuses the run, again in a fresh one that replays the commands the refused run ran.
fn shared_or_fresh<F>(host: &mut dyn Host, limits: Limits, mode: Mode, chunk: &Chunk, then: F) -> Outcome
where
    F: Fn(&Lua, &env::Env, Function, &Cell<bool>) -> mlua::Result<Frame>,
{
    let mut recorder = Recorder { inner: host, log: Vec::new(), bytes: 0, full: false };
    let ran = vm::with_shared(|vm| vm.run(&mut recorder, &limits, mode, chunk, &then));
    match ran {
        _ if recorder.full => {}
        Some(vm::Ran::Value(reply)) => return Outcome::Done(reply),
        Some(vm::Ran::Ended(outcome)) => return outcome,
        Some(vm::Ran::Refused) | None => {}
    }
    let Recorder { inner, log, .. } = recorder;
    let mut replay = Replay { inner, log, next: 0 };
    match in_vm(&mut replay, limits, mode, chunk, &then) {
        Ok(reply) => Outcome::Done(reply),
        Err(outcome) => outcome,
    }
}

/// A host that remembers each command a shared run ran and its reply, up to [`RECORD_LIMIT`]
/// bytes: past it, it runs nothing more (the run is then replayed in a fresh interpreter).
struct Recorder<'a> {
    inner: &'a mut dyn Host,
    log: Vec<(Vec<Bytes>, Frame)>,
    bytes: usize,
    full: bool,
}

/// What a shared run's record may hold (a script repeating a big argument would otherwise
/// keep a copy per call).
const RECORD_LIMIT: usize = 16 << 20;

impl Host for Recorder<'_> {
    fn call(&mut self, argv: Vec<Bytes>) -> Frame {
        self.bytes += argv.iter().map(|a| a.len() + 16).sum::<usize>();
        if self.full || self.bytes > RECORD_LIMIT {
            self.full = true;
            return Frame::error("ERR script record full");
        }
        let reply = self.inner.call(argv.clone());
        self.bytes += weight(&reply);
        self.log.push((argv, reply.clone()));
        reply
    }

    fn knows_command(&self, name: &[u8]) -> bool {
        self.inner.knows_command(name)
    }

    fn acl_allows(&self, argv: &[Bytes]) -> bool {
        self.inner.acl_allows(argv)
    }
}

/// Roughly the memory a reply holds.
fn weight(f: &Frame) -> usize {
    16 + match f {
        Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) | Frame::BigNumber(b) | Frame::Verbatim(_, b) => b.len(),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.iter().map(weight).sum(),
        Frame::Map(v) => v.iter().map(|(k, v)| weight(k) + weight(v)).sum(),
        _ => 0,
    }
}

/// The host of a fresh run after a refused shared one: the commands the refused run already
/// ran (the same ones, in the same order: both runs compute the same thing up to the point
/// of refusal) get their recorded replies instead of running twice; the rest run.
struct Replay<'a> {
    inner: &'a mut dyn Host,
    log: Vec<(Vec<Bytes>, Frame)>,
    next: usize,
}

impl Host for Replay<'_> {
    fn call(&mut self, argv: Vec<Bytes>) -> Frame {
        if let Some((ran, reply)) = self.log.get(self.next) {
            if *ran == argv {
                self.next += 1;
                return reply.clone();
            }
            tracing::error!(target: "raftis::script", "a script's fresh run diverged from its shared run");
            self.next = self.log.len();
        }
        self.inner.call(argv)
    }

    fn knows_command(&self, name: &[u8]) -> bool {
        self.inner.knows_command(name)
    }

    fn acl_allows(&self, argv: &[Bytes]) -> bool {
        self.inner.acl_allows(argv)
    }
}

/// The code a run compiles: its chunk name, and how its compile errors begin.
struct Chunk<'a> {
    name: &'static str,
    body: &'a [u8],
    compile_error: &'a str,
}

/// Compiles the chunk in a fresh interpreter set up for `mode` and hands it to `then`, which
/// runs under the step budget. `Err` is the outcome when `then` could not run or was stopped:
/// a compile error, the budget, an engine failure.
fn in_vm<R>(
    host: &mut dyn Host,
    limits: Limits,
    mode: Mode,
    chunk: &Chunk,
    then: impl FnOnce(&Lua, &env::Env, Function, &Cell<bool>) -> mlua::Result<R>,
) -> Result<R, Outcome> {
    let mut vm = vm::Vm::fresh().map_err(|e| Outcome::Done(internal(e)))?;
    match vm.run(host, &limits, mode, chunk, then) {
        vm::Ran::Value(value) => Ok(value),
        vm::Ran::Ended(outcome) => Err(outcome),
        vm::Ran::Refused => Err(Outcome::Done(Frame::error("ERR scripting engine error: run refused"))),
    }
}

/// The reply of a run the step budget stopped.
pub fn exhausted_reply(max_steps: u64, rolled_back: bool) -> Frame {
    let writes = if rolled_back { "; its writes were rolled back" } else { "" };
    Frame::error(format!("ERR Script aborted: it ran more than lua-max-steps ({max_steps}) instructions{writes}"))
}

/// The reply of a run `SCRIPT KILL` / `FUNCTION KILL` stopped (Redis's text, without the
/// line it was stopped at).
pub fn killed_reply() -> Frame {
    Frame::error("ERR Script killed by user with SCRIPT KILL...")
}

/// The step budget and the kill flag, shared by the hook and the functions that must not
/// swallow their error; and what else stops a run (a shared interpreter's refusal).
struct Budget {
    max: u64,
    steps: Cell<u64>,
    exhausted: Cell<bool>,
    kill: Option<Arc<AtomicBool>>,
    killed: Cell<bool>,
    /// The run called what a shared interpreter cannot answer exactly (`collectgarbage`).
    refused: Cell<bool>,
    /// In a shared interpreter: its allocator's refusal stops the run too.
    shared: bool,
    /// In a fresh interpreter: the heap size at which the collector starts again.
    gc_resume_at: Cell<Option<usize>>,
}

impl Budget {
    fn new(limits: &Limits, shared: bool) -> Self {
        Budget {
            max: limits.max_steps,
            steps: Cell::new(0),
            exhausted: Cell::new(false),
            kill: limits.kill.clone(),
            killed: Cell::new(false),
            refused: Cell::new(false),
            shared,
            gc_resume_at: Cell::new(None),
        }
    }

    fn step(&self, lua: &Lua) -> mlua::Result<VmState> {
        let steps = self.steps.get() + u64::from(STEP_GRAIN);
        self.steps.set(steps);
        if steps > self.max {
            self.exhausted.set(true);
        }
        if self.kill.as_ref().is_some_and(|k| k.load(Ordering::Relaxed)) {
            self.killed.set(true);
        }
        if self.gc_resume_at.get().is_some_and(|at| lua.used_memory() > at) {
            self.gc_resume_at.set(None);
            lua.gc_restart();
        }
        if self.stopped() {
            return Err(mlua::Error::runtime("script stopped (step budget or kill)"));
        }
        Ok(VmState::Continue)
    }

    /// Stops the run: it is run again in a fresh interpreter.
    fn refuse(&self) {
        self.refused.set(true);
    }

    /// Whether the run must end: no pcall may catch this.
    fn stopped(&self) -> bool {
        self.exhausted.get() || self.killed.get() || self.refused.get() || (self.shared && vm::memory_refused())
    }
}

fn compile(lua: &Lua, chunk: &Chunk, env: &Table) -> Result<Function, Frame> {
    let loader = lua.load(chunk.body).set_name(chunk.name).set_mode(ChunkMode::Text);
    loader.set_environment(env.clone()).into_function().map_err(|e| compile_error(e, chunk.compile_error))
}

fn compile_error(e: mlua::Error, what: &str) -> Frame {
    let msg = match e {
        mlua::Error::SyntaxError { message, .. } => message,
        other => other.to_string(),
    };
    Frame::error(one_line(&format!("ERR {what}: {msg}")))
}

fn string_array(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// The reply of an uncaught error (Redis's `luaCallFunction`): the error table's message, and
/// where it was raised.
fn error_reply(err: &Value, name: &str) -> Frame {
    let Value::Table(t) = err else {
        let msg = match err {
            Value::String(s) => s.to_string_lossy(),
            _ => "execution failure".to_string(),
        };
        return running_error(name, &msg);
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.as_bytes().to_vec(),
        Ok(Value::Integer(n)) => n.to_string().into_bytes(),
        Ok(Value::Number(n)) => convert_number(n).into_bytes(),
        _ => b"ERR error object without an err field".to_vec(),
    };
    let mut out = msg;
    let source = t.raw_get::<Value>("source");
    let line = t.raw_get::<Value>("line");
    if let (Ok(Value::String(source)), Ok(line)) = (source, line) {
        let line = match line {
            Value::Integer(n) => n.to_string(),
            Value::Number(n) => convert_number(n),
            _ => String::new(),
        };
        if !line.is_empty() {
            out.extend_from_slice(format!(" script: {name}, on ").as_bytes());
            out.extend_from_slice(&source.as_bytes());
            out.extend_from_slice(format!(":{line}.").as_bytes());
        }
    }
    Frame::Error(Bytes::from(
        out.into_iter().map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect::<Vec<_>>(),
    ))
}

/// Lua's `%.14g` for numbers in messages.
fn convert_number(n: f64) -> String {
    if n == n.trunc() && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn running_error(name: &str, msg: &str) -> Frame {
    let msg: String = msg.chars().take(100).collect();
    Frame::error(one_line(&format!("ERR Error running script {name}, {msg}")))
}

fn internal(e: mlua::Error) -> Frame {
    Frame::error(one_line(&format!("ERR scripting engine error: {e}")))
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests;
