//! Connection and server commands (PING, HELLO, AUTH, SELECT, CLIENT, CONFIG, INFO, COMMAND,
//! SHUTDOWN, RESET, ...). They act on the connection or the node, not on the keyspace, so
//! they are `Session` commands carried out here with access to the client and the shared
//! server state. MULTI/EXEC/DISCARD/WATCH/UNWATCH live in `crate::server::dispatch`.

mod acl;
mod client;
mod command;
mod config;
mod info;
mod latency;
mod memory;
mod redis_table;
mod slowlog;
mod sparkline;
mod tracking;
mod wait;

pub use acl::{
    check as acl_check, disconnect_user, log_denial as acl_log_denial, log_reason as acl_log_reason, noperm,
    NO_ACL_FILE,
};
pub use command::{acl_commands, acl_keys, acl_name, AclCommand};
pub use memory::usage as memory_usage;

use super::args::{self, is};
use super::{CommandSpec, Kind};
use crate::protocol::{Frame, RespVersion};
use crate::server::{now_ms, Client, ClientHandle, Shared};
use bytes::Bytes;
use std::sync::Arc;

const S: Kind = Kind::Session;

/// Flags shared by the connection commands that run before AUTH.
const NO_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"];
const LOADING_STALE_FAST: &[&str] = &["loading", "stale", "fast"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, &["fast"], (0, 0, 0), S),
    CommandSpec::new("echo", 2, LOADING_STALE_FAST, (0, 0, 0), S),
    CommandSpec::new("select", 2, LOADING_STALE_FAST, (0, 0, 0), S),
    CommandSpec::new("quit", -1, NO_AUTH, (0, 0, 0), S),
    CommandSpec::new("auth", -2, NO_AUTH, (0, 0, 0), S),
    CommandSpec::new("hello", -1, NO_AUTH, (0, 0, 0), S),
    CommandSpec::new("reset", 1, NO_AUTH, (0, 0, 0), S),
    CommandSpec::new("multi", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), S),
    CommandSpec::new("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], (0, 0, 0), S),
    CommandSpec::new("discard", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), S),
    CommandSpec::new("watch", -2, &["noscript", "loading", "stale", "fast", "allow_busy"], (1, -1, 1), S),
    CommandSpec::new("unwatch", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), S),
    CommandSpec::new("client", -2, &[], (0, 0, 0), S),
    CommandSpec::new("acl", -2, &[], (0, 0, 0), S),
    CommandSpec::new("command", -1, &["loading", "stale"], (0, 0, 0), S),
    CommandSpec::new("config", -2, &[], (0, 0, 0), S),
    CommandSpec::new("info", -1, &["loading", "stale"], (0, 0, 0), S),
    CommandSpec::new("memory", -2, &[], (0, 0, 0), S),
    CommandSpec::new("time", 1, LOADING_STALE_FAST, (0, 0, 0), S),
    CommandSpec::new("lastsave", 1, LOADING_STALE_FAST, (0, 0, 0), S),
    CommandSpec::new("role", 1, &["noscript", "loading", "stale", "fast"], (0, 0, 0), S),
    CommandSpec::new("save", 1, &["admin", "noscript", "no_async_loading", "no_multi"], (0, 0, 0), S),
    CommandSpec::new("bgsave", -1, &["admin", "noscript", "no_async_loading"], (0, 0, 0), S),
    CommandSpec::new("monitor", 1, &["admin", "noscript", "loading", "stale"], (0, 0, 0), S),
    CommandSpec::new("readonly", 1, LOADING_STALE_FAST, (0, 0, 0), S),
    CommandSpec::new("readwrite", 1, LOADING_STALE_FAST, (0, 0, 0), S),
    CommandSpec::new("wait", 3, &["noscript"], (0, 0, 0), S),
    CommandSpec::new("waitaof", 4, &["noscript"], (0, 0, 0), S),
    CommandSpec::new("lolwut", -1, &["readonly", "fast"], (0, 0, 0), S),
    CommandSpec::new("slowlog", -2, &[], (0, 0, 0), S),
    CommandSpec::new("latency", -2, &[], (0, 0, 0), S),
    CommandSpec::new(
        "shutdown",
        -1,
        &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"],
        (0, 0, 0),
        S,
    ),
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
        "reset" => reset(s),
        // Outside a transaction MONITOR is run by the dispatcher (`server::monitor`).
        "monitor" => Frame::error("ERR MONITOR isn't allowed for DENY BLOCKING client"),
        "client" => client::client(s, argv),
        "acl" => acl::acl(s, argv),
        "command" => command::command(argv),
        "config" => config::config(s, argv),
        "info" => info::info(s, argv),
        "memory" => memory::memory(s, argv),
        "time" => time(),
        "lastsave" => Frame::Integer((s.shared.started_ms / 1000) as i64),
        "role" => info::role(s.shared),
        // raftis keeps its data through the replicated log, not RDB files: a save has
        // nothing to do, so it reports success the way Redis does.
        "save" => Frame::ok(),
        "bgsave" => bgsave(argv),
        "readonly" => readonly(s, true),
        "readwrite" => readonly(s, false),
        "shutdown" => shutdown(s, argv),
        "wait" => wait::wait(s, argv),
        "waitaof" => wait::waitaof(s, argv),
        "lolwut" => wait::lolwut(argv),
        "slowlog" => slowlog::slowlog(s, argv),
        "latency" => latency::latency(s, argv),
        other => Frame::error(format!("ERR command '{other}' is not available")),
    }
}

