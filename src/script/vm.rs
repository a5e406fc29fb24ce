//! The interpreters scripts run in. A fresh one per run is exact but costs more than a small
//! script (libraries, sandbox, teardown), so each thread keeps one shared interpreter for EVAL
//! and FCALL: built once, its per-run state reset before each run, its compiled scripts and
//! libraries cached by chunk name and body.
//!
//! What a shared interpreter cannot reproduce is what depends on the collector's history: the
//! heap's size (the memory limit, `collectgarbage`, `gcinfo`) and when weak tables lose their
//! entries. So every run (shared or fresh) runs with the collector stopped; a fresh run starts
//! it again only past [`GC_RESUME`] bytes of growth. A shared run that needs more than
//! [`SHARED_MEMORY`] bytes, or calls `collectgarbage` / `gcinfo`, is refused (uncatchably, like
//! the step budget) and the caller runs the script again in a fresh interpreter, replaying the
//! replies of the commands the refused run already ran (see `Replay` in mod.rs). The whole
//! argument is in docs/ARCHITECTURE.md ("Scripting").

use super::env::{self, Env, Mode, RunCtx, Slot};
use super::rand48::Rand48;
use super::{compile, internal, Budget, Chunk, Host, Limits, Outcome, MEMORY_LIMIT, STEP_GRAIN};
use crate::protocol::Frame;
use mlua::{ffi, Function, HookTriggers, Lua, LuaOptions, StdLib};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::raw::c_void;
use std::rc::Rc;
use std::sync::OnceLock;

/// How much a shared run may grow the heap before it is refused and run fresh. Far below
/// [`GC_RESUME`]: what a fresh run of the same script may allocate more (a Lua stack the shared
/// one had already grown, at most ~80 MB; strings it had already interned) stays under it, so a
/// script that completes shared would not have started the collector, nor failed, fresh.
pub const SHARED_MEMORY: usize = 16 << 20;
/// Growth at which a fresh run starts the collector again (until then weak tables keep every
/// entry, as in a shared run).
pub const GC_RESUME: usize = 128 << 20;
/// Compiled chunks (scripts and libraries) a shared interpreter keeps, and the longest body it
/// keeps.
const CACHE_ENTRIES: usize = 256;
const CACHE_BODY_MAX: usize = 64 << 10;
/// A shared interpreter collects its garbage (left by the runs) once the heap passes this
/// over what it held after its last collection.
const COLLECT_SLACK: usize = 4 << 20;

/// How a run ended.
pub enum Ran<R> {
    /// `then` returned.
    Value(R),
    /// It did not run to its end: a compile error, the budget, a kill, an engine error.
    Ended(Outcome),
    /// A shared interpreter refused it: run it again in a fresh one.
    Refused,
}

/// An interpreter with the sandbox installed.
pub struct Vm {
    lua: Lua,
    env: Env,
    slot: Rc<Slot>,
    shared: bool,
    /// Compiled chunks by chunk name (`@user_script`, `@user_function`) and body.
    cache: HashMap<&'static str, HashMap<Box<[u8]>, Function>>,
    cached: usize,
    /// A run started and did not end cleanly (a panic): never use it again.
    dirty: bool,
    collect_at: usize,
}

impl Vm {
    /// A fresh interpreter for one run.
    pub fn fresh() -> mlua::Result<Vm> {
        let lua = new_lua()?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        Vm::with_env(lua, false)
    }

    /// An interpreter for many EVAL and FCALL runs on this thread, counting its heap itself.
    fn shared() -> mlua::Result<Vm> {
        let lua = new_lua()?;
        // A limit mlua never reaches, so that it keeps protecting every allocation it makes
        // (with no limit it assumes none fails); the counting allocator refuses instead.
        lua.set_memory_limit(isize::MAX as usize)?;
        USED.set(lua.used_memory() as isize);
        LIMIT.set(isize::MAX);
        // SAFETY: the allocator passes every call to mlua's with mlua's own data pointer;
        // `Drop` puts mlua's back before the state is closed.
        unsafe {
            lua.exec_raw::<()>((), |state| {
                let mut ud = std::ptr::null_mut();
                let orig = ffi::lua_getallocf(state, &mut ud);
                let _ = MLUA_ALLOC.set(orig);
                ffi::lua_setallocf(state, counting_alloc, ud);
            })?;
        }
        lua.gc_stop();
        let mut vm = Vm::with_env(lua, true)?;
        vm.collect_at = USED.get() as usize + COLLECT_SLACK;
        Ok(vm)
    }

