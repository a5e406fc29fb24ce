//! Integration tests of the client-facing server over real sockets: pipelining, RESP3,
//! protocol errors, inline and binary-safe commands, AUTH, transactions, CLIENT KILL,
//! maxclients, idle timeout and SHUTDOWN. Every wait polls a condition with a deadline.

mod common;

use bytes::Bytes;
use common::{Conn, Server};
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

fn simple(s: &str) -> Frame {
    Frame::Simple(Bytes::copy_from_slice(s.as_bytes()))
}

fn bulk(s: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s))
}

fn err(s: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(s.as_bytes()))
}

/// Polls `cond` every 20 ms until it holds or `secs` pass.
fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn connected_clients(c: &mut Conn) -> usize {
    let Frame::Bulk(info) = c.cmd(&["INFO", "clients"]) else { panic!("INFO clients") };
    let text = String::from_utf8_lossy(&info).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("connected_clients in INFO")
}

#[test]
fn pipeline_of_ten_thousand_commands_in_one_write() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    let mut out = Vec::new();
    for i in 0..5000 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        out.extend(Conn::encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
        out.extend(Conn::encode(&[b"GET", k.as_bytes()]));
    }
    c.send_raw(&out);
    for i in 0..5000 {
        assert_eq!(c.read_frame(), Some(Frame::ok()), "SET #{i}");
        assert_eq!(c.read_frame(), Some(bulk(format!("v{i}").as_bytes())), "GET #{i}");
    }
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(5000));
}

/// Sends every command of `cmds` in one write and reads one reply per command.
fn pipeline(c: &mut Conn, cmds: &[&[&str]]) -> Vec<Frame> {
    let mut out = Vec::new();
    for cmd in cmds {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        out.extend(Conn::encode(&args));
    }
    c.send_raw(&out);
    cmds.iter().map(|_| c.read_frame().expect("a reply")).collect()
}

#[test]
fn pipelined_writes_apply_in_order_and_following_commands_see_them() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    let replies = pipeline(
        &mut c,
        &[
            &["SET", "n", "1"],
            &["INCR", "n"],
            &["LPUSH", "n", "x"],
            &["SET", "only-arity"],
            &["INCRBY", "n", "10"],
            &["GET", "n"],
            &["RPUSH", "l", "a"],
            &["RPUSH", "l", "b"],
            &["LRANGE", "l", "0", "-1"],
            &["SELECT", "1"],
            &["SET", "n", "db1"],
            &["GET", "n"],
            &["SELECT", "0"],
            &["DEL", "l"],
            &["EXISTS", "l"],
            &["GET", "n"],
        ],
    );
    let want = vec![
        Frame::ok(),
        Frame::Integer(2),
        err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        err("ERR wrong number of arguments for 'set' command"),
        Frame::Integer(12),
        bulk(b"12"),
        Frame::Integer(1),
        Frame::Integer(2),
        Frame::Array(vec![bulk(b"a"), bulk(b"b")]),
        Frame::ok(),
        Frame::ok(),
        bulk(b"db1"),
        Frame::ok(),
        Frame::Integer(1),
        Frame::Integer(0),
        bulk(b"12"),
    ];
    assert_eq!(replies, want);
    // CLIENT REPLY SKIP drops exactly the reply of the write after it, inside a run of writes.
    let mut out = Conn::encode(&[b"INCR", b"n"]);
    out.extend(Conn::encode(&[b"CLIENT", b"REPLY", b"SKIP"]));
    out.extend(Conn::encode(&[b"INCR", b"n"]));
    out.extend(Conn::encode(&[b"INCR", b"n"]));
    out.extend(Conn::encode(&[b"GET", b"n"]));
    c.send_raw(&out);
    let replies: Vec<Frame> = (0..3).map(|_| c.read_frame().expect("a reply")).collect();
    assert_eq!(replies, [Frame::Integer(13), Frame::Integer(15), bulk(b"15")]);
}

#[test]
fn resp3_hello_map_and_null() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    c.send_raw(&Conn::encode(&[b"HELLO", b"3"]));
    let raw = c.read_raw().expect("HELLO reply");
    assert!(raw.starts_with(b"%7\r\n"), "map reply: {raw:?}");
    assert!(raw.windows(7).any(|w| w == b"proto\r\n"));
    assert_eq!(&c.raw_cmd(&[b"GET", b"missing"])[..], b"_\r\n");
    assert_eq!(&c.raw_cmd(&[b"HELLO", b"2"])[..3], b"*14");
    assert_eq!(&c.raw_cmd(&[b"GET", b"missing"])[..], b"$-1\r\n");
    assert_eq!(c.cmd(&["HELLO", "4"]), err("NOPROTO unsupported protocol version"));
}