/// Redis's container commands (their subcommands have names, flags and histograms). A
/// `match` rather than a list: it runs for every command while `latency-tracking` is on.
fn is_redis_container(name: &str) -> bool {
    matches!(
        name,
        "acl"
            | "client"
            | "cluster"
            | "command"
            | "config"
            | "function"
            | "latency"
            | "memory"
            | "module"
            | "object"
            | "pubsub"
            | "script"
            | "slowlog"
            | "xgroup"
            | "xinfo"
    )
}

/// The name Redis gives the command `argv` runs in its per-command statistics: the
/// command's, or `container|sub` (`None` for a subcommand Redis does not know).
pub fn full_command_name(spec: &'static CommandSpec, argv: &[Bytes]) -> Option<std::borrow::Cow<'static, str>> {
    if !is_redis_container(spec.name) {
        return Some(std::borrow::Cow::Borrowed(spec.name));
    }
    let sub = String::from_utf8_lossy(argv.get(1)?).to_ascii_lowercase();
    let full = format!("{}|{sub}", spec.name);
    redis_table::info(&full).map(|_| std::borrow::Cow::Owned(full))
}

/// Whether Redis flags the command named `full` (as [`full_command_name`] gives it) `fast`.
pub fn redis_fast(full: &str) -> bool {
    redis_flagged(full, &["fast"])
}

/// Whether Redis gives the command named `full` any of `flags`.
pub fn redis_flagged(full: &str, flags: &[&str]) -> bool {
    redis_table::info(full)
        .is_some_and(|entry| redis_table::info_strings(entry, 2).iter().any(|f| flags.contains(&f.as_str())))
}

/// Checks a subcommand's arity (Redis's `container|sub` convention); `Err` is the reply.
pub(crate) fn sub_arity(container: &str, argv: &[Bytes], arity: i32) -> Result<(), Frame> {
    let n = argv.len() as i32;
    let ok = if arity >= 0 { n == arity } else { n >= -arity };
    if ok {
        return Ok(());
    }
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    Err(args::wrong_arity(&format!("{container}|{sub}")))
}

/// A help reply: the title line and then every line as simple strings.
pub(crate) fn help_reply(cmd: &str, lines: &[&str]) -> Frame {
    let mut out =
        vec![Frame::Simple(Bytes::from(format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")))];
    out.extend(lines.iter().map(|l| Frame::Simple(Bytes::copy_from_slice(l.as_bytes()))));
    Frame::Array(out)
}

fn ping(_s: &mut Session, argv: &[Bytes]) -> Frame {
    match argv.len() {
        1 => Frame::simple("PONG"),
        2 => Frame::Bulk(argv[1].clone()),
        _ => args::wrong_arity("ping"),
    }
}

fn time() -> Frame {
    let us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    Frame::Array(vec![Frame::bulk((us / 1_000_000).to_string()), Frame::bulk((us % 1_000_000).to_string())])
}

fn bgsave(argv: &[Bytes]) -> Frame {
    match argv.get(1) {
        None => Frame::simple("Background saving started"),
        Some(a) if argv.len() == 2 && is(a, "schedule") => Frame::simple("Background saving scheduled"),
        Some(_) => Frame::error(args::SYNTAX),
    }
}

fn readonly(s: &mut Session, on: bool) -> Frame {
    if !s.shared.config().cluster_enabled {
        return Frame::error("ERR This instance has cluster support disabled");
    }
    s.client.readonly = on;
    s.handle.update(|i| i.readonly = on);
    Frame::ok()
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. Nothing to save or wait for in raftis, so
/// every valid form stops the node at once; like Redis, the caller gets no reply.
fn shutdown(s: &mut Session, argv: &[Bytes]) -> Frame {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for a in &argv[1..] {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "abort") {
            abort = true;
        } else if !is(a, "now") && !is(a, "force") {
            return Frame::error(args::SYNTAX);
        }
    }
    if (save && nosave) || (abort && argv.len() > 2) {
        return Frame::error(args::SYNTAX);
    }
    if abort {
        return Frame::error("ERR No shutdown in progress.");
    }
    s.client.skip_replies = s.client.skip_replies.max(1);
    s.client.close_after_reply = true;
    s.shared.shutdown();
    Frame::ok()
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

/// RESET: back to a fresh connection's state (Redis's `clearClientConnectionState`).
fn reset(s: &mut Session) -> Frame {
    let needs_auth = s.shared.acl().auth_required();
    let c = &mut *s.client;
    c.end_transaction();
    c.db = 0;
    c.resp = RespVersion::Resp2;
    c.name = Bytes::new();
    c.readonly = false;
    c.reply_off = false;
    c.skip_replies = 0;
    c.no_evict = false;
    c.no_touch = false;
    c.authenticated = !needs_auth;
    c.user = Bytes::from_static(b"default");
    c.acl_open_at = 0;
    crate::server::pubsub::unsubscribe_all(c, s.shared);
    crate::server::monitor::stop(c, s.shared);
    if c.tracking.take().is_some() {
        s.shared.tracking.disable(c.id);
    }
    c.caching = false;
    s.handle.update(|i| {
        i.db = 0;
        i.resp = RespVersion::Resp2;
        i.name = Bytes::new();
        i.multi = -1;
        i.watching = 0;
        i.readonly = false;
        i.no_evict = false;
        i.no_touch = false;
        i.subs = (0, 0, 0);
        i.monitor = false;
        i.tracking = None;
        i.tracking_broken = false;
        i.user = Bytes::from_static(b"default");
    });
    Frame::simple("RESET")
}

/// AUTH's check: the user's name when `pass` opens it; a failure is logged (ACL LOG).
fn check_password(s: &Session, user: Option<&[u8]>, pass: &[u8]) -> Result<Bytes, Frame> {
    let name = user.unwrap_or(b"default");
    {
        let acl = s.shared.acl();
        if user.is_none() && acl.user(b"default").is_some_and(|u| u.nopass) {
            return Err(Frame::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        if let Some(u) = acl.user(name).filter(|u| u.password_ok(pass)) {
            return Ok(u.name.clone());
        }
    }
    acl::log_denial(s.shared, &s.handle.info(), "auth", "toplevel", "AUTH".into(), name);
    Err(Frame::error("WRONGPASS invalid username-password pair or user is disabled."))
}

/// The connection runs as `user` from now on.
fn authenticate(s: &mut Session, user: Bytes) {
    s.client.authenticated = true;
    s.client.user = user.clone();
    s.client.acl_open_at = 0;
    s.handle.update(|i| i.user = user);
}

fn auth(s: &mut Session, argv: &[Bytes]) -> Frame {
    let result = match argv.len() {
        2 => check_password(s, None, &argv[1]),
        3 => check_password(s, Some(&argv[1]), &argv[2]),
        _ => return Frame::error(args::SYNTAX),
    };
    match result {
        Ok(user) => {
            authenticate(s, user);
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
    let mut name = None;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if is(&argv[i], "auth") && more >= 2 {
            match check_password(s, Some(&argv[i + 1]), &argv[i + 2]) {
                Ok(user) => authenticate(s, user),
                Err(e) => return e,
            }
            i += 3;
        } else if is(&argv[i], "setname") && more >= 1 {
            name = Some(argv[i + 1].clone());
            i += 2;
        } else {
            return Frame::error(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(&argv[i])));
        }
    }
    if !s.client.authenticated {
        return Frame::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = name {
        if let Err(e) = client::validate_name(&name) {
            return e;
        }
        s.client.name = name;
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

/// Seconds since `since_ms` (for uptime, age, idle).
pub(crate) fn secs_since(since_ms: u64) -> u64 {
    now_ms().saturating_sub(since_ms) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(argv: &[&str]) -> Option<String> {
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let spec = crate::cmd::lookup(&argv[0]).expect("a command");
        full_command_name(spec, &argv).map(|n| n.into_owned())
    }

    #[test]
    fn commands_are_named_as_redis_counts_them() {
        assert_eq!(name(&["GET", "k"]).as_deref(), Some("get"));
        assert_eq!(name(&["CONFIG", "SET", "a", "b"]).as_deref(), Some("config|set"));
        assert_eq!(name(&["client", "ID"]).as_deref(), Some("client|id"));
        assert_eq!(name(&["CLIENT", "nosuch"]), None, "unknown subcommands count nowhere");
        assert!(
            redis_fast("get")
                && !redis_fast("debug")
                && redis_fast("client|id") == redis_flagged("client|id", &["fast"])
        );
        assert!(redis_flagged("set", &["write"]) && !redis_flagged("get", &["write"]));
    }
}
