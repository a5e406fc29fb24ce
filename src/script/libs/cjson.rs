//! `cjson`: Lua CJSON 2.1.0 as Redis 7.0 ships it: `encode`, `decode`, `null`, `new` and the
//! configuration functions (`encode_sparse_array`, `encode_max_depth`, `decode_max_depth`,
//! `encode_number_precision`, `encode_keep_buffer`, `encode_invalid_numbers`,
//! `decode_invalid_numbers`), with cjson's texts for bad arguments. Numbers print as `%.14g`
//! by default, `/` is escaped, arrays are tables whose keys are exactly 1..n (with holes up to
//! the sparse-array limits), the empty table is `{}`, JSON null decodes to `cjson.null`, and
//! errors carry cjson's texts ("Expected value but found T_END at character 1").
//!
//! The settings of the global `cjson` are per run: the interpreter puts Redis's defaults back
//! before each run ([`Settings`]), so what a script sets is never seen by the next one (Redis
//! keeps them in its one Lua state, which replicas replicating effects never share). A table
//! from `cjson.new()` has its own settings and lives no longer than its run.

use super::{add, check_string, one, type_name};
use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};
use std::cell::Cell;
use std::rc::Rc;

/// Lua 5.1's `LUAI_MAXCSTACK`: `lua_checkstack` fails past this many slots, which bounds the
/// nesting cjson reaches whatever its depth settings (and our recursion with it).
const MAX_C_STACK: usize = 8000;

/// cjson's settings (`json_config_t`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 "off" (refuse), 1 "on" (`nan`, `inf`), 2 "null".
    encode_invalid: i32,
    decode_invalid: bool,
    keep_buffer: bool,
    precision: i32,
}

impl Default for Config {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid: 0,
            decode_invalid: true,
            keep_buffer: true,
            precision: 14,
        }
    }
}

/// The settings of one `cjson` table, shared by its functions.
pub type Settings = Rc<Cell<Config>>;

/// The global `cjson` table and its settings (reset to the defaults before every run).
pub fn library(lua: &Lua) -> mlua::Result<(Table, Settings)> {
    let cfg = Settings::default();
    Ok((module(lua, &cfg)?, cfg))
}

/// A cjson table whose functions use `cfg` (`lua_cjson_new`).
fn module(lua: &Lua, cfg: &Settings) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let c = Rc::clone(cfg);
    let next: Function = lua.globals().raw_get("next")?;
    add(lua, &t, "encode", move |lua, args: MultiValue| {
        if args.len() != 1 {
            return Ok(Err("bad argument #1 to 'encode' (expected 1 argument)".into()));
        }
        let mut out = Vec::new();
        let mut enc = Encoder { lua, next: &next, cfg: c.get(), out: &mut out };
        Ok(match enc.encode(&args[0]) {
            Ok(()) => one(Value::String(lua.create_string(&out)?)),
            Err(e) => Err(e),
        })
    })?;
    let c = Rc::clone(cfg);
    add(lua, &t, "decode", move |lua, args: MultiValue| {
        if args.len() != 1 {
            return Ok(Err("bad argument #1 to 'decode' (expected 1 argument)".into()));
        }
        let text = match check_string(lua, &args, 1, "decode")? {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
            return Ok(Err("JSON parser does not support UTF-16 or UTF-32".into()));
        }
        // cjson reads a C string: a NUL ends the text.
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let (tables, keys) = (lua.create_table()?, lua.create_table()?);
        let mut p = Parser { lua, s: &text[..end], pos: 0, depth: 0, slots: 1, cfg: c.get(), tables, keys };
        Ok(p.document().map(|v| {
            let mut out = MultiValue::new();
            out.push_back(v);
            out
        }))
    })?;
    settings(lua, &t, cfg)?;
    add(lua, &t, "new", |lua, _| Ok(one(Value::Table(module(lua, &Settings::default())?))))?;
    t.raw_set("null", Value::LightUserData(LightUserData(std::ptr::null_mut())))?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// The configuration functions of a cjson table: each sets what it is given (nil leaves a
