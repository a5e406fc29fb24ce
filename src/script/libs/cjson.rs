//! `cjson`: Lua CJSON 2.1 as Redis ships it (default settings): `encode`, `decode`, `null`.
//! Numbers print as `%.14g`, `/` is escaped, arrays are tables whose keys are exactly 1..n
//! (with holes up to Redis's sparse-array limits), the empty table is `{}`, JSON null decodes
//! to `cjson.null`, and errors carry cjson's texts ("Expected value but found T_END at
//! character 1").

use super::{add, check_string, one};
use mlua::{LightUserData, Lua, MultiValue, Table, Value};

const MAX_DEPTH: usize = 1000;
/// cjson's defaults: a sparse array is an error beyond ratio 2 when its largest index is over 10.
const SPARSE_RATIO: usize = 2;
const SPARSE_SAFE: usize = 10;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add(lua, &t, "encode", |lua, args: MultiValue| {
        if args.len() != 1 {
            return Ok(Err("bad argument #1 to 'encode' (expected 1 argument)".into()));
        }
        let mut out = Vec::new();
        Ok(match encode(&args[0], &mut out, 0) {
            Ok(()) => one(Value::String(lua.create_string(&out)?)),
            Err(e) => Err(e),
        })
    })?;
    add(lua, &t, "decode", |lua, args: MultiValue| {
        if args.len() != 1 {
            return Ok(Err("bad argument #1 to 'decode' (expected 1 argument)".into()));
        }
        let text = match check_string(lua, &args, 1, "decode")? {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let mut p = Parser { lua, s: &text, pos: 0, depth: 0 };
        Ok(p.document().map(|v| {
            let mut out = MultiValue::new();
            out.push_back(v);
            out
        }))
    })?;
    t.raw_set("null", Value::LightUserData(LightUserData(std::ptr::null_mut())))?;
    Ok(t)
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => number(*n as f64, out)?,
        Value::Number(n) => number(*n, out)?,
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => table(t, out, depth + 1)?,
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

fn number(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(g14(n).as_bytes());
    Ok(())
}

/// C's `%.14g`.
pub fn g14(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{:.13e}", n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..14).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    trim(&format!("{:.*}", (13 - exp).max(0) as usize, n))
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

/// cjson's `lua_array_length`: Some(n) for an array of n elements (holes allowed within its
/// sparse limits), None for an object.
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let Ok((k, _)) = pair else { return Ok(None) };
        let k = match k {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(k);
        items += 1;
    }
    if max > SPARSE_SAFE && max > items * SPARSE_RATIO {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn table(t: &Table, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
    }
    match array_length(t)? {
        Some(n) if n > 0 => {
            out.push(b'[');
            for i in 1..=n {
                if i > 1 {
                    out.push(b',');
                }
                encode(&t.raw_get::<Value>(i).unwrap_or(Value::Nil), out, depth)?;
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            let mut first = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let Ok((k, v)) = pair else { continue };
                if !first {
                    out.push(b',');
                }
                first = false;
                match &k {
                    Value::String(s) => string(&s.as_bytes(), out),
                    Value::Integer(n) => string(g14(*n as f64).as_bytes(), out),
                    Value::Number(n) => string(g14(*n).as_bytes(), out),
                    _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                }
                out.push(b':');
                encode(&v, out, depth)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A recursive-descent JSON parser with cjson's error texts.
struct Parser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn document(&mut self) -> Result<Value, String> {
        let v = self.value()?;
        self.skip_ws();
        if self.pos < self.s.len() {
            return Err(self.expected("the end"));
        }
        Ok(v)
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
            Some(c) if c.is_ascii_digit() || *c == b'-' => "T_NUMBER",
            Some(_) => "invalid token",
        }
    }

    fn word_at(&self, w: &[u8]) -> bool {
        self.s[self.pos..].starts_with(w)
    }

    fn expected(&self, what: &str) -> String {
        format!("Expected {what} but found {} at character {}", self.token_name(), self.pos + 1)
    }

    fn lua_err(e: mlua::Error) -> String {
        e.to_string()
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.s.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                let s = self.string()?;
                Ok(Value::String(self.lua.create_string(s).map_err(Self::lua_err)?))
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
            Some(c) if c.is_ascii_digit() || *c == b'-' => self.number(),
            _ => Err(self.expected("value")),
        }
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                self.pos + 1
            ));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, String> {
        self.nest()?;
        self.pos += 1;
        let t = self.lua.create_table().map_err(Self::lua_err)?;
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
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
            let v = self.value()?;
            t.raw_set(self.lua.create_string(key).map_err(Self::lua_err)?, v).map_err(Self::lua_err)?;
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.expected("comma or object end")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.nest()?;
        self.pos += 1;
        let t = self.lua.create_table().map_err(Self::lua_err)?;
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value()?;
            t.raw_set(i, v).map_err(Self::lua_err)?;
            i += 1;
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.expected("comma or array end")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        let is_num = |c: &u8| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E');
        while self.s.get(self.pos).is_some_and(is_num) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => Ok(Value::Number(n)),
            Err(_) => {
                self.pos = start;
                Err(format!("Expected value but found invalid number at character {}", start + 1))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g14_is_printf() {
        assert_eq!(g14(1.0), "1");
        assert_eq!(g14(0.1), "0.1");
        assert_eq!(g14(1.0 / 3.0), "0.33333333333333");
        assert_eq!(g14(1e20), "1e+20");
        assert_eq!(g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(g14(-2.5), "-2.5");
    }
}
