//! The client port while the node loads its data at start (the log's recovery, the newest
//! snapshot, the replay of committed entries), served as Redis serves it while it loads its
//! RDB or AOF: clients connect at once rather than being refused or left in the backlog.
//!
//! - A command Redis 7.0 refuses while loading (one without the `loading` flag: PING, GET,
//!   SET, ...) gets `-LOADING Redis is loading the dataset in memory`, after the checks Redis
//!   makes first (unknown command, arity, `-NOAUTH`).
//! - INFO answers at once, with `loading:1` in its persistence section.
//! - QUIT answers `+OK` and closes.
//! - Any other command Redis serves while loading (AUTH, HELLO, SELECT, CLIENT SETNAME,
//!   CONFIG GET, MULTI, SUBSCRIBE, ...) waits here until loading ends; then it, and everything
//!   after it, run as usual: the connection is handed to the server with the bytes it has not
//!   answered yet. (Redis runs those commands during loading; here they need the server state
//!   that loading builds.)

use super::shared::{now_ms, Shared};
use crate::protocol::{encode, parse_command_into, CommandScan, Frame, Limits, ParseError, RespVersion};
use crate::rt::Shutdown;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Redis's reply to a command it does not run while loading.
pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";

/// The commands of Redis 7.0.15 with the `loading` flag (`COMMAND`'s flags; for a container
/// command, its subcommands' flags, as `name|sub`). Everything else gets [`LOADING`].
const SERVED_WHILE_LOADING: &[&str] = &[
    "auth",
    "debug",
    "discard",
    "echo",
    "exec",
    "hello",
    "info",
    "lastsave",
    "monitor",
    "multi",
    "psubscribe",
    "publish",
    "punsubscribe",
    "quit",
    "readonly",
    "readwrite",
    "replconf",
    "reset",
    "role",
    "select",
    "shutdown",
    "spublish",
    "ssubscribe",
    "subscribe",
    "sunsubscribe",
    "time",
    "unsubscribe",
    "unwatch",
    "watch",
    "acl|cat",
    "acl|deluser",
    "acl|dryrun",
    "acl|genpass",
    "acl|getuser",
    "acl|help",
    "acl|list",
    "acl|load",
    "acl|log",
    "acl|save",
    "acl|setuser",
    "acl|users",
    "acl|whoami",
    "client|caching",
    "client|getname",
    "client|getredir",
    "client|help",
    "client|id",
    "client|info",
    "client|kill",
    "client|list",
    "client|no-evict",
    "client|pause",
    "client|reply",
    "client|setname",
    "client|tracking",
    "client|trackinginfo",
    "client|unblock",
    "client|unpause",
    "cluster|help",
    "command|count",
    "command|docs",
    "command|getkeys",
    "command|getkeysandflags",
    "command|help",
    "command|info",
    "command|list",
    "config|get",
    "config|help",
    "config|resetstat",
    "config|rewrite",
    "config|set",
    "function|help",
    "latency|doctor",
    "latency|graph",
    "latency|help",
    "latency|histogram",
    "latency|history",
    "latency|latest",
    "latency|reset",
    "memory|help",
    "module|help",
    "object|help",
    "pubsub|channels",
    "pubsub|help",
    "pubsub|numpat",
    "pubsub|numsub",
    "pubsub|shardchannels",
    "pubsub|shardnumsub",
    "script|help",
    "slowlog|get",
    "slowlog|help",
    "slowlog|len",
    "slowlog|reset",
    "xgroup|help",
    "xinfo|help",
];

/// Commands a client that has not authenticated yet may send (as the server's dispatch).
const NO_AUTH_NEEDED: &[&str] = &["auth", "hello", "quit", "reset"];

/// What the client port needs to know while the node loads, and the hand-over once it has.
pub struct Loading {
    started_ms: u64,
    port: u16,
    needs_auth: bool,
    limits: Limits,
    query_limit: u64,
    /// Triggered when loading ends, loaded or failed.
    done: Shutdown,
    /// The server state, once loaded (never set when the start failed).
    shared: OnceLock<Arc<Shared>>,
}

impl Loading {
    /// The loading state of a node whose client port is `port`, with the settings it starts
    /// with.
    pub fn new(config: &crate::config::Config, port: u16) -> Arc<Loading> {
        Arc::new(Loading {
            started_ms: now_ms(),
            port,
            needs_auth: !config.requirepass.is_empty(),
            limits: Limits { max_bulk_len: config.proto_max_bulk_len, ..Limits::default() },
            query_limit: config.client_query_buffer_limit,
            done: Shutdown::new(),
            shared: OnceLock::new(),
        })
    }

    /// Loading is over: the waiting connections and the listener go to the server.
    pub fn finish(&self, shared: Arc<Shared>) {
        let _ = self.shared.set(shared);
        self.done.trigger();
    }