    fn with_env(lua: Lua, shared: bool) -> mlua::Result<Vm> {
        let slot = Rc::new(Slot::default());
        super::raw::install(&lua)?;
        let env = env::install(&lua, &slot, shared)?;
        Ok(Vm { lua, env, slot, shared, cache: HashMap::new(), cached: 0, dirty: false, collect_at: 0 })
    }

    /// Runs `chunk` for `host` under `limits` in the environment of `mode`: compiles it (or
    /// takes it from the cache) and hands it to `then`, which runs under the step budget with
    /// the collector stopped.
    pub fn run<R>(
        &mut self,
        host: &mut dyn Host,
        limits: &Limits,
        mode: Mode,
        chunk: &Chunk,
        then: impl FnOnce(&Lua, &Env, Function, &Cell<bool>) -> mlua::Result<R>,
    ) -> Ran<R> {
        let budget = Budget::new(limits, self.shared);
        let run = RunCtx {
            host: RefCell::new(host),
            resp3: Cell::new(false),
            budget,
            rng: Cell::new(Rand48::new(limits.seed as i32)),
        };
        self.dirty = true;
        if self.shared {
            LIMIT.set(USED.get().saturating_add(SHARED_MEMORY as isize));
            REFUSED.set(false);
        } else {
            run.budget.gc_resume_at.set(Some(self.lua.used_memory() + GC_RESUME));
            self.lua.gc_stop();
        }
        let slot = Rc::clone(&self.slot);
        let bound = slot.bind(&run);
        let ran = self.run_bound(mode, chunk, then, &run.resp3);
        self.lua.remove_global_hook();
        drop(bound);
        if self.shared {
            LIMIT.set(isize::MAX);
        }
        let budget = &run.budget;
        if budget.refused.get() || (self.shared && REFUSED.get()) {
            return Ran::Refused;
        }
        if budget.killed.get() {
            return Ran::Ended(Outcome::Killed);
        }
        if budget.exhausted.get() {
            return Ran::Ended(Outcome::Exhausted);
        }
        match ran {
            Ok(Ok(value)) => {
                self.finish_clean();
                Ran::Value(value)
            }
            Ok(Err(compile_error)) => {
                self.finish_clean();
                Ran::Ended(Outcome::CompileError(compile_error))
            }
            // An engine failure in a shared interpreter: a fresh one decides what it means.
            Err(_) if self.shared => Ran::Refused,
            Err(e) => Ran::Ended(Outcome::Done(internal(e))),
        }
    }

    fn run_bound<R>(
        &mut self,
        mode: Mode,
        chunk: &Chunk,
        then: impl FnOnce(&Lua, &Env, Function, &Cell<bool>) -> mlua::Result<R>,
        resp3: &Cell<bool>,
    ) -> mlua::Result<Result<R, Frame>> {
        super::raw::call_with_flag(&self.lua, &self.env.reset, mode.loading())?;
        self.env.libs.reset();
        let f = match self.compiled(chunk) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let slot = Rc::clone(&self.slot);
        let triggers = HookTriggers::new().every_nth_instruction(STEP_GRAIN);
        self.lua.set_global_hook(triggers, move |lua, _| slot.with(|run| run.budget.step(lua)))?;
        then(&self.lua, &self.env, f, resp3).map(Ok)
    }

    /// The chunk compiled: from the cache of a shared interpreter (compiling is a function of
    /// the chunk's name and source, and a compiled chunk keeps no state between calls: each
    /// call makes new closures and locals), else compiled now. A library that changed is
    /// another body, so the cache needs no invalidation; it is emptied when full.
    fn compiled(&mut self, chunk: &Chunk) -> Result<Function, Frame> {
        if let Some(f) = self.cache.get(chunk.name).and_then(|bodies| bodies.get(chunk.body)) {
            return Ok(f.clone());
        }
        let f = compile(&self.lua, chunk, &self.env.env)?;
        if self.shared && chunk.body.len() <= CACHE_BODY_MAX {
            if self.cached >= CACHE_ENTRIES {
                self.cache.clear();
                self.cached = 0;
            }
            self.cache.entry(chunk.name).or_default().insert(chunk.body.into(), f.clone());
            self.cached += 1;
        }
        Ok(f)
    }