/// Sends `bytes`, expects the protocol error `msg` and then the connection to be closed.
fn protocol_error(s: &Server, bytes: &[u8], msg: &str) {
    let mut c = s.conn();
    c.send_raw(bytes);
    assert_eq!(c.read_frame(), Some(err(&format!("ERR Protocol error: {msg}"))), "for {msg}");
    assert!(c.is_closed(), "connection still open after '{msg}'");
}

#[test]
fn every_protocol_error_closes_the_connection() {
    let s = Server::raftis(&[]);
    protocol_error(&s, b"*abc\r\n", "invalid multibulk length");
    protocol_error(&s, b"*1\r\n$abc\r\n", "invalid bulk length");
    protocol_error(&s, b"*2\r\n$4\r\nECHO\r\n$-5\r\n", "invalid bulk length");
    protocol_error(&s, b"*1\r\nx\r\n", "expected '$', got 'x'");
    protocol_error(&s, b"SET \"a b\r\n", "unbalanced quotes in request");
    protocol_error(&s, &vec![b'a'; 70_000], "too big inline request");
    let mut big_count = b"*".to_vec();
    big_count.extend(vec![b'1'; 70_000]);
    protocol_error(&s, &big_count, "too big mbulk count string");
    // Commands before the bad one are answered; nothing after it runs.
    let mut c = s.conn();
    c.send_raw(b"SET before 1\r\n*x\r\nSET after 1\r\n");
    assert_eq!(c.read_frame(), Some(Frame::ok()));
    assert_eq!(c.read_frame(), Some(err("ERR Protocol error: invalid multibulk length")));
    assert!(c.is_closed());
    let mut c = s.conn();
    assert_eq!(c.cmd(&["EXISTS", "before", "after"]), Frame::Integer(1));
}

#[test]
fn inline_commands_and_empty_lines() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    c.send_raw(b"PING\r\n\r\n   \r\nSET \"inline key\" 'v a l'\nGET \"inline key\"\r\n*0\r\nECHO \"\\x41\\n\"\r\n");
    assert_eq!(c.read_frame(), Some(simple("PONG")));
    assert_eq!(c.read_frame(), Some(Frame::ok()));
    assert_eq!(c.read_frame(), Some(bulk(b"v a l")));
    assert_eq!(c.read_frame(), Some(bulk(b"A\n")));
}

#[test]
fn binary_keys_and_values() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    let key: &[u8] = b"k\0\r\nk";
    let value: &[u8] = b"\0\r\n\xff$3\r\n*1\r\n";
    assert_eq!(&c.raw_cmd(&[b"SET", key, value])[..], b"+OK\r\n");
    let mut expected = format!("${}\r\n", value.len()).into_bytes();
    expected.extend_from_slice(value);
    expected.extend_from_slice(b"\r\n");
    assert_eq!(&c.raw_cmd(&[b"GET", key])[..], &expected[..]);
    assert_eq!(&c.raw_cmd(&[b"GET", b"k\0"])[..], b"$-1\r\n");
}

