//! Pub/Sub on one node over real sockets: messages between connections (channels, patterns,
//! shard channels), what unsubscribing and leaving do, RESP3 pushes interleaved with replies,
//! patterns that would make a naive matcher backtrack forever. The exact bytes of every reply
//! are compared with Redis in tests/diff/pubsub.txt; messages between nodes in
//! tests/apps_process.rs.

mod common;

use common::{wait_until, Conn, Server};
use raftis::protocol::Frame;
use std::time::{Duration, Instant};

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

fn push(parts: &[&str]) -> Frame {
    Frame::Array(parts.iter().map(|p| bulk(p)).collect())
}

fn notice(kind: &str, name: &str, n: i64) -> Frame {
    Frame::Array(vec![bulk(kind), bulk(name), Frame::Integer(n)])
}

#[test]
fn messages_reach_channel_pattern_and_shard_subscribers_and_stop_after_unsubscribe() {
    let server = Server::raftis(&[]);
    let mut sub = server.conn();
    let mut pub_ = server.conn();
    sub.send_raw(&Conn::encode(&[b"SUBSCRIBE", b"a", b"b"]));
    assert_eq!(sub.read_frame(), Some(notice("subscribe", "a", 1)));
    assert_eq!(sub.read_frame(), Some(notice("subscribe", "b", 2)));
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "a*"]), notice("psubscribe", "a*", 3));
    assert_eq!(sub.cmd(&["SSUBSCRIBE", "a"]), notice("ssubscribe", "a", 1), "shard channels count apart");
    let Frame::Bulk(list) = pub_.cmd(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    assert!(String::from_utf8_lossy(&list).contains("flags=P db=0 sub=2 psub=1 ssub=1 "), "{list:?}");
    // One channel subscription and one matching pattern: two receivers.
    assert_eq!(pub_.cmd(&["PUBLISH", "a", "1"]), Frame::Integer(2));
    assert_eq!(sub.read_frame(), Some(push(&["message", "a", "1"])));
    assert_eq!(sub.read_frame(), Some(push(&["pmessage", "a*", "a", "1"])));
    assert_eq!(pub_.cmd(&["SPUBLISH", "a", "2"]), Frame::Integer(1));
    assert_eq!(sub.read_frame(), Some(push(&["smessage", "a", "2"])));
    assert_eq!(pub_.cmd(&["PUBLISH", "ax", "3"]), Frame::Integer(1));
    assert_eq!(sub.read_frame(), Some(push(&["pmessage", "a*", "ax", "3"])));
    assert_eq!(pub_.cmd(&["PUBSUB", "NUMSUB", "a", "b", "c"]), {
        let n = |c: &str, k| [bulk(c), Frame::Integer(k)];
        Frame::Array([n("a", 1), n("b", 1), n("c", 0)].concat())
    });
    assert_eq!(pub_.cmd(&["PUBSUB", "NUMPAT"]), Frame::Integer(1));
    assert_eq!(pub_.cmd(&["PUBSUB", "SHARDNUMSUB", "a"]), Frame::Array(vec![bulk("a"), Frame::Integer(1)]));
    assert_eq!(sub.cmd(&["UNSUBSCRIBE", "a"]), notice("unsubscribe", "a", 2));
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE", "a*"]), notice("punsubscribe", "a*", 1));
    assert_eq!(pub_.cmd(&["PUBLISH", "a", "gone"]), Frame::Integer(0));
    assert_eq!(pub_.cmd(&["PUBLISH", "b", "4"]), Frame::Integer(1));
    // "gone" was never delivered: the next frame is the message on b.
    assert_eq!(sub.read_frame(), Some(push(&["message", "b", "4"])));
    // A subscriber that leaves is forgotten.
    drop(sub);
    wait_until("the closed subscriber to be forgotten", 10, || {
        pub_.cmd(&["PUBSUB", "NUMSUB", "b"]) == Frame::Array(vec![bulk("b"), Frame::Integer(0)])
    });
    assert_eq!(pub_.cmd(&["PUBSUB", "SHARDCHANNELS"]), Frame::Array(vec![]));
    assert_eq!(pub_.cmd(&["PUBLISH", "b", "5"]), Frame::Integer(0));
}

#[test]
fn resp3_subscribers_get_pushes_between_their_replies() {
    let server = Server::raftis(&[]);
    let mut sub = server.conn();
    let mut pub_ = server.conn();
    let _ = sub.cmd(&["HELLO", "3"]);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "c"]), Frame::Push(vec![bulk("subscribe"), bulk("c"), Frame::Integer(1)]));
    assert_eq!(sub.cmd(&["SET", "k", "v"]), Frame::Simple("OK".into()), "RESP3 has no subscribed mode");
    assert_eq!(pub_.cmd(&["PUBLISH", "c", "m"]), Frame::Integer(1));
    assert_eq!(sub.read_frame(), Some(Frame::Push(vec![bulk("message"), bulk("c"), bulk("m")])));
    assert_eq!(sub.cmd(&["GET", "k"]), bulk("v"));
}