    /// After a run that ended cleanly: the interpreter may serve the next one; a shared one
    /// collects the garbage of past runs now and then (between runs, so no run sees it).
    fn finish_clean(&mut self) {
        self.dirty = false;
        if self.shared && USED.get() as usize > self.collect_at {
            if self.lua.gc_collect().is_err() {
                self.dirty = true;
            }
            self.lua.gc_stop();
            self.collect_at = USED.get() as usize + COLLECT_SLACK;
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let (true, Some(orig)) = (self.shared, MLUA_ALLOC.get()) {
            // SAFETY: puts back mlua's allocator with its data pointer (unchanged), so that
            // closing the state frees through it and mlua finds its memory state again.
            let _ = unsafe {
                self.lua.exec_raw::<()>((), |state| {
                    let mut ud = std::ptr::null_mut();
                    ffi::lua_getallocf(state, &mut ud);
                    ffi::lua_setallocf(state, *orig, ud);
                })
            };
        }
    }
}

fn new_lua() -> mlua::Result<Lua> {
    // The debug library is needed by the error handler only; the sandbox removes the global.
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
    // SAFETY: `unsafe_new_with` only allows loading the debug library, which the sandbox
    // keeps as a local of its error handler and removes from the globals before any script runs.
    Ok(unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) })
}

thread_local! {
    /// This thread's shared interpreter (None until first used, or after one was discarded).
    static SHARED: RefCell<Option<Vm>> = const { RefCell::new(None) };
    /// The shared interpreter's heap, as its allocator counts it, and the run's ceiling.
    static USED: Cell<isize> = const { Cell::new(0) };
    static LIMIT: Cell<isize> = const { Cell::new(isize::MAX) };
    /// The allocator refused an allocation during the current shared run.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
    /// Shared interpreters built and runs they answered on this thread (for tests).
    static BUILT: Cell<u64> = const { Cell::new(0) };
    static ANSWERED: Cell<u64> = const { Cell::new(0) };
}

/// How many shared interpreters this thread built, and how many runs they answered.
#[cfg(test)]
pub fn shared_stats() -> (u64, u64) {
    (BUILT.get(), ANSWERED.get())
}

/// mlua's allocator, which the counting allocator calls.
static MLUA_ALLOC: OnceLock<ffi::lua_Alloc> = OnceLock::new();

/// Whether the current shared run went past its memory.
pub fn memory_refused() -> bool {
    REFUSED.get()
}

/// Lua's allocator for a shared interpreter: mlua's, refusing growth past [`LIMIT`].
unsafe extern "C" fn counting_alloc(ud: *mut c_void, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
    let Some(orig) = MLUA_ALLOC.get() else {
        return std::ptr::null_mut();
    };
    let old = if ptr.is_null() { 0 } else { osize as isize };
    let growth = nsize as isize - old;
    if nsize > 0 && growth > 0 && USED.get().saturating_add(growth) > LIMIT.get() {
        REFUSED.set(true);
        return std::ptr::null_mut();
    }
    // SAFETY: the arguments are Lua's, passed on unchanged to the allocator they were for.
    let out = unsafe { orig(ud, ptr, osize, nsize) };
    if nsize == 0 || !out.is_null() {
        USED.set(USED.get() + growth);
    }
    out
}

/// Runs `f` on this thread's shared interpreter (building it if needed); `None` if there is
/// none to use (building failed, or a run is already using it). An interpreter whose run did
/// not end cleanly is dropped, so the next run gets a new one.
pub fn with_shared<R>(f: impl FnOnce(&mut Vm) -> Ran<R>) -> Option<Ran<R>> {
    SHARED.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.as_ref().is_some_and(|vm| vm.dirty) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(Vm::shared().ok()?);
            BUILT.set(BUILT.get() + 1);
        }
        let vm = slot.as_mut()?;
        let ran = f(vm);
        if !matches!(ran, Ran::Refused) {
            ANSWERED.set(ANSWERED.get() + 1);
        }
        if vm.dirty {
            *slot = None;
        }
        Some(ran)
    })
}

/// Drops this thread's shared interpreter (tests: the next run builds a new one).
#[cfg(test)]
pub fn discard_shared() {
    SHARED.with(|cell| *cell.borrow_mut() = None);
}
