//! Connection and server commands (PING, HELLO, AUTH, SELECT, CLIENT, CONFIG, INFO, ...).
//! They act on the connection or the node, not on the keyspace, so they are `Session`
//! commands carried out here with access to the client and the shared server state.
//! MULTI/EXEC/DISCARD/WATCH/UNWATCH live in `crate::server::dispatch`.

use super::args::{self, is};
use super::{CommandSpec, Kind};
use crate::protocol::{Frame, RespVersion};
use crate::server::{Client, ClientHandle, Shared};
use bytes::Bytes;
use std::sync::Arc;

const S: Kind = Kind::Session;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, &["fast", "stale"], (0, 0, 0), S),
    CommandSpec::new("echo", 2, &["fast", "stale"], (0, 0, 0), S),
    CommandSpec::new("select", 2, &["loading", "stale", "fast"], (0, 0, 0), S),
    CommandSpec::new("quit", -1, &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], (0, 0, 0), S),
    CommandSpec::new(
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"],
        (0, 0, 0),
        S,
    ),
    CommandSpec::new(
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"],
        (0, 0, 0),
        S,
    ),
    CommandSpec::new("multi", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), S),
    CommandSpec::new("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], (0, 0, 0), S),
    CommandSpec::new("discard", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), S),
    CommandSpec::new("watch", -2, &["noscript", "loading", "stale", "fast", "allow_busy"], (1, -1, 1), S),
    CommandSpec::new("unwatch", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), S),
];

/// What a session command may touch.
pub struct Session<'a> {
    pub client: &'a mut Client,
    pub handle: &'a ClientHandle,
    pub shared: &'a Arc<Shared>,
}

/// Runs a session command (arity already checked).
pub fn run_session(s: &mut Session, spec: &CommandSpec, argv: &[Bytes]) -> Frame {
    match spec.name {
        "ping" => ping(s, argv),
        "echo" => Frame::Bulk(argv[1].clone()),
        "select" => select(s, argv),
        "quit" => {
            s.client.close_after_reply = true;
            Frame::ok()
        }
        "auth" => auth(s, argv),
        "hello" => hello(s, argv),
        other => Frame::error(format!("ERR command '{other}' is not available")),
    }
}

fn ping(_s: &mut Session, argv: &[Bytes]) -> Frame {
    match argv.len() {
        1 => Frame::simple("PONG"),
        2 => Frame::Bulk(argv[1].clone()),
        _ => args::wrong_arity("ping"),
    }
}

fn select(s: &mut Session, argv: &[Bytes]) -> Frame {
    let (dbs, cluster) = {
        let c = s.shared.config();
        (c.databases, c.cluster_enabled)
    };
    let Ok(n) = args::int(&argv[1]) else {
        return Frame::error(args::NOT_INTEGER);
    };
    if cluster && n != 0 {
        return Frame::error("ERR SELECT is not allowed in cluster mode");
    }
    if n < 0 || n as usize >= dbs {
        return Frame::error("ERR DB index is out of range");
    }
    s.client.db = n as usize;
    s.handle.update(|i| i.db = n as usize);
    Frame::ok()
}

fn check_password(s: &Session, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Frame> {
    let required = s.shared.config().requirepass.clone();
    let user_ok = user.is_none_or(|u| u == b"default");
    if required.is_empty() && user.is_none() {
        return Err(Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    if user_ok && (required.is_empty() || pass == required.as_bytes()) {
        return Ok(());
    }
    Err(Frame::error("WRONGPASS invalid username-password pair or user is disabled."))
}

fn auth(s: &mut Session, argv: &[Bytes]) -> Frame {
    let result = match argv.len() {
        2 => check_password(s, None, &argv[1]),
        3 => check_password(s, Some(&argv[1]), &argv[2]),
        _ => return Frame::error(args::SYNTAX),
    };
    match result {
        Ok(()) => {
            s.client.authenticated = true;
            Frame::ok()
        }
        Err(e) => e,
    }
}

fn hello(s: &mut Session, argv: &[Bytes]) -> Frame {
    let mut version = s.client.resp;
    if argv.len() >= 2 {
        version = match args::int(&argv[1]) {
            Ok(2) => RespVersion::Resp2,
            Ok(3) => RespVersion::Resp3,
            Ok(_) => return Frame::error("NOPROTO unsupported protocol version"),
            Err(_) => return Frame::error("ERR Protocol version is not an integer or out of range"),
        };
    }
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if is(&argv[i], "auth") && more >= 2 {
            if let Err(e) = check_password(s, Some(&argv[i + 1]), &argv[i + 2]) {
                return e;
            }
            s.client.authenticated = true;
            i += 3;
        } else if is(&argv[i], "setname") && more >= 1 {
            s.client.name = argv[i + 1].clone();
            i += 2;
        } else {
            return Frame::error(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(&argv[i])));
        }
    }
    if !s.client.authenticated {
        return Frame::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    s.client.resp = version;
    let name = s.client.name.clone();
    s.handle.update(|i| {
        i.resp = version;
        i.name = name;
    });
    hello_reply(s, version)
}

fn hello_reply(s: &Session, version: RespVersion) -> Frame {
    let cluster = s.shared.config().cluster_enabled;
    let b = |t: &'static str| Frame::Bulk(Bytes::from_static(t.as_bytes()));
    Frame::Map(vec![
        (b("server"), b("redis")),
        (b("version"), b(crate::REDIS_VERSION)),
        (b("proto"), Frame::Integer(if version == RespVersion::Resp3 { 3 } else { 2 })),
        (b("id"), Frame::Integer(s.client.id as i64)),
        (b("mode"), b(if cluster { "cluster" } else { "standalone" })),
        (b("role"), b("master")),
        (b("modules"), Frame::Array(vec![])),
    ])
}