/// setting as it is) and returns the settings.
fn settings(lua: &Lua, t: &Table, cfg: &Settings) -> mlua::Result<()> {
    let c = Rc::clone(cfg);
    add(lua, t, "encode_sparse_array", move |lua, args| {
        let f = "encode_sparse_array";
        let mut v = c.get();
        let out = (|| {
            too_many(&args, 3, f)?;
            let convert = enum_option(lua, &args, 1, f, &mut (v.sparse_convert as i32), BOOL)?;
            v.sparse_convert = convert.1 != 0;
            let ratio = int_option(lua, &args, 2, f, &mut v.sparse_ratio, 0, i32::MAX)?;
            let safe = int_option(lua, &args, 3, f, &mut v.sparse_safe, 0, i32::MAX)?;
            Ok(vec![convert.0, ratio, safe])
        })();
        Ok(settled(&c, v, out))
    })?;
    int_setting(lua, t, cfg, "encode_max_depth", |c| &mut c.encode_max_depth, 1, i32::MAX)?;
    int_setting(lua, t, cfg, "decode_max_depth", |c| &mut c.decode_max_depth, 1, i32::MAX)?;
    int_setting(lua, t, cfg, "encode_number_precision", |c| &mut c.precision, 1, 14)?;
    let c = Rc::clone(cfg);
    add(lua, t, "encode_keep_buffer", move |lua, args| {
        let f = "encode_keep_buffer";
        let mut v = c.get();
        let mut keep = v.keep_buffer as i32;
        let out = too_many(&args, 1, f).and_then(|()| enum_option(lua, &args, 1, f, &mut keep, BOOL));
        v.keep_buffer = keep != 0;
        Ok(settled(&c, v, out.map(|(r, _)| vec![r])))
    })?;
    let c = Rc::clone(cfg);
    add(lua, t, "encode_invalid_numbers", move |lua, args| {
        let f = "encode_invalid_numbers";
        let mut v = c.get();
        let out = too_many(&args, 1, f)
            .and_then(|()| enum_option(lua, &args, 1, f, &mut v.encode_invalid, &["off", "on", "null"]));
        Ok(settled(&c, v, out.map(|(r, _)| vec![r])))
    })?;
    let c = Rc::clone(cfg);
    add(lua, t, "decode_invalid_numbers", move |lua, args| {
        let f = "decode_invalid_numbers";
        let mut v = c.get();
        let mut on = v.decode_invalid as i32;
        let out = too_many(&args, 1, f).and_then(|()| enum_option(lua, &args, 1, f, &mut on, BOOL));
        v.decode_invalid = on != 0;
        Ok(settled(&c, v, out.map(|(r, _)| vec![r])))
    })
}

/// A configuration function of one integer setting within `min..=max`.
fn int_setting(
    lua: &Lua,
    t: &Table,
    cfg: &Settings,
    name: &'static str,
    field: fn(&mut Config) -> &mut i32,
    min: i32,
    max: i32,
) -> mlua::Result<()> {
    let c = Rc::clone(cfg);
    add(lua, t, name, move |lua, args| {
        let mut v = c.get();
        let out = too_many(&args, 1, name).and_then(|()| int_option(lua, &args, 1, name, field(&mut v), min, max));
        Ok(settled(&c, v, out.map(|r| vec![r])))
    })
}

/// Stores what a configuration function set before it returned or failed (cjson's C code
/// changes each setting as it reads its argument) and makes its values.
fn settled(cfg: &Settings, v: Config, out: Result<Vec<Value>, String>) -> super::LibResult {
    cfg.set(v);
    out.map(MultiValue::from_iter)
}

const BOOL: &[&str] = &["off", "on"];

/// `json_arg_init`: at most `n` arguments.
fn too_many(args: &MultiValue, n: usize, f: &str) -> Result<(), String> {
    if args.len() > n {
        return Err(format!("bad argument #{} to '{f}' (found too many arguments)", n + 1));
    }
    Ok(())
}

fn arg_given(args: &MultiValue, i: usize) -> bool {
    !matches!(args.get(i - 1), None | Some(Value::Nil))
}

