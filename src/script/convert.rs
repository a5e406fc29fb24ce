//! Conversions between command replies and Lua values, exactly as Redis 7.0 converts them:
//! a reply becomes a Lua value under the script's RESP version (`redis.setresp`), and the
//! script's return value becomes a reply (numbers truncated to integers, `false` to a null,
//! `{err=...}` / `{ok=...}` tables to error and status replies, RESP3 shapes as tables).

use crate::protocol::Frame;
use crate::protocol::{format_double, format_g17};
use bytes::Bytes;
use mlua::{Function, Lua, Table, Value};

/// Nesting beyond this is answered with Redis's "reached lua stack limit" error, never a Rust
/// stack overflow (a table can contain itself).
const MAX_DEPTH: usize = 1000;

/// A command reply as the Lua value `redis.call` returns (an error reply becomes the error
/// table; the caller decides whether to raise it).
pub fn reply_to_lua(lua: &Lua, frame: &Frame, resp3: bool) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Simple(s) => super::raw::string_field_table(lua, "ok", s)?,
        Frame::Error(e) => error_table(lua, &push_error_text(&[b"-", e.as_ref()].concat()))?,
        Frame::Integer(n) => Value::Number(*n as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(b)?),
        Frame::Null | Frame::NullArray if resp3 => Value::Nil,
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Array(items) | Frame::Push(items) => array(lua, items.iter(), resp3)?,
        Frame::Set(items) if !resp3 => array(lua, items.iter(), resp3)?,
        Frame::Set(items) => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            single_field(lua, "set", Value::Table(set))?
        }
        Frame::Map(pairs) | Frame::Pairs(pairs) if !resp3 => array(lua, pairs.iter().flat_map(|(k, v)| [k, v]), resp3)?,
        Frame::Map(pairs) => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            single_field(lua, "map", Value::Table(map))?
        }
        Frame::PairsMap(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            single_field(lua, "map", Value::Table(map))?
        }
        Frame::Pairs(pairs) | Frame::PairsMap(pairs) => {
            let t = lua.create_table()?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                let pair = lua.create_table()?;
                pair.raw_set(1, reply_to_lua(lua, k, resp3)?)?;
                pair.raw_set(2, reply_to_lua(lua, v, resp3)?)?;
                t.raw_set(i + 1, pair)?;
            }
            Value::Table(t)
        }
        Frame::Double(d) if !resp3 => Value::String(lua.create_string(format_double(*d))?),
        Frame::Double(d) => single_field(lua, "double", Value::Number(*d))?,
        Frame::HumanDouble(d) if !resp3 => Value::String(lua.create_string(crate::protocol::format_human(*d))?),
        Frame::HumanDouble(d) => single_field(lua, "double", Value::Number(*d))?,
        Frame::Boolean(b) if !resp3 => Value::Number(f64::from(u8::from(*b))),
        Frame::Boolean(b) => Value::Boolean(*b),
        Frame::Verbatim(_, s) if !resp3 => Value::String(lua.create_string(s)?),
        Frame::Verbatim(format, s) => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(s)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            single_field(lua, "verbatim_string", Value::Table(inner))?
        }
        Frame::BigNumber(s) if !resp3 => Value::String(lua.create_string(s)?),
        Frame::BigNumber(s) => single_field(lua, "big_number", Value::String(lua.create_string(s)?))?,
    })
}

fn array<'a>(lua: &Lua, items: impl Iterator<Item = &'a Frame>, resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for (i, item) in items.enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(t))
}

fn single_field(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

/// `{err = text}`.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Value> {
    super::raw::string_field_table(lua, "err", text)
}

/// Redis's `luaPushErrorBuff`: "-CODE msg" keeps its code, "-msg" (no space) and a text
/// without the dash get `ERR`; newlines at either end are trimmed.
pub fn push_error_text(buf: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match buf.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", buf),
    };
    let is_nl = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = msg.iter().position(|b| !is_nl(b)).unwrap_or(msg.len());
    let end = msg.iter().rposition(|b| !is_nl(b)).map_or(start, |e| e + 1);
    [code, b" ", &msg[start..end]].concat()
}

