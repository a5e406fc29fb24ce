//! Argument parsing and the error replies shared by all command families (texts as Redis 7).

use crate::protocol::{parse_i64, Frame};

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const OUT_OF_RANGE: &str = "ERR index out of range";

/// An error reply from one of the constants above or a formatted message.
pub fn err(msg: &str) -> Frame {
    Frame::error(msg)
}

pub fn wrongtype() -> Frame {
    err(WRONGTYPE)
}

pub fn syntax() -> Frame {
    err(SYNTAX)
}

/// `ERR wrong number of arguments for 'name' command` (name lowercase, `a|b` for subcommands).
pub fn wrong_arity(name: &str) -> Frame {
    Frame::error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// `ERR unknown subcommand 'x'. Try CMD HELP.`
pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)]),
        cmd.to_ascii_uppercase()
    ))
}

/// An integer argument with Redis's strict syntax.
pub fn int(arg: &[u8]) -> Result<i64, Frame> {
    parse_i64(arg).ok_or_else(|| err(NOT_INTEGER))
}

/// An integer argument that must be >= 0, with a custom error for negatives.
pub fn non_negative(arg: &[u8], negative_msg: &str) -> Result<i64, Frame> {
    match int(arg)? {
        n if n < 0 => Err(err(negative_msg)),
        n => Ok(n),
    }
}

/// A float argument as Redis's `getDoubleFromObject` accepts it (no spaces, no NaN;
/// `inf`, `+inf`, `-inf` allowed).
pub fn float(arg: &[u8]) -> Result<f64, Frame> {
    parse_float(arg).ok_or_else(|| err(NOT_FLOAT))
}

/// Float parsing without the error reply: `None` when Redis would refuse the text.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_whitespace()) || s.ends_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        lower if lower.contains("nan") => return None,
        _ => s.parse().ok()?,
    };
    Some(v)
}

/// ASCII case-insensitive comparison of an argument with a keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(int(b"42"), Ok(42));
        assert_eq!(int(b"-7"), Ok(-7));
        assert!(int(b"+1").is_err());
        assert!(int(b"01").is_err());
        assert!(int(b" 1").is_err());
        assert!(int(b"9223372036854775808").is_err());
        assert_eq!(int(b"-9223372036854775808"), Ok(i64::MIN));
    }

    #[test]
    fn floats_follow_redis() {
        assert_eq!(float(b"1.5"), Ok(1.5));
        assert_eq!(float(b"-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(float(b"1e3"), Ok(1000.0));
        assert!(float(b"nan").is_err());
        assert!(float(b" 1").is_err());
        assert!(float(b"abc").is_err());
        assert!(float(b"").is_err());
    }
}
