//! Keyspace notifications on one node over real sockets: keys removed by the active expiry
//! announce `expired` (also keys stored already expired), the setting as a start-up flag,
//! the database number and binary keys in channel names, a pipeline's events whole and in
//! order, and nothing at all once switched off. The events of every command are compared
//! with Redis byte for byte in tests/diff/notifications.txt; a subscriber on another node
//! than the writer in tests/apps_process.rs.

mod common;

use common::{Conn, Server};
use raftis::protocol::Frame;

fn bulk(s: &[u8]) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s))
}

fn pmessage(pattern: &str, channel: &[u8], payload: &[u8]) -> Frame {
    Frame::Array(vec![bulk(b"pmessage"), bulk(pattern.as_bytes()), bulk(channel), bulk(payload)])
}

fn subscriber(server: &Server, pattern: &str) -> Conn {
    let mut sub = server.conn();
    let reply = sub.cmd(&["PSUBSCRIBE", pattern]);
    assert_eq!(reply, Frame::Array(vec![bulk(b"psubscribe"), bulk(pattern.as_bytes()), Frame::Integer(1)]));
    sub
}

#[test]
fn keys_removed_by_the_active_expiry_announce_expired() {
    // The flag form of the setting, as a start-up option.
    let server = Server::raftis(&["--notify-keyspace-events", "Ex"]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]), {
        Frame::Array(vec![bulk(b"notify-keyspace-events"), bulk(b"xE")])
    });
    let mut sub = subscriber(&server, "__keyevent@*__:*");
    assert_eq!(c.cmd(&["SET", "soon", "v", "PX", "50"]), Frame::ok());
    // Stored already expired (Redis 7.0 keeps it until the expiry removes it): no `del`.
    assert_eq!(c.cmd(&["SET", "past", "v", "PXAT", "1"]), Frame::ok());
    assert_eq!(c.cmd(&["EXISTS", "past"]), Frame::Integer(0));
    // The socket's read timeout (10 s) is the deadline; both go in one active-expiry round or
    // two, in either order.
    let mut expired = Vec::new();
    for _ in 0..2 {
        let Some(Frame::Array(parts)) = sub.read_frame() else { panic!("no expired event") };
        assert_eq!(parts[2], bulk(b"__keyevent@0__:expired"));
        expired.push(parts[3].clone());
    }
    expired.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(expired, vec![bulk(b"past"), bulk(b"soon")]);
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(0));
}

#[test]
fn a_pipeline_announces_every_write_in_order_with_its_database_and_binary_keys() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "K$lg"]), Frame::ok());
    let mut sub = subscriber(&server, "__keyspace@*");
    let mut pipeline = Conn::encode(&[b"SELECT", b"7"]);
    for i in 0..200u32 {
        pipeline.extend(Conn::encode(&[b"SET", format!("k\0 {i}").as_bytes(), b"v"]));
    }
    pipeline.extend(Conn::encode(&[b"RPUSH", b"list", b"a"]));
    pipeline.extend(Conn::encode(&[b"SADD", b"set", b"a"]));
    pipeline.extend(Conn::encode(&[b"DEL", b"list"]));
    c.send_raw(&pipeline);
    for _ in 0..204 {
        assert!(!matches!(c.read_frame(), Some(Frame::Error(_)) | None));
    }
    for i in 0..200u32 {
        let channel = format!("__keyspace@7__:k\0 {i}");
        assert_eq!(sub.read_frame(), Some(pmessage("__keyspace@*", channel.as_bytes(), b"set")));
    }
    assert_eq!(sub.read_frame(), Some(pmessage("__keyspace@*", b"__keyspace@7__:list", b"rpush")));
    // SADD's class (s) is not selected: the next event is DEL's.
    assert_eq!(sub.read_frame(), Some(pmessage("__keyspace@*", b"__keyspace@7__:list", b"del")));
    // Switched off, nothing more is published: the next event is the one after switching on.
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "silent", "v"]), Frame::ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "K$"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "heard", "v"]), Frame::ok());
    assert_eq!(sub.read_frame(), Some(pmessage("__keyspace@*", b"__keyspace@7__:heard", b"set")));
}

#[test]
fn bad_settings_are_refused_with_redis_errors_and_change_nothing() {
    let server = Server::raftis(&[]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]), Frame::ok());
    for bad in ["KEAq", "K E", "\u{e9}"] {
        let Frame::Error(e) = c.cmd(&["CONFIG", "SET", "notify-keyspace-events", bad]) else {
            panic!("{bad} accepted")
        };
        assert!(e.ends_with(b"Invalid event class character. Use 'Ag$lshzxeKEtmdn'."), "{e:?}");
    }
    let get = c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]);
    assert_eq!(get, Frame::Array(vec![bulk(b"notify-keyspace-events"), bulk(b"AKE")]));
}

#[test]
fn a_script_announces_its_writes_and_an_undone_script_announces_nothing() {
    let server = Server::raftis(&["--notify-keyspace-events", "E$l"]);
    let mut c = server.conn();
    let mut sub = subscriber(&server, "__keyevent@0__:*");
    let script = "redis.call('set', KEYS[1], 'v') redis.call('rpush', KEYS[2], 'x')";
    assert_eq!(c.cmd(&["EVAL", script, "2", "k", "l"]), Frame::Null);
    assert_eq!(sub.read_frame(), Some(pmessage("__keyevent@0__:*", b"__keyevent@0__:set", b"k")));
    assert_eq!(sub.read_frame(), Some(pmessage("__keyevent@0__:*", b"__keyevent@0__:rpush", b"l")));
    // Stopped by the step budget after two writes: they are rolled back, and unannounced.
    assert_eq!(c.cmd(&["CONFIG", "SET", "lua-max-steps", "200000"]), Frame::ok());
    let runaway = format!("{script} while true do end");
    let Frame::Error(_) = c.cmd(&["EVAL", &runaway, "2", "k2", "l2"]) else { panic!("not stopped") };
    assert_eq!(c.cmd(&["SET", "after", "v"]), Frame::ok());
    assert_eq!(sub.read_frame(), Some(pmessage("__keyevent@0__:*", b"__keyevent@0__:set", b"after")));
}