/// The script's return value as the reply (Redis's `luaReplyToRedisReply`); `resp3` is the
/// script's `redis.setresp` version. Without recursion: a reply nests up to [`MAX_DEPTH`]
/// levels, more than a thread's stack would take in a debug build; the tables being converted
/// are kept in `open`, innermost last.
pub fn lua_to_reply(lua: &Lua, value: &Value, resp3: bool) -> Frame {
    if !matches!(value, Value::Table(_)) {
        return scalar_reply(value, resp3);
    }
    // Lua's `next`, looked up once a map or set needs it.
    let mut next = None;
    let mut open: Vec<Level> = Vec::new();
    let mut child = value.clone();
    loop {
        let mut done = match child {
            _ if open.len() >= MAX_DEPTH => Some(Frame::error("ERR reached lua stack limit")),
            Value::Table(t) => match table_reply(lua, &t) {
                Converted::Reply(frame) => Some(frame),
                Converted::Open(level) => {
                    open.push(level);
                    None
                }
            },
            v => Some(scalar_reply(&v, resp3)),
        };
        // Hand finished replies up until a table has another value to convert.
        loop {
            let Some(top) = open.last_mut() else { return done.unwrap_or(Frame::Null) };
            if let Some(reply) = done.take() {
                top.accept(reply);
            }
            if let Some(v) = top.advance(lua, &mut next) {
                child = v;
                break;
            }
            done = open.pop().map(Level::finish);
        }
    }
}

fn scalar_reply(value: &Value, resp3: bool) -> Frame {
    match value {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Frame::Boolean(*b),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) => Frame::Null,
        Value::Integer(n) => Frame::Integer(*n),
        Value::Number(n) => Frame::Integer(c_double_to_i64(*n)),
        _ => Frame::Null,
    }
}

/// The raw values of `t`'s fields `names` (nil where absent or unreadable).
fn special_fields<const N: usize>(lua: &Lua, t: &Table, names: [&str; N]) -> [Value; N] {
    super::raw::raw_fields(lua, t, names)
        .unwrap_or_else(|_| names.map(|name| t.raw_get::<Value>(name).unwrap_or(Value::Nil)))
}

/// What a table converts to: a reply, or elements to convert first.
enum Converted {
    Reply(Frame),
    Open(Level),
}

/// A table's reply when it is one of the special tables (`err`, `ok`, `double`, ...), else
/// the level that converts its elements (a `map`, a `set` or an array).
fn table_reply(lua: &Lua, t: &Table) -> Converted {
    // The special fields read a few in one protected call (`raw`), else one by one; the usual
    // two (a status or an error reply) first.
    let [err, ok] = special_fields(lua, t, ["err", "ok"]);
    if let Value::String(e) = err {
        return Converted::Reply(Frame::Error(Bytes::from(one_line(&e.as_bytes()))));
    }
    if let Value::String(s) = ok {
        return Converted::Reply(Frame::Simple(Bytes::from(one_line(&s.as_bytes()))));
    }
    let [double, big_number, verbatim, map, set] =
        special_fields(lua, t, ["double", "big_number", "verbatim_string", "map", "set"]);
    match double {
        Value::Number(d) => return Converted::Reply(Frame::Double(d)),
        Value::Integer(d) => return Converted::Reply(Frame::Double(d as f64)),
        _ => {}
    }
    if let Value::String(s) = big_number {
        return Converted::Reply(Frame::BigNumber(Bytes::from(one_line(&s.as_bytes()))));
    }
    if let Value::Table(v) = verbatim {
        if let (Ok(Value::String(format)), Ok(Value::String(s))) = (v.raw_get("format"), v.raw_get("string")) {
            let mut fmt = [b' '; 3];
            format.as_bytes().iter().take(3).enumerate().for_each(|(i, b)| fmt[i] = *b);
            return Converted::Reply(Frame::Verbatim(fmt, Bytes::copy_from_slice(&s.as_bytes())));
        }
    }
    let kind = match (map, set) {
        (Value::Table(m), _) => Kind::Map { t: m, key: Value::Nil, value: None, key_reply: None, pairs: Vec::new() },
        (_, Value::Table(s)) => Kind::Set { t: s, key: Value::Nil, members: Vec::new() },
        _ => Kind::Array { t: t.clone(), next: 1, items: Vec::new() },
    };
    Converted::Open(Level { kind })
}