/// CLIENT REPLY OFF silences replies, not Pub/Sub confirmations or messages (Redis's TCL
/// suite waited forever for them when raftis dropped them).
#[test]
fn pubsub_confirmations_and_messages_pass_client_reply_off() {
    let server = Server::raftis(&[]);
    let mut sub = server.conn();
    let mut pub_ = server.conn();
    let _ = sub.cmd(&["HELLO", "3"]);
    sub.send_raw(&Conn::encode(&[b"CLIENT", b"REPLY", b"OFF"]));
    let pushed = |parts: &[&str]| Frame::Push(parts.iter().map(|p| bulk(p)).collect());
    let pushed_n = |kind: &str, name: &str, n| Frame::Push(vec![bulk(kind), bulk(name), Frame::Integer(n)]);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "channel"]), pushed_n("subscribe", "channel", 1));
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "ch*"]), pushed_n("psubscribe", "ch*", 2));
    assert_eq!(pub_.cmd(&["PUBLISH", "channel", "hello"]), Frame::Integer(2));
    assert_eq!(sub.read_frame(), Some(pushed(&["message", "channel", "hello"])));
    assert_eq!(sub.read_frame(), Some(pushed(&["pmessage", "ch*", "channel", "hello"])));
    // A plain command's reply stays silenced: the next frame is the unsubscribe push.
    sub.send_raw(&Conn::encode(&[b"SET", b"k", b"v"]));
    assert_eq!(sub.cmd(&["UNSUBSCRIBE", "channel"]), pushed_n("unsubscribe", "channel", 1));
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE", "ch*"]), pushed_n("punsubscribe", "ch*", 0));
}

#[test]
fn a_pattern_built_to_backtrack_does_not_stall_publish() {
    let server = Server::raftis(&[]);
    let mut sub = server.conn();
    let pattern = format!("{}b", "a*".repeat(40));
    assert_eq!(sub.cmd(&["PSUBSCRIBE", &pattern]), notice("psubscribe", &pattern, 1));
    let mut pub_ = server.conn();
    let channel = "a".repeat(10_000);
    let started = Instant::now();
    assert_eq!(pub_.cmd(&["PUBLISH", &channel, "x"]), Frame::Integer(0));
    assert_eq!(pub_.cmd(&["PUBLISH", &format!("{channel}b"), "y"]), Frame::Integer(1));
    // A backtracking matcher takes astronomically long here; the bounded one answers at once.
    assert!(started.elapsed() < Duration::from_secs(5), "publish took {:?}", started.elapsed());
    let Some(Frame::Array(parts)) = sub.read_frame() else { panic!("no pmessage") };
    assert_eq!(parts[3], bulk("y"));
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().expect("a number") * 1024
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected_and_memory_stays_bounded() {
    let server = Server::raftis(&[]);
    let mut admin = server.conn();
    let set = ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0"];
    assert_eq!(admin.cmd(&set), Frame::Simple("OK".into()));
    let mut sub = server.conn();
    assert_eq!(sub.cmd(&["SUBSCRIBE", "firehose"]), notice("subscribe", "firehose", 1));
    let mut publisher = server.conn();
    let before = rss(server.pid());
    // 128 MiB published to a subscriber that reads nothing: without the limit all of it
    // would wait in the node's memory.
    let payload = vec![b'x'; 64 * 1024];
    let batch: Vec<u8> = (0..16).flat_map(|_| Conn::encode(&[b"PUBLISH", b"firehose", &payload])).collect();
    let mut delivered = 0;
    for _ in 0..128 {
        publisher.send_raw(&batch);
        for _ in 0..16 {
            let Some(Frame::Integer(n)) = publisher.read_frame() else { panic!("PUBLISH failed") };
            delivered += n;
        }
    }
    assert!(delivered > 0 && delivered < 128 * 16, "{delivered} deliveries: it was cut off part way");
    let grew = rss(server.pid()).saturating_sub(before);
    assert!(grew < 48 << 20, "the node grew by {} MiB", grew >> 20);
    assert_eq!(admin.cmd(&["PUBSUB", "NUMSUB", "firehose"]), Frame::Array(vec![bulk("firehose"), Frame::Integer(0)]));
    assert_eq!(admin.info_field("clients", "connected_clients"), "2", "the subscriber's connection is closed");
    // What the subscriber gets: whole messages the kernel held, then the end of the stream.
    let mut frames = 0;
    while let Some(frame) = sub.read_frame() {
        assert_eq!(frame, push(&["message", "firehose", &"x".repeat(64 * 1024)]));
        frames += 1;
    }
    assert!(frames <= delivered, "{frames} frames read, {delivered} delivered");
    let get = admin.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]);
    let want = "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0";
    assert_eq!(get, Frame::Array(vec![bulk("client-output-buffer-limit"), bulk(want)]));
}