/// `json_integer_option`: argument `i` (if given) as an integer in `min..=max` (the range
/// error names argument #1 whichever it is, as cjson's does); the setting's value.
fn int_option(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    f: &str,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> Result<Value, String> {
    if arg_given(args, i) {
        let v = &args[i - 1];
        let n = lua.coerce_number(v.clone()).ok().flatten();
        let Some(n) = n else {
            return Err(format!("bad argument #{i} to '{f}' (number expected, got {})", type_name(Some(v))));
        };
        // `luaL_checkinteger` (a C cast to ptrdiff_t), stored in an int.
        let wide = if n.is_finite() && n.abs() < 9.2e18 { n as i64 } else { i64::MIN };
        let value = wide as i32;
        if !(min <= value && value <= max) {
            return Err(format!("bad argument #1 to '{f}' (expected integer between {min} and {max})"));
        }
        *setting = value;
    }
    Ok(Value::Integer(i64::from(*setting)))
}

/// `json_enum_option` with `bool_true` 1: a boolean (or one of `options`, by index) for
/// argument `i` if given; the setting as a boolean (0 or 1) or its option name.
fn enum_option(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    f: &str,
    setting: &mut i32,
    options: &[&str],
) -> Result<(Value, i32), String> {
    if arg_given(args, i) {
        match &args[i - 1] {
            Value::Boolean(b) => *setting = i32::from(*b),
            v => {
                let name = match v {
                    Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                        lua.coerce_string(v.clone()).ok().flatten()
                    }
                    _ => None,
                };
                let Some(name) = name else {
                    return Err(format!("bad argument #{i} to '{f}' (string expected, got {})", type_name(Some(v))));
                };
                let name = name.as_bytes().to_vec();
                let Some(index) = options.iter().position(|o| o.as_bytes() == name.as_slice()) else {
                    let shown = String::from_utf8_lossy(&name);
                    return Err(format!("bad argument #{i} to '{f}' (invalid option '{shown}')"));
                };
                *setting = index as i32;
            }
        }
    }
    let shown = match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        n => Value::String(lua.create_string(options[n as usize]).map_err(|e| e.to_string())?),
    };
    Ok((shown, *setting))
}

/// A table being written: an array (`done` of its `len` elements written) or an object;
/// `slots` of cjson's Lua stack in use when it was opened.
enum Open {
    Array { done: usize, len: usize, slots: usize },
    Object { first: bool, slots: usize },
}

fn lua_err(e: mlua::Error) -> String {
    e.to_string()
}

/// Serialises Lua values as cjson does under `cfg`.
struct Encoder<'o> {
    lua: &'o Lua,
    /// Lua's `next`, to walk an object without holding its keys.
    next: &'o Function,
    cfg: Config,
    out: &'o mut Vec<u8>,
}