    /// The node did not start: the waiting connections close, the listener with them.
    pub fn abandon(&self) {
        self.done.trigger();
    }

    pub fn is_loading(&self) -> bool {
        !self.done.is_triggered()
    }
}

/// Accepts clients from the moment the port is bound: during loading they get the loading
/// front ([`connection`]); afterwards the listener goes on as the server's ([`super::serve`]).
pub async fn serve(listener: TcpListener, loading: Arc<Loading>) {
    let mut done = loading.done.subscribe();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = done.wait() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(connection(stream, peer, loading.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    if let Some(shared) = loading.shared.get().cloned() {
        super::serve(listener, shared).await;
    }
}

/// What the commands buffered so far call for.
#[derive(Debug, PartialEq)]
enum Next {
    /// Every complete command is answered: read more.
    Read,
    /// A command that runs only after loading is back at the buffer's front.
    WaitForLoad,
    /// Close once the replies are out (QUIT, a protocol error).
    Close,
}

/// One client connected while the node loads: answered here until loading ends or it sends a
/// command that must wait, then handed to the server with what it has not answered.
async fn connection(mut stream: TcpStream, peer: SocketAddr, loading: Arc<Loading>) {
    let _ = stream.set_nodelay(true);
    let mut done = loading.done.subscribe();
    let (mut rbuf, mut wbuf) = (BytesMut::with_capacity(4096), BytesMut::new());
    let mut scan = CommandScan::default();
    loop {
        let next = answer_buffered(&mut rbuf, &mut wbuf, &mut scan, &loading);
        if !wbuf.is_empty() && (stream.write_all(&wbuf).await.is_err() || stream.flush().await.is_err()) {
            return;
        }
        wbuf.clear();
        match next {
            Next::Close => return,
            Next::WaitForLoad => {
                done.wait().await;
                break;
            }
            Next::Read => {}
        }
        if rbuf.len() as u64 > loading.query_limit {
            tracing::warn!(%peer, qbuf = rbuf.len(), "closing client that reached max query buffer length");
            return;
        }
        let read = tokio::select! {
            biased;
            _ = done.wait() => break,
            read = stream.read_buf(&mut rbuf) => read,
        };
        if !matches!(read, Ok(n) if n > 0) {
            return;
        }
    }
    if let Some(shared) = loading.shared.get().cloned() {
        super::connection::run(stream, peer, shared, rbuf).await;
    }
}

/// Answers the complete commands at the front of `rbuf` into `wbuf` (RESP2: HELLO, the only
/// way to RESP3, waits for the end of loading).
fn answer_buffered(rbuf: &mut BytesMut, wbuf: &mut BytesMut, scan: &mut CommandScan, loading: &Loading) -> Next {
    let mut argv = Vec::new();
    loop {
        match parse_command_into(rbuf, &loading.limits, scan, &mut argv) {
            Ok(true) => {}
            Ok(false) | Err(ParseError::Incomplete) => return Next::Read,
            Err(ParseError::Invalid(msg)) => {
                encode(&Frame::error(format!("ERR Protocol error: {msg}")), RespVersion::Resp2, wbuf);
                rbuf.clear();
                return Next::Close;
            }
        }
        if argv.is_empty() {
            continue;
        }
        let reply = match answer(&argv, loading) {
            Answer::Reply(frame) => frame,
            Answer::Quit => {
                encode(&Frame::simple("OK"), RespVersion::Resp2, wbuf);
                return Next::Close;
            }
            Answer::Wait => {
                put_back(rbuf, &argv);
                return Next::WaitForLoad;
            }
        };
        encode(&reply, RespVersion::Resp2, wbuf);
    }
}

/// What one command gets while loading.
#[derive(Debug)]
enum Answer {
    Reply(Frame),
    Quit,
    Wait,
}

/// Redis's checks in its order (`processCommand`): unknown command, arity, authentication,
/// then the loading refusal; INFO and QUIT are answered here.
fn answer(argv: &[Bytes], loading: &Loading) -> Answer {
    let Some(spec) = crate::cmd::lookup(&argv[0]).filter(|c| !c.has_flag("internal")) else {
        return Answer::Reply(crate::cmd::unknown_command(argv));
    };
    if !spec.arity_ok(argv.len()) {
        return Answer::Reply(Frame::error(format!("ERR wrong number of arguments for '{}' command", spec.name)));
    }
    if loading.needs_auth && !NO_AUTH_NEEDED.contains(&spec.name) {
        return Answer::Reply(Frame::error("NOAUTH Authentication required."));
    }
    if !served_while_loading(spec.name, argv.get(1)) {
        return Answer::Reply(Frame::error(LOADING));
    }
    match spec.name {
        "quit" => Answer::Quit,
        "info" => Answer::Reply(info(argv, loading)),
        _ => Answer::Wait,
    }
}

/// Whether Redis runs `name` (with its first argument, for a container command) while loading.
fn served_while_loading(name: &str, first_arg: Option<&Bytes>) -> bool {
    if SERVED_WHILE_LOADING.contains(&name) {
        return true;
    }
    let Some(sub) = first_arg else { return false };
    let full = format!("{name}|{}", String::from_utf8_lossy(sub).to_ascii_lowercase());
    SERVED_WHILE_LOADING.contains(&full.as_str())
}

/// Puts `argv` back at the front of `rbuf` as a multibulk request (the form the server parses
/// back into the same arguments, whatever form the client sent).
fn put_back(rbuf: &mut BytesMut, argv: &[Bytes]) {
    let mut front = BytesMut::with_capacity(rbuf.len() + 64);
    encode(&Frame::Array(argv.iter().cloned().map(Frame::Bulk).collect()), RespVersion::Resp2, &mut front);
    front.extend_from_slice(rbuf);
    *rbuf = front;
}

/// INFO while loading: the server section's identity lines and the persistence section with
/// `loading:1` (Redis's loading progress fields are not reported); other sections are empty.
fn info(argv: &[Bytes], loading: &Loading) -> Frame {
    let wanted = |section: &str| {
        argv.len() == 1
            || argv[1..].iter().any(|a| {
                let a = String::from_utf8_lossy(a).to_ascii_lowercase();
                a == section || matches!(a.as_str(), "default" | "all" | "everything")
            })
    };
    let mut out = String::new();
    if wanted("server") {
        let uptime = now_ms().saturating_sub(loading.started_ms) / 1000;
        out.push_str(&format!(
            "# Server\r\nredis_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\n",
            crate::REDIS_VERSION,
            std::process::id(),
            loading.port,
        ));
    }
    if wanted("persistence") {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&format!(
            "# Persistence\r\nloading:1\r\nasync_loading:0\r\nloading_start_time:{}\r\n",
            loading.started_ms / 1000
        ));
    }
    Frame::Verbatim(*b"txt", Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loading(requirepass: &str) -> Arc<Loading> {
        let config = crate::config::Config { requirepass: requirepass.into(), ..Default::default() };
        Loading::new(&config, 6379)
    }

    fn answers(input: &[u8], loading: &Loading) -> (String, Next, BytesMut) {
        let (mut rbuf, mut wbuf) = (BytesMut::from(input), BytesMut::new());
        let next = answer_buffered(&mut rbuf, &mut wbuf, &mut CommandScan::default(), loading);
        (String::from_utf8_lossy(&wbuf).into_owned(), next, rbuf)
    }

    #[test]
    fn commands_without_the_loading_flag_are_refused_in_redis_order() {
        let l = loading("");
        let (out, next, rest) = answers(b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nNOPE\r\nGET\r\nCLUSTER INFO\r\n", &l);
        assert_eq!(
            out,
            format!(
                "-{LOADING}\r\n-{LOADING}\r\n-ERR unknown command 'NOPE', with args beginning with: \r\n\
                 -ERR wrong number of arguments for 'get' command\r\n-{LOADING}\r\n"
            )
        );
        assert_eq!(next, Next::Read);
        assert!(rest.is_empty());
    }

    #[test]
    fn noauth_comes_before_loading() {
        let l = loading("secret");
        let (out, _, _) = answers(b"GET k\r\n", &l);
        assert_eq!(out, "-NOAUTH Authentication required.\r\n");
    }

    #[test]
    fn info_answers_with_loading_1() {
        let l = loading("");
        let (out, next, _) = answers(b"INFO persistence\r\n", &l);
        assert!(out.contains("\r\nloading:1\r\n"), "{out}");
        assert!(!out.contains("# Server"), "{out}");
        assert_eq!(next, Next::Read);
        let (all, _, _) = answers(b"INFO\r\n", &l);
        assert!(all.contains("# Server\r\n") && all.contains("loading:1"), "{all}");
    }

    #[test]
    fn a_command_served_while_loading_waits_at_the_front_of_the_buffer() {
        let l = loading("");
        let (out, next, rest) = answers(b"PING\r\nclient setname x\r\nGET k\r\n", &l);
        assert_eq!(out, format!("-{LOADING}\r\n"));
        assert_eq!(next, Next::WaitForLoad);
        assert_eq!(&rest[..], b"*3\r\n$6\r\nclient\r\n$7\r\nsetname\r\n$1\r\nx\r\nGET k\r\n");
    }

    #[test]
    fn quit_and_protocol_errors_close() {
        let l = loading("");
        assert_eq!(answers(b"QUIT\r\nGET k\r\n", &l).0, "+OK\r\n");
        assert_eq!(answers(b"QUIT\r\n", &l).1, Next::Close);
        let (out, next, _) = answers(b"*1\r\n$x\r\n", &l);
        assert!(out.starts_with("-ERR Protocol error"), "{out}");
        assert_eq!(next, Next::Close);
    }
}
