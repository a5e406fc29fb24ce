//! `bit`: LuaBitOp 1.0.2 (Redis's): 32-bit operations on Lua numbers, results signed.

use super::{add, check_number, one, LibResult};
use mlua::{Lua, MultiValue, Table, Value};

/// LuaBitOp's `tobit`: the number modulo 2^32 after rounding (the 2^52 + 2^51 trick).
fn tobit(n: f64) -> i32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

fn arg(lua: &Lua, args: &MultiValue, n: usize, fname: &str) -> mlua::Result<Result<i32, String>> {
    Ok(check_number(lua, args, n, fname)?.map(tobit))
}

fn num(b: i32) -> LibResult {
    one(Value::Number(f64::from(b)))
}

type Unary = fn(i32) -> i32;
type Binary = fn(i32, i32) -> i32;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary: [(&str, Unary); 3] = [("tobit", |b| b), ("bnot", |b| !b), ("bswap", |b| b.swap_bytes())];
    for (name, f) in unary {
        add(lua, &t, name, move |lua, args| Ok(arg(lua, &args, 1, name)?.and_then(|b| num(f(b)))))?;
    }
    let folds: [(&str, Binary); 3] = [("band", |a, b| a & b), ("bor", |a, b| a | b), ("bxor", |a, b| a ^ b)];
    for (name, f) in folds {
        add(lua, &t, name, move |lua, args| {
            let mut acc = match arg(lua, &args, 1, name)? {
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            };
            for i in 2..=args.len() {
                match arg(lua, &args, i, name)? {
                    Ok(b) => acc = f(acc, b),
                    Err(e) => return Ok(Err(e)),
                }
            }
            Ok(num(acc))
        })?;
    }
    let shifts: [(&str, Binary); 5] = [
        ("lshift", |b, n| ((b as u32) << (n & 31)) as i32),
        ("rshift", |b, n| ((b as u32) >> (n & 31)) as i32),
        ("arshift", |b, n| b >> (n & 31)),
        ("rol", |b, n| (b as u32).rotate_left((n & 31) as u32) as i32),
        ("ror", |b, n| (b as u32).rotate_right((n & 31) as u32) as i32),
    ];
    for (name, f) in shifts {
        add(lua, &t, name, move |lua, args| {
            let b = match arg(lua, &args, 1, name)? {
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            };
            Ok(arg(lua, &args, 2, name)?.and_then(|n| num(f(b, n))))
        })?;
    }
    add(lua, &t, "tohex", |lua, args| {
        let b = match arg(lua, &args, 1, "tohex")? {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let n = match args.get(1) {
            None | Some(Value::Nil) => 8,
            Some(_) => match arg(lua, &args, 2, "tohex")? {
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            },
        };
        Ok(one(Value::String(lua.create_string(tohex(b, n))?)))
    })?;
    Ok(t)
}

/// `bit.tohex(b, n)`: the low `|n|` hex digits (at most 8), upper case for a negative `n`.
fn tohex(b: i32, n: i32) -> String {
    let upper = n < 0;
    let n = n.unsigned_abs().min(8) as usize;
    let s = if upper { format!("{:08X}", b as u32) } else { format!("{:08x}", b as u32) };
    s[8 - n..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_and_rounds_as_luabitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tohex(255, 8), "000000ff");
        assert_eq!(tohex(-1, -4), "FFFF");
        assert_eq!(tohex(255, 12), "000000ff");
    }
}