impl Encoder<'_> {
    /// `json_append_data` for `root`, without recursion (cjson's nesting reaches thousands of
    /// levels when its setting allows, more than a thread's stack would take). The tables being
    /// written are kept by depth in a Lua table, and an object's last key in another: a Rust
    /// handle each would take one of mlua's reference slots, of which there are 8000 in all.
    fn encode(&mut self, root: &Value) -> Result<(), String> {
        let tables = self.lua.create_table().map_err(lua_err)?;
        let keys = self.lua.create_table().map_err(lua_err)?;
        let mut open: Vec<Open> = Vec::new();
        let mut next = Some((root.clone(), 1));
        loop {
            if let Some((v, slots)) = next.take() {
                match v {
                    Value::Table(t) => {
                        let depth = open.len() + 1;
                        open.push(self.begin_table(&t, depth, slots)?);
                        tables.raw_set(depth, t).map_err(lua_err)?;
                    }
                    v => self.scalar(&v)?,
                }
            }
            let depth = open.len();
            let Some(top) = open.last_mut() else { return Ok(()) };
            let table: Table = tables.raw_get(depth).map_err(lua_err)?;
            match top {
                Open::Array { done, len, slots } if *done < *len => {
                    if *done > 0 {
                        self.out.push(b',');
                    }
                    *done += 1;
                    next = Some((table.raw_get::<Value>(*done).map_err(lua_err)?, *slots + 1));
                }
                Open::Array { .. } => {
                    self.out.push(b']');
                    open.pop();
                }
                Open::Object { first, slots } => {
                    let last: Value = keys.raw_get(depth).map_err(lua_err)?;
                    let (k, v): (Value, Value) = self.next.call((table, last)).map_err(lua_err)?;
                    if k.is_nil() {
                        self.out.push(b'}');
                        open.pop();
                        keys.raw_set(depth, Value::Nil).map_err(lua_err)?;
                        continue;
                    }
                    if !*first {
                        self.out.push(b',');
                    }
                    *first = false;
                    let slots = *slots + 2;
                    self.key(&k)?;
                    keys.raw_set(depth, k).map_err(lua_err)?;
                    next = Some((v, slots));
                }
            }
        }
    }

    /// Opens table `t` at nesting `depth`: `json_check_encode_depth` (the setting, or Lua's
    /// stack running out: 3 more slots), then `[` or `{`.
    fn begin_table(&mut self, t: &Table, depth: usize, slots: usize) -> Result<Open, String> {
        if depth > self.cfg.encode_max_depth as usize || slots + 3 > MAX_C_STACK {
            return Err(format!("Cannot serialise, excessive nesting ({depth})"));
        }
        Ok(match self.array_length(t)? {
            Some(len) if len > 0 => {
                self.out.push(b'[');
                Open::Array { done: 0, len, slots }
            }
            _ => {
                self.out.push(b'{');
                Open::Object { first: true, slots }
            }
        })
    }

    /// A value that is not a table.
    fn scalar(&mut self, v: &Value) -> Result<(), String> {
        match v {
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Boolean(b) => self.out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Integer(n) => self.number(*n as f64)?,
            Value::Number(n) => self.number(*n)?,
            Value::String(s) => string(&s.as_bytes(), self.out),
            other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
        }
        Ok(())
    }

    /// An object's key and its colon.
    fn key(&mut self, k: &Value) -> Result<(), String> {
        match k {
            Value::String(s) => string(&s.as_bytes(), self.out),
            Value::Integer(_) | Value::Number(_) => {
                self.out.push(b'"');
                self.number(number_of(k))?;
                self.out.push(b'"');
            }
            other => {
                let what = other.type_name();
                return Err(format!("Cannot serialise {what}: table key must be a number or string"));
            }
        }
        self.out.push(b':');
        Ok(())
    }

    /// `json_append_number`.
    fn number(&mut self, n: f64) -> Result<(), String> {
        if !n.is_finite() {
            match self.cfg.encode_invalid {
                0 => return Err("Cannot serialise number: must not be NaN or Inf".into()),
                1 if n.is_nan() => {
                    self.out.extend_from_slice(b"nan");
                    return Ok(());
                }
                1 => {}
                _ => {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
            }
        }
        self.out.extend_from_slice(g_fmt(n, self.cfg.precision as usize).as_bytes());
        Ok(())
    }

    /// `lua_array_length`: Some(n) for an array of n elements (holes allowed within the sparse
    /// settings), None for an object (a sparse array too, when converting them is on).
    fn array_length(&self, t: &Table) -> Result<Option<usize>, String> {
        let (mut max, mut items) = (0i32, 0i32);
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, _) = pair.map_err(lua_err)?;
            let k = match k {
                Value::Integer(_) | Value::Number(_) => number_of(&k),
                _ => return Ok(None),
            };
            if k == 0.0 || k.floor() != k || k < 1.0 {
                return Ok(None);
            }
            if k > f64::from(max) {
                max = if k < 2147483648.0 { k as i32 } else { i32::MIN };
            }
            items = items.wrapping_add(1);
        }
        let cfg = &self.cfg;
        if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
            if !cfg.sparse_convert {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
            return Ok(None);
        }
        Ok(Some(max.max(0) as usize))
    }
}

fn number_of(v: &Value) -> f64 {
    match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        _ => 0.0,
    }
}

