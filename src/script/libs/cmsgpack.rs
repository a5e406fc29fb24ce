//! `cmsgpack`: lua-cmsgpack 0.4 as Redis ships it: `pack(...)` (each argument, concatenated),
//! `unpack(s)` (every value), `unpack_one(s [, offset])`, `unpack_limit(s, limit [, offset])`.
//! Integral numbers take the smallest integer format, others float32 when exact, else float64;
//! a table whose keys are exactly 1..n is an array, anything else a map; nesting beyond 16
//! packs as nil, as the C library does.

use super::{add, check_string, LibResult};
use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add(lua, &t, "pack", |lua, args: MultiValue| {
        if args.is_empty() {
            return Ok(Err("bad argument #0 to 'pack' (MessagePack pack needs input.)".into()));
        }
        let mut out = Vec::new();
        for v in args.iter() {
            pack(v, &mut out, 0);
        }
        let mut ret = MultiValue::new();
        ret.push_back(Value::String(lua.create_string(&out)?));
        Ok(Ok(ret))
    })?;
    add(lua, &t, "unpack", |lua, args| unpack_with(lua, &args, "unpack", 0, 0))?;
    add(lua, &t, "unpack_one", |lua, args| {
        let offset = int_arg(lua, &args, 2)?;
        unpack_with(lua, &args, "unpack_one", 1, offset)
    })?;
    add(lua, &t, "unpack_limit", |lua, args| {
        let limit = int_arg(lua, &args, 2)?;
        let offset = int_arg(lua, &args, 3)?;
        unpack_with(lua, &args, "unpack_limit", limit, offset)
    })?;
    Ok(t)
}

fn int_arg(lua: &Lua, args: &MultiValue, n: usize) -> mlua::Result<i64> {
    Ok(match args.get(n - 1) {
        Some(v) => lua.coerce_number(v.clone())?.map_or(0, |n| n as i64),
        None => 0,
    })
}

fn pack(v: &Value, out: &mut Vec<u8>, depth: usize) {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => pack_int(*n, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => pack_str(&s.as_bytes(), out),
        Value::Table(t) if depth < MAX_NESTING => pack_table(t, out, depth + 1),
        _ => out.push(0xc0),
    }
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    if n.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        pack_int(n as i64, out);
    } else if f64::from(n as f32) == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        let u = n as u64;
        match u {
            0..=127 => out.push(u as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, u as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(u as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(u as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&u.to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_str(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack_table(t: &Table, out: &mut Vec<u8>, depth: usize) {
    let pairs: Vec<(Value, Value)> = t.clone().pairs::<Value, Value>().filter_map(Result::ok).collect();
    let max = pairs.iter().try_fold(0usize, |max, (k, _)| match k {
        Value::Integer(i) if *i >= 1 => Some(max.max(*i as usize)),
        Value::Number(n) if *n >= 1.0 && n.fract() == 0.0 => Some(max.max(*n as usize)),
        _ => None,
    });
    match max {
        Some(max) if max == pairs.len() => {
            header(out, max, 0x90, 0xdc, 0xdd);
            for i in 1..=max {
                pack(&t.raw_get::<Value>(i).unwrap_or(Value::Nil), out, depth);
            }
        }
        _ => {
            header(out, pairs.len(), 0x80, 0xde, 0xdf);
            for (k, v) in &pairs {
                pack(k, out, depth);
                pack(v, out, depth);
            }
        }
    }
}

/// Decodes up to `limit` values (0: all) from `offset`; with a limit the first value returned
/// is the offset after the last value decoded (-1 at the end of the input).
fn unpack_with(lua: &Lua, args: &MultiValue, fname: &str, limit: i64, offset: i64) -> mlua::Result<LibResult> {
    let s = match check_string(lua, args, 1, fname)? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if offset < 0 || limit < 0 {
        return Ok(Err(format!("Invalid request to unpack with offset of {offset} and limit of {limit}.")));
    }
    let mut r = Reader { lua, s: &s, pos: offset as usize };
    let mut values = MultiValue::new();
    let mut n = 0;
    while r.pos < s.len() && (limit == 0 || n < limit) {
        match r.value(0) {
            Ok(v) => values.push_back(v),
            Err(e) => return Ok(Err(e)),
        }
        n += 1;
    }
    if limit > 0 {
        let next = if r.pos >= s.len() { -1 } else { r.pos as i64 };
        values.push_front(Value::Number(next as f64));
    }
    Ok(Ok(values))
}

struct Reader<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.s.len()).ok_or(MISSING)?;
        let out = &self.s[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn str(&mut self, n: usize) -> Result<Value, String> {
        let bytes = self.take(n)?.to_vec();
        self.lua.create_string(bytes).map(Value::String).map_err(|e| e.to_string())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        let tag = self.uint(1)? as u8;
        let num = |n: f64| Ok(Value::Number(n));
        match tag {
            0x00..=0x7f => num(f64::from(tag)),
            0xe0..=0xff => num(f64::from(tag as i8)),
            0xa0..=0xbf => self.str(usize::from(tag & 0x1f)),
            0x90..=0x9f => self.array(usize::from(tag & 0x0f), depth),
            0x80..=0x8f => self.map(usize::from(tag & 0x0f), depth),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xca => num(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => num(f64::from_bits(self.uint(8)?)),
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            0xcf => num(self.uint(8)? as f64),
            0xd0 => num(f64::from(self.uint(1)? as u8 as i8)),
            0xd1 => num(f64::from(self.uint(2)? as u16 as i16)),
            0xd2 => num(f64::from(self.uint(4)? as u32 as i32)),
            0xd3 => num(self.uint(8)? as i64 as f64),
            0xd9 | 0xc4 => {
                let n = self.uint(1)? as usize;
                self.str(n)
            }
            0xda | 0xc5 => {
                let n = self.uint(2)? as usize;
                self.str(n)
            }
            0xdb | 0xc6 => {
                let n = self.uint(4)? as usize;
                self.str(n)
            }
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(n, depth)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(n, depth)
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(n, depth)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(n, depth)
            }
            _ => Err(BAD.into()),
        }
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, String> {
        // Every element takes at least one byte: a count beyond the input is missing bytes,
        // never a huge allocation.
        if n > self.s.len() - self.pos.min(self.s.len()) {
            return Err(MISSING.into());
        }
        if depth >= 1000 {
            return Err(BAD.into());
        }
        let t = self.lua.create_table().map_err(|e| e.to_string())?;
        for i in 1..=n {
            let v = self.value(depth + 1)?;
            t.raw_set(i, v).map_err(|e| e.to_string())?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, String> {
        if n > (self.s.len() - self.pos.min(self.s.len())) / 2 {
            return Err(MISSING.into());
        }
        if depth >= 1000 {
            return Err(BAD.into());
        }
        let t = self.lua.create_table().map_err(|e| e.to_string())?;
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            if !matches!(k, Value::Nil) {
                t.raw_set(k, v).map_err(|e| e.to_string())?;
            }
        }
        Ok(Value::Table(t))
    }
}
