//! Protected calls into Lua's C API at the cost of one `lua_pcall`, for the work every run does
//! (its KEYS and ARGV, the replies of its commands, its return value).
//!
//! Each mlua operation that may raise (`create_string`, `create_table`, `raw_set`, `raw_get`
//! with a string key) runs in its own protected call, and under Lua 5.1 each such call pushes
//! two new C closures first: a small script's run made about thirty of them, and their garbage
//! was most of what the shared interpreter's collections swept (`docs/PERFORMANCE.md`, "EVALSHA
//! per request"). Here one C function, pushed into the registry once per interpreter, runs a
//! Rust closure under `lua_pcall`: no allocation of its own, any number of API calls inside.
//!
//! The closures only call the C API and own nothing that needs dropping, since a Lua error
//! (out of memory) leaves them by `longjmp`, as in mlua's own `exec_raw`.

use bytes::Bytes;
use mlua::{ffi, Function, IntoLua, Lua, Table, Value};
use std::os::raw::{c_int, c_void};

/// Where the trampoline lives in the registry (its address is the key).
static TRAMPOLINE: u8 = 0;

fn key() -> *const c_void {
    std::ptr::addr_of!(TRAMPOLINE).cast()
}

/// What the trampoline calls: the closure of [`protected`].
type Body<'a> = &'a mut dyn FnMut(*mut ffi::lua_State);

/// Puts the trampoline in `lua`'s registry; once per interpreter, before any other function here.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: pushes one C function and stores it in the registry, leaving the stack as it was.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            ffi::lua_pushcfunction(state, trampoline);
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key());
        })
    }
}

/// Calls the [`Body`] whose address is argument 1 with the other arguments; returns what it
/// leaves on the stack.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: only `protected` calls this function (it is reachable from the registry only),
    // with the address of a live `Body` first.
    unsafe {
        let body = ffi::lua_touserdata(state, 1).cast::<Body>();
        ffi::lua_remove(state, 1);
        (*body)(state);
        ffi::lua_gettop(state)
    }
}

/// Runs `body` in protected mode on `lua`'s current stack, with `inputs` pushed (at indices
/// 1..), and returns the first `N` values it leaves. An error raised inside (out of memory) is
/// returned; the stack is left as it was either way.
pub fn protected<I: IntoLua + Copy, const N: usize>(
    lua: &Lua,
    inputs: &[I],
    mut body: impl FnMut(*mut ffi::lua_State),
) -> mlua::Result<[Value; N]> {
    lua.exec_raw_lua(|raw| {
        let state = raw.state();
        // SAFETY: every push is covered by the `lua_checkstack`; the trampoline was installed
        // with the interpreter (`install`); the stack is restored to `top` on every path.
        unsafe {
            let top = ffi::lua_gettop(state);
            if ffi::lua_checkstack(state, inputs.len() as c_int + N as c_int + 4) == 0 {
                return Err(mlua::Error::StackError);
            }
            ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key());
            if ffi::lua_type(state, -1) != ffi::LUA_TFUNCTION {
                ffi::lua_settop(state, top);
                return Err(mlua::Error::runtime("raftis: protected calls not installed"));
            }
            let mut dyn_body: Body = &mut body;
            ffi::lua_pushlightuserdata(state, std::ptr::addr_of_mut!(dyn_body).cast());
            for t in inputs {
                if let Err(e) = raw.push(*t) {
                    ffi::lua_settop(state, top);
                    return Err(e);
                }
            }
            let rc = ffi::lua_pcall(state, inputs.len() as c_int + 1, N as c_int, 0);
            if rc != 0 {
                let msg = match ffi::lua_type(state, -1) {
                    ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                        let mut len = 0;
                        let p = ffi::lua_tolstring(state, -1, &mut len);
                        String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len)).into_owned()
                    }
                    _ => "error in a protected call".to_string(),
                };
                ffi::lua_settop(state, top);
                return Err(if rc == ffi::LUA_ERRMEM {
                    mlua::Error::MemoryError(msg)
                } else {
                    mlua::Error::runtime(msg)
                });
            }
            let mut out: [Value; N] = std::array::from_fn(|_| Value::Nil);
            for slot in out.iter_mut().rev() {
                *slot = raw.pop_value();
            }
            ffi::lua_settop(state, top);
            Ok(out)
        }
    })
}

/// Pushes `bytes` as a Lua string. Inside a [`protected`] body only (it may raise).
unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    // SAFETY: the caller runs under `protected`, which covers the raise and the stack slot.
    unsafe {
        ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
    }
}

/// Sets each `(name, items)` as a global of `globals`: an array of the items as strings (a
/// run's KEYS and ARGV).
pub fn set_string_arrays(lua: &Lua, globals: &Table, arrays: [(&str, &[Bytes]); 2]) -> mlua::Result<()> {
    protected::<_, 0>(lua, &[globals], |state| {
        // SAFETY: under `protected`; the globals are at index 1; each array holds 3 more slots
        // at most (its name, the table, one string), within the `LUA_MINSTACK` (20) a C
        // function is given.
        unsafe {
            for (name, items) in arrays {
                push_bytes(state, name.as_bytes());
                ffi::lua_createtable(state, items.len().min(c_int::MAX as usize) as c_int, 0);
                for (i, item) in items.iter().enumerate() {
                    push_bytes(state, item);
                    ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
                }
                ffi::lua_rawset(state, 1);
            }
        }
    })
    .map(drop)
}

/// `{[field] = value}` with `value` a string (`{ok = ...}`, `{err = ...}`).
pub fn string_field_table(lua: &Lua, field: &str, value: &[u8]) -> mlua::Result<Value> {
    let [t] = protected::<&Table, 1>(lua, &[], |state| {
        // SAFETY: under `protected`, which reserved the three slots used here.
        unsafe {
            ffi::lua_createtable(state, 0, 1);
            push_bytes(state, field.as_bytes());
            push_bytes(state, value);
            ffi::lua_rawset(state, -3);
        }
    })?;
    Ok(t)
}

/// The raw values of `t`'s fields `names`, in order (nil for an absent one).
pub fn raw_fields<const N: usize>(lua: &Lua, t: &Table, names: [&str; N]) -> mlua::Result<[Value; N]> {
    protected::<_, N>(lua, &[t], |state| {
        // SAFETY: under `protected`, which reserved a slot per result, plus one for the key.
        unsafe {
            for name in names {
                push_bytes(state, name.as_bytes());
                ffi::lua_rawget(state, 1);
            }
            ffi::lua_remove(state, 1);
        }
    })
}

/// Calls `f(flag)` (the sandbox's `reset`), which returns nothing.
pub fn call_with_flag(lua: &Lua, f: &Function, flag: bool) -> mlua::Result<()> {
    protected::<_, 0>(lua, &[f], |state| {
        // SAFETY: under `protected`: `f` is at index 1; its errors end the protected call.
        unsafe {
            ffi::lua_pushboolean(state, c_int::from(flag));
            ffi::lua_call(state, 1, 0);
        }
    })
    .map(drop)
}

/// Calls the sandbox's `run(f)`: whether `f` returned, and its value or error.
pub fn call_run(lua: &Lua, run: &Function, f: &Function) -> mlua::Result<(bool, Value)> {
    let [ok, value] = protected::<_, 2>(lua, &[run, f], |state| {
        // SAFETY: under `protected`: `run` and `f` are at indices 1 and 2; `run` catches the
        // script's errors itself, anything else ends the protected call.
        unsafe { ffi::lua_call(state, 1, 2) }
    })?;
    Ok((!matches!(ok, Value::Nil | Value::Boolean(false)), value))
}