#[test]
fn command_errors_keep_the_connection() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["NOSUCH", "a"]), err("ERR unknown command 'NOSUCH', with args beginning with: 'a' "));
    assert_eq!(c.cmd(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(c.cmd(&["SET", "str", "v"]), Frame::ok());
    c.send_raw(&Conn::encode(&[b"CLIENT", b"NOSUCH"]));
    assert_eq!(c.read_frame(), Some(err("ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.")));
    assert_eq!(c.cmd(&["PING"]), simple("PONG"));
}

#[test]
fn auth_with_requirepass() {
    let s = Server::raftis(&["--requirepass", "secret"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "a"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["MULTI"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["AUTH", "wrong"]), err("WRONGPASS invalid username-password pair or user is disabled."));
    assert_eq!(c.cmd(&["AUTH", "default", "secret"]), Frame::ok());
    assert_eq!(c.cmd(&["PING"]), simple("PONG"));
    // RESET logs the connection out again.
    assert_eq!(c.cmd(&["RESET"]), simple("RESET"));
    assert_eq!(c.cmd(&["PING"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["AUTH", "secret"]), Frame::ok());
    // HELLO can authenticate and switch protocol at once.
    let mut d = s.conn();
    assert!(matches!(d.cmd(&["HELLO", "3", "AUTH", "default", "secret"]), Frame::Map(_)));
    assert_eq!(d.cmd(&["PING"]), simple("PONG"));
}

#[test]
fn transactions_watch_and_execabort() {
    let s = Server::raftis(&[]);
    let (mut a, mut b) = (s.conn(), s.conn());
    assert_eq!(a.cmd(&["SET", "w", "1"]), Frame::ok());
    assert_eq!(a.cmd(&["WATCH", "w"]), Frame::ok());
    assert_eq!(b.cmd(&["SET", "w", "2"]), Frame::ok());
    assert_eq!(a.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(a.cmd(&["SET", "w", "3"]), simple("QUEUED"));
    assert_eq!(a.cmd(&["EXEC"]), Frame::NullArray);
    assert_eq!(a.cmd(&["GET", "w"]), bulk(b"2"));
    // Unchanged WATCHed key: EXEC runs.
    assert_eq!(a.cmd(&["WATCH", "w"]), Frame::ok());
    assert_eq!(a.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(a.cmd(&["SET", "w", "4"]), simple("QUEUED"));
    assert_eq!(a.cmd(&["EXEC"]), Frame::Array(vec![Frame::ok()]));
    // Wrong arity while queueing aborts EXEC.
    assert_eq!(a.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(a.cmd(&["SET", "w"]), err("ERR wrong number of arguments for 'set' command"));
    assert_eq!(a.cmd(&["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
    assert_eq!(a.cmd(&["GET", "w"]), bulk(b"4"));
    // DISCARD, and SELECT inside EXEC stays in effect.
    assert_eq!(a.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(a.cmd(&["DISCARD"]), Frame::ok());
    assert_eq!(a.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(a.cmd(&["SELECT", "5"]), simple("QUEUED"));
    assert_eq!(a.cmd(&["EXEC"]), Frame::Array(vec![Frame::ok()]));
    assert_eq!(a.cmd(&["GET", "w"]), Frame::Null);
    // QUIT inside MULTI answers and closes.
    assert_eq!(b.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(b.cmd(&["QUIT"]), Frame::ok());
    assert!(b.is_closed());
}

fn client_id(c: &mut Conn) -> i64 {
    match c.cmd(&["CLIENT", "ID"]) {
        Frame::Integer(n) => n,
        other => panic!("CLIENT ID: {other:?}"),
    }
}

#[test]
fn client_list_and_kill() {
    let s = Server::raftis(&[]);
    let (mut a, mut b) = (s.conn(), s.conn());
    assert_eq!(b.cmd(&["CLIENT", "SETNAME", "victim"]), Frame::ok());
    let id_b = client_id(&mut b);
    let Frame::Bulk(list) = a.cmd(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    let list = String::from_utf8_lossy(&list).into_owned();
    let line = list.lines().find(|l| l.contains("name=victim")).expect("victim listed");
    assert!(line.starts_with(&format!("id={id_b} addr=127.0.0.1:")), "{line}");
    assert!(line.contains(" cmd=client|id user=default redir=-1 resp=2"), "{line}");
    // New form by ID: one killed, then the victim's connection is closed.
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", &id_b.to_string()]), Frame::Integer(1));
    assert!(b.is_closed());
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", &id_b.to_string()]), Frame::Integer(0));
    // Old form by address.
    let mut c = s.conn();
    let Frame::Bulk(info) = c.cmd(&["CLIENT", "INFO"]) else { panic!("CLIENT INFO") };
    let info = String::from_utf8_lossy(&info).into_owned();
    let addr = info.split(' ').find_map(|f| f.strip_prefix("addr=")).expect("addr").to_string();
    assert_eq!(a.cmd(&["CLIENT", "KILL", &addr]), Frame::ok());
    assert!(c.is_closed());
    // SKIPME yes (the default) spares the caller; SKIPME no kills it after the reply.
    let my_addr = {
        let Frame::Bulk(info) = a.cmd(&["CLIENT", "INFO"]) else { panic!() };
        let info = String::from_utf8_lossy(&info).into_owned();
        info.split(' ').find_map(|f| f.strip_prefix("addr=")).expect("addr").to_string()
    };
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ADDR", &my_addr]), Frame::Integer(0));
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ADDR", &my_addr, "SKIPME", "no"]), Frame::Integer(1));
    assert!(a.is_closed());
}

#[test]
fn maxclients_refuses_extra_connections() {
    let s = Server::raftis(&[]);
    let mut a = s.conn();
    let _b = s.conn();
    wait_until(10, "two clients", || connected_clients(&mut a) == 2);
    assert_eq!(a.cmd(&["CONFIG", "SET", "maxclients", "2"]), Frame::ok());
    let mut extra = s.conn();
    assert_eq!(extra.read_frame(), Some(err("ERR max number of clients reached")));
    assert!(extra.is_closed());
    assert_eq!(a.cmd(&["CONFIG", "SET", "maxclients", "10"]), Frame::ok());
    let mut ok = s.conn();
    assert_eq!(ok.cmd(&["PING"]), simple("PONG"));
}

#[test]
fn idle_timeout_closes_quiet_clients() {
    let s = Server::raftis(&[]);
    // Already connected and idle before the setting changes: closed all the same.
    let mut early = s.conn();
    assert_eq!(early.cmd(&["PING"]), simple("PONG"));
    let mut a = s.conn();
    assert_eq!(a.cmd(&["CONFIG", "SET", "timeout", "1"]), Frame::ok());
    let mut idle = s.conn();
    assert_eq!(idle.cmd(&["PING"]), simple("PONG"));
    // Each read blocks until the server closes the connection (or the 10 s read timeout).
    let start = Instant::now();
    assert!(idle.is_closed(), "idle client not closed");
    assert!(early.is_closed(), "client idle before CONFIG SET not closed");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// Waits (with a deadline) for the server process to exit, and checks it exited with 0.
fn wait_for_clean_exit(s: &mut Server, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = s.try_wait() {
            assert!(status.success(), "exit status {status} after {after}");
            return;
        }
        assert!(Instant::now() < deadline, "raftis still running after {after}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shutdown_stops_the_process() {
    let mut s = Server::raftis(&[]);
    let mut c = s.conn();
    c.send_raw(&Conn::encode(&[b"SHUTDOWN", b"NOSAVE"]));
    assert!(c.is_closed(), "SHUTDOWN closes the caller without a reply");
    wait_for_clean_exit(&mut s, "SHUTDOWN");
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut s = Server::raftis(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "k", "v"]), simple("OK"));
    let sent = std::process::Command::new("kill").args(["-TERM", &s.pid().to_string()]).status().expect("kill");
    assert!(sent.success());
    assert!(c.is_closed(), "connections are closed on SIGTERM");
    wait_for_clean_exit(&mut s, "SIGTERM");
}

#[test]
fn client_reply_off_and_skip() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    c.send_raw(b"CLIENT REPLY OFF\r\nSET r 1\r\nCLIENT REPLY ON\r\nCLIENT REPLY SKIP\r\nGET r\r\nECHO last\r\n");
    assert_eq!(c.read_frame(), Some(Frame::ok()));
    assert_eq!(c.read_frame(), Some(bulk(b"last")));
}

#[test]
fn info_reports_real_figures() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "a", "1"]), Frame::ok());
    let Frame::Bulk(info) = c.cmd(&["INFO"]) else { panic!("INFO") };
    let text = String::from_utf8_lossy(&info).into_owned();
    assert!(text.starts_with("# Server\r\nredis_version:7.0.15\r\n"), "{text}");
    assert!(text.contains(&format!("\r\ntcp_port:{}\r\n", s.port)));
    assert!(text.contains(&format!("\r\nprocess_id:{}\r\n", s.pid())));
    assert!(text.contains("\r\nrole:master\r\n"));
    assert!(text.contains("\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"));
    assert!(text.contains("\r\ncluster_enabled:0\r\n"));
    assert_eq!(c.cmd(&["GET", "a"]), bulk(b"1"));
    assert_eq!(c.cmd(&["GET", "nope"]), Frame::Null);
    let Frame::Bulk(stats) = c.cmd(&["INFO", "stats"]) else { panic!("INFO stats") };
    let stats = String::from_utf8_lossy(&stats).into_owned();
    assert!(stats.contains("\r\nkeyspace_hits:1\r\nkeyspace_misses:1\r\n"), "{stats}");
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    let Frame::Bulk(stats) = c.cmd(&["INFO", "stats"]) else { panic!("INFO stats") };
    assert!(String::from_utf8_lossy(&stats).contains("\r\nkeyspace_hits:0\r\n"));
    let Frame::Bulk(one) = c.cmd(&["INFO", "keyspace", "CLUSTER"]) else { panic!("INFO") };
    assert_eq!(&one[..], b"# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n");
}

/// WAITAOF (Redis 7.2; 7.0 has no such command): every acknowledged write is fsynced here and
/// on the group's majority, a single node has no replica; bad arguments get Redis 7.2's errors.
#[test]
fn waitaof_reports_the_local_fsync_and_the_replicas() {
    let s = Server::raftis(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "k", "v"]), simple("OK"));
    assert_eq!(c.cmd(&["WAITAOF", "1", "0", "0"]), Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)]));
    assert_eq!(c.cmd(&["WAITAOF", "x", "0", "0"]), err("ERR value is not an integer or out of range"));
    assert_eq!(c.cmd(&["WAITAOF", "1", "x", "0"]), err("ERR value is not an integer or out of range"));
    assert_eq!(c.cmd(&["WAITAOF", "1", "0", "-5"]), err("ERR timeout is negative"));
    assert_eq!(c.cmd(&["WAITAOF", "1", "0"]), err("ERR wrong number of arguments for 'waitaof' command"));
}