/// A table whose elements are being converted.
struct Level {
    kind: Kind,
}

enum Kind {
    Array {
        t: Table,
        next: i64,
        items: Vec<Frame>,
    },
    Set {
        t: Table,
        key: Value,
        members: Vec<Frame>,
    },
    /// A map's pairs: its key is converted, then its value (kept meanwhile).
    Map {
        t: Table,
        key: Value,
        value: Option<Value>,
        key_reply: Option<Frame>,
        pairs: Vec<(Frame, Frame)>,
    },
}

impl Level {
    /// The next value to convert, None at the end. A set or map is walked with Lua's `next`
    /// from the last key, so no more than one of its keys is held at a time.
    fn advance(&mut self, lua: &Lua, next: &mut Option<Function>) -> Option<Value> {
        let mut next = |t: &Table, key: &Value| {
            if next.is_none() {
                *next = lua.globals().raw_get::<Function>("next").ok();
            }
            let f = next.as_ref()?;
            f.call::<(Value, Value)>((t.clone(), key.clone())).ok()
        };
        match &mut self.kind {
            Kind::Array { t, next: i, .. } => match t.raw_get::<Value>(*i) {
                Ok(Value::Nil) | Err(_) => None,
                Ok(v) => {
                    *i += 1;
                    Some(v)
                }
            },
            Kind::Set { t, key, .. } => {
                let (k, _) = next(t, key).unwrap_or((Value::Nil, Value::Nil));
                *key = k.clone();
                (!k.is_nil()).then_some(k)
            }
            // Its key is converted: now its value.
            Kind::Map { value, key_reply: Some(_), .. } => value.take(),
            Kind::Map { t, key, value, .. } => {
                let (k, v) = next(t, key).unwrap_or((Value::Nil, Value::Nil));
                *key = k.clone();
                *value = Some(v);
                (!k.is_nil()).then_some(k)
            }
        }
    }

    /// The reply of the value `advance` handed out last.
    fn accept(&mut self, reply: Frame) {
        match &mut self.kind {
            Kind::Array { items, .. } => items.push(reply),
            Kind::Set { members, .. } => members.push(reply),
            Kind::Map { key_reply, pairs, .. } => match key_reply.take() {
                Some(k) => pairs.push((k, reply)),
                None => *key_reply = Some(reply),
            },
        }
    }

    fn finish(self) -> Frame {
        match self.kind {
            Kind::Array { items, .. } => Frame::Array(items),
            Kind::Set { members, .. } => Frame::Set(members),
            Kind::Map { pairs, .. } => Frame::Map(pairs),
        }
    }
}

/// A status or error line: CR and LF become spaces (they would break the protocol).
fn one_line(b: &[u8]) -> Vec<u8> {
    b.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect()
}

/// C's `(long long)` of a double on x86-64: truncation, and the "integer indefinite" value
/// (i64::MIN) for NaN and anything out of range, where Rust's `as` would saturate.
pub fn c_double_to_i64(n: f64) -> i64 {
    if n.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A Lua number as a command argument: C's `%.17g`, as Redis formats it.
pub fn number_arg(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    format_g17(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_get_a_code_as_redis_gives_them() {
        assert_eq!(push_error_text(b"-WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(push_error_text(b"-nocode"), b"ERR nocode");
        assert_eq!(push_error_text(b"plain text\r\n"), b"ERR plain text");
        assert_eq!(push_error_text(b"-ERR with dash"), b"ERR with dash");
    }

    #[test]
    fn numbers_convert_as_c_casts_and_printf() {
        assert_eq!(c_double_to_i64(3.99), 3);
        assert_eq!(c_double_to_i64(-3.99), -3);
        assert_eq!(c_double_to_i64(1e20), i64::MIN);
        assert_eq!(c_double_to_i64(f64::NAN), i64::MIN);
        assert_eq!(c_double_to_i64(f64::INFINITY), i64::MIN);
        assert_eq!(number_arg(1.5), "1.5");
        assert_eq!(number_arg(3.0), "3");
        assert_eq!(number_arg(1e17), "1e+17");
        assert_eq!(number_arg(0.1), "0.10000000000000001");
    }
}
