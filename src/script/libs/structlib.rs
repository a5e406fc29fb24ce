//! `struct`: Roberto Ierusalimschy's struct library as Redis ships it: `pack(fmt, ...)`,
//! `unpack(fmt, s [, pos])`, `size(fmt)`, with formats `< > ! x b B h H l L T i I c s f d`
//! on a 64-bit platform (long and size_t are 8 bytes, int 4, native order little-endian,
//! default alignment 1, `!` alone aligns to 8).

use super::{add, check_number, check_string, LibResult};
use mlua::{Lua, MultiValue, Table, Value};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add(lua, &t, "pack", pack)?;
    add(lua, &t, "unpack", unpack)?;
    add(lua, &t, "size", size)?;
    Ok(t)
}

struct Header {
    big: bool,
    align: usize,
}

/// A format being read, option by option.
struct Format<'a> {
    f: &'a [u8],
    i: usize,
    fname: &'static str,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.f.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn num(&mut self, default: usize) -> Result<usize, String> {
        if !self.f.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: usize = 0;
        while let Some(d) = self.f.get(self.i).filter(|c| c.is_ascii_digit()) {
            a = a
                .checked_mul(10)
                .and_then(|a| a.checked_add(usize::from(d - b'0')))
                .filter(|a| *a <= i32::MAX as usize)
                .ok_or("integral size overflow")?;
            self.i += 1;
        }
        Ok(a)
    }

    /// The size of option `opt` (0 for control options).
    fn size(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.num(1)?,
            b'i' | b'I' => {
                let sz = self.num(4)?;
                if sz > MAX_INT_SIZE {
                    return Err(format!("integral size {sz} is larger than limit of {MAX_INT_SIZE}"));
                }
                sz
            }
            _ => 0,
        })
    }

    /// The control options (`< > ! space`); anything else is invalid.
    fn control(&mut self, opt: u8, h: &mut Header) -> Result<(), String> {
        match opt {
            b' ' => {}
            b'>' => h.big = true,
            b'<' => h.big = false,
            b'!' => {
                let a = self.num(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                h.align = a;
            }
            _ => {
                let fname = self.fname;
                return Err(format!("bad argument #1 to '{fname}' (invalid format option '{}')", opt as char));
            }
        }
        Ok(())
    }
}

fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn put_int(out: &mut Vec<u8>, n: f64, big: bool, size: usize) {
    let value = if n < 0.0 { crate::script::c_double_to_i64(n) as u64 } else { n as u64 };
    let mut bytes: Vec<u8> = (0..size).map(|i| if i < 8 { (value >> (8 * i)) as u8 } else { 0 }).collect();
    if big {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_int(data: &[u8], big: bool, signed: bool, size: usize) -> f64 {
    let mut value: u64 = 0;
    let ordered: Vec<u8> = if big { data.to_vec() } else { data.iter().rev().copied().collect() };
    for b in ordered {
        value = value << 8 | u64::from(b);
    }
    if signed && size < 8 {
        let mask = 1u64 << (size * 8 - 1);
        return ((value ^ mask).wrapping_sub(mask)) as i64 as f64;
    }
    if signed {
        return value as i64 as f64;
    }
    value as f64
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<LibResult> {
    let fmt = match check_string(lua, &args, 1, "pack")? {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let mut f = Format { f: &fmt, i: 0, fname: "pack" };
    let mut h = Header { big: false, align: 1 };
    let (mut out, mut arg) = (Vec::new(), 2);
    while let Some(opt) = f.next() {
        let mut size = match f.size(opt) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                match check_number(lua, &args, arg, "pack")? {
                    Ok(n) => put_int(&mut out, n, h.big, size),
                    Err(e) => return Ok(Err(e)),
                }
                arg += 1;
            }
            b'x' => out.push(0),
            b'f' | b'd' => {
                let n = match check_number(lua, &args, arg, "pack")? {
                    Ok(n) => n,
                    Err(e) => return Ok(Err(e)),
                };
                arg += 1;
                let mut bytes = if opt == b'f' { (n as f32).to_le_bytes().to_vec() } else { n.to_le_bytes().to_vec() };
                if h.big {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            b'c' | b's' => {
                let s = match check_string(lua, &args, arg, "pack")? {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(e)),
                };
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Ok(Err(format!("bad argument #{arg} to 'pack' (string too short)")));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => {
                if let Err(e) = f.control(opt, &mut h) {
                    return Ok(Err(e));
                }
            }
        }
    }
    let mut ret = MultiValue::new();
    ret.push_back(Value::String(lua.create_string(&out)?));
    Ok(Ok(ret))
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<LibResult> {
    let fmt = match check_string(lua, &args, 1, "unpack")? {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let data = match check_string(lua, &args, 2, "unpack")? {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        Some(_) => match check_number(lua, &args, 3, "unpack")? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        },
    };
    if start < 1.0 {
        return Ok(Err("bad argument #3 to 'unpack' (offset must be 1 or greater)".into()));
    }
    let too_short = || Err("bad argument #2 to 'unpack' (data string too short)".to_string());
    let (mut pos, ld) = (start as usize - 1, data.len());
    let mut f = Format { f: &fmt, i: 0, fname: "unpack" };
    let mut h = Header { big: false, align: 1 };
    let mut out = MultiValue::new();
    while let Some(opt) = f.next() {
        let mut size = match f.size(opt) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        pos += to_align(pos, &h, opt, size);
        if size > ld || pos > ld - size {
            return Ok(too_short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = get_int(&data[pos..pos + size], h.big, opt.is_ascii_lowercase(), size);
                out.push_back(Value::Number(n));
            }
            b'x' => {}
            b'f' | b'd' => {
                let mut bytes = data[pos..pos + size].to_vec();
                if h.big {
                    bytes.reverse();
                }
                let n = match bytes.try_into() {
                    Ok(b4) if opt == b'f' => f64::from(f32::from_le_bytes(b4)),
                    Ok(_) => 0.0,
                    Err(b8) => f64::from_le_bytes(b8.try_into().unwrap_or([0; 8])),
                };
                out.push_back(Value::Number(n));
            }
            b'c' => {
                if size == 0 {
                    let Some(Value::Number(prev)) = out.pop_back() else {
                        return Ok(Err("format 'c0' needs a previous size".into()));
                    };
                    size = prev.max(0.0) as usize;
                    if size > ld || pos > ld - size {
                        return Ok(too_short());
                    }
                }
                out.push_back(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Ok(Err("unfinished string in data".into()));
                };
                out.push_back(Value::String(lua.create_string(&data[pos..pos + end])?));
                size = end + 1;
            }
            _ => {
                if let Err(e) = f.control(opt, &mut h) {
                    return Ok(Err(e));
                }
            }
        }
        pos += size;
    }
    out.push_back(Value::Number((pos + 1) as f64));
    Ok(Ok(out))
}

fn size(lua: &Lua, args: MultiValue) -> mlua::Result<LibResult> {
    let fmt = match check_string(lua, &args, 1, "size")? {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let mut f = Format { f: &fmt, i: 0, fname: "size" };
    let mut h = Header { big: false, align: 1 };
    let mut pos = 0;
    while let Some(opt) = f.next() {
        let size = match f.size(opt) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        pos += to_align(pos, &h, opt, size);
        if opt == b's' {
            return Ok(Err("bad argument #1 to 'size' (option 's' has no fixed size)".into()));
        }
        if opt == b'c' && size == 0 {
            return Ok(Err("bad argument #1 to 'size' (option 'c0' has no fixed size)".into()));
        }
        if !opt.is_ascii_alphanumeric() {
            if let Err(e) = f.control(opt, &mut h) {
                return Ok(Err(e));
            }
        }
        pos += size;
    }
    let mut ret = MultiValue::new();
    ret.push_back(Value::Number(pos as f64));
    Ok(Ok(ret))
}
