//! SLOWLOG GET [count] / LEN / RESET / HELP over this node's slow log
//! (`crate::server::slowlog`), with Redis 7.0.15's replies and errors.

use super::{help_reply, sub_arity, Session};
use crate::cmd::args;
use crate::protocol::{parse_i64, Frame};
use bytes::Bytes;

const HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// SLOWLOG <subcommand> ...
pub fn slowlog(s: &mut Session, argv: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "len" | "reset" | "help" => 2,
        "get" => -2,
        _ => return args::unknown_subcommand(&argv[1], "slowlog"),
    };
    if let Err(e) = sub_arity("slowlog", argv, arity) {
        return e;
    }
    let log = &s.shared.slowlog;
    match sub.as_str() {
        "help" => help_reply("SLOWLOG", HELP),
        "len" => Frame::Integer(log.len() as i64),
        "reset" => {
            log.reset();
            Frame::ok()
        }
        _ if argv.len() > 3 => syntax_error(&argv[1]),
        _ => match argv.get(2).map(|c| parse_i64(c)) {
            None => log.get(Some(10)),
            Some(Some(-1)) => log.get(None),
            Some(Some(n)) if n >= 0 => log.get(Some(n as usize)),
            Some(_) => Frame::error("ERR count should be greater than or equal to -1"),
        },
    }
}

/// Redis's `addReplySubcommandSyntaxError`.
pub(crate) fn syntax_error_of(cmd: &str, sub: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

fn syntax_error(sub: &[u8]) -> Frame {
    syntax_error_of("SLOWLOG", sub)
}