/// C's `%.<precision>g` (precision 1 to 14).
fn g_fmt(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let precision = precision.max(1);
    let sci = format!("{:.*e}", precision - 1, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    trim(&format!("{:.*}", (precision as i32 - 1 - exp).max(0) as usize, n))
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// A table being read: an array and the index of its next element, or an object.
enum Reading {
    Array(i64),
    Object,
}

/// What starts at a value's position.
enum Begun {
    Value(Value),
    Array(Table),
    Object(Table),
}

/// A JSON parser with cjson's error texts.
struct Parser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    depth: usize,
    /// Slots of cjson's Lua stack in use (the argument, then each open table and its key).
    slots: usize,
    cfg: Config,
    /// The open tables by depth, and the key each open object is reading the value of.
    tables: Table,
    keys: Table,
}

impl Parser<'_> {
    fn document(&mut self) -> Result<Value, String> {
        let v = self.tree()?;
        self.skip_ws();
        if self.pos < self.s.len() {
            return Err(self.expected("the end"));
        }
        Ok(v)
    }

    /// One value, without recursion (see `Encoder::encode`): the tables being read are kept
    /// by depth in `self.tables`, an object's key whose value is read in `self.keys`; `open`
    /// says what each is (an array: the index of its next element).
    fn tree(&mut self) -> Result<Value, String> {
        let mut open: Vec<Reading> = Vec::new();
        let mut begun = self.begin()?;
        loop {
            let mut done = match begun {
                Begun::Value(v) => v,
                Begun::Array(t) => {
                    self.skip_ws();
                    if self.s.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                        self.leave(1)?;
                        Value::Table(t)
                    } else {
                        open.push(Reading::Array(1));
                        begun = self.begin()?;
                        continue;
                    }
                }
                Begun::Object(t) => {
                    self.skip_ws();
                    if self.s.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        self.leave(2)?;
                        Value::Table(t)
                    } else {
                        let key = self.key()?;
                        self.keys.raw_set(self.depth, key).map_err(lua_err)?;
                        open.push(Reading::Object);
                        begun = self.begin()?;
                        continue;
                    }
                }
            };
            // Store the finished value in the innermost open table, then go on with that table.
            loop {
                let Some(top) = open.last_mut() else { return Ok(done) };
                let table: Table = self.tables.raw_get(self.depth).map_err(lua_err)?;
                let closed = match top {
                    Reading::Array(i) => {
                        table.raw_set(*i, done).map_err(lua_err)?;
                        *i += 1;
                        self.skip_ws();
                        match self.s.get(self.pos) {
                            Some(b',') => None,
                            Some(b']') => Some(1),
                            _ => return Err(self.expected("comma or array end")),
                        }
                    }
                    Reading::Object => {
                        let key: Value = self.keys.raw_get(self.depth).map_err(lua_err)?;
                        table.raw_set(key, done).map_err(lua_err)?;
                        self.skip_ws();
                        match self.s.get(self.pos) {
                            Some(b',') => {
                                self.pos += 1;
                                let key = self.key()?;
                                self.keys.raw_set(self.depth, key).map_err(lua_err)?;
                                begun = self.begin()?;
                                break;
                            }
                            Some(b'}') => Some(2),
                            _ => return Err(self.expected("comma or object end")),
                        }
                    }
                };
                self.pos += 1;
                match closed {
                    None => {
                        begun = self.begin()?;
                        break;
                    }
                    Some(slots) => {
                        open.pop();
                        self.leave(slots)?;
                        done = Value::Table(table);
                    }
                }
            }
        }
    }

    /// The start of a value: a scalar read whole, or a table opened (`json_decode_descend`:
    /// one level deeper, needing 3 more slots of Lua's stack for an object, 2 for an array; it
    /// then holds the table, and an object its key).
    fn begin(&mut self) -> Result<Begun, String> {
        self.skip_ws();
        let open = match self.s.get(self.pos) {
            Some(b'{') => 3,
            Some(b'[') => 2,
            _ => return self.value().map(Begun::Value),
        };
        self.depth += 1;
        if self.depth > self.cfg.decode_max_depth as usize || self.slots + open > MAX_C_STACK {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                self.pos + 1
            ));
        }
        self.pos += 1;
        self.slots += open - 1;
        let t = self.lua.create_table().map_err(lua_err)?;
        self.tables.raw_set(self.depth, &t).map_err(lua_err)?;
        Ok(if open == 3 { Begun::Object(t) } else { Begun::Array(t) })
    }

    /// Closes the innermost table, which held `slots` of Lua's stack.
    fn leave(&mut self, slots: usize) -> Result<(), String> {
        self.tables.raw_set(self.depth, Value::Nil).map_err(lua_err)?;
        self.keys.raw_set(self.depth, Value::Nil).map_err(lua_err)?;
        self.depth -= 1;
        self.slots -= slots;
        Ok(())
    }

    /// An object's key and its colon.
    fn key(&mut self) -> Result<mlua::LuaString, String> {
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b'"') {
            return Err(self.expected("object key string"));
        }
        let key = self.string()?;
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b':') {
            return Err(self.expected("colon"));
        }
        self.pos += 1;
        self.lua.create_string(key).map_err(lua_err)
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The name cjson gives the token at the current position.
    fn token_name(&self) -> &'static str {
        match self.s.get(self.pos) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b'"') => "T_STRING",
            Some(b':') => "T_COLON",
            Some(b',') => "T_COMMA",
            Some(b't' | b'f') if self.word_at(b"true") || self.word_at(b"false") => "T_BOOLEAN",
            Some(b'n') if self.word_at(b"null") => "T_NULL",
            Some(c) if c.is_ascii_digit() || *c == b'-' || self.invalid_number_allowed() => match self.number_at() {
                Some(_) => "T_NUMBER",
                None => "invalid number",
            },
            Some(_) => "invalid token",
        }
    }

    /// cjson's check for what strict JSON forbids but `strtod` reads: a leading `+`, hex,
    /// leading zeros, `inf`, `nan`.
    fn invalid_number(&self) -> bool {
        let mut p = &self.s[self.pos..];
        match p.first() {
            Some(b'+') => return true,
            Some(b'-') => p = &p[1..],
            _ => {}
        }
        match p.first() {
            Some(b'0') => matches!(p.get(1), Some(c) if (c | 0x20) == b'x' || c.is_ascii_digit()),
            None => false,
            Some(c) if *c <= b'9' => false,
            Some(_) => {
                let word = |w: &[u8]| p.len() >= 3 && p[..3].eq_ignore_ascii_case(w);
                word(b"inf") || word(b"nan")
            }
        }
    }

    /// Whether the token here is read as a number although it does not start like one
    /// (`+`, `inf`, `nan`: only with `decode_invalid_numbers` on).
    fn invalid_number_allowed(&self) -> bool {
        matches!(self.s.get(self.pos), Some(b'+' | b'i' | b'I' | b'n' | b'N'))
            && self.cfg.decode_invalid
            && self.invalid_number()
    }

    /// The number token here, as `strtod` reads it: its value and length; None if it is an
    /// invalid number token (refused by the settings, or no number at all).
    fn number_at(&self) -> Option<(f64, usize)> {
        if !self.cfg.decode_invalid && self.invalid_number() {
            return None;
        }
        strtod(&self.s[self.pos..])
    }

    fn word_at(&self, w: &[u8]) -> bool {
        self.s[self.pos..].starts_with(w)
    }

    fn expected(&self, what: &str) -> String {
        format!("Expected {what} but found {} at character {}", self.token_name(), self.pos + 1)
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.s.get(self.pos) {
            Some(b'"') => {
                let s = self.string()?;
                Ok(Value::String(self.lua.create_string(s).map_err(lua_err)?))
            }
            Some(b't') if self.word_at(b"true") => {
                self.pos += 4;
                Ok(Value::Boolean(true))
            }
            Some(b'f') if self.word_at(b"false") => {
                self.pos += 5;
                Ok(Value::Boolean(false))
            }
            Some(b'n') if self.word_at(b"null") => {
                self.pos += 4;
                Ok(Value::LightUserData(LightUserData(std::ptr::null_mut())))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' || self.invalid_number_allowed() => self.number(),
            _ => Err(self.expected("value")),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        match self.number_at() {
            Some((n, len)) => {
                self.pos += len;
                Ok(Value::Number(n))
            }
            None => Err(format!("Expected value but found invalid number at character {}", self.pos + 1)),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(format!("Expected value but found unexpected end of string at character {}", start + 1));
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(format!(
                            "Expected value but found unexpected end of string at character {}",
                            start + 1
                        ));
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => self.unicode(&mut out, start)?,
                        _ => {
                            return Err(format!(
                                "Expected value but found invalid escape code at character {}",
                                start + 1
                            ))
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn unicode(&mut self, out: &mut Vec<u8>, start: usize) -> Result<(), String> {
        let bad = || format!("Expected value but found invalid unicode escape code at character {}", start + 1);
        let mut cp = self.hex4().ok_or_else(bad)?;
        if (0xD800..0xDC00).contains(&cp) {
            if !self.word_at(b"\\u") {
                return Err(bad());
            }
            self.pos += 2;
            let low = self.hex4().ok_or_else(bad)?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(bad());
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (0xDC00..0xE000).contains(&cp) {
            return Err(bad());
        }
        let ch = char::from_u32(cp).ok_or_else(bad)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }
}

/// C's `strtod` on the longest number at the start of `s` (no leading space: cjson has
/// skipped it): its value and length, or None if no number starts there.
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let (negative, sign) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let rest = &s[sign..];
    let starts = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    let (value, len) = if starts(b"infinity") {
        (f64::INFINITY, 8)
    } else if starts(b"inf") {
        (f64::INFINITY, 3)
    } else if starts(b"nan") {
        // `nan(chars)` is read whole when the parenthesis closes.
        let tail = &rest[3..];
        let close = (tail.first() == Some(&b'(')).then(|| tail.iter().position(|&c| c == b')')).flatten();
        let chars_ok = |n: usize| tail[1..n].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        (f64::NAN, 3 + close.filter(|&n| chars_ok(n)).map_or(0, |n| n + 1))
    } else if rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' && hex_float(&rest[2..]).is_some() {
        let (v, n) = hex_float(&rest[2..])?;
        (v, 2 + n)
    } else {
        decimal(rest)?
    };
    Some((if negative { -value } else { value }, sign + len))
}

/// A decimal number at the start of `s`: digits, an optional fraction, an optional exponent.
fn decimal(s: &[u8]) -> Option<(f64, usize)> {
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(0);
    let mut len = int;
    let mut frac = 0;
    if s.get(len) == Some(&b'.') {
        frac = digits(len + 1);
        if int + frac > 0 {
            len += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(s.get(len), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(s.get(len + 1), Some(b'+' | b'-')));
        let exp = digits(len + 1 + sign);
        if exp > 0 {
            len += 1 + sign + exp;
        }
    }
    let text = std::str::from_utf8(&s[..len]).ok()?;
    Some((text.parse().ok()?, len))
}

/// A hexadecimal float after `0x`: hex digits, an optional fraction, an optional binary
/// exponent (`p`).
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let hex = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
    let int = hex(0);
    let mut len = int;
    let mut frac = 0;
    if s.get(len) == Some(&b'.') {
        frac = hex(len + 1);
        if int + frac > 0 {
            len += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    let mut value = 0f64;
    let mut scale = 0i32;
    for &c in s[..int].iter().chain(s[(int + 1).min(len)..len].iter()) {
        value = value * 16.0 + f64::from((c as char).to_digit(16)?);
    }
    scale -= 4 * frac as i32;
    if matches!(s.get(len), Some(b'p' | b'P')) {
        let sign = usize::from(matches!(s.get(len + 1), Some(b'+' | b'-')));
        let exp = s[len + 1 + sign..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp > 0 {
            let text = std::str::from_utf8(&s[len + 1 + sign..len + 1 + sign + exp]).ok()?;
            let e: i32 = text.parse().unwrap_or(i32::MAX / 2).min(100_000);
            scale += if s[len + 1] == b'-' { -e } else { e };
            len += 1 + sign + exp;
        }
    }
    Some((value * 2f64.powi(scale), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g14_is_printf() {
        let g14 = |n| g_fmt(n, 14);
        assert_eq!(g14(1.0), "1");
        assert_eq!(g14(0.1), "0.1");
        assert_eq!(g14(1.0 / 3.0), "0.33333333333333");
        assert_eq!(g14(1e20), "1e+20");
        assert_eq!(g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(g14(-2.5), "-2.5");
    }
}
