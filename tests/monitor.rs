//! MONITOR over real sockets: the lines of other clients' commands in Redis's format (time,
//! database, client address, quoted and escaped arguments), credentials redacted, admin
//! commands left out, a transaction's commands before its EXEC, a pipeline in order; RESET
//! and QUIT leave monitor mode; a monitor that never reads is disconnected. The replies that
//! can be compared byte for byte are in tests/diff/monitor.txt.

mod common;

use common::{Conn, Server};
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

/// The monitor's next line, without its time: `[db addr] args...`; checks the time's form.
fn next_line(monitor: &mut Conn) -> String {
    let Some(Frame::Simple(line)) = monitor.read_frame() else { panic!("not a monitor line") };
    let line = String::from_utf8_lossy(&line).into_owned();
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    let (secs, micros) = time.split_once('.').unwrap_or_else(|| panic!("{line}"));
    assert!(secs.parse::<u64>().is_ok_and(|s| s > 1_600_000_000), "{line}");
    assert!(micros.len() == 6 && micros.parse::<u32>().is_ok(), "{line}");
    rest.to_string()
}

/// `addr=` of CLIENT INFO.
fn addr(c: &mut Conn) -> String {
    let Frame::Bulk(info) = c.cmd(&["CLIENT", "INFO"]) else { panic!("CLIENT INFO") };
    let info = String::from_utf8_lossy(&info).into_owned();
    info.split(' ').find_map(|f| f.strip_prefix("addr=")).expect("addr").to_string()
}

#[test]
fn a_monitor_sees_other_clients_commands_as_redis_shows_them() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    let me = addr(&mut c);
    let mut monitor = server.conn();
    assert_eq!(monitor.cmd(&["MONITOR"]), Frame::ok());
    let Frame::Bulk(list) = c.cmd(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    assert!(String::from_utf8_lossy(&list).contains(" flags=O "), "{list:?}");
    c.send_raw(&Conn::encode(&[b"SET", b"k", b"a \"b\"\\\n\x01\xe9"]));
    assert_eq!(c.read_frame(), Some(Frame::ok()));
    assert_eq!(c.cmd(&["AUTH", "secret"]), Frame::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    assert!(matches!(c.cmd(&["CONFIG", "GET", "maxmemory"]), Frame::Array(_)));
    assert_eq!(c.cmd(&["SELECT", "3"]), Frame::ok());
    assert_eq!(c.cmd(&["MULTI"]), Frame::simple("OK"));
    assert_eq!(c.cmd(&["INCR", "n"]), Frame::simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Integer(1)]));
    assert_eq!(next_line(&mut monitor), format!("[0 {me}] \"SET\" \"k\" \"a \\\"b\\\"\\\\\\n\\x01\\xe9\""));
    assert_eq!(next_line(&mut monitor), format!("[0 {me}] \"AUTH\" \"(redacted)\""));
    // CONFIG is an admin command: never shown.
    assert_eq!(next_line(&mut monitor), format!("[3 {me}] \"SELECT\" \"3\""));
    assert_eq!(next_line(&mut monitor), format!("[3 {me}] \"MULTI\""));
    assert_eq!(next_line(&mut monitor), format!("[3 {me}] \"INCR\" \"n\""));
    assert_eq!(next_line(&mut monitor), format!("[3 {me}] \"EXEC\""));
    // A pipeline, in order.
    let mut pipeline = Vec::new();
    for i in 0..50 {
        pipeline.extend(Conn::encode(&[b"RPUSH", b"l", format!("{i}").as_bytes()]));
    }
    c.send_raw(&pipeline);
    for i in 1..=50 {
        assert_eq!(c.read_frame(), Some(Frame::Integer(i)));
    }
    for i in 0..50 {
        assert_eq!(next_line(&mut monitor), format!("[3 {me}] \"RPUSH\" \"l\" \"{i}\""));
    }
    // The commands a script runs follow its EVAL as `[db lua]` lines; a refused one is not shown.
    let script = "redis.call('set', KEYS[1], 'y') redis.call('select', '4') return redis.call('get', KEYS[1])";
    assert_eq!(c.cmd(&["EVAL", script, "1", "x"]), Frame::Null);
    assert!(matches!(c.cmd(&["EVAL", "redis.call('nosuch')", "0"]), Frame::Error(_)));
    assert_eq!(next_line(&mut monitor), format!("[3 {me}] \"EVAL\" \"{script}\" \"1\" \"x\""));
    assert_eq!(next_line(&mut monitor), "[3 lua] \"set\" \"x\" \"y\"");
    assert_eq!(next_line(&mut monitor), "[4 lua] \"select\" \"4\"");
    assert_eq!(next_line(&mut monitor), "[4 lua] \"get\" \"x\"");
    assert_eq!(next_line(&mut monitor), format!("[3 {me}] \"EVAL\" \"redis.call('nosuch')\" \"0\""));
    // The monitor itself may not touch the keyspace; RESET ends monitor mode.
    let refused = monitor.cmd(&["GET", "k"]);
    assert_eq!(refused, Frame::error("ERR Replica can't interact with the keyspace"));
    assert_eq!(monitor.cmd(&["RESET"]), Frame::simple("RESET"));
    assert_eq!(c.cmd(&["SET", "after", "reset"]), Frame::ok());
    assert_eq!(monitor.cmd(&["SELECT", "3"]), Frame::ok());
    assert_eq!(monitor.cmd(&["GET", "after"]), Frame::Bulk("reset".into()), "no line came before the reply");
    // QUIT leaves too: the node forgets the monitor (the next command has no one to go to).
    let mut quitter = server.conn();
    assert_eq!(quitter.cmd(&["MONITOR"]), Frame::ok());
    assert_eq!(quitter.cmd(&["QUIT"]), Frame::ok());
    assert!(quitter.is_closed());
    let Frame::Bulk(list) = c.cmd(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    assert!(!String::from_utf8_lossy(&list).contains("flags=O"), "{list:?}");
}

#[test]
fn a_monitor_that_never_reads_is_disconnected() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 0 0"]), Frame::ok());
    let mut monitor = server.conn();
    assert_eq!(monitor.cmd(&["MONITOR"]), Frame::ok());
    // Lines of 64 KiB arguments, far more than the limit and the socket buffers hold.
    let big = vec![b'x'; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let Frame::Bulk(list) = c.cmd(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
        if !String::from_utf8_lossy(&list).contains("flags=O") {
            break;
        }
        assert!(Instant::now() < deadline, "the monitor was never cut off");
        let mut batch = Vec::new();
        for _ in 0..64 {
            batch.extend(Conn::encode(&[b"ECHO", &big]));
        }
        c.send_raw(&batch);
        for _ in 0..64 {
            assert!(matches!(c.read_frame(), Some(Frame::Bulk(_))));
        }
    }
}
